"""report.md's statistical sections, one function each: accuracy per split with intervals and significance marks,
the paired comparisons, power, seed against question variance, and the freshness gains."""

from __future__ import annotations

import math

from rag_pet.evaluation.statistics import NO_VARIATION, articles_needed, smallest_p
from rag_pet.study.analysis import (
    SPLIT_TITLES,
    TESTED_METRICS,
    Analysis,
    Comparison,
    fresh_name,
)
from rag_pet.study.names import NEW_SPLIT
from rag_pet.study.spec import StudyConfig

METRIC_TITLES = {
    "exact_match": "EM",
    "f1": "F1",
    "answer_nll": "answer NLL (lower is better)",
    "retrieval_recall@1": "gold in top 1",
    "retrieval_recall@5": "gold in top 5",
}
SHORT = {"exact_match": "EM", "f1": "F1", "answer_nll": "NLL"}


def methods_text(study: StudyConfig) -> str:
    """How the statistics are computed, unit and method of every interval and test, for the report's opening."""
    stats = study.stats
    seeds = len(study.seeds)
    seed_text = (
        f" Each method ran {seeds} seeds: a figure is the mean over its seeds, and every interval and test adds the "
        "variance of the seeds' means (the unit is article x seed; degrees of freedom by Welch-Satterthwaite)."
        if seeds > 1
        else " Each method ran one seed, so training randomness is not in any interval."
    )
    return "\n".join(
        [
            "The unit of every interval and test is the **article**: questions about one article are not "
            'independent, and the study samples articles (Miller 2024, "Adding Error Bars to Evals").' + seed_text,
            "",
            f"- A method's figure: the mean over the split's questions with its {stats.confidence:.0%} interval in "
            "brackets. Both kinds of interval rest on a CR2 cluster-robust variance (Bell & McCaffrey 2002) on "
            "articles - 1 degrees of freedom. Scores in [0, 1] (EM, F1, gold passage retrieved): the Korn & "
            "Graubard (1998) interval, Clopper-Pearson on the design-effect sample size scaled for the number of "
            "articles. Answer NLL: the t interval. A [0, 1] score that is 0 (or 1) on every question gets the "
            "Clopper-Pearson bound over its articles alone; any other score without variation is printed as "
            "such, without an interval. Coverage of both was checked by simulation at 5, 10 and 30 articles "
            "(`tests/evaluation/test_coverage.py`: at least 0.93 at nominal 0.95).",
            "- A difference between two methods on the same questions: a sign-flip randomization test over the "
            "articles' summed differences, exact over every sign pattern up to 16 articles (seeded Monte Carlo "
            f"with {stats.resamples:,} resamples beyond); its interval is that test inverted, so it excludes 0 "
            f"exactly when the uncorrected p < {1 - stats.confidence:g} (significance is read from the corrected "
            "p below, which can keep an interval that excludes 0 from being called significant). No test over G "
            "articles can give p below 2 / 2^G, printed beside each split.",
            "- p-values are corrected by Benjamini-Hochberg within each metric and split (all pairs of methods), "
            f"and a difference is called significant when the corrected p < {stats.alpha:g}. ▲ / ▼: "
            f"significantly better / worse than `{_reference_text(study)}`.",
            "- Answer NLL is the gold answer's mean per-token negative log-likelihood, teacher-forced (for RAG "
            "methods marginalised over the retrieved passages as the RAG training loss is; given all of them in one "
            "prompt for methods that read them together, such as RAFT).",
        ]
    )


def _reference_text(study: StudyConfig) -> str:
    return study.stats.reference_of(study.methods)


def _bound(value: float) -> str:
    return f"{value:.3f}" if math.isfinite(value) else ("−∞" if value < 0 else "+∞")


def interval_text(mean: float, low: float, high: float, rule: str | None = None, signed: bool = False) -> str:
    """`mean [low, high]`, or `mean (no variation)` where every score was the same: never a zero-width interval."""
    shown = f"{mean:+.3f}" if signed else f"{mean:.3f}"
    return f"{shown} {bracket_text(low, high, rule, signed)}"


def bracket_text(low: float, high: float, rule: str | None = None, signed: bool = False) -> str:
    """`[low, high]` (infinite bounds as ∞), or `(no variation)` for a zero-width interval."""
    if rule == NO_VARIATION or low == high:
        return "(no variation)"
    bound = _signed_bound if signed else _bound
    return f"[{bound(low)}, {bound(high)}]"


def _signed_bound(value: float) -> str:
    return f"{value:+.3f}" if math.isfinite(value) else _bound(value)


