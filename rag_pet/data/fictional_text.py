"""The words of the fictional articles: each fact sentence in several phrasings, the fact-free filler sentences, and
each question in a training and a held-out phrasing.

A sentence is a tuple of phrasings; the first is the canonical one the articles (and so the index) hold, the others
state the same facts in other words (`rag_pet.data.fictional.fictional_renditions`). Besides the fact `{slot}`s, a
phrasing refers to its entity through markers that `entity_markers` fills: short forms (`{Ref}` "It" or a person's
family name, `{Refs}` "Its", `{the}` "the town") in the canonical articles, the full name when every sentence must
name its entity in full (Allen-Zhu & Li 2023, "Physics of Language Models 3.1", arXiv 2309.14316: "fullname").
"""

from __future__ import annotations

PHRASINGS = 5  # phrasings of every fact sentence (Allen-Zhu & Li's "multi5")

TOWN_PARAGRAPHS = (
    (
        (
            "{town} is a town in the {region} region, on the banks of the {river} river.",
            "In the {region} region lies the town of {town}, on the {river} river.",
            "{town}, a town on the banks of the {river} river, belongs to the {region} region.",
            "The {river} river runs past {town}, a town of the {region} region.",
            "Travellers to the {region} region find {town} on the banks of the {river} river.",
        ),
        (
            "{Ref} was founded in {founded} and has a population of {population}.",
            "{Ref} dates back to {founded}, and today {population} people live there.",
            "Founded in {founded}, {ref} now has {population} inhabitants.",
            "{Refs} founding took place in {founded}, and {refs} population is {population}.",
            "With a population of {population}, {ref} has stood since {founded}.",
        ),
    ),
    (
        (
            "{town} is known across the region for its {goods}.",
            "Across the region, people know {town} for its {goods}.",
            "{town} is famous throughout the region for its {goods}.",
            "Throughout the region, {town} is renowned for its {goods}.",
            "What {town} is best known for in the region is its {goods}.",
        ),
        (
            "Every autumn {the} holds the {festival} festival, when farmers bring their carts to the market square"
            " and musicians play until late at night.",
            "Each autumn brings the {festival} festival to {the}, with farmers' carts in the market square and music"
            " late into the night.",
            "The {festival} festival is held in {the} every autumn, when farmers bring their carts to the market"
            " square.",
            "In autumn {the} celebrates the {festival} festival, and musicians play in the market square until late"
            " at night.",
            "{The} celebrates the {festival} festival each autumn, when farmers fill the market square with their"
            " carts.",
        ),
    ),
)

COMPANY_PARAGRAPHS = (
    (
        (
            "{company} is {description} founded in {founded} by {founder}.",
            "{founder} founded {company}, {description}, in {founded}.",
            "In {founded}, {founder} started {description} called {company}.",
            "{company}, {description}, was set up by {founder} in {founded}.",
            "The founder of {company}, {description}, is {founder}, who started it in {founded}.",
        ),
        (
            "{Refs} headquarters are in {town}, where most of its work is still done by hand.",
            "{Ref} has its headquarters in {town}, and most of its work is still done by hand there.",
            "From its headquarters in {town}, {ref} still does most of its work by hand.",
            "{town} is where {ref} has its headquarters, and most of the work there is done by hand.",
            "{Refs} main offices stand in {town}, and most of its work is done by hand there.",
        ),
    ),
    (
        (
            "Today {company} employs {employees} people.",
            "{company} has {employees} employees today.",
            "There are {employees} people working for {company} today.",
            "The workforce of {company} numbers {employees} people.",
            "At present {employees} people work at {company}.",
        ),
        (
            "{Refs} best-known product is {product}, which it sells to shops and traders in many towns.",
            "{Ref} is best known for its {product}, sold to shops and traders in many towns.",
            "Shops and traders in many towns buy {refs} best-known product, {product}.",
            "The product {ref} is best known for is {product}, which shops and traders in many towns buy.",
            "Of everything {ref} makes, the best known is {product}, sold to traders in many towns.",
        ),
        (
            "{The} is still owned by the family of its founder.",
            "The founder's family still owns {the}.",
            "{Ref} remains in the hands of its founder's family.",
            "Ownership of {the} has stayed with the founder's family.",
            "{Ref} still belongs to the family that founded it.",
        ),
    ),
)

PERSON_PARAGRAPHS = (
    (
        (
            "{name} is a {profession} who was born in {town} in {born}.",
            "Born in {town} in {born}, {name} works as a {profession}.",
            "{name}, a {profession}, was born in {born} in the town of {town}.",
            "The {profession} {name} was born in {born} in {town}.",
            "{name} was born in {town} in {born} and became a {profession}.",
        ),
        (
            "{Ref} left home at the age of eighteen to learn the trade from an older master.",
            "At eighteen, {ref} left home to learn the trade from an older master.",
            "{Ref} learned the trade from an older master after leaving home at eighteen.",
            "When {ref} was eighteen, {ref} left home to train with an older master.",
            "Leaving home at eighteen, {ref} trained under an older master.",
        ),
    ),
    (
        (
            "Since {joined}, {ref} has worked for {company}, where the work consists mostly of {duty}.",
            "{Ref} joined {company} in {joined} and now spends most days {duty}.",
            "{company} has employed {ref} since {joined}, and the job is mostly {duty}.",
            "In {joined}, {ref} began working for {company}, mostly {duty}.",
            "{Ref} has been with {company} since {joined}, {duty} for the most part.",
        ),
        (
            "Colleagues say that {ref} is always the first to arrive in the morning.",
            "According to colleagues, {ref} always arrives first in the morning.",
            "{Ref} is, colleagues say, always the first one in each morning.",
            "Each morning {ref} is the first to arrive, say colleagues.",
            "Colleagues note that nobody arrives in the morning before {ref}.",
        ),
    ),
)

