"""A study's cells: one ordinary train (or evaluate) run per method and seed, as the overrides that re-run it alone.

Every cell's config is composed and validated here, before Ray starts, so a study with a bad override, an unknown
method or an impossible budget fails at once, naming the field.
"""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from rag_pet.config import ARTICLE_SOURCES, RagPetConfig, TrackingConfig
from rag_pet.errors import ConfigError
from rag_pet.experiment_config import compose_experiment
from rag_pet.naming import safe_name
from rag_pet.objectives import Method
from rag_pet.objectives.generator import refuse_other_articles
from rag_pet.study.budget import estimated_step_flops, steps_for_budget
from rag_pet.study.cell_checks import check_fills_batch, check_splits
from rag_pet.study.curve_cells import CURVE, check_size, curve_id, curve_steps
from rag_pet.study.names import (
    CELLS_DIR,
    EVAL_SPLIT,
    FRESH_INDEX,
    FRESH_TRAINING,
    KNOWLEDGE,
    MAIN,
    NEW_SPLIT,
    NEW_TRAIN_SPLIT,
    SEEN_SPLIT,
    TRAIN_SAMPLE_SPLIT,
)
from rag_pet.study.spec import RECIPE_MARK, BudgetConfig, KnowledgeConfig, StudyConfig, method_named, reads_documents
from rag_pet.training.batching import text_pool_size

MODEL_DIR = Path("final_checkpoint") / "model"


@dataclass(frozen=True)
class Cell:
    """One run of the study: `method` at `seed`, the overrides that make it, and its validated config.

    A `knowledge` cell (protocol `knowledge_matched`) trains a closed-book method on the indexed documents, and its
    `main` cell goes on from it (`after`); a `main` cell trains (or only evaluates) the method; a freshness cell
    starts from its main cell: `fresh_text`/`fresh_qa` train on, `fresh_index` evaluates a RAG method over the index
    with the new articles."""

    id: str
    method: Method
    seed: int
    kind: str
    overrides: tuple[str, ...]
    config: RagPetConfig
    after: str | None = None

    @property
    def model_dir(self) -> Path:
        """Where the cell's trained weights are saved."""
        return Path(self.config.run_dir) / MODEL_DIR

    @property
    def job(self) -> str:
        """`jobs.train` trains (and evaluates a method that does not train); `jobs.evaluate` scores saved weights."""
        return "evaluate" if self.kind == FRESH_INDEX else "train"

    @property
    def command(self) -> str:
        """The shell command that runs this cell alone."""
        return shlex.join(["python", "-m", f"jobs.{self.job}", *self.overrides])


def cell_id(method: str, seed: int, trains: bool) -> str:
    """`lora-seed0`, `rag_lora-seed1`; a method that does not train is one cell, named by the method alone."""
    name = safe_name(method)
    return f"{name}-seed{seed}" if trains else name


def plan_cells(study: StudyConfig, study_dir: Path, config_dir: Path, tracking: TrackingConfig) -> list[Cell]:
    """Every cell of the study, each config composed once and validated: per method (in order) and seed, its
    knowledge cell (a closed-book method that trains, under `knowledge_matched`), the main cell, its data-needs
    cells (`study.budgets`), then its freshness cells."""
    planner = _Planner(study, study_dir, config_dir, tracking)
    cells = []
    for name in study.methods:
        method = method_named(name)
        for seed in study.seeds if method.trains else study.seeds[:1]:
            knowledge = planner.knowledge_cell(method, seed) if reads_documents(study, method) else None
            main = planner.main_cell(method, seed, knowledge)
            cells.extend([knowledge, main] if knowledge else [main])
            cells.extend(planner.curve_cell(main, knowledge, size) for size in extra_sizes(study, method))
            if study.freshness.enabled:
                cells.extend(planner.freshness_cells(main))
    check_same_documents(cells)
    return cells


