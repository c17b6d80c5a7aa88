"""A study's answer from hand-made per-question records: intervals, paired tests, power, seeds, and the report."""

import csv

import numpy as np
import pytest

from rag_pet.config import TrackingConfig
from rag_pet.evaluation.statistics import articles_needed, smallest_p
from rag_pet.study import StudyConfig
from rag_pet.study.analysis import analyse, method_scores
from rag_pet.study.report import write_report
from rag_pet.study.spec import FreshnessConfig

ARTICLES = [f"article{i}" for i in range(8)]
QUESTIONS = 64  # 8 per article


def questions(em: np.ndarray, f1: np.ndarray, nll: np.ndarray) -> list[dict]:
    return [
        {"id": f"q{i}", "article": ARTICLES[i % 8], "exact_match": e, "f1": f, "answer_nll": n}
        for i, (e, f, n) in enumerate(zip(em.tolist(), f1.tolist(), nll.tolist(), strict=True))
    ]


def record(method: str, seed: int, em, f1, nll, kind: str = "main", split: str = "validation") -> dict:
    metrics = {"exact_match": float(np.mean(em)), "f1": float(np.mean(f1)), "answer_nll": float(np.mean(nll))}
    return {
        "id": f"{method}-seed{seed}",
        "method": method,
        "kind": kind,
        "seed": seed,
        "status": "done",
        "error": None,
        "index": None,
        "wall_seconds": 1.0,
        "command": "python -m jobs.train",
        "environment": {"python": "3.11", "platform": "Linux", "cpus": 2, "gpu": None, "packages": {}},
        "metrics": {**metrics, "method": method, "train_flops": 1e12 * (seed + 1)},
        "questions": {split: questions(np.asarray(em, float), np.asarray(f1, float), np.asarray(nll, float))},
    }


@pytest.fixture(scope="module")
def records() -> list[dict]:
    rng = np.random.default_rng(0)
    base_f1 = rng.uniform(0.0, 0.3, QUESTIONS)
    base_nll = rng.uniform(3.0, 4.0, QUESTIONS)
    zero = np.zeros(QUESTIONS)
    strong_em = (rng.uniform(size=QUESTIONS) < 0.5).astype(float)  # rag answers about half exactly
    return [
        record("zero_shot", 0, zero, base_f1, base_nll),
        # lora: the same as zero-shot up to noise, in two seeds
        record("lora", 0, zero, base_f1 + rng.normal(0, 0.01, QUESTIONS), base_nll + rng.normal(0, 0.01, QUESTIONS)),
        record("lora", 1, zero, base_f1 + rng.normal(0, 0.01, QUESTIONS), base_nll + rng.normal(0, 0.01, QUESTIONS)),
        record("rag", 0, strong_em, np.maximum(base_f1, strong_em), base_nll - 1.0),
    ]


def study() -> StudyConfig:
    return StudyConfig(
        name="hand",
        methods=["zero_shot", "lora", "rag"],
        seeds=[0, 1],
        questions=QUESTIONS,
        freshness=FreshnessConfig(enabled=False),
    )


def test_seeds_are_averaged_per_question_and_their_spread_kept(records):
    lora = method_scores(records, "lora", "validation")
    per_seed = [np.array([q["f1"] for q in r["questions"]["validation"]]) for r in records[1:3]]
    position = {f"q{i}": i for i in range(QUESTIONS)}
    order = [position[i] for i in lora.ids]
    assert np.allclose(lora.values["f1"], ((per_seed[0] + per_seed[1]) / 2)[order])
    assert lora.seed_means["f1"] == pytest.approx([p.mean() for p in per_seed])


def test_a_large_difference_is_significant_and_noise_is_not(records):
    analysis = analyse(study(), records)
    assert analysis.reference == "zero_shot"
    for metric in ("exact_match", "f1", "answer_nll"):
        rag = analysis.versus_reference("rag", "validation", metric)
        assert rag.significant and rag.better == "rag", metric
        assert rag.p_adjusted >= rag.p_value
        lora = analysis.versus_reference("lora", "validation", metric)
        assert not lora.significant, metric
    nll = analysis.versus_reference("rag", "validation", "answer_nll")
    oriented = nll.difference if nll.method == "rag" else -nll.difference
    assert oriented == pytest.approx(-1.0)  # rag's NLL is exactly 1 lower on every question


def test_intervals_cover_the_mean_and_seeds_are_reported_apart(records):
    analysis = analyse(study(), records)
    for method in ("zero_shot", "lora", "rag"):
        for metric in ("exact_match", "f1", "answer_nll"):
            found = analysis.estimate_of(method, "validation", metric).estimate
            assert found.low <= found.mean <= found.high and found.n == QUESTIONS and found.clusters == 8
    zero_em = analysis.estimate_of("zero_shot", "validation", "exact_match").estimate
    assert zero_em.mean == 0.0 and zero_em.high > 0.0  # 0 of 64 is not certainty
    lora = analysis.estimate_of("lora", "validation", "f1")
    assert lora.seeds == 2 and lora.seed_sd is not None and analysis.estimate_of("rag", "validation", "f1").seeds == 1


