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
from rag_pet.data.fictional_text import (
    COMPANY_PARAGRAPHS,
    COMPANY_QUESTIONS,
    FILLERS,
    PERSON_PARAGRAPHS,
    PERSON_QUESTIONS,
    PHRASINGS,
    PRIZE_PARAGRAPH,
    PRIZE_QUESTIONS,
    TOWN_PARAGRAPHS,
    TOWN_QUESTIONS,
    entity_markers,
)
from rag_pet.data.resources import SQUAD_DEV
from rag_pet.data.squad import load_squad_articles, passage_id
from rag_pet.data.types import QAExample
from rag_pet.errors import ConfigError
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


def fictional_articles(seed: int, entities: int) -> tuple[dict, ...]:
    """`entities` SQuAD v1.1 articles (towns, companies and people; 1-3 paragraphs and 3-6 questions each), the
    same for the same arguments in any process.

    Every fact is stated in its own entity's article only, while articles name each other (a person was born in one
    town and works for a company headquartered in another), so answering a question needs its own document."""
    return tuple(written.article for written in fictional_written(seed, entities))


@lru_cache(maxsize=4)
def fictional_written(seed: int, entities: int) -> tuple[WrittenArticle, ...]:
    """The articles of `fictional_articles` with what each was written from."""
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


# An article's spec: its kind (which fillers pad it), title, paragraphs (each a tuple of sentences, each sentence a
# tuple of phrasings), the values of their `{slot}`s, and the questions it may ask as (training phrasing, held-out
# phrasing, the slot that answers it).
_Spec = tuple[str, str, list[tuple], dict[str, str], list[tuple[str, str, str]]]


@dataclass(frozen=True)
class WrittenArticle:
    """A generated article and what it was written from: its `kind`, slot `values`, per paragraph its sentences'
    phrasings (the filler last, in one phrasing), the questions its paragraphs answer, and the paragraph that states
    each slot."""

    article: dict
    prefix: str
    kind: str
    values: dict[str, str]
    paragraphs: tuple[tuple[tuple[str, ...], ...], ...]
    questions: tuple[tuple[str, str, str], ...]
    fact_paragraph: dict[str, int]

    @property
    def name(self) -> str:
        return self.article["title"].replace("_", " ")

    def markers(self, full_names: bool) -> dict[str, str]:
        """The entity markers' values in this article's sentences (`entity_markers`)."""
        return entity_markers(self.kind, self.name, self.values.get("family"), full_names)


def _employer(person: _Person, companies: list[_Company], rng: random.Random) -> _Company:
    """A company founded while `person` could still join it (any company when none was)."""
    return rng.choice([c for c in companies if c.founded <= person.born + 50] or companies)


def _town(town: _Town, rng: random.Random) -> _Spec:
    values = {"town": town.name, "region": town.region, "river": town.river, "founded": str(town.founded)}
    values |= {"population": town.population, "goods": town.goods, "festival": town.festival}
    paragraphs = list(TOWN_PARAGRAPHS[: rng.randint(1, 2)])
    return "town", town.name, paragraphs, values, list(TOWN_QUESTIONS)


def _company(company: _Company, rng: random.Random) -> _Spec:
    kind, description, product = company.kind
    values = {"company": company.name, "description": description, "founder": company.founder.name}
    values |= {"founded": str(company.founded), "town": company.headquarters.name, "product": product}
    values["employees"] = str(company.employees)
    return "company", company.name, list(COMPANY_PARAGRAPHS), values, list(COMPANY_QUESTIONS)


def _person(person: _Person, employer: _Company, names: _Names, rng: random.Random) -> _Spec:
    profession, duty = person.profession
    joined = max(person.born + 20, employer.founded) + rng.randint(0, 8)
    values = {"name": person.name, "family": person.family, "profession": profession, "born": str(person.born)}
    values |= {"town": person.birthplace.name, "company": employer.name, "joined": str(joined), "duty": duty}
    paragraphs, questions = list(PERSON_PARAGRAPHS), list(PERSON_QUESTIONS)
    if rng.random() < 0.5:
        values |= {"prize": f"{names()} Medal", "awarded": str(rng.randint(joined + 3, 2023))}
        paragraphs.append(PRIZE_PARAGRAPH)
        questions += PRIZE_QUESTIONS
    return "person", person.name, paragraphs, values, questions


