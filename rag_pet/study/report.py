"""A study's results: `results.csv` (one row per cell), `report.md` (per method, mean ± std over seeds), the plots,
and the study's W&B run. Every number comes from the per-cell JSON records."""

from __future__ import annotations

import csv
import io
import statistics
from dataclasses import asdict, fields
from pathlib import Path

from rag_pet.config import TrackingConfig
from rag_pet.evaluation.report import format_columns
from rag_pet.storage import write_text_atomic
from rag_pet.study import report_stats
from rag_pet.study.analysis import Analysis, Comparison, analyse, fresh_name
from rag_pet.study.cost_report import (
    COST_COLUMNS,
    budget_markdown,
    cost_reading,
    learning_rate,
    learning_rates_markdown,
    with_costs,
)
from rag_pet.study.curves import data_needs, data_needs_markdown
from rag_pet.study.environment import numerics_text
from rag_pet.study.fit_report import fit_markdown
from rag_pet.study.freshness import freshness_markdown, freshness_rows
from rag_pet.study.knowledge import knowledge_markdown, protocol_text
from rag_pet.study.names import EVAL_SPLIT, MAIN, NEW_SPLIT
from rag_pet.study.plots import write_plots
from rag_pet.study.records import tuning_records
from rag_pet.study.spec import StudyConfig
from rag_pet.study.tuning_report import tuning_markdown

GIB = 1024**3

# (title, metric key, format); a key missing from a method's cells prints as "-"
OTHER_ACCURACY_COLUMNS = (
    ("overfit gap (EM train − EM seen)", "overfit_gap", "{:+.3f}"),
    ("forgetting (Δ loss)", "forgetting", "{:+.3f}"),
)


def cell_rows(records: list[dict]) -> list[dict]:
    """One flat row per cell: id, method, seed, status, error, then its metrics and the derived ones."""
    rows = []
    by_id = {record["id"]: record for record in records}
    for record in records:
        metrics = dict(record.get("metrics") or {})
        if "exact_match@train" in metrics and "exact_match@validation_seen" in metrics:
            metrics["overfit_gap"] = metrics["exact_match@train"] - metrics["exact_match@validation_seen"]
        if metrics.get("peak_memory_bytes") is not None:
            metrics["peak_memory_gib"] = metrics["peak_memory_bytes"] / GIB
        if record["status"] == "done":
            with_costs(record, metrics, by_id.get(record.get("after")) if record["kind"] == MAIN else None)
        keys = ("id", "method", "kind", "seed", "index", "status", "error", "wall_seconds", "command", "rerun_reason")
        identity = {k: record.get(k) for k in keys}
        provenance = record.get("provenance") or {}
        identity.update(revision=provenance.get("revision"), dirty=provenance.get("dirty"))
        identity["learning_rate"] = learning_rate(record)
        metrics["label"] = metrics.pop("method", None)  # the run's own name for its row ("zero-shot", "rag+lora")
        rows.append({**identity, **metrics})
    return rows


