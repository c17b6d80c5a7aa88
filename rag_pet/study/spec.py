"""What a comparison study is (`conf/study/*.yaml`): the methods, the budget they share, the seeds, the questions,
and the knowledge-freshness test; validated before anything runs."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from rag_pet.config import TrackingConfig
from rag_pet.config.checks import one_of, positive
from rag_pet.config.data import MAX_PHRASINGS
from rag_pet.errors import ConfigError
from rag_pet.objectives import Method, study_method
from rag_pet.study.tune_space import TuneConfig

BUDGET_UNITS = ("examples", "steps", "flops")
LATENCY_MODES = ("in_process", "endpoint")
FRESHNESS_VARIANTS = ("text", "qa")
PROTOCOLS = ("knowledge_matched", "questions_only")
CELL_LAUNCHERS = ("auto", "ray")
KNOWLEDGE_QUESTIONS = ("none", "train", "facts")
RECIPE_MARK = "@"  # `full@augmented`: method `full` reading the documents by recipe `augmented`


@dataclass
class BudgetConfig:
    """How much every trained method may train: training `examples` seen, optimizer `steps`, or `flops` to be ready
    to answer (training plus building the index a retrieving method reads; converted to each method's steps from
    its own FLOPs per example, estimated before training)."""

    unit: str = "examples"
    amount: float = 96

    def check(self, where: str) -> None:
        one_of(f"{where}.unit", self.unit, BUDGET_UNITS)
        positive(f"{where}.amount", self.amount)
        if self.unit != "flops" and self.amount != int(self.amount):
            raise ConfigError(f"{where}.amount", self.amount, f"a whole number of {self.unit}")


@dataclass
class FreshnessConfig:
    """Knowledge that arrives after training: the `test` articles, whose paragraphs are not in the first index and
    which no method trained on. RAG methods add their paragraphs to the index (a new index version, encoding only
    them); closed-book methods go on training from their trained weights for `budget`, on the articles' text
    (`text`: their paragraphs as language modelling, each cut to `max_text_tokens`) and, as a second variant, on
    question-answer pairs about them (`qa`: `qa_fraction` of those articles' questions). Every method is scored on
    the rest of the articles' questions before and after."""

    enabled: bool = True
    variants: list[str] = field(default_factory=lambda: ["text"])
    budget: BudgetConfig = field(default_factory=lambda: BudgetConfig(unit="steps", amount=6))
    qa_fraction: float = 0.5
    max_text_tokens: int = 128

    def check(self) -> None:
        for variant in self.variants:
            one_of("study.freshness.variants", variant, FRESHNESS_VARIANTS)
        self.budget.check("study.freshness.budget")
        if not 0.0 < self.qa_fraction < 1.0:
            raise ConfigError("study.freshness.qa_fraction", self.qa_fraction, "a fraction in (0, 1)")
        positive("study.freshness.max_text_tokens", self.max_text_tokens)


@dataclass
class KnowledgeConfig:
    """What closed-book methods read of the documents under `protocol=knowledge_matched` (a recipe): before their
    question-answer training, `epochs` passes of language modelling over every passage the retrieval methods' index
    holds (each cut to `max_text_tokens`; each pass drops the last incomplete batch of every worker), at the
    method's learning rate times `lr_factor`; in the freshness stage (`text`) the same passes over every paragraph
    of the new articles.

    Knowledge injection as its literature does it (data=fictional): each paragraph in `phrasings` phrasings of its
    facts, its sentences shuffled (`permute`), the entity named in full in every sentence (`full_names`) (Allen-Zhu
    & Li 2023, arXiv 2309.14316); and `questions` mixed into the same passes: `none` (sequential: the text, then the
    questions), `train` (mixed training: the study's training questions among the texts, Allen-Zhu & Li), or
    `facts` (one question per fact of every indexed article, in training phrasings: Mecklenburg et al. 2024, arXiv
    2404.00213). The index holds the canonical articles whatever the recipe: the same facts, once each."""

    epochs: int = 3
    max_text_tokens: int = 128
    lr_factor: float = 1.0
    phrasings: int = 1
    permute: bool = False
    full_names: bool = False
    questions: str = "none"

    def check(self, where: str = "study.knowledge") -> None:
        positive(f"{where}.epochs", self.epochs)
        positive(f"{where}.max_text_tokens", self.max_text_tokens)
        positive(f"{where}.lr_factor", self.lr_factor)
        if not 1 <= self.phrasings <= MAX_PHRASINGS:
            raise ConfigError(f"{where}.phrasings", self.phrasings, f"from 1 to {MAX_PHRASINGS}")
        one_of(f"{where}.questions", self.questions, KNOWLEDGE_QUESTIONS)


def recipe(knowledge: KnowledgeConfig, name: str, changes: dict[str, Any]) -> KnowledgeConfig:
    """`knowledge` with the fields a named recipe (`study.recipes.<name>`) changes, checked."""
    known = {item.name for item in fields(KnowledgeConfig)}
    for key in changes:
        if key not in known:
            raise ConfigError(
                f"study.recipes.{name}.{key}", changes[key], f"a field of study.knowledge: {sorted(known)}"
            )
    changed = replace(knowledge, **changes)
    changed.check(f"study.recipes.{name}")
    return changed


@dataclass
class StatsConfig:
    """How a study's results are read, with the article as the unit (`rag_pet.evaluation.statistics`): `confidence`
    of every interval; paired article-level sign-flip tests (Monte Carlo with `resamples` sign patterns beyond 16
    articles) at `alpha` after a Benjamini-Hochberg correction, against `reference` (null: zero_shot when the study
    has it, else its first method) and between every pair of methods; the minimum detectable effect at `power`,
    and the articles a split would need to detect `effects` (per metric: a true difference of that size). A
    closed-book method whose EM on its own training questions is below `fit_exact_match` is flagged as not fitting
    its training set."""

    reference: str | None = None
    confidence: float = 0.95
    alpha: float = 0.05
    power: float = 0.8
    resamples: int = 9999
    effects: dict[str, float] = field(default_factory=lambda: {"exact_match": 0.05, "f1": 0.05, "answer_nll": 0.1})
    fit_exact_match: float = 0.5

    def check(self, methods: list[str]) -> None:
        if self.reference is not None and self.reference not in methods:
            raise ConfigError("study.stats.reference", self.reference, f"one of the study's methods: {methods}")
        for name in ("confidence", "alpha", "power", "fit_exact_match"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ConfigError(f"study.stats.{name}", getattr(self, name), "a fraction in (0, 1)")
        positive("study.stats.resamples", self.resamples)
        for metric, effect in self.effects.items():
            positive(f"study.stats.effects.{metric}", effect)

    def reference_of(self, methods: list[str]) -> str:
        """The method every other one is compared with."""
        return self.reference or ("zero_shot" if "zero_shot" in methods else methods[0])


@dataclass
class StudyConfig:
    """A comparison study: every method in `methods` trained on the same `train_examples` questions under the same
    `budget`, once per seed in `seeds`, evaluated on the same `questions` per split, then (`freshness`) given new
    articles to take in.

    `protocol` says what knowledge each method gets. `knowledge_matched` (after Ovadia et al. 2023, "Fine-Tuning or
    Retrieval?", and Soudani et al. 2024): the documents the retrieval methods index are also the closed-book
    methods' training text (`knowledge`), read before their questions, so *unseen* articles are ones no training
    question came from, not ones a method never saw. `questions_only`: closed-book methods train on the questions
    alone, so on unseen articles retrieval reads documents the closed-book methods never had.

    `budgets` (data needs): more training-set sizes, each trained method trained again on the first n training
    questions with `budget` scaled in proportion (`rag_pet.study.curve_cells`).

    `recipes` name other ways to read the documents (each a set of `knowledge` fields to change); a method listed as
    `<method>@<recipe>` (`full@augmented`) is that closed-book method reading them by that recipe, beside the same
    method by `knowledge` itself.

    `overrides` apply to every cell (any experiment override: model, data, trainer, ...), `method_overrides` to
    the cells of one method. `parallel_cells` 0 runs as many cells at once as the cluster holds at
    `cpus_per_cell` CPUs each (one at a time on a small machine).

    `launcher` says how a cell trains. `auto`: a cell that trains on one worker without DeepSpeed trains inside its
    own Ray task (`trainer.launcher=local`), which holds the CPUs (and GPU) its Ray Train worker would have held,
    so it pays for no Train controller, worker group or checkpoint upload; cells of several workers or DeepSpeed
    train on Ray Train. `ray`: every cell on Ray Train. A `trainer.launcher` the overrides set wins."""

    name: str = "default"
    protocol: str = "knowledge_matched"
    methods: list[str] = field(
        default_factory=lambda: ["zero_shot", "full", "lora", "ia3", "prompt", "rag", "rag+lora", "joint_rag"]
    )
    seeds: list[int] = field(default_factory=lambda: [0])
    budget: BudgetConfig = field(default_factory=lambda: BudgetConfig(unit="examples", amount=96))
    train_examples: int = 96
    budgets: list[int] = field(default_factory=list)
    questions: int = 40
    warmup_fraction: float = 0.1
    latency_questions: int = 20
    latency: str = "in_process"
    forgetting_texts: int = 16
    knowledge: KnowledgeConfig = field(default_factory=lambda: KnowledgeConfig(lr_factor=10.0, questions="facts"))
    recipes: dict[str, dict[str, Any]] = field(default_factory=dict)
    freshness: FreshnessConfig = field(default_factory=FreshnessConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)
    stats: StatsConfig = field(default_factory=StatsConfig)
    overrides: list[str] = field(
        default_factory=lambda: [
            "data=fictional",
            "corpus=fictional",
            "data.chat_template=true",
            "eval.max_new_tokens=12",
            "rag.passage_max_tokens=128",
            "index.encode_cpus=2",
            "trainer.precision=fp32",
            "eval.precision=fp32",
        ]
    )
    method_overrides: dict[str, list[str]] = field(default_factory=dict)
    parallel_cells: int = 0
    cpus_per_cell: float = 4.0
    launcher: str = "auto"

    def __post_init__(self) -> None:
        if not self.methods:
            raise ConfigError("study.methods", self.methods, "at least one method")
        if len(set(self.methods)) != len(self.methods):
            raise ConfigError("study.methods", self.methods, "each method once")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError("study.seeds", self.seeds, "one or more different seeds")
        one_of("study.protocol", self.protocol, PROTOCOLS)
        self.budget.check("study.budget")
        self.knowledge.check()
        self.freshness.check()
        self.tune.check()
        self.stats.check(self.methods)
        for name in ("train_examples", "questions", "cpus_per_cell"):
            positive(f"study.{name}", getattr(self, name))
        for size in self.budgets:
            positive("study.budgets", size)
        if len(set(self.budgets)) != len(self.budgets):
            raise ConfigError("study.budgets", self.budgets, "each training-set size once")
        for name in ("latency_questions", "forgetting_texts", "parallel_cells"):
            positive(f"study.{name}", getattr(self, name), allow_zero=True)
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise ConfigError("study.warmup_fraction", self.warmup_fraction, "a fraction in [0, 1)")
        one_of("study.latency", self.latency, LATENCY_MODES)
        one_of("study.launcher", self.launcher, CELL_LAUNCHERS)
        unknown = sorted(set(self.method_overrides) - set(self.methods))
        if unknown:
            raise ConfigError("study.method_overrides", unknown[0], f"one of the study's methods: {self.methods}")
        for name in self.methods:
            knowledge = self.knowledge_of(name)
            if knowledge.questions == "train" and self.budgets:
                raise ConfigError(
                    "study.budgets",
                    self.budgets,
                    f"[] for {name}, whose recipe mixes all {self.train_examples} training questions into the text"
                    " every data-needs cell starts from; or questions none or facts",
                )
            if RECIPE_MARK in name and self.protocol != "knowledge_matched":
                raise ConfigError("study.protocol", self.protocol, f"knowledge_matched for {name} (a reading recipe)")

    def knowledge_of(self, method: str) -> KnowledgeConfig:
        """The recipe `method` reads the documents by: `knowledge`, or the named recipe after `@`."""
        _, mark, name = method.partition(RECIPE_MARK)
        if not mark:
            return self.knowledge
        if name not in self.recipes:
            raise ConfigError("study.methods", method, f"a recipe of study.recipes after '@': {sorted(self.recipes)}")
        return recipe(self.knowledge, name, self.recipes[name])


def method_named(name: str) -> Method:
    """The study method `name` lists: a registered method, or (`<method>@<recipe>`) a closed-book method that trains,
    named with its recipe for reading the documents."""
    base, mark, _ = name.partition(RECIPE_MARK)
    method = study_method(base)
    if not mark:
        return method
    if not method.trains or method.retrieves:
        raise ConfigError(
            "study.methods",
            name,
            f"a closed-book method that trains before '{RECIPE_MARK}' (a recipe says how it reads)",
        )
    return replace(method, name=name)


def reads_documents(study: StudyConfig, method: Method) -> bool:
    """Whether `method` trains on the documents as text (closed-book methods that train, knowledge-matched)."""
    return study.protocol == "knowledge_matched" and method.trains and not method.retrieves


@dataclass
class CompareConfig:
    """`python -m jobs.compare`: the study, where it writes (and resumes from), the study's own W&B run, and whether
    to only write the report from cells that ran before (`report_only`)."""

    study: StudyConfig = field(default_factory=StudyConfig)
    study_dir: str = "outputs/studies/default"
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    # Write the report from the records the study's cells left in `study_dir` and run nothing: after a change to
    # how results are read, without running cells whose provenance (the code revision) the change made stale.
    report_only: bool = False
