"""The knowledge-matched protocol: closed-book methods train on the very documents the retrieval methods index,
then on the questions, from those weights."""

import json
from pathlib import Path

import pytest

from rag_pet.errors import ConfigError
from rag_pet.retrieval.corpus import load_corpus
from rag_pet.study import BudgetConfig
from rag_pet.study.budget import estimated_step_flops
from rag_pet.study.cells import plan_cells
from rag_pet.study.names import KNOWLEDGE, MAIN
from rag_pet.study.spec import FreshnessConfig, KnowledgeConfig
from rag_pet.training.batching import training_texts
from tests.conftest import CONF_DIR
from tests.study.test_study import tiny_study

FRESH = FreshnessConfig(enabled=True, variants=["text"], budget=BudgetConfig("steps", 1))


def plan(tmp_path, *overrides: str, **fields):
    fields.setdefault("knowledge", KnowledgeConfig(epochs=1))
    compare = tiny_study(tmp_path, *overrides, protocol="knowledge_matched", **fields)
    return plan_cells(compare.study, Path(compare.study_dir), CONF_DIR, compare.tracking)


def ids(passages) -> list[str]:
    return [passage.id for passage in passages]


def test_closed_book_training_text_and_the_index_hold_the_same_documents(tmp_path):
    cells = {c.id: c for c in plan(tmp_path, "corpus.max_passages=60", methods=["lora", "rag"], seeds=[0])}
    knowledge, main, rag = cells["lora-seed0.knowledge"], cells["lora-seed0"], cells["rag"]

    assert ids(training_texts(knowledge.config.data, knowledge.config.corpus)) == ids(
        load_corpus(rag.config.index_source.corpus)
    )
    assert knowledge.kind == KNOWLEDGE and "rag.knowledge" not in cells  # retrieval reads its documents instead
    # the questions train from the knowledge cell's weights, after it
    assert main.after == knowledge.id and main.config.trainer.init_from == str(knowledge.model_dir)
    # one pass: every worker's full batches over the 60 passages
    trainer = knowledge.config.trainer
    assert trainer.max_steps == 60 // trainer.batch_size
    assert knowledge.config.eval.after_training is False  # a knowledge cell answers nothing


def test_late_articles_are_in_neither_the_first_index_nor_the_knowledge_and_fresh_text_reads_all(tmp_path):
    cells = {c.id: c for c in plan(tmp_path, methods=["lora", "rag"], seeds=[0], freshness=FRESH)}
    knowledge, rag, fresh = cells["lora-seed0.knowledge"], cells["rag"], cells["lora-seed0.fresh_text"]
    taught = training_texts(knowledge.config.data, knowledge.config.corpus)
    late = training_texts(fresh.config.data, fresh.config.corpus)

    assert ids(taught) == ids(load_corpus(rag.config.index_source.corpus))
    assert late and not {p.title for p in late} & {p.title for p in taught}
    # every new paragraph once, whatever study.freshness.budget says (1 step)
    trainer = fresh.config.trainer
    assert trainer.max_steps == len(late) // trainer.batch_size > 1


def test_two_passes_train_twice_as_long(tmp_path):
    one = {c.id: c for c in plan(tmp_path, "corpus.max_passages=60", methods=["lora"], seeds=[0])}
    two = plan(tmp_path, "corpus.max_passages=60", methods=["lora"], seeds=[0], knowledge=KnowledgeConfig(epochs=2))
    steps = one["lora-seed0.knowledge"].config.trainer.max_steps
    assert {c.id: c.config.trainer.max_steps for c in two}["lora-seed0.knowledge"] == 2 * steps


def test_a_method_reading_another_corpus_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="study.method_overrides.*knowledge_matched"):
        plan(tmp_path, methods=["lora", "rag"], seeds=[0], method_overrides={"rag": ["corpus.max_passages=50"]})


def test_a_flops_budget_pays_for_the_knowledge_cell_first(tmp_path):
    matched = {c.id: c for c in plan(tmp_path, "corpus.max_passages=60", methods=["lora"], seeds=[0])}
    knowledge = matched["lora-seed0.knowledge"]
    spent = knowledge.config.trainer.max_steps * estimated_step_flops(knowledge.config)
    per_step = estimated_step_flops(matched["lora-seed0"].config)
    budget = BudgetConfig("flops", spent + 3.5 * per_step)

    cells = {c.id: c for c in plan(tmp_path, "corpus.max_passages=60", methods=["lora"], seeds=[0], budget=budget)}
    assert cells["lora-seed0"].config.trainer.max_steps == 3
    with pytest.raises(ConfigError, match="study.budget.amount.*lora-seed0.knowledge"):
        plan(tmp_path, "corpus.max_passages=60", methods=["lora"], seeds=[0], budget=BudgetConfig("flops", spent))


def test_the_session_study_trains_closed_book_on_the_documents_then_the_questions(tiny_study_run):
    compare, _ = tiny_study_run
    cells = Path(compare.study_dir) / "cells"
    knowledge = json.loads((cells / "lora-seed0.knowledge.json").read_text())
    main = json.loads((cells / "lora-seed0.json").read_text())

    assert knowledge["status"] == main["status"] == "done" and knowledge["kind"] == KNOWLEDGE
    assert main["kind"] == MAIN and main["after"] == knowledge["id"]
    assert knowledge["metrics"]["train_steps"] == knowledge["config"]["trainer"]["max_steps"] > 0
    assert knowledge["metrics"]["train_tokens"] > 0 and not knowledge["questions"]
    assert main["config"]["trainer"]["init_from"] == str(
        Path(knowledge["config"]["run_dir"]) / "final_checkpoint" / "model"
    )


def test_the_session_study_report_names_its_protocol_and_the_tokens_each_method_read(tiny_study_run):
    compare, _ = tiny_study_run
    report = (Path(compare.study_dir) / "report.md").read_text()
    knowledge = json.loads((Path(compare.study_dir) / "cells" / "lora-seed0.knowledge.json").read_text())

    assert "Protocol `knowledge_matched`" in report
    section = report.split("## Documents read as text")[1]
    row = next(line for line in section.splitlines() if line.startswith("| lora |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    metrics = knowledge["metrics"]
    assert cells[1:6] == ["1", "1", "no", "no", "none (text, then questions)"]  # passes, phrasings, ...
    assert float(cells[6]) == pytest.approx(knowledge["config"]["trainer"]["lr"])  # the text learning rate
    assert cells[7:11] == [
        f"{metrics['train_steps']:.0f}",
        f"{metrics['train_tokens']:,.0f}",
        f"{metrics['train_flops']:.2e}",
        f"{metrics['train_steps_wall_seconds']:.0f}",
    ]
    assert "| rag+lora |" not in section  # a retrieval method reads the documents through its index