def extra_sizes(study: StudyConfig, method: Method) -> list[int]:
    """The data-needs sizes `method` trains at besides `study.train_examples`; none for a method that does not train
    (its one score stands at every size)."""
    return [size for size in study.budgets if size != study.train_examples] if method.trains else []


def check_same_documents(cells: list[Cell]) -> None:
    """Refuse a plan whose closed-book training text (knowledge cells) and retrieval index (retrieving main cells)
    are built from different corpora: knowledge-matched means the same documents for every method."""
    readers = [c for c in cells if c.kind == KNOWLEDGE or (c.kind == MAIN and c.method.retrieves)]
    for cell in readers[1:]:
        if cell.config.corpus != readers[0].config.corpus:
            first = readers[0]
            raise ConfigError(
                "study.method_overrides",
                f"corpus of {cell.id}",
                f"the corpus {first.id} reads ({first.config.corpus.name}, the same settings) under"
                " study.protocol=knowledge_matched; or study.protocol=questions_only",
            )


def with_changes(overrides: list[str], config: RagPetConfig, section: str, changes: dict) -> RagPetConfig:
    """`config` with `changes` to one section, validated again as composing would validate them, and the overrides
    that make them appended to `overrides` (so the cell's command re-runs exactly this config)."""
    values = {}
    for key, value in changes.items():
        text = _hydra_value(value)
        overrides.append(f"{section}.{key}={text}")
        values[key] = float(text) if isinstance(value, float) else value
    return replace(config, **{section: replace(getattr(config, section), **values)})


def _hydra_value(value: object) -> str:
    if isinstance(value, list):  # of strings: titles hold spaces, commas and parentheses
        return "[" + ",".join(json.dumps(item) for item in value) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass
class _Planner:
    study: StudyConfig
    study_dir: Path
    config_dir: Path
    tracking: TrackingConfig
    checked: set[str] = field(default_factory=set)

    def _common(self, method: Method, identifier: str, seed: int) -> list[str]:
        study, tracking = self.study, self.tracking
        common = [
            f"experiment_name={study.name}.{identifier}",
            f"run_dir={self.run_dir(identifier)}",
            f"seed={seed}",
            f"data.max_eval_examples={study.questions}",
            f"tracking.mode={tracking.mode}",
            f"tracking.project={tracking.project}",
            f"tracking.group={tracking.group or study.name}",
            f"tracking.tags=[{study.name},{method.name}]",
        ]
        if study.freshness.enabled:
            common.append(f"data.test_train_fraction={study.freshness.qa_fraction}")
        if study.tune.enabled:  # the dev questions tuning scores on are no cell's training questions
            common.append(f"data.dev_fraction={study.tune.dev_fraction}")
        return common

    def run_dir(self, identifier: str) -> Path:
        return self.study_dir / CELLS_DIR / identifier

    def _compose(self, method: Method, fixed: list[str]) -> tuple[list[str], RagPetConfig]:
        """The cell's overrides in order (method, study-fixed, user) and its validated config: composed once."""
        study = self.study
        overrides = [*method.overrides, *fixed, *study.overrides, *study.method_overrides.get(method.name, [])]
        return overrides, compose_experiment(self.config_dir, overrides, "study.overrides")

    def _check_splits(self, method: Method, config: RagPetConfig) -> None:
        """Refuse data that cannot give the cell every split it reads (checked once per data section and splits)."""
        data = config.data
        trains_on = [data.train_split] if method.trains and data.train_on == "questions" else []
        splits = list(dict.fromkeys([data.eval_split, *config.eval.extra_splits, *trains_on]))
        key = json.dumps([asdict(data), splits])
        if key not in self.checked:
            check_splits(data, splits)
            self.checked.add(key)

    def _budgeted(
        self, overrides: list[str], config: RagPetConfig, budget: BudgetConfig, where: str, reads_index: bool = False
    ) -> RagPetConfig:
        """The trainer steps (and warmup, checkpoint and log intervals) a budget gives this cell (a FLOPs budget less
        building the index, for a cell that `reads_index`)."""
        steps = steps_for_budget(budget, config, where, reads_index)
        changes = {
            "max_steps": steps,
            "warmup_steps": math.floor(steps * self.study.warmup_fraction),
            "checkpoint_every": max(1, math.ceil(steps / 2)),
            "log_every": max(1, min(config.trainer.log_every, steps)),
        }
        return with_changes(overrides, config, "trainer", changes)

    def _passes(
        self, overrides: list[str], config: RagPetConfig, cell: str, knowledge: KnowledgeConfig, where: str
    ) -> RagPetConfig:
        """The trainer steps of `knowledge.epochs` passes over the cell's training texts (and the questions mixed
        among them)."""
        trainer = config.trainer
        count = text_pool_size(config.data, config.corpus)
        per_pass = count // trainer.num_workers // trainer.batch_size // trainer.grad_accum_steps
        if per_pass == 0:
            raise ConfigError(
                "trainer.grad_accum_steps",
                trainer.grad_accum_steps,
                f"at most {max(1, count // trainer.num_workers // trainer.batch_size)} for {cell}, whose {count} texts"
                " fill fewer batches than one optimizer step accumulates",
            )
        steps = BudgetConfig(unit="steps", amount=knowledge.epochs * per_pass)
        return self._budgeted(overrides, config, steps, where)

    def knowledge_cell(self, method: Method, seed: int) -> Cell:
        """`method` trained on every passage of the index's corpus as text, by its recipe (`study.knowledge`, or
        the one its name gives); its main cell goes on from the weights it saves."""
        identifier = f"{cell_id(method.name, seed, True)}.{KNOWLEDGE}"
        knowledge = self.study.knowledge_of(method.name)
        fixed = [
            *self._common(method, identifier, seed),
            "data.train_on=corpus",
            "data.max_train_examples=null",
            *reading_overrides(knowledge, knowledge.questions, self.study.train_examples),
            *NO_EVALUATION,
        ]
        overrides, config = self._compose(method, fixed)
        refuse_other_articles(config)
        if self.study.freshness.enabled:  # the late articles are in no method's first knowledge
            config = with_changes(overrides, config, "corpus", {"exclude_titles": _late_titles(config)})
        config = _reading_rate(overrides, config, knowledge)
        check_fills_batch(identifier, config)
        config = self._passes(overrides, config, identifier, knowledge, where_epochs(method.name))
        return Cell(identifier, method, seed, KNOWLEDGE, tuple(overrides), config)

    def main_cell(self, method: Method, seed: int, knowledge: Cell | None = None) -> Cell:
        """The method's training (or evaluation) on the study's questions; after `knowledge`, from its weights."""
        identifier = cell_id(method.name, seed, method.trains)
        study = self.study
        splits = [SEEN_SPLIT, TRAIN_SAMPLE_SPLIT] + ([NEW_SPLIT] if study.freshness.enabled else [])
        fixed = [
            *self._common(method, identifier, seed),
            f"data.max_train_examples={study.train_examples}",
            f"data.eval_split={EVAL_SPLIT}",
            f"eval.extra_splits=[{','.join(splits)}]",
            f"eval.latency_questions={study.latency_questions}",
            f"eval.forgetting_texts={study.forgetting_texts}",
            f"eval.before_training={'false' if method.trains else 'true'}",
            f"eval.storage_probe={str(not method.retrieves).lower()}",
        ]
        if knowledge:
            fixed.append(f"trainer.init_from={knowledge.model_dir}")
        if study.latency == "endpoint":  # each cell's own Serve application, beside any other cell's
            fixed += ["eval.latency_via=endpoint", f"serve.app_name={identifier}", f"serve.route_prefix=/{identifier}"]
        overrides, config = self._compose(method, fixed)
        if study.freshness.enabled and config.data.name not in ARTICLE_SOURCES:
            raise ConfigError(
                "study.freshness.enabled",
                True,
                f"false unless data.name is one of {', '.join(ARTICLE_SOURCES)} (articles arrive late)",
            )
        self._check_splits(method, config)
        if study.freshness.enabled and method.retrieves:  # the late articles are not in the first index
            config = with_changes(overrides, config, "corpus", {"exclude_titles": _late_titles(config)})
        if method.trains:
            budget = left_after(study.budget, knowledge)
            config = self._budgeted(overrides, config, budget, "study.budget.amount", method.retrieves)
            if config.data.max_train_examples < config.trainer.batch_size * config.trainer.num_workers:
                raise ConfigError(
                    "study.train_examples",
                    study.train_examples,
                    f"at least one batch of every worker ({config.trainer.batch_size} x {config.trainer.num_workers})"
                    f" for {method.name}",
                )
            check_fills_batch(identifier, config)
        return Cell(identifier, method, seed, MAIN, tuple(overrides), config, after=knowledge.id if knowledge else None)

    def curve_cell(self, main: Cell, knowledge: Cell | None, size: int) -> Cell:
        """`main` trained on the first `size` training questions for its share of the budget, scored on the unseen
        split alone (`study.budgets`); from the same knowledge cell's weights as `main`."""
        study, method = self.study, main.method
        identifier = curve_id(main.id, size)
        fixed = [
            *self._common(method, identifier, main.seed),
            f"data.max_train_examples={size}",
            f"data.eval_split={EVAL_SPLIT}",
            "eval.extra_splits=[]",
            "eval.latency_questions=0",
            "eval.forgetting_texts=0",
            "eval.before_training=false",
        ]
        if knowledge:
            fixed.append(f"trainer.init_from={knowledge.model_dir}")
        overrides, config = self._compose(method, fixed)
        check_size(size, config, method.name)
        if config.corpus != main.config.corpus:  # the index the main cell reads (the late articles held back)
            held_back = {"exclude_titles": list(main.config.corpus.exclude_titles)}
            config = with_changes(overrides, config, "corpus", held_back)
        budget = left_after(study.budget, knowledge)
        steps = curve_steps(budget, config, size / study.train_examples, method.retrieves)
        config = self._budgeted(overrides, config, BudgetConfig("steps", steps), "study.budgets")
        return Cell(identifier, method, main.seed, CURVE, tuple(overrides), config, after=main.after)

    def freshness_cells(self, main: Cell) -> list[Cell]:
        """The cells that give `main`'s method the new articles: an evaluation over the grown index (RAG), or
        further training on each variant (closed-book); none for a closed-book method that does not train."""
        method, freshness = main.method, self.study.freshness
        base = [
            f"data.eval_split={NEW_SPLIT}",
            "eval.extra_splits=[]",
            "eval.latency_questions=0",
            "eval.forgetting_texts=0",
        ]
        model_dir = self.run_dir(main.id) / MODEL_DIR
        if method.retrieves:
            identifier = f"{main.id}.{FRESH_INDEX}"
            fixed = [*self._common(method, identifier, main.seed), *base]
            if method.trains:
                fixed.append(f"eval.model_dir={model_dir}")
            overrides, config = self._compose(method, fixed)
            return [Cell(identifier, method, main.seed, FRESH_INDEX, tuple(overrides), config, after=main.id)]
        if not method.trains:
            return []
        cells = []
        for variant in freshness.variants:
            kind = FRESH_TRAINING[variant]
            identifier = f"{main.id}.{kind}"
            reads_all = variant == "text" and reads_documents(self.study, method)
            knowledge = self.study.knowledge_of(method.name)
            if reads_all:  # the late articles read as the documents were, facts' questions included
                questions = "facts" if knowledge.questions == "facts" else "none"
                data = [f"data.train_split={NEW_SPLIT}", "data.train_on=passages"]
                data += reading_overrides(knowledge, questions, self.study.train_examples)
            elif variant == "text":
                data = [f"data.train_split={NEW_SPLIT}", "data.train_on=passages"]
                data.append(f"data.max_text_tokens={freshness.max_text_tokens}")
            else:
                data = [f"data.train_split={NEW_TRAIN_SPLIT}"]
            fixed = [
                *self._common(method, identifier, main.seed),
                *base,
                *data,
                "eval.before_training=false",
                "eval.storage_probe=true",
                f"trainer.init_from={model_dir}",
            ]
            overrides, config = self._compose(method, fixed)
            self._check_splits(method, config)
            check_fills_batch(identifier, config)
            if reads_all:  # every new paragraph, as the knowledge cell read every indexed one, at its rate
                config = _reading_rate(overrides, config, knowledge)
                config = self._passes(overrides, config, identifier, knowledge, where_epochs(method.name))
            else:
                config = self._budgeted(overrides, config, freshness.budget, "study.freshness.budget.amount")
            cells.append(Cell(identifier, method, main.seed, kind, tuple(overrides), config, after=main.id))
        return cells