def _mark(analysis: Analysis, method: str, split: str, metric: str) -> str:
    if method == analysis.reference:
        return ""
    comparison = analysis.versus_reference(method, split, metric)
    if comparison is None or comparison.better is None:
        return ""
    return " ▲" if comparison.better == method else " ▼"


def split_size(analysis: Analysis, split: str, methods: list[str], metric: str = "f1") -> tuple[int, int] | None:
    """(questions, articles) the first scored method's `metric` on `split` averaged over, None if none scored it."""
    sizes = [analysis.estimate_of(method, split, metric) for method in methods]
    first = next((size.estimate for size in sizes if size is not None), None)
    return (first.n, first.clusters) if first else None


def accuracy_markdown(analysis: Analysis, methods: list[str]) -> str:
    """One table per split: each method's EM, F1, answer NLL and gold-passage recall with intervals and marks."""
    parts = []
    for split in analysis.splits:
        metrics = [m for m in METRIC_TITLES if any(analysis.estimate_of(x, split, m) for x in methods)]
        size = split_size(analysis, split, methods, metrics[0])
        counted = (
            f"{size[0]} questions, {size[1]} articles; smallest possible p {smallest_p(size[1]):.2g}"
            if size
            else "no questions"
        )
        parts += [f"### {SPLIT_TITLES[split]} (`{split}`, {counted})", ""]
        parts += ["| method | " + " | ".join(METRIC_TITLES[m] for m in metrics) + " |"]
        parts += ["|" + " --- |" * (len(metrics) + 1)]
        for method in methods:
            cells = []
            for metric in metrics:
                found = analysis.estimate_of(method, split, metric)
                if found is None:
                    cells.append("-")
                    continue
                e = found.estimate
                cells.append(interval_text(e.mean, e.low, e.high, e.rule) + _mark(analysis, method, split, metric))
            parts.append(f"| {method} | " + " | ".join(cells) + " |")
        parts.append("")
    return "\n".join(parts).rstrip()


def _difference_text(comparison: Comparison | None) -> str:
    if comparison is None:
        return "-"
    text = interval_text(comparison.difference, comparison.low, comparison.high, comparison.rule, signed=True)
    if comparison.significant:
        number, _, rest = text.partition(" ")
        text = f"**{number}** {rest}"
    return f"{text} p={comparison.p_adjusted:.3g}"


def _oriented(comparison: Comparison, method: str) -> Comparison:
    """The comparison as `method` minus the other one."""
    if comparison.method == method:
        return comparison
    return Comparison(
        comparison.split,
        comparison.metric,
        comparison.other,
        comparison.method,
        0.0 - comparison.difference,
        0.0 - comparison.high,
        0.0 - comparison.low,
        comparison.p_value,
        comparison.p_adjusted,
        comparison.n,
        comparison.significant,
        comparison.articles,
        comparison.rule,
    )


def comparisons_markdown(analysis: Analysis, methods: list[str]) -> str:
    """Each method minus the reference per split (difference, interval, corrected p; bold when significant), then
    per split and metric with a significant pair, the matrix of differences between the other methods."""
    parts = [
        f"Each method minus `{analysis.reference}` on the same questions: difference [interval] and BH-corrected "
        "p, both from the article-level sign-flip test; **bold** = significant. For answer NLL a negative "
        "difference is better.",
        "",
        "| method | split | " + " | ".join(f"Δ {SHORT[m]}" for m in TESTED_METRICS) + " |",
        "|" + " --- |" * (len(TESTED_METRICS) + 2),
    ]
    for split in analysis.splits:
        for method in methods:
            if method == analysis.reference:
                continue
            found = [analysis.versus_reference(method, split, m) for m in TESTED_METRICS]
            if not any(found):
                continue
            cells = [_difference_text(_oriented(c, method) if c else None) for c in found]
            parts.append(f"| {method} | {split} | " + " | ".join(cells) + " |")
    tested = [c for c in analysis.comparisons if analysis.reference not in (c.method, c.other)]
    others = [c for c in tested if c.significant]
    parts += [
        "",
        f"Between two other methods: {len(others)} of {len(tested)} paired comparisons significant. Each table below"
        " (one per split and metric with a significant pair) gives row minus column on the same questions, **bold**"
        " where significant; `comparisons.csv` holds every pair's interval and raw and corrected p.",
    ]
    for split in analysis.splits:
        for metric in TESTED_METRICS:
            found = [c for c in others if c.split == split and c.metric == metric]
            if found:
                parts += ["", f"{split}, {SHORT[metric]}:", "", _matrix(analysis, split, metric, methods)]
    return "\n".join(parts)