def method_summaries(rows: list[dict], methods: list[str]) -> list[dict]:
    """Per method (in study order): each numeric metric's mean and std over its finished main cells, and the
    count."""
    summaries = []
    for method in methods:
        mains = [row for row in rows if row["method"] == method and row["kind"] == MAIN]
        done = [row for row in mains if row["status"] == "done"]
        failed = [row for row in mains if row["status"] != "done"]
        summary: dict = {"method": method, "cells": len(done), "failed": len(failed)}
        keys = {key for row in done for key, value in row.items() if _is_number(value) and key != "seed"}
        for key in sorted(keys):
            values = [row[key] for row in done if _is_number(row.get(key))]
            summary[key] = statistics.fmean(values)
            summary[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        summaries.append(summary)
    return summaries


def with_intervals(summaries: list[dict], analysis: Analysis) -> list[dict]:
    """The summaries with each method's interval on the unseen split (`<metric>_low` / `<metric>_high`)."""
    for summary in summaries:
        for metric in ("exact_match", "f1", "answer_nll"):
            found = analysis.estimate_of(summary["method"], EVAL_SPLIT, metric)
            if found is not None:
                summary[f"{metric}_low"], summary[f"{metric}_high"] = found.estimate.low, found.estimate.high
                e = found.estimate
                summary[f"{metric}_ci"] = report_stats.bracket_text(e.low, e.high, e.rule)
    return summaries


def with_fresh_intervals(fresh: list[dict], analysis: Analysis) -> list[dict]:
    """The freshness rows with F1 intervals before and after (`f1_before_low`, ...), for the plot's error bars."""
    rows = []
    for row in fresh:
        row = dict(row)
        after = row["method"] if row["kind"] == "none" else fresh_name(row["method"], row["kind"])
        for when, name in (("before", row["method"]), ("after", after)):
            found = analysis.estimate_of(name, NEW_SPLIT, "f1")
            if found is not None:
                row[f"f1_{when}_low"], row[f"f1_{when}_high"] = found.estimate.low, found.estimate.high
        rows.append(row)
    return rows


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _cell(summary: dict, key: str, fmt: str) -> str:
    """The value, its 95 % interval where the run measured one (latency medians), and ± std over seeds."""
    if summary.get(key) is None:
        return "-"
    text = fmt.format(summary[key])
    low, high = summary.get(f"{key}_low"), summary.get(f"{key}_high")
    if low is not None and high is not None:
        text += f" [{fmt.format(low)}, {fmt.format(high)}]"
    if summary["cells"] > 1 and summary.get(f"{key}_std"):
        text += " ± " + fmt.format(summary[f"{key}_std"]).lstrip("+")
    return text


def markdown_table(summaries: list[dict], columns: tuple) -> str:
    """A markdown table of the summaries, without the columns no method has a value for."""

    def filled(key: str) -> bool:
        return any(summary.get(key) is not None for summary in summaries)

    columns = tuple(column for column in columns if filled(column[1]))
    header = ["method", *(title for title, _, _ in columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for summary in summaries:
        if not summary["cells"]:
            cells = ["failed"] + ["-"] * (len(columns) - 1)
        else:
            cells = [_cell(summary, key, fmt) for _, key, fmt in columns]
        lines.append(f"| {summary['method']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def results_csv(rows: list[dict]) -> str:
    """Every cell's row; columns are the union of the rows' keys, identity columns first."""
    first = ["id", "method", "kind", "seed", "status", "error", "wall_seconds"]
    rest = sorted({key for row in rows for key in row} - set(first) - {"command"})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*first, *rest, "command"], extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def comparisons_csv(analysis: Analysis) -> str:
    """Every paired comparison the study tested: split, metric, the two methods, the difference (method minus
    other) with its interval, the raw and BH-corrected p, the questions and whether it is significant."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[field.name for field in fields(Comparison)])
    writer.writeheader()
    writer.writerows(asdict(comparison) for comparison in analysis.comparisons)
    return buffer.getvalue()


def _opening(study: StudyConfig) -> list[str]:
    seeds = ", ".join(map(str, study.seeds))
    return [
        f"# Study `{study.name}`",
        "",
        f"Methods: {', '.join(study.methods)}. Budget per trained method: {study.budget.amount:g} "
        f"{study.budget.unit}, over the same {study.train_examples} training questions; seeds {seeds}. Evaluated on "
        f"{study.questions} questions per split: *unseen* = articles no training question came from "
        "(`validation`), *seen* = held-out questions of the training articles (`validation_seen`), *train sample* "
        "= questions trained on (overfit gap = EM train sample − EM seen). "
        f"Forgetting: the generator's loss on {study.forgetting_texts} SciFact abstracts after training minus "
        f"before. Latency: one question at a time, {study.latency_questions} questions after a warm-up, in the "
        "evaluating process (the whole answer, retrieval included; apart: time to the first token, per further "
        "token, and retrieval, so answer length does not decide the ranking)"
        + (" and through each model's Ray Serve endpoint over HTTP." if study.latency == "endpoint" else "."),
        "",
        protocol_text(study),
        "",
        report_stats.methods_text(study),
    ]


def _accuracy(study: StudyConfig, summaries: list[dict], analysis: Analysis, fit: list[str]) -> list[str]:
    parts = ["", "## Accuracy", "", report_stats.accuracy_markdown(analysis, study.methods), *fit]
    other = markdown_table(summaries, OTHER_ACCURACY_COLUMNS)
    if any(summary.get(key) is not None for summary in summaries for _, key, _ in OTHER_ACCURACY_COLUMNS):
        parts += ["", "Overfitting and forgetting (mean ± std over seeds):", "", other]
    parts += ["", "## Paired comparisons", "", report_stats.comparisons_markdown(analysis, study.methods)]
    parts += ["", "## Power", "", report_stats.power_markdown(analysis, study)]
    seeds = report_stats.seeds_markdown(analysis, study.methods)
    if seeds:
        parts += ["", "## Seed and article variance", "", seeds]
    return parts


def _freshness(study: StudyConfig, fresh: list[dict], analysis: Analysis) -> list[str]:
    if not fresh:
        return []
    freshness = study.freshness
    size = report_stats.split_size(analysis, NEW_SPLIT, study.methods)
    scored = f"{size[0]} of their questions ({size[1]} articles)" if size else "none of their questions"
    return [
        "",
        "## Knowledge freshness",
        "",
        f"The test articles arrive after training: their paragraphs were not in the first index and no method "
        f"trained on them. Scored on {scored}, drawn from the "
        f"{1 - freshness.qa_fraction:.0%} that no method trains on (the other {freshness.qa_fraction:.0%} are "
        "the QA pairs closed-book methods may train on), before and after each method took them in. "
        f"Closed-book methods trained on from their trained weights: {_fresh_training_text(study)}; "
        "wall s is the whole training launch, its start-up included, or the whole index "
        "growth, Ray Data's start-up included: each way of taking the articles in timed from start to end.",
        "",
        freshness_markdown(fresh),
        "",
        "The same with intervals, and after minus before tested on the same questions (BH-corrected over the "
        "freshness rows):",
        "",
        report_stats.freshness_tests_markdown(analysis, fresh),
    ]


def _fresh_training_text(study: StudyConfig) -> str:
    """How long closed-book methods trained on the late articles: every paragraph under `knowledge_matched` (text),
    `study.freshness.budget` otherwise (and for QA pairs)."""
    budget = f"{study.freshness.budget.amount:g} {study.freshness.budget.unit}"
    if study.protocol != "knowledge_matched":
        return f"for {budget}"
    passes = "every paragraph of the articles read by the method's recipe, as it read the documents (its passes and"
    passes += " phrasings in the *Documents read as text* table)"
    return passes + (f", and for {budget} on QA pairs" if "qa" in study.freshness.variants else "")


def _shared_indexes(shared: dict) -> list[str]:
    if not shared:
        return []
    parts = ["", "## Shared indexes (built once for every retrieval method)", ""]
    parts += ["| index | version | vectors | size MiB | build s | encoding FLOPs |", "|" + " --- |" * 6]
    for entry in shared.values():
        for version in (entry, entry.get("fresh")):
            if version is None:
                continue
            built = f"{version['build_seconds']:.0f}" if version["build_seconds"] is not None else "built before"
            grown = f" (+{version['passages_added']} new passages)" if "passages_added" in version else ""
            flops = f"{version['encode_flops']:.2e}" if version.get("encode_flops") is not None else "-"
            parts.append(
                f"| {version['index']}{grown} | {version['version']} | {version['num_vectors']:,} | "
                f"{version['size_bytes'] / 2**20:.1f} | {built} | {flops} |"
            )
    return parts


def _provenance(rows: list[dict]) -> list[str]:
    """The code states the cells ran on, and which cells ran again on this run of the study and why."""
    states = sorted({(row.get("revision") or "no git checkout", bool(row.get("dirty"))) for row in rows})
    described = [f"`{revision[:12]}`" + (" with uncommitted changes" if dirty else "") for revision, dirty in states]
    parts = ["", "## Provenance", "", f"Code: {', '.join(described)}."]
    if len(states) > 1:
        parts[-1] += " The cells ran on different code states: compare them with care."
    parts.append("Each cell's record (`cells/<id>.json`) holds its revision, package versions and the hashes of the")
    parts[-1] += " weights, data and index it read; a re-run of the study re-uses a cell only when all of them match."
    rerun = [row for row in rows if row.get("rerun_reason")]
    if rerun:
        parts += ["", "Cells that ran again over an earlier record of theirs, and why:", ""]
        parts += [f"- `{row['id']}`: {row['rerun_reason']}" for row in rerun]
    return parts


def _closing(rows: list[dict], plots: list[Path], environment: dict | None, numerics: str) -> list[str]:
    parts = _provenance(rows)
    failed = [row for row in rows if row["status"] != "done"]
    if failed:
        parts += ["", "## Failed cells", ""]
        parts += [f"- `{row['id']}`: {row['error']}" for row in failed]
    if plots:
        parts += ["", "## Plots", ""]
        parts += [f"![{plot.stem}]({plot.name})" for plot in plots]
    parts += ["", "## Re-run one cell alone", ""]
    parts += [f"- `{row['id']}`: `{row['command']}`" for row in rows]
    if environment is not None:
        packages = ", ".join(f"{name} {version}" for name, version in sorted(environment["packages"].items()))
        cpu = environment.get("cpu_model", "CPU model not recorded")
        device = environment["gpu"] or f"{environment['cpus']} CPUs ({cpu}), no GPU"
        parts += ["", f"Measured on {device} ({environment['platform']}, Python {environment['python']}; {packages})."]
        parts += [numerics]
    return parts


def report_markdown(
    study: StudyConfig,
    rows: list[dict],
    summaries: list[dict],
    shared: dict,
    plots: list[Path],
    environment: dict | None,
    fresh: list[dict],
    analysis: Analysis,
    curves: list[dict] | None = None,
    tuning: list[dict] | None = None,
    numerics: str = "",
    fit: list[str] | None = None,
) -> str:
    """report.md: what was compared and how it is read, accuracy with intervals (and the closed-book methods' `fit`
    and storage) and paired tests, power, data needs (`curves`), cost, freshness, the shared indexes, failures,
    plots, the command that re-runs each cell alone, and the machine."""
    parts = _opening(study) + budget_markdown(study, summaries, tuning or [])
    parts += _accuracy(study, summaries, analysis, fit or [])
    parts += data_needs_markdown(study, curves or [])
    parts += ["", "## Cost", "", *cost_reading(study), "", markdown_table(summaries, COST_COLUMNS)]
    parts += learning_rates_markdown(study, rows) + tuning_markdown(study, tuning or [])
    parts += knowledge_markdown(study, rows)
    parts += _freshness(study, fresh, analysis) + _shared_indexes(shared) + _closing(rows, plots, environment, numerics)
    return "\n".join(parts) + "\n"


def write_report(
    study: StudyConfig, study_dir: Path, records: list[dict], shared: dict, tracking: TrackingConfig
) -> dict:
    """Write results.csv, report.md and the plots into `study_dir`, log them to the study's W&B run; the summary."""
    rows = cell_rows(records)
    analysis = analyse(study, records)
    summaries = with_intervals(method_summaries(rows, study.methods), analysis)
    fresh = freshness_rows(rows, study.methods, shared) if study.freshness.enabled else []
    curves = data_needs(study, records)
    plots = write_plots(summaries, with_fresh_intervals(fresh, analysis), study_dir, curves)
    write_text_atomic(study_dir / "results.csv", results_csv(rows))
    write_text_atomic(study_dir / "comparisons.csv", comparisons_csv(analysis))
    environment = next((r["environment"] for r in records if r["status"] == "done"), None)
    tuning = tuning_records(study, study_dir)
    numerics = numerics_text(records, environment)
    markdown = report_markdown(
        study,
        rows,
        summaries,
        shared,
        plots,
        environment,
        fresh,
        analysis,
        curves,
        tuning,
        numerics,
        fit_markdown(study, records),
    )
    write_text_atomic(study_dir / "report.md", markdown)
    tables = {"cells": rows, "methods": summaries, "freshness": fresh, "data_needs": curves}
    _log_to_wandb(study, study_dir, tables, plots, tracking)
    return {
        "study": study.name,
        "study_dir": str(study_dir),
        "rows": summaries,
        "freshness": fresh,
        "failed": [row["id"] for row in rows if row["status"] != "done"],
        "cells": len(rows),
        "report": str(study_dir / "report.md"),
    }


def _log_to_wandb(
    study: StudyConfig, study_dir: Path, tables: dict[str, list[dict]], plots: list[Path], tracking: TrackingConfig
) -> None:
    """The study's own W&B run (grouped with its cells): the per-cell, per-method and freshness tables and the
    plots."""
    import wandb

    from rag_pet.tracking import start_run

    settings = TrackingConfig(**{**asdict(tracking), "group": tracking.group or study.name})
    run = start_run(settings, study_dir, f"{study.name}.report", {"study": asdict(study)}, job_type="study")
    try:
        for name, table_rows in tables.items():
            columns = sorted({key for row in table_rows for key in row})
            data = [[_loggable(row.get(column)) for column in columns] for row in table_rows]
            run.log({name: wandb.Table(columns=columns, data=data)})
        run.log({plot.stem: wandb.Image(str(plot)) for plot in plots})
    finally:
        run.finish()


def _loggable(value):
    return value if value is None or isinstance(value, (int, float, str, bool)) else str(value)


SUMMARY_COLUMNS = (
    ("method", "method", "{}"),
    ("EM unseen", "exact_match", "{:.3f}"),
    ("95% CI", "exact_match_ci", "{}"),
    ("F1 unseen", "f1", "{:.3f}"),
    ("95% CI", "f1_ci", "{}"),
    ("NLL unseen", "answer_nll", "{:.3f}"),
    ("95% CI", "answer_nll_ci", "{}"),
    ("F1 seen", "f1@validation_seen", "{:.3f}"),
    ("train s", "train_steps_wall_seconds", "{:.0f}"),
    ("FLOPs", "ready_flops", "{:.1e}"),
    ("p50 ms", "batch1_latency_p50_ms", "{:.0f}"),
    ("ms/token", "batch1_ms_per_token_p50", "{:.1f}"),
)


def format_study_summary(summary: dict) -> str:
    """What `jobs.compare` prints: the main numbers per method, the failed cells, and where the report is."""
    out = f"\nstudy {summary['study']}:\n" + format_columns(summary["rows"], SUMMARY_COLUMNS)
    if summary["failed"]:
        out += f"\nfailed cells (see the report): {', '.join(summary['failed'])}"
    return out + f"\nreport: {summary['report']}"