def reading_overrides(knowledge: KnowledgeConfig, questions: str, train_examples: int) -> list[str]:
    """The data overrides of a cell that reads texts by `knowledge`'s recipe, with `questions` mixed in (the
    study's `train_examples` training questions for `train`)."""
    overrides = [
        f"data.max_text_tokens={knowledge.max_text_tokens}",
        f"data.phrasings={knowledge.phrasings}",
        f"data.permute_sentences={str(knowledge.permute).lower()}",
        f"data.full_names={str(knowledge.full_names).lower()}",
        f"data.mixed_questions={questions}",
    ]
    if questions == "train":
        overrides.append(f"data.max_mixed_questions={train_examples}")
    return overrides


def _reading_rate(overrides: list[str], config: RagPetConfig, knowledge: KnowledgeConfig) -> RagPetConfig:
    """`config` training at the recipe's text rate: the method's rate times `knowledge.lr_factor`."""
    if knowledge.lr_factor == 1.0:
        return config
    return with_changes(overrides, config, "trainer", {"lr": config.trainer.lr * knowledge.lr_factor})


def where_epochs(method: str) -> str:
    """The field that sets a method's passes over the documents: `study.knowledge.epochs` or its recipe's."""
    _, mark, name = method.partition(RECIPE_MARK)
    return f"study.recipes.{name}.epochs" if mark else "study.knowledge.epochs"


NO_EVALUATION = (
    "eval.before_training=false",
    "eval.after_training=false",
    "eval.extra_splits=[]",
    "eval.latency_questions=0",
    "eval.forgetting_texts=0",
)


def left_after(budget: BudgetConfig, knowledge: Cell | None) -> BudgetConfig:
    """The budget left for question-answer training after `knowledge`: a FLOPs budget less the knowledge cell's
    estimated FLOPs (its text training is part of what the method spends to be ready); other units count the
    question-answer training alone."""
    if knowledge is None or budget.unit != "flops":
        return budget
    trainer = knowledge.config.trainer
    spent = trainer.max_steps * estimated_step_flops(knowledge.config)
    if budget.amount <= spent:
        raise ConfigError(
            "study.budget.amount",
            budget.amount,
            f"more than the {spent:.3g} FLOPs of {knowledge.id} (reading every indexed document once"
            f" {trainer.max_steps} steps); or study.protocol=questions_only",
        )
    return replace(budget, amount=budget.amount - spent)


def _late_titles(config: RagPetConfig) -> list[str]:
    """Passage titles of the articles that arrive late (the test articles of the configured split)."""
    from rag_pet.data.datasets import article_split

    return [title.replace("_", " ") for title in article_split(config.data).articles["test"]]
