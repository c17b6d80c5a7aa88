"""What each job runs, from the whole config: an experiment end to end (evaluate before, train, evaluate after, track,
report), an evaluation, an index build, a service. Below this module functions take config sections."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from functools import cache
from pathlib import Path

from rag_pet.config import ARTICLE_SOURCES, RagPetConfig, to_dict
from rag_pet.console import Progress, console_logger
from rag_pet.evaluation.metric_names import COST_METRICS, TRAINING_METRICS
from rag_pet.evaluation.steps import eval_dir, eval_examples
from rag_pet.models import Generator, build_generator
from rag_pet.objectives import objective_of
from rag_pet.run_lock import run_directory_lock
from rag_pet.storage import write_json_atomic
from rag_pet.tracking import (
    log_file_artifact,
    log_history,
    log_model_artifact,
    log_record,
    log_result_rows,
    start_run,
)
from rag_pet.training.launcher import TrainingResult, launch_training

logger = logging.getLogger(__name__)


def _eval_split(config: RagPetConfig) -> str:
    """The split results are reported on: BEIR qrels split for BEIR retrieval, else the QA split."""
    if config.eval.task == "retrieval" and config.corpus.name not in ARTICLE_SOURCES:
        return f"{config.corpus.name} {config.eval.retrieval_split}"
    return config.data.eval_split


@contextmanager
def _tracked_run(config: RagPetConfig, job_type: str) -> Iterator[tuple[object, list[dict], dict]]:
    """Hold the run directory, open the W&B run; on success write `results.json` and log the rows the block
    appended."""
    run_dir = Path(config.run_dir).resolve()
    with run_directory_lock(run_dir):
        write_json_atomic(run_dir / "config.json", to_dict(config))
        tracker = start_run(config.tracking, run_dir, config.experiment_name, to_dict(config), job_type=job_type)
        rows: list[dict] = []
        summary = {
            "experiment": config.experiment_name,
            "run_dir": str(run_dir),
            "eval_split": _eval_split(config),
            "rows": rows,
        }
        try:
            yield tracker, rows, summary
            summary["metrics"] = run_metrics(rows)
            write_json_atomic(run_dir / "results.json", summary)
            log_result_rows(tracker, rows)
        finally:
            tracker.finish()


def run_metrics(rows: list[dict]) -> dict[str, float]:
    """The numbers a sweep optimises: those of the last row (the trained model's, or the only one's), booleans and
    text left out."""
    return {key: value for key, value in rows[-1].items() if _is_number(value)} if rows else {}


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def reported_metrics(config: RagPetConfig) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What `run_experiment(config)` reports: (while training, at every `trainer.log_every` steps; after training,
    in its `metrics`). The training metrics listed are in both."""
    objective = objective_of(config)
    if not objective.trains(config):
        return (), objective.evaluation_metrics(config)
    after = TRAINING_METRICS + COST_METRICS
    if config.eval.after_training:
        after += objective.evaluation_metrics(config)
    return TRAINING_METRICS, after


def method_label(config: RagPetConfig, trained: bool) -> str:
    """A results-table name: `zero-shot`/`lora`/... closed-book; `rag`, `rag+lora`, `rag+lora+query_full`, ..."""
    return objective_of(config).label(config, trained)


def run_experiment(config: RagPetConfig, train_callbacks: Sequence[object] = (), job_type: str = "train") -> dict:
    """Evaluate before training (if asked, or if nothing trains), train, evaluate the result.

    Returns the summary: the result rows, and `metrics` (`run_metrics`: what a sweep optimises). `train_callbacks`
    are Ray Train callbacks of the training run (a sweep's `TuneReportCallback`)."""
    objective, base = objective_of(config), _base_generator(config)
    trains = objective.trains(config)
    plan = f"{config.trainer.max_steps} training steps" if trains else "evaluation only"
    console_logger().info(
        "%s: %s, %s, in %s", config.experiment_name, objective.label(config, trains), plan, config.run_dir
    )
    with _tracked_run(config, job_type) as (tracker, rows, summary):
        if config.eval.before_training or not trains:
            label = objective.label(config, trained=False)
            row = {"method": label, **objective.evaluate(config, label, None, base)}
            if "general_text_loss" in row:
                row["forgetting"] = 0.0  # the base model measured against itself
            rows.append({**row, "trainable_params": 0, "train_seconds": 0.0})
        if trains:
            text_loss_before = objective.forgetting_baseline(config, base)
            result = _train(config, tracker, train_callbacks)
            label = objective.label(config, trained=True)
            row = {"method": label, **_training_row(result)}
            if config.eval.after_training:
                row.update(objective.evaluate(config, label, result.model_dir, base))
                if text_loss_before is not None:
                    row.update(
                        general_text_loss_before=text_loss_before,
                        forgetting=row["general_text_loss"] - text_loss_before,
                    )
            rows.append(row)
            _log_artifacts(tracker, config, label, result.model_dir, row.get("index_version"))
    return summary


def _base_generator(config: RagPetConfig) -> Callable[[], Generator]:
    """The configured generator, built on first use and shared by the run's evaluations."""
    return cache(lambda: build_generator(config.model))


