"""A seeded generator of fictional towns, companies and people, with SQuAD-shaped questions about them: facts
SmolLM2 cannot have seen in pre-training, so a method's score measures knowledge it injected, not recalled."""

from __future__ import annotations

import random
import re
import string
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from rag_pet.config.articles import check_fictional_entities
from rag_pet.data.resources import SQUAD_DEV
from rag_pet.storage import write_json_atomic

ONSETS = ("b", "br", "d", "dr", "f", "g", "k", "kr", "l", "m", "n", "p", "r", "s", "t", "th", "tr", "v", "z")
VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o", "ei", "ou")
CODAS = ("", "", "l", "n", "r", "s", "th", "x")
PROFESSIONS = (
    ("cartographer", "drawing the charts of distant coasts"),
    ("clockmaker", "repairing the old tower clocks"),
    ("botanist", "cataloguing the seeds of mountain plants"),
    ("glassblower", "shaping lenses for small telescopes"),
    ("surveyor", "measuring new roads across the hills"),
    ("bookbinder", "restoring the pages of damaged ledgers"),
    ("beekeeper", "tending the hives on the northern slopes"),
    ("stonemason", "repairing the arches of old bridges"),
    ("weaver", "designing patterns for woollen rugs"),
    ("violinist", "playing in the evening concerts"),
)
COMPANIES = (
    ("Foundry", "a foundry", "church bells"),
    ("Press", "a printing house", "pocket atlases"),
    ("Works", "an engineering firm", "steam pumps"),
    ("Mills", "a paper maker", "drawing paper"),
    ("Brewery", "a brewery", "dark ale"),
    ("Shipyard", "a shipyard", "river barges"),
    ("Pottery", "a pottery", "blue tiles"),
)
GOODS = ("salt", "wool", "cheese", "honey", "copper", "timber", "apples", "linen")
# Sentences without facts that pad paragraphs to a realistic length; each paragraph of an article gets another one.
FILLERS = {
    "town": (
        "Its old market square is lined with narrow stone houses and small shops.",
        "A single stone bridge carries the main road across the water.",
        "Most of its streets are paved with pale grey stone and lit by iron lamps.",
        "Travellers often stop there for a night on their way into the hills.",
    ),
    "company": (
        "Its first workshop was a rented barn at the edge of a field.",
        "Its long brick buildings stand close to the water, behind a row of old trees.",
        "Visitors may tour its workshops on the first day of each month.",
        "Its apprentices learn the trade over four years before they are hired.",
    ),
    "person": (
        "Friends describe {family} as patient and careful, and fond of long walks.",
        "Neighbours remember {family} as a quiet child who collected old maps and coins.",
        "In spare hours {family} keeps a small garden and writes letters to distant cousins.",
        "{family} rarely travels, and spends most evenings reading by the fire.",
    ),
}


@dataclass(frozen=True)
class _Town:
    name: str
    region: str
    river: str
    founded: int
    population: str
    goods: str
    festival: str


@dataclass(frozen=True)
class _Person:
    given: str
    family: str
    born: int
    birthplace: _Town
    profession: tuple[str, str]

    @property
    def name(self) -> str:
        return f"{self.given} {self.family}"


@dataclass(frozen=True)
class _Company:
    name: str
    kind: tuple[str, str, str]
    founder: _Person
    founded: int
    headquarters: _Town
    employees: int


@lru_cache(maxsize=1)
def squad_words() -> frozenset[str]:
    """Every lower-cased word of the bundled SQuAD dev set (titles, contexts, questions): invented names avoid
    them."""
    from rag_pet.data.squad import load_squad_articles

    words: set[str] = set()
    for article in load_squad_articles(SQUAD_DEV):
        words.update(_words(article["title"]))
        for paragraph in article["paragraphs"]:
            words.update(_words(paragraph["context"]))
            words.update(word for qa in paragraph["qas"] for word in _words(qa["question"]))
    return frozenset(words)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


