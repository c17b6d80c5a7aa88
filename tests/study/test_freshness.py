"""The freshness table: each method's score on the late articles' questions before and after it took them in, and
what that cost, from the cells' rows."""

import pytest

from rag_pet.study.freshness import freshness_markdown, freshness_rows
from rag_pet.study.report import cell_rows


def record(cell_id: str, method: str, kind: str, seed: int | None, index: str | None = None, **metrics) -> dict:
    """A cell's record as the runner writes it (a failed one has no metrics)."""
    error = metrics.pop("error", None)
    return {
        "id": cell_id,
        "method": method,
        "kind": kind,
        "seed": seed,
        "index": index,
        "status": "failed" if error else "done",
        "error": error,
        "wall_seconds": 999.0,  # the whole cell (evaluation included): not what taking the articles in cost
        "command": f"python -m jobs.train # {cell_id}",
        "metrics": {} if error else {"method": method, **metrics},
    }


def main(cell_id, method, seed, at_test, index=None, **metrics):
    """A main cell scored on the late articles' questions (`at_test`: EM, F1) and on its own eval split (`metrics`)."""
    scores = {"exact_match@test": at_test[0], "f1@test": at_test[1], "exact_match": 0.9, "f1": 0.95}
    return record(cell_id, method, "main", seed, index, **{**scores, **metrics})


def trained_on(cell_id, kind, method, seed, em, f1, seconds, flops):
    metrics = {"exact_match": em, "f1": f1, "train_wall_seconds": seconds, "train_flops": flops}
    return record(cell_id, method, kind, seed, **metrics)


RECORDS = [
    main("zero_shot", "zero_shot", None, (0.0, 0.10)),
    main("lora-seed0", "lora", 0, (0.25, 0.30), train_wall_seconds=50.0, train_flops=9e12),
    trained_on("lora-seed0.fresh_text", "fresh_text", "lora", 0, 0.25, 0.40, 10.0, 1e12),
    trained_on("lora-seed0.fresh_qa", "fresh_qa", "lora", 0, 0.50, 0.60, 20.0, 2e12),
    main("lora-seed1", "lora", 1, (0.75, 0.50), train_wall_seconds=70.0, train_flops=9e12),
    trained_on("lora-seed1.fresh_text", "fresh_text", "lora", 1, 0.50, 0.80, 30.0, 3e12),
    record("lora-seed1.fresh_qa", "lora", "fresh_qa", 1, error="out of memory"),
    main("ia3-seed0", "ia3", 0, (0.0, 0.20)),
    record("ia3-seed0.fresh_text", "ia3", "fresh_text", 0, error="data.path='missing' is invalid"),
    record("full-seed0", "full", "main", 0, error="its own error"),
    record("full-seed0.fresh_text", "full", "fresh_text", 0, error="its base cell full-seed0 failed"),
    main("rag", "rag", None, (0.0, 0.20), index="squad-tiny-v1"),
    record("rag.fresh_index", "rag", "fresh_index", None, "squad-tiny-v1", exact_match=0.25, f1=0.45),
    main("rag_lora-seed0", "rag+lora", 0, (0.25, 0.25), index="squad-tiny-v1"),
    record("rag_lora-seed0.fresh_index", "rag+lora", "fresh_index", 0, "squad-tiny-v1", exact_match=0.5, f1=0.5),
    main("rag_lora-seed1", "rag+lora", 1, (0.5, 0.35), index="squad-tiny-v1"),
    record("rag_lora-seed1.fresh_index", "rag+lora", "fresh_index", 1, "squad-tiny-v1", exact_match=0.75, f1=0.7),
]
METHODS = ["zero_shot", "lora", "ia3", "full", "rag", "rag+lora"]
# the index's growth, as the runner's shared.json records it (the index of the main cells, `index`)
SHARED = {
    "other-index": {"version": 1, "fresh": {"version": 2, "build_seconds": 500.0, "encode_flops": 9e15}},
    "squad-tiny-v1": {"version": 1, "fresh": {"version": 2, "build_seconds": 19.0, "encode_flops": 1.4e12}},
}