def _training_row(result: TrainingResult) -> dict:
    """What training measured: parameters, steps, time, tokens, FLOPs, memory, the last loss."""
    state = result.state
    row = {
        "trainable_params": state.trainable_params,
        "total_params": state.total_params,
        "train_steps": state.step,
        "train_seconds": state.train_seconds,
        "train_wall_seconds": result.wall_seconds,
        "train_steps_wall_seconds": state.wall_seconds,
        "train_tokens": state.tokens,
        "tokens_per_s": state.tokens / state.train_seconds if state.train_seconds else None,
        "train_flops": state.flops,
        "peak_memory_bytes": state.peak_memory_bytes,
        "train_memory_bytes": state.train_memory_bytes,
        "mfu": state.mfu,
        "precision": state.precision,
        "model_dir": str(result.model_dir),
    }
    if state.history:
        row["loss"] = state.history[-1]["loss"]
    if "index_version" in state.task_fields:
        row["index_version"] = state.task_fields["index_version"]
    return row


def _log_artifacts(tracker, config: RagPetConfig, label: str, model_dir: Path, index_version: int | None) -> None:
    """The trained weights (an adapter is copied, full weights referenced) and, for RAG, the index version's
    manifest, as artifacts of the run."""
    if config.tracking.mode == "disabled":
        return
    name = f"{config.experiment_name}-{label}"
    log_model_artifact(tracker, name, model_dir, copy=config.peft.method != "full")
    if index_version is not None:
        from rag_pet.retrieval.store import MANIFEST, version_dir

        source = config.index_source
        directory = version_dir(source.root, source.name, index_version)
        log_file_artifact(tracker, f"{name}-index", directory / MANIFEST, kind="index")


def _train(config: RagPetConfig, tracker, callbacks: Sequence[object]) -> TrainingResult:
    """Launch training; under Ray its reports reach W&B as they happen, a local run's are logged at the end."""
    if config.trainer.launcher != "ray":
        result = launch_training(config, objective_of(config), callbacks)
        log_history(tracker, result.state.history, "train")
        return result
    from rag_pet.training.report_stream import report_stream

    progress = Progress("step", config.trainer.max_steps)

    def on_report(record: dict) -> None:
        log_record(tracker, record, "train")
        progress.update(int(record["step"]), f"loss {record['loss']:.4f}")

    with report_stream(on_report) as forwarder:
        return launch_training(config, objective_of(config), [*callbacks, forwarder])


def evaluate_model(config: RagPetConfig) -> dict:
    """`eval.task=qa`: the base generator, or the trained weights in `eval.model_dir`, on `data.eval_split`.

    `eval.task=retrieval`: dense (sharded index), BM25 and hybrid retrieval on the eval questions' relevant passages.
    With `objective=rag`, QA runs the RAG pipeline; a trained retriever's towers in `eval.model_dir` are used too.
    """
    model_dir = Path(config.eval.model_dir).expanduser() if config.eval.model_dir else None
    with _tracked_run(config, "evaluate") as (_, rows, summary):
        if config.eval.task == "retrieval":
            from rag_pet.evaluation.retrieval_eval import evaluate_retrieval

            out_dir = Path(config.run_dir) / "eval"
            rows.extend(evaluate_retrieval(config.index_source, config.data, config.eval, out_dir, model_dir))
        elif config.eval.runner != "in_process":
            method = method_label(config, trained=model_dir is not None)
            rows.append({"method": method, "runner": config.eval.runner, **_evaluate_at_scale(config)})
        else:
            method = method_label(config, trained=model_dir is not None)
            evaluated = objective_of(config).evaluate(config, method, model_dir, _base_generator(config))
            rows.append({"method": method, **evaluated})
    return summary


def _evaluate_at_scale(config: RagPetConfig) -> dict:
    """`eval.runner=ray_data` (the configured or trained model, answered by a pool of Ray Data actors) or
    `eval.runner=endpoint` (a running service)."""
    from rag_pet.evaluation.at_scale import evaluate_with_runner
    from rag_pet.evaluation.qa_eval import workload
    from rag_pet.served_run import run_spec

    model_dir = Path(config.eval.model_dir).expanduser() if config.eval.model_dir else None
    examples = eval_examples(config)
    work = workload(config.eval, examples, objective_of(config).answer_k(config))
    spec = run_spec(config, model_dir) if config.eval.runner == "ray_data" else None
    return evaluate_with_runner(config.eval, work, examples, eval_dir(config, config.eval.runner), spec)


def build_index(config: RagPetConfig) -> dict:
    """`jobs.index`: encode the configured corpus with the configured retriever into a new sharded index version."""
    from rag_pet.retrieval.build import build_index_version
    from rag_pet.runtime import ensure_ray

    ensure_ray()
    directory, manifest = build_index_version(config.index_source)
    return {"directory": str(directory), **asdict(manifest)}


def serve(config: RagPetConfig) -> dict:
    """`jobs.serve`: serve the run `serve.run_dir` names (or the configured model) until SIGINT/SIGTERM."""
    from rag_pet.served_run import resolve_spec
    from rag_pet.serving.launch import serve_until_stopped

    with run_directory_lock(config.run_dir):
        return serve_until_stopped(resolve_spec(config))