class _Names:
    """Invented words of two or three syllables (at least 5 letters), each used once; a candidate that is a word of
    the SQuAD text is drawn again: checked against `squad_words`, not avoided by construction, since syllables alone
    can spell real words."""

    def __init__(self, rng: random.Random):
        self.rng, self.used, self.known = rng, set(), squad_words()

    def __call__(self) -> str:
        while True:
            syllables = self.rng.randint(2, 3)
            word = "".join(self.rng.choice(ONSETS) + self.rng.choice(VOWELS) for _ in range(syllables))
            word += self.rng.choice(CODAS)
            if len(word) >= 5 and word not in self.used and word not in self.known:
                self.used.add(word)
                return word.capitalize()


@lru_cache(maxsize=4)
def fictional_articles(seed: int, entities: int) -> tuple[dict, ...]:
    """`entities` SQuAD v1.1 articles (towns, companies and people; 1-3 paragraphs and 3-6 questions each), the
    same for the same arguments in any process.

    Every fact is stated in its own entity's article only, while articles name each other (a person was born in one
    town and works for a company headquartered in another), so answering a question needs its own document."""
    check_fictional_entities("data.fictional_entities", entities)
    rng = random.Random(seed)
    names = _Names(rng)
    regions = [names() for _ in range(max(2, entities // 12))]
    rivers = [names() for _ in range(max(2, entities // 8))]
    towns = [
        _Town(
            names(),
            rng.choice(regions),
            rng.choice(rivers),
            rng.randint(1100, 1800),
            f"{rng.randrange(800, 90000, 100):,}",
            rng.choice(GOODS),
            names(),
        )
        for _ in range(max(1, entities // 4))
    ]
    people = [
        _Person(names(), names(), rng.randint(1900, 1970), rng.choice(towns), rng.choice(PROFESSIONS))
        for _ in range(entities - 2 * len(towns))
    ]
    companies = []
    for _ in towns:
        founder, kind = rng.choice(people), rng.choice(COMPANIES)
        founded = founder.born + rng.randint(22, 40)
        companies.append(
            _Company(f"{names()} {kind[0]}", kind, founder, founded, rng.choice(towns), rng.randrange(20, 900))
        )
    specs = [_town(town, rng) for town in towns]
    specs += [_company(company, rng) for company in companies]
    specs += [_person(person, _employer(person, companies, rng), names, rng) for person in people]
    return tuple(_article(f"fictional-{seed}-{index:04d}", *spec, rng) for index, spec in enumerate(specs))


# An article's spec: its kind (which fillers pad it), title, paragraph templates, the values of their `{slot}`s, and
# the questions it may ask as (question template, the slot that answers it).
_Spec = tuple[str, str, list[str], dict[str, str], list[tuple[str, str]]]


def _employer(person: _Person, companies: list[_Company], rng: random.Random) -> _Company:
    """A company founded while `person` could still join it (any company when none was)."""
    return rng.choice([c for c in companies if c.founded <= person.born + 50] or companies)


def _town(town: _Town, rng: random.Random) -> _Spec:
    values = {"town": town.name, "region": town.region, "river": town.river, "founded": str(town.founded)}
    values |= {"population": town.population, "goods": town.goods, "festival": town.festival}
    paragraphs = [
        "{town} is a town in the {region} region, on the banks of the {river} river. It was founded in"
        " {founded} and has a population of {population}.",
        "{town} is known across the region for its {goods}. Every autumn the town holds the {festival} festival,"
        " when farmers bring their carts to the market square and musicians play until late at night.",
    ]
    questions = [
        ("In which region is {town}?", "region"),
        ("Which river flows through {town}?", "river"),
        ("In what year was {town} founded?", "founded"),
        ("What is the population of {town}?", "population"),
        ("What is {town} known for?", "goods"),
        ("Which festival does {town} hold every autumn?", "festival"),
    ]
    return "town", town.name, paragraphs[: rng.randint(1, 2)], values, questions


def _company(company: _Company, rng: random.Random) -> _Spec:
    kind, description, product = company.kind
    values = {"company": company.name, "description": description, "founder": company.founder.name}
    values |= {"founded": str(company.founded), "town": company.headquarters.name, "product": product}
    values["employees"] = str(company.employees)
    paragraphs = [
        "{company} is {description} founded in {founded} by {founder}. Its headquarters are in {town}, where"
        " most of its work is still done by hand.",
        "Today {company} employs {employees} people. Its best-known product is {product}, which it sells to"
        " shops and traders in many towns. The firm is still owned by the family of its founder.",
    ]
    questions = [
        ("In what year was {company} founded?", "founded"),
        ("Who founded {company}?", "founder"),
        ("In which town are the headquarters of {company}?", "town"),
        ("How many people does {company} employ?", "employees"),
        ("What is the best-known product of {company}?", "product"),
    ]
    return "company", company.name, paragraphs, values, questions


def _person(person: _Person, employer: _Company, names: _Names, rng: random.Random) -> _Spec:
    profession, duty = person.profession
    joined = max(person.born + 20, employer.founded) + rng.randint(0, 8)
    values = {"name": person.name, "family": person.family, "profession": profession, "born": str(person.born)}
    values |= {"town": person.birthplace.name, "company": employer.name, "joined": str(joined), "duty": duty}
    paragraphs = [
        "{name} is a {profession} who was born in {town} in {born}. {family} left home at the age of eighteen"
        " to learn the trade from an older master.",
        "Since {joined}, {family} has worked for {company}, where the work consists mostly of {duty}. Colleagues"
        " say that {family} is always the first to arrive in the morning.",
    ]
    questions = [
        ("In which town was {name} born?", "town"),
        ("In what year was {name} born?", "born"),
        ("What is the profession of {name}?", "profession"),
        ("Which company does {name} work for?", "company"),
        ("Since what year has {name} worked for {company}?", "joined"),
    ]
    if rng.random() < 0.5:
        values |= {"prize": f"{names()} Medal", "awarded": str(rng.randint(joined + 3, 2023))}
        paragraphs.append(
            "In {awarded}, {family} was awarded the {prize} for a lifetime of careful work. The medal is handed"
            " out once a year, and only a few people have ever received it."
        )
        questions += [
            ("Which medal was {name} awarded in {awarded}?", "prize"),
            ("In what year was {name} awarded the {prize}?", "awarded"),
        ]
    return "person", person.name, paragraphs, values, questions


def _article(
    prefix: str,
    kind: str,
    name: str,
    templates: list[str],
    values: dict[str, str],
    questions: list[tuple[str, str]],
    rng: random.Random,
) -> dict:
    """The SQuAD article of a spec, each paragraph padded by a filler, asking 3-6 of the questions its paragraphs
    answer; question ids `<prefix>-<n>`."""
    fillers = rng.sample(FILLERS[kind], len(templates))
    rendered = [_render(f"{template} {filler}", values) for template, filler in zip(templates, fillers, strict=True)]
    answerable = [q for q in questions if any(q[1] in starts for _, starts in rendered)]
    asked = sorted(rng.sample(range(len(answerable)), rng.randint(3, min(6, len(answerable)))))
    paragraphs = [{"context": context, "qas": []} for context, _ in rendered]
    for number, index in enumerate(asked):
        question, slot = answerable[index]
        where = next(i for i, (_, starts) in enumerate(rendered) if slot in starts)
        answer = {"text": values[slot], "answer_start": rendered[where][1][slot]}
        paragraphs[where]["qas"].append(
            {"id": f"{prefix}-{number}", "question": question.format(**values), "answers": [answer]}
        )
    return {"title": name.replace(" ", "_"), "paragraphs": paragraphs}


def _render(template: str, values: dict[str, str]) -> tuple[str, dict[str, int]]:
    """`template` with its `{slot}`s filled, and the character offset where each slot's value first starts."""
    text, starts = "", {}
    for literal, slot, _, _ in string.Formatter().parse(template):
        text += literal
        if slot is not None:
            starts.setdefault(slot, len(text))
            text += values[slot]
    return text, starts


def write_squad_json(articles: Iterable[dict], path: str | Path) -> Path:
    """The articles as a SQuAD v1.1 JSON file (what `load_squad_articles` reads), written atomically."""
    return write_json_atomic(path, {"version": "1.1", "data": list(articles)})