def _matrix(analysis: Analysis, split: str, metric: str, methods: list[str]) -> str:
    """Row minus column for every pair of non-reference methods compared on `split` and `metric`."""
    pairs = {
        (c.method, c.other): c
        for c in analysis.comparisons
        if c.split == split and c.metric == metric and analysis.reference not in (c.method, c.other)
    }
    shown = [m for m in methods if any(m in pair for pair in pairs)]
    lines = ["| row − column | " + " | ".join(shown) + " |", "|" + " --- |" * (len(shown) + 1)]
    for row in shown:
        cells = []
        for column in shown:
            found = pairs.get((row, column)) or pairs.get((column, row))
            if found is None:
                cells.append("")
                continue
            difference = _oriented(found, row).difference
            cells.append(f"**{difference:+.3f}**" if found.significant else f"{difference:+.3f}")
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def power_markdown(analysis: Analysis, study: StudyConfig) -> str:
    """The minimum detectable effect of every split and metric in articles, and the articles a chosen effect
    needs."""
    stats = study.stats
    parts = [
        f"Minimum detectable effect: the smallest true paired difference a two-sided t test over the articles "
        f"(t(G-1), statsmodels' `TTestPower`) finds at α = {stats.alpha:g} with {stats.power:.0%} power, from the "
        "largest standard deviation of any two methods' article-level mean differences, so it holds for every "
        "pair (Miller 2024, sec. 5). The last column: articles needed to detect the stated effect at the same SD "
        f"and questions per article (at least {articles_needed(0.0, 1.0, stats.alpha, stats.power)}, the fewest "
        f"over which an exact sign-flip test can reach p < {stats.alpha:g}).",
        "",
        "| split | metric | questions | articles | questions per article | SD of article differences | minimum "
        "detectable effect | articles for effect |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for p in analysis.power:
        needed = f"{p.articles_needed:,} for {p.effect:g}" if p.articles_needed else "-"
        parts.append(
            f"| {p.split} | {SHORT[p.metric]} | {p.questions} | {p.articles} | {p.per_article:.1f} | "
            f"{p.article_sd:.3f} | {_bound(p.minimum_effect)} | {needed} |"
        )
    return "\n".join(parts)


def seeds_markdown(analysis: Analysis, methods: list[str]) -> str:
    """Seed variance (SD of the seeds' means) beside article variance (CR2 clustered SE) of every headline metric
    for every trained method with several seeds; empty when no method has more than one."""
    rows = []
    for split in analysis.splits:
        for method in methods:
            for metric in TESTED_METRICS:
                found = analysis.estimate_of(method, split, metric)
                if found is not None and found.seeds > 1:
                    rows.append(
                        f"| {method} | {split} | {SHORT[metric]} | {found.seeds} | {found.seed_sd:.3f} | "
                        f"{found.article_se:.3f} |"
                    )
    if not rows:
        return ""
    header = [
        "Seed SD: standard deviation of the seeds' means (training randomness); article SE: the CR2 clustered "
        "standard error of the seed-averaged scores (which articles were asked about). The intervals above cover "
        "both.",
        "",
        "| method | split | metric | seeds | seed SD | article SE |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    return "\n".join(header + rows)


def freshness_tests_markdown(analysis: Analysis, fresh: list[dict]) -> str:
    """Per method and way of taking the late articles in: F1 and NLL before and after, with intervals, and the
    paired after-minus-before difference with its corrected p."""
    parts = [
        "| method | took the new articles in by | F1 before | F1 after | Δ F1 | NLL before | NLL after | Δ NLL |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in fresh:
        cells = []
        for metric in ("f1", "answer_nll"):
            before = analysis.estimate_of(row["method"], NEW_SPLIT, metric)
            if row["kind"] == "none":  # nothing trains: after is before, and nothing to test
                cells += [_estimate_text(before), _estimate_text(before), "-"]
                continue
            after = analysis.estimate_of(fresh_name(row["method"], row["kind"]), NEW_SPLIT, metric)
            test = next(
                (
                    c
                    for c in analysis.freshness
                    if c.metric == metric and c.method == fresh_name(row["method"], row["kind"])
                ),
                None,
            )
            cells += [_estimate_text(before), _estimate_text(after), _difference_text(test)]
        parts.append(f"| {row['method']} | {row['update']} | " + " | ".join(cells) + " |")
    return "\n".join(parts)


def _estimate_text(found) -> str:
    if found is None:
        return "-"
    e = found.estimate
    return interval_text(e.mean, e.low, e.high, e.rule)