def _article(
    prefix: str,
    kind: str,
    name: str,
    paragraphs: list[tuple],
    values: dict[str, str],
    questions: list[tuple[str, str, str]],
    rng: random.Random,
) -> WrittenArticle:
    """The SQuAD article of a spec in canonical phrasings, each paragraph padded by a filler, asking 3-6 of the
    questions its paragraphs answer; question ids `<prefix>-<n>`, each question also in its held-out phrasing
    (`question_heldout`)."""
    fillers = rng.sample(FILLERS[kind], len(paragraphs))
    sentences = tuple((*paragraph, (filler,)) for paragraph, filler in zip(paragraphs, fillers, strict=True))
    filled = values | entity_markers(kind, name, values.get("family"), full_names=False)
    rendered = [_render(" ".join(sentence[0] for sentence in paragraph), filled) for paragraph in sentences]
    fact_paragraph = {}
    for index, (_, starts) in enumerate(rendered):
        fact_paragraph |= {slot: index for slot in starts if slot in values and slot not in fact_paragraph}
    answerable = [q for q in questions if q[2] in fact_paragraph]
    asked = sorted(rng.sample(range(len(answerable)), rng.randint(3, min(6, len(answerable)))))
    squad_paragraphs = [{"context": context, "qas": []} for context, _ in rendered]
    for number, index in enumerate(asked):
        question, heldout, slot = answerable[index]
        where = fact_paragraph[slot]
        answer = {"text": values[slot], "answer_start": rendered[where][1][slot]}
        squad_paragraphs[where]["qas"].append(
            {
                "id": f"{prefix}-{number}",
                "question": question.format(**values),
                "question_heldout": heldout.format(**values),
                "answers": [answer],
            }
        )
    article = {"title": name.replace(" ", "_"), "paragraphs": squad_paragraphs}
    return WrittenArticle(article, prefix, kind, values, sentences, tuple(answerable), fact_paragraph)


def _render(template: str, values: dict[str, str]) -> tuple[str, dict[str, int]]:
    """`template` with its `{slot}`s filled, and the character offset where each slot's value first starts."""
    text, starts = "", {}
    for literal, slot, _, _ in string.Formatter().parse(template):
        text += literal
        if slot is not None:
            starts.setdefault(slot, len(text))
            text += values[slot]
    return text, starts


def fictional_renditions(
    seed: int, entities: int, phrasings: int, permute: bool, full_names: bool
) -> dict[str, tuple[str, ...]]:
    """Per passage id (`<title>#<paragraph>`), `phrasings` texts of that paragraph stating the same facts: the
    n-th text takes every fact sentence's n-th phrasing (the first is the canonical paragraph, unless `full_names`
    names the entity in full in every sentence), and (`permute`) its sentences in a seeded shuffled order (Allen-Zhu
    & Li 2023's "multi", "permute" and "fullname" augmentations)."""
    if not 1 <= phrasings <= PHRASINGS:
        raise ConfigError("data.phrasings", phrasings, f"a number of phrasings from 1 to {PHRASINGS}")
    texts = {}
    for written in fictional_written(seed, entities):
        filled = written.values | written.markers(full_names)
        for index, paragraph in enumerate(written.paragraphs):
            identifier = passage_id(written.article["title"], index)
            versions = []
            for number in range(phrasings):
                sentences = [sentence[min(number, len(sentence) - 1)] for sentence in paragraph]
                if permute:
                    random.Random(f"{identifier}/{number}").shuffle(sentences)
                versions.append(_render(" ".join(sentences), filled)[0])
            texts[identifier] = tuple(versions)
    return texts


def fictional_fact_questions(seed: int, entities: int) -> tuple[QAExample, ...]:
    """One question per fact every article states, in its training phrasing (synthetic question-answer pairs that
    cover the documents, after Mecklenburg et al. 2024, arXiv 2404.00213); ids `<prefix>-fact-<slot>`."""
    questions = []
    for written in fictional_written(seed, entities):
        for question, _, slot in written.questions:
            questions.append(
                QAExample(
                    id=f"{written.prefix}-fact-{slot}",
                    question=question.format(**written.values),
                    answers=(written.values[slot],),
                    gold_passage_id=passage_id(written.article["title"], written.fact_paragraph[slot]),
                    article=written.article["title"],
                )
            )
    return tuple(questions)


def write_squad_json(articles: Iterable[dict], path: str | Path) -> Path:
    """The articles as a SQuAD v1.1 JSON file (what `load_squad_articles` reads), written atomically."""
    return write_json_atomic(path, {"version": "1.1", "data": list(articles)})