def test_power_is_counted_in_articles(records):
    analysis = analyse(study(), records)
    f1 = next(p for p in analysis.power if p.split == "validation" and p.metric == "f1")
    assert f1.questions == QUESTIONS and f1.articles == 8 and f1.per_article == 8 and f1.minimum_effect > 0
    assert f1.articles_needed is not None and f1.articles_needed >= 6  # 2 / 2^5 > 0.05: no exact test below 6
    # the articles needed to detect the minimum detectable effect itself are the split's articles
    assert articles_needed(f1.article_sd, f1.minimum_effect) == 8


def test_no_p_value_is_below_what_an_exact_test_over_the_articles_allows(records):
    analysis = analyse(study(), records)
    for comparison in analysis.comparisons:
        assert comparison.articles == 8 and comparison.p_value >= smallest_p(8) - 1e-12
        assert comparison.rule  # every difference names how it was tested
    rag = analysis.versus_reference("rag", "validation", "exact_match")
    assert rag.p_value == pytest.approx(smallest_p(8))  # rag ahead on every article: the exact floor itself


def test_the_report_shows_intervals_marks_the_correction_and_power(records, tmp_path):
    summary = write_report(study(), tmp_path, records, {}, TrackingConfig(mode="disabled"))
    report = (tmp_path / "report.md").read_text()
    assert "Benjamini-Hochberg" in report and "## Power" in report and "## Seed and article variance" in report
    rag_line = next(line for line in report.splitlines() if line.startswith("| rag | "))
    em = analyse(study(), records).estimate_of("rag", "validation", "exact_match").estimate
    assert f"{em.mean:.3f} [{em.low:.3f}, {em.high:.3f}] ▲" in rag_line
    lora_line = next(line for line in report.splitlines() if line.startswith("| lora | "))
    assert "▲" not in lora_line and "▼" not in lora_line
    assert "answer NLL" in report
    rows = {row["method"]: row for row in summary["rows"]}
    assert rows["rag"]["f1_low"] <= rows["rag"]["f1"] <= rows["rag"]["f1_high"]
    assert (tmp_path / "accuracy_vs_cost.png").read_bytes()[:4] == b"\x89PNG"


def test_the_report_names_the_code_states_and_why_cells_ran_again(records, tmp_path):
    again = [dict(r) for r in records]
    for r in again:
        r["provenance"] = {"revision": "a" * 40, "dirty": False}
    again[1] = {**again[1], "provenance": {"revision": "b" * 40, "dirty": True}}
    again[1]["rerun_reason"] = "code revision aaaaaaa -> bbbbbbb"
    write_report(study(), tmp_path, again, {}, TrackingConfig(mode="disabled"))
    report = (tmp_path / "report.md").read_text()
    assert "`aaaaaaaaaaaa`, `bbbbbbbbbbbb` with uncommitted changes" in report
    assert "different code states" in report
    assert f"- `{again[1]['id']}`: code revision aaaaaaa -> bbbbbbb" in report


def test_the_cost_table_says_which_figures_are_single_measurements_and_spreads_them_over_seeds(records, tmp_path):
    write_report(study(), tmp_path, records, {}, TrackingConfig(mode="disabled"))
    report = (tmp_path / "report.md").read_text()
    cost = report.split("## Cost", 1)[1]
    assert "standard deviation over the 2 seeds" in cost
    lora_line = next(line for line in cost.splitlines() if line.startswith("| lora | "))
    assert "1.50e+12 ± 7.07e+11" in lora_line  # two seeds measured 1e12 and 2e12
    one_seed = StudyConfig(**{**study().__dict__, "seeds": [0]})
    write_report(one_seed, tmp_path, records, {}, TrackingConfig(mode="disabled"))
    assert "single measurements without an interval" in (tmp_path / "report.md").read_text()


def test_pairs_between_other_methods_read_as_matrices_and_every_pair_is_in_comparisons_csv(records, tmp_path):
    write_report(study(), tmp_path, records, {}, TrackingConfig(mode="disabled"))
    report = (tmp_path / "report.md").read_text()
    tested = list(csv.DictReader((tmp_path / "comparisons.csv").open()))
    analysis = analyse(study(), records)
    assert len(tested) == len(analysis.comparisons)  # every pair, significant or not, with its reference pairs
    between = [row for row in tested if "zero_shot" not in (row["method"], row["other"])]
    assert between and all(row["significant"] == "True" for row in between)  # rag is far ahead of lora
    for row in between:
        short = {"exact_match": "EM", "f1": "F1", "answer_nll": "NLL"}[row["metric"]]
        table = report.split(f"\n{row['split']}, {short}:\n", 1)[1].strip("\n").split("\n\n", 1)[0]
        header, _, *lines = table.splitlines()
        columns = [cell.strip() for cell in header.strip("|").split("|")][1:]
        cells = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")][1:] for line in lines}
        difference = float(row["difference"])
        assert cells[row["method"]][columns.index(row["other"])] == f"**{difference:+.3f}**"
        assert cells[row["other"]][columns.index(row["method"])] == f"**{-difference:+.3f}**"