@pytest.fixture
def fresh() -> dict:
    rows = freshness_rows(cell_rows(RECORDS), METHODS, SHARED)
    return {(row["method"], row["kind"]): row for row in rows}


def test_one_row_per_method_and_way_of_taking_the_articles_in_in_study_order():
    rows = freshness_rows(cell_rows(RECORDS), METHODS, SHARED)
    assert [(row["method"], row["kind"]) for row in rows] == [
        ("zero_shot", "none"),
        ("lora", "fresh_text"),
        ("lora", "fresh_qa"),
        ("ia3", "fresh_text"),
        ("full", "fresh_text"),
        ("rag", "fresh_index"),
        ("rag+lora", "fresh_index"),
    ]


def test_before_and_after_are_means_over_seeds_of_the_cells_that_finished(fresh):
    text = fresh[("lora", "fresh_text")]
    # before: the main cells on the late articles' questions (`@test`), not on the study's own eval split
    assert (text["em_before"], text["f1_before"]) == (pytest.approx(0.5), pytest.approx(0.4))
    assert (text["em_after"], text["f1_after"]) == (pytest.approx(0.375), pytest.approx(0.6))
    # the further training's own wall time and FLOPs, not the main cells' nor the cells' whole wall time
    assert (text["seconds"], text["flops"], text["cells"]) == (pytest.approx(20.0), pytest.approx(2e12), 2)
    qa = fresh[("lora", "fresh_qa")]  # seed 1's cell failed: seed 0's alone
    assert (qa["em_before"], qa["em_after"], qa["f1_after"], qa["cells"]) == (0.5, 0.5, 0.6, 1)
    assert (qa["seconds"], qa["flops"]) == (20.0, 2e12)


def test_a_method_that_does_not_train_or_retrieve_stays_where_it_was_for_nothing(fresh):
    row = fresh[("zero_shot", "none")]
    assert (row["em_before"], row["f1_before"]) == (0.0, 0.1)
    assert (row["em_after"], row["f1_after"], row["seconds"], row["flops"]) == (0.0, 0.1, 0.0, 0.0)


def test_rag_methods_cost_their_index_growth_from_the_shared_record(fresh):
    rag, hybrid = fresh[("rag", "fresh_index")], fresh[("rag+lora", "fresh_index")]
    assert (rag["em_before"], rag["f1_before"], rag["em_after"], rag["f1_after"]) == (0.0, 0.2, 0.25, 0.45)
    assert (hybrid["em_before"], hybrid["f1_before"]) == (pytest.approx(0.375), pytest.approx(0.3))
    assert (hybrid["em_after"], hybrid["f1_after"], hybrid["cells"]) == (pytest.approx(0.625), pytest.approx(0.6), 2)
    for row in (rag, hybrid):
        assert (row["seconds"], row["flops"]) == (19.0, 1.4e12)


def test_an_index_grown_by_an_earlier_run_has_no_seconds_to_report():
    shared = {"squad-tiny-v1": {"version": 1, "fresh": {"version": 2, "build_seconds": None, "encode_flops": None}}}
    (row,) = freshness_rows(cell_rows(RECORDS), ["rag"], shared)
    assert (row["seconds"], row["flops"], row["seconds_note"]) == (None, None, "built before")
    assert "| rag | new passages added to the index | 0.000 / 0.200 | 0.250 / 0.450 | built before | - |" in (
        freshness_markdown([row])
    )


def test_failed_cells_give_no_numbers_and_read_failed(fresh):
    ia3 = fresh[("ia3", "fresh_text")]  # the freshness cell failed
    assert (ia3["em_before"], ia3["f1_before"]) == (0.0, 0.2)
    assert (ia3["em_after"], ia3["f1_after"], ia3["seconds"], ia3["flops"], ia3["cells"]) == (None, None, None, None, 0)
    full = fresh[("full", "fresh_text")]  # the main cell failed, and with it the one after it
    assert (full["em_before"], full["f1_before"], full["em_after"], full["f1_after"]) == (None, None, None, None)
    table = freshness_markdown([ia3, full]).splitlines()
    assert table[2] == "| ia3 | trained on the articles' text | 0.000 / 0.200 | failed | - | - |"
    assert table[3] == "| full | trained on the articles' text | failed | failed | - | - |"