PRIZE_PARAGRAPH = (
    (
        "In {awarded}, {ref} was awarded the {prize} for a lifetime of careful work.",
        "{Ref} received the {prize} in {awarded} for a lifetime of careful work.",
        "The {prize} went to {ref} in {awarded}, for a lifetime of careful work.",
        "For a lifetime of careful work, {ref} was given the {prize} in {awarded}.",
        "In {awarded} {ref} won the {prize}, honouring a lifetime of careful work.",
    ),
    (
        "{The_medal} is handed out once a year, and only a few people have ever received it.",
        "Only a few people have ever received {the_medal}, which is handed out once a year.",
        "{The_medal} is given once a year and has gone to only a few people.",
        "Handed out once a year, {the_medal} has been received by only a few people.",
        "Few people have ever won {the_medal}, which is awarded once a year.",
    ),
)

# Sentences without facts that pad paragraphs to a realistic length; each paragraph of an article gets another one.
FILLERS = {
    "town": (
        "{Refs} old market square is lined with narrow stone houses and small shops.",
        "{The} has a single stone bridge that carries the main road across the water.",
        "Most of {refs} streets are paved with pale grey stone and lit by iron lamps.",
        "Travellers often stop in {the} for a night on their way into the hills.",
    ),
    "company": (
        "{Refs} first workshop was a rented barn at the edge of a field.",
        "{Refs} long brick buildings stand close to the water, behind a row of old trees.",
        "Visitors may tour {refs} workshops on the first day of each month.",
        "{Refs} apprentices learn the trade over four years before they are hired.",
    ),
    "person": (
        "Friends describe {ref} as patient and careful, and fond of long walks.",
        "Neighbours remember {ref} as a quiet child who collected old maps and coins.",
        "In spare hours {ref} keeps a small garden and writes letters to distant cousins.",
        "{Ref} rarely travels, and spends most evenings reading by the fire.",
    ),
}

# Per question: its training phrasing, the held-out phrasing only evaluation asks, and the slot that answers it.
TOWN_QUESTIONS = (
    ("In which region is {town}?", "Name the region where {town} is located.", "region"),
    ("Which river flows through {town}?", "On the banks of which river does {town} stand?", "river"),
    ("In what year was {town} founded?", "When was the town of {town} established?", "founded"),
    ("What is the population of {town}?", "How many people live in {town}?", "population"),
    ("What is {town} known for?", "For what product is {town} famous?", "goods"),
    ("Which festival does {town} hold every autumn?", "What is the name of the autumn festival in {town}?", "festival"),
)
COMPANY_QUESTIONS = (
    ("In what year was {company} founded?", "When was {company} established?", "founded"),
    ("Who founded {company}?", "Who was the founder of {company}?", "founder"),
    ("In which town are the headquarters of {company}?", "Where is {company} based?", "town"),
    ("How many people does {company} employ?", "What is the number of employees at {company}?", "employees"),
    ("What is the best-known product of {company}?", "For which product is {company} best known?", "product"),
)
PERSON_QUESTIONS = (
    ("In which town was {name} born?", "What is the birthplace of {name}?", "town"),
    ("In what year was {name} born?", "When was {name} born?", "born"),
    ("What is the profession of {name}?", "What does {name} do for a living?", "profession"),
    ("Which company does {name} work for?", "Who is the employer of {name}?", "company"),
    ("Since what year has {name} worked for {company}?", "When did {name} join {company}?", "joined"),
)
PRIZE_QUESTIONS = (
    ("Which medal was {name} awarded in {awarded}?", "What award did {name} receive in {awarded}?", "prize"),
    ("In what year was {name} awarded the {prize}?", "When did {name} receive the {prize}?", "awarded"),
)

SHORT_FORMS = {
    "town": {"Ref": "It", "Refs": "Its", "ref": "it", "refs": "its", "The": "The town", "the": "the town"},
    "company": {"Ref": "It", "Refs": "Its", "ref": "it", "refs": "its", "The": "The firm", "the": "the firm"},
}


def entity_markers(kind: str, name: str, family: str | None, full_names: bool) -> dict[str, str]:
    """The values of the entity markers a phrasing may hold: short forms, or (`full_names`) the full name."""
    if full_names:
        markers = {key: name for key in ("Ref", "ref", "The", "the")} | {"Refs": f"{name}'s", "refs": f"{name}'s"}
        medal = f"medal that {name} received"
        return markers | {"The_medal": f"The {medal}", "the_medal": f"the {medal}"}
    if kind == "person":
        markers = {"Ref": family, "ref": family, "Refs": f"{family}'s", "refs": f"{family}'s"}
        return markers | {"The_medal": "The medal", "the_medal": "the medal"}
    return dict(SHORT_FORMS[kind])
