"""Compute-matched studies: a FLOPs budget pays for a retrieving method's index before its steps, the report shows
the index, the total to be ready and the retrieval FLOPs apart, and training wall time leaves start-up out."""

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from rag_pet.errors import ConfigError
from rag_pet.models.encoder import build_encoder
from rag_pet.retrieval.corpus import load_corpus
from rag_pet.study import BudgetConfig
from rag_pet.study.budget import estimated_step_flops
from rag_pet.study.cells import plan_cells
from rag_pet.study.flow import run_study
from rag_pet.study.index_cost import index_flops, retrieval_flops_per_1k
from rag_pet.study.names import MAIN
from rag_pet.study.report import cell_rows
from tests.conftest import CONF_DIR
from tests.study.test_study import tiny_study

CORPUS = "corpus.max_passages=64"


def planned(tmp_path, budget: BudgetConfig, methods: list[str]) -> dict:
    compare = tiny_study(tmp_path, CORPUS, methods=methods, seeds=[0], budget=budget)
    return {cell.id: cell for cell in plan_cells(compare.study, tmp_path / "study", CONF_DIR, compare.tracking)}


def costs(cells: dict) -> dict[str, tuple[float, float]]:
    """Per trained main cell: (FLOPs of one step, FLOPs spent before training: its index, 0 closed-book)."""
    return {
        cell.id: (
            estimated_step_flops(cell.config),
            index_flops(cell.config.index_source) if cell.method.retrieves else 0.0,
        )
        for cell in cells.values()
        if cell.method.trains and cell.kind == MAIN
    }


def budget_of(tmp_path, steps: float) -> tuple[float, dict[str, tuple[float, float]]]:
    """A FLOPs budget worth `steps` steps of rag+lora after its index, and each trained cell's step and index."""
    spent = costs(planned(tmp_path, BudgetConfig("steps", 1), ["lora", "rag+lora"]))
    step, index = spent["rag_lora-seed0"]
    return index + steps * step, spent


def test_a_flops_budget_pays_for_the_index_then_the_steps_and_refuses_less(tmp_path, monkeypatch):
    budget, spent = budget_of(tmp_path, 3.5)
    step, index = spent["rag_lora-seed0"]
    assert index > step > spent["lora-seed0"][0] > 0  # the index costs more than a step: it must be counted
    cells = planned(tmp_path, BudgetConfig("flops", budget), ["lora", "rag+lora"])
    for cell_id, (per_step, before) in spent.items():
        ready = cells[cell_id].config.trainer.max_steps * per_step + before
        assert budget - per_step < ready <= budget, cell_id
    assert cells["rag_lora-seed0"].config.trainer.max_steps == 3  # the whole steps of the 3.5 the index leaves

    def no_ray():
        raise AssertionError("Ray must not start for a budget that cannot pay for the index and a step")

    monkeypatch.setattr("rag_pet.runtime.ensure_ray", no_ray)
    short = tiny_study(tmp_path, CORPUS, methods=["lora", "rag+lora"], seeds=[0], budget=BudgetConfig("flops", index))
    with pytest.raises(
        ConfigError, match=r"study\.budget\.amount=.* at least \S+ FLOPs \(building the index"
    ) as refused:
        run_study(short, CONF_DIR)
    minimum = float(re.search(r"at least (\S+) FLOPs", str(refused.value)).group(1))
    assert index + step <= minimum <= 1.01 * (index + step)  # rounded up to 3 digits: enough, and no more
    enough = planned(tmp_path, BudgetConfig("flops", minimum), ["lora", "rag+lora"])
    assert enough["rag_lora-seed0"].config.trainer.max_steps == 1


def test_retrieval_flops_grow_with_the_indexed_vectors_by_one_inner_product_each(tiny_config):
    small, large = (tiny_config("retriever=tiny", f"corpus.max_passages={n}").index_source for n in (32, 64))
    questions = ["Which river flows through the old town?", "Who built the cathedral and when?"]
    dim = build_encoder(small.retriever).dim
    grown = retrieval_flops_per_1k(large, questions) - retrieval_flops_per_1k(small, questions)
    assert grown == pytest.approx(1000 * 2 * dim * (64 - 32), rel=1e-9)
    assert retrieval_flops_per_1k(small, questions) > 1000 * 2 * dim * 32  # the query tower's share on top
    assert index_flops(large) > index_flops(small) > 0


def test_index_flops_count_the_tokens_the_document_tower_reads(tiny_config):
    from rag_pet.data import passage_text

    source = tiny_config("retriever=tiny", "corpus.max_passages=16").index_source
    encoder = build_encoder(source.retriever)
    texts = [passage_text(p) for p in load_corpus(source.corpus)]
    tokens = encoder.tokenize(texts, source.retriever.doc_max_length)["attention_mask"].sum().item()
    params = sum(p.numel() for p in encoder.doc_tower.parameters())
    assert index_flops(source) == 2.0 * params * tokens
    shorter = replace(source, retriever=replace(source.retriever, doc_max_length=8))
    assert index_flops(shorter) < index_flops(source)  # passages cut shorter cost less


@pytest.fixture(scope="module")
def matched_study(tiny_study_run, tmp_path_factory):
    """lora, frozen rag and rag+lora under a FLOPs budget worth 2.2 rag+lora steps after its index, over the session
    study's index (the same corpus and retriever: found, not built again); each cell trains in its Ray task
    (`trainer.launcher=local`)."""
    _, root = tiny_study_run
    mine = tmp_path_factory.mktemp("matched")
    budget, spent = budget_of(mine, 2.2)
    compare = tiny_study(
        root,
        CORPUS,
        "trainer.launcher=local",
        methods=["lora", "rag", "rag+lora"],
        seeds=[0],
        budget=BudgetConfig("flops", budget),
    )
    compare.study_dir = str(mine / "study")
    compare.study.latency_questions = compare.study.forgetting_texts = 0
    summary = run_study(compare, CONF_DIR)
    assert summary["failed"] == []
    study_dir = Path(compare.study_dir)
    records = [json.loads(path.read_text()) for path in sorted((study_dir / "cells").glob("*.json"))]
    return budget, spent, records, (study_dir / "report.md").read_text()


@pytest.mark.slow  # a compute-matched study of its own
def test_each_trained_method_spends_the_budget_within_one_of_its_steps(matched_study):
    budget, spent, records, _ = matched_study
    rows = {row["id"]: row for row in cell_rows(records)}
    assert set(rows) == {"lora-seed0", "rag", "rag_lora-seed0"}
    for cell_id, (step, index) in spent.items():
        row = rows[cell_id]
        assert row["index_flops"] == pytest.approx(index)
        assert abs(row["train_flops"] + row["index_flops"] - budget) <= step, cell_id
        assert row["ready_flops"] == row["train_flops"] + row["index_flops"]
    assert rows["rag"]["index_flops"] == rows["rag_lora-seed0"]["index_flops"]  # the same shared index
    assert rows["rag"]["retrieval_flops_per_1k"] > 0 and rows["lora-seed0"]["retrieval_flops_per_1k"] == 0.0
    for cell_id in spent:  # training wall time is the steps' alone; the launch's start-up is shown apart
        row = rows[cell_id]
        assert 0 < row["train_seconds"] <= row["train_steps_wall_seconds"] < row["train_wall_seconds"]
        assert row["train_startup_seconds"] == pytest.approx(
            row["train_wall_seconds"] - row["train_steps_wall_seconds"]
        )


@pytest.mark.slow  # a compute-matched study of its own
def test_the_cost_table_shows_the_index_and_the_total_and_frozen_rag_is_not_free(matched_study):
    budget, _, records, report = matched_study
    lines = report.splitlines()
    header = next(line for line in lines if line.startswith("| method | trainable params"))
    columns = [cell.strip() for cell in header.strip("|").split("|")]
    titles = ("train wall s", "start-up s", "index FLOPs", "total FLOPs to be ready", "retrieval FLOPs / 1k questions")
    for title in titles:
        assert title in columns, title
    table = lines[lines.index(header) + 2 :]
    values = {}
    for line in table[: next(i for i, line in enumerate(table) if not line.startswith("|"))]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        values[cells[0]] = dict(zip(columns, cells, strict=True))
    assert float(values["rag"]["total FLOPs to be ready"]) == float(values["rag"]["index FLOPs"]) > 0
    assert float(values["lora"]["index FLOPs"]) == 0
    assert float(values["lora"]["total FLOPs to be ready"]) > 0 and float(values["rag+lora"]["index FLOPs"]) > 0
    ready = [row["ready_flops"] for row in cell_rows(records) if row["id"] in ("lora-seed0", "rag_lora-seed0")]
    assert f"Compute is matched: every trained method may spend {budget:.3g} FLOPs to be ready" in report
    assert f"max/min {max(ready) / min(ready):.2f}." in report
