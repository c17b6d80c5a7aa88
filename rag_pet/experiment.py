"""What each job runs, from the whole config: an experiment end to end (evaluate before, train, evaluate after, track,
report), an evaluation, an index build, a service. Below this module functions take config sections."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path

from rag_pet.config import RagPetConfig, to_dict
from rag_pet.data import QAExample, load_qa_split
from rag_pet.devices import resolve_device
from rag_pet.evaluation import evaluate_qa
from rag_pet.models import Generator, attach_adapter, build_generator
from rag_pet.models.rag import GENERATOR_DIR
from rag_pet.naming import safe_name
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

# What the train loop reports at every `trainer.log_every` steps that the trained row reports too (`loss`: the last
# report's training loss).
TRAINING_METRICS = ("loss", "tokens_per_s", "train_seconds", "peak_memory_bytes")
COST_METRICS = ("trainable_params", "train_steps", "train_wall_seconds", "train_tokens", "train_flops", "mfu")
QA_METRICS = ("exact_match", "f1", "answer_nll", "eval_seconds", "seconds_per_question")
RETRIEVER_METRICS = ("ndcg@10", "mrr@10", "recall@1", "recall@5", "recall@10", "recall@20", "recall@100")

logger = logging.getLogger(__name__)


def load_trained_generator(config: RagPetConfig, model_dir: Path, base: Generator | None = None) -> Generator:
    """The generator with trained weights from `model_dir`: an adapter on the base model, or a full model.

    A RAG run keeps its generator in `model_dir/generator` (and unchanged when `peft.method=frozen`)."""
    if config.objective == "rag":
        if config.peft.method == "frozen":
            return base or build_generator(config.model)
        model_dir = model_dir / GENERATOR_DIR
    if config.peft.method == "full":
        return build_generator(config.model, weights=model_dir)
    base = base or build_generator(config.model)
    return Generator(attach_adapter(base.model, model_dir), base.tokenizer, base.is_seq2seq)


def eval_folder(label: str) -> str:
    """The folder name of a method's evaluation: its label with every run of other characters than letters, digits,
    `.` and `_` made one `_` ("rag+lora" -> "rag_lora", "retriever (base)" -> "retriever_base")."""
    return safe_name(label, keep=".", empty="eval")


def _eval_dir(config: RagPetConfig, label: str) -> Path:
    return Path(config.run_dir) / "eval" / eval_folder(label)


def _evaluate(
    config: RagPetConfig, generator: Generator, label: str, examples: list[QAExample], model_dir: Path | None = None
) -> dict:
    """EM/F1 of the generator closed-book, or (`objective=rag`) of the RAG pipeline around it."""
    out_dir = _eval_dir(config, label)
    device = resolve_device(config.trainer.use_gpu)
    if config.objective == "rag":
        from rag_pet.evaluation.rag_pipeline import evaluate_rag_pipeline

        metrics = evaluate_rag_pipeline(
            generator,
            model_dir,
            examples,
            device,
            out_dir,
            source=config.index_source,
            data=config.data,
            rag=config.rag,
            settings=config.eval,
        )
    else:
        metrics = evaluate_qa(generator, config.data, config.eval, examples, device, out_dir)
    logger.info(
        "%s on %s (%d questions): EM %.3f F1 %.3f",
        label,
        config.data.eval_split,
        len(examples),
        metrics["exact_match"],
        metrics["f1"],
    )
    return metrics


SPLIT_METRICS = ("exact_match", "f1", "answer_nll", "retrieval_recall@1", "retrieval_recall@5")


def _evaluate_splits(
    config: RagPetConfig, generator: Generator, label: str, examples: list[QAExample], model_dir: Path | None = None
) -> dict:
    """`_evaluate` on `data.eval_split`, then on each of `eval.extra_splits` (metrics suffixed `@<split>`), the
    generator's loss on the general-text sample (`eval.forgetting_texts`) and the answer latency through a Serve
    endpoint (`eval.latency_via=endpoint`) when asked for."""
    metrics = _evaluate(config, generator, label, examples, model_dir)
    quiet = replace(config.eval, latency_questions=0)
    for split in config.eval.extra_splits:
        split_config = replace(config, data=replace(config.data, eval_split=split), eval=quiet)
        split_examples = load_qa_split(config.data, split, config.data.max_eval_examples)
        found = _evaluate(split_config, generator, f"{label}@{split}", split_examples, model_dir)
        metrics.update({f"{key}@{split}": found[key] for key in SPLIT_METRICS if key in found})
    if config.eval.forgetting_texts:
        metrics["general_text_loss"] = _general_text_loss(config, generator)
    if config.eval.latency_via == "endpoint" and config.eval.latency_questions:
        from rag_pet.inference.spec import spec_for_model_dir
        from rag_pet.serving.endpoint_latency import endpoint_latency

        k = config.rag.k if config.objective == "rag" else None
        metrics.update(endpoint_latency(spec_for_model_dir(config, model_dir), config.eval, examples, k))
    return metrics


def _general_text_loss(config: RagPetConfig, generator: Generator) -> float:
    from rag_pet.evaluation.forgetting import general_text_loss, general_texts

    device = resolve_device(config.trainer.use_gpu)
    return general_text_loss(generator, general_texts(config.eval.forgetting_texts), device, config.eval.precision)


def _eval_split(config: RagPetConfig) -> str:
    """The split results are reported on: BEIR qrels split for BEIR retrieval, else the QA split."""
    if config.eval.task == "retrieval" and config.corpus.name != "squad":
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
    if not _trains(config):
        return (), _evaluation_metrics(config)
    after = TRAINING_METRICS + COST_METRICS
    if config.eval.after_training:
        after += _evaluation_metrics(config)
    return TRAINING_METRICS, after


def _evaluation_metrics(config: RagPetConfig) -> tuple[str, ...]:
    if config.objective == "retriever":
        return RETRIEVER_METRICS
    per_split = ("exact_match", "f1", "answer_nll")
    if config.objective == "rag":
        per_split += ("retrieval_recall@1", "retrieval_recall@5")
    found = QA_METRICS + per_split[3:]
    found += tuple(f"{key}@{split}" for split in config.eval.extra_splits for key in per_split)
    if config.eval.forgetting_texts:
        found += ("general_text_loss", "forgetting")
    if config.eval.latency_questions:
        found += ("batch1_latency_p50_ms", "batch1_latency_p95_ms", "batch1_ttft_p50_ms", "batch1_ms_per_token_p50")
        if config.objective == "rag":
            found += ("batch1_retrieval_p50_ms",)
    return found


def method_label(config: RagPetConfig, trained: bool) -> str:
    """A results-table name: `zero-shot`/`lora`/... closed-book; `rag`, `rag+lora`, `rag+lora+query_full`, ..."""
    if config.objective == "retriever":
        return "retriever" if trained else "retriever (base)"
    if config.objective != "rag":
        return config.peft.method if trained else "zero-shot"
    if not trained:
        return "rag"
    parts = ["rag"] + ([config.peft.method] if config.peft.method != "frozen" else [])
    if config.rag.query_encoder != "frozen":
        parts.append(f"query_{config.rag.query_encoder}")
    if config.rag.doc_encoder == "trainable":
        parts.append("doc_reindexed")
    return "+".join(parts)


def _trains(config: RagPetConfig) -> bool:
    return config.objective == "retriever" or config.peft.method != "frozen" or config.rag.retriever_trains


def run_experiment(config: RagPetConfig, train_callbacks: Sequence[object] = (), job_type: str = "train") -> dict:
    """Evaluate before training (if asked, or if nothing trains), train, evaluate the result.

    Returns the summary: the result rows, and `metrics` (`run_metrics`: what a sweep optimises). `train_callbacks`
    are Ray Train callbacks of the training run (a sweep's `TuneReportCallback`)."""
    with _tracked_run(config, job_type) as (tracker, rows, summary):
        if config.objective == "retriever":
            examples: list[QAExample] = []
        else:
            examples = load_qa_split(config.data, config.data.eval_split, config.data.max_eval_examples)
        base = None
        if config.eval.before_training or not _trains(config):
            label = method_label(config, trained=False)
            if config.objective == "retriever":
                rows.extend(_evaluate_retriever(config, None, label))
            else:
                base = build_generator(config.model)
                row = {"method": label, **_evaluate_splits(config, base, label, examples)}
                if "general_text_loss" in row:
                    row["forgetting"] = 0.0
                rows.append({**row, "trainable_params": 0, "train_seconds": 0.0})
        base_loss = None
        if _trains(config) and config.eval.forgetting_texts and config.objective != "retriever":
            base = base or build_generator(config.model)
            base_loss = _general_text_loss(config, base)
        if _trains(config):
            result = _train(config, tracker, train_callbacks)
            state = result.state
            label = method_label(config, trained=True)
            row = {
                "method": label,
                "trainable_params": state.trainable_params,
                "total_params": state.total_params,
                "train_steps": state.step,
                "train_seconds": state.train_seconds,
                "train_wall_seconds": result.wall_seconds,
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
            if config.eval.after_training and config.objective == "retriever":
                row.update(_evaluate_retriever(config, result.model_dir, label)[0])
            elif config.eval.after_training:
                generator = load_trained_generator(config, result.model_dir, base)
                row.update(_evaluate_splits(config, generator, label, examples, result.model_dir))
                if base_loss is not None:
                    row.update(general_text_loss_before=base_loss, forgetting=row["general_text_loss"] - base_loss)
            rows.append(row)
            _log_artifacts(tracker, config, label, result.model_dir, row.get("index_version"))
    return summary


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
        result = launch_training(config, callbacks)
        log_history(tracker, result.state.history, "train")
        return result
    from rag_pet.training.report_stream import report_stream

    with report_stream(lambda record: log_record(tracker, record, "train")) as forwarder:
        return launch_training(config, [*callbacks, forwarder])


def _evaluate_retriever(config: RagPetConfig, model_dir: Path | None, label: str) -> list[dict]:
    """Dense retrieval metrics of the configured (or trained) bi-encoder on its own index version."""
    from rag_pet.evaluation.retrieval_eval import evaluate_retrieval

    rows = evaluate_retrieval(
        config.index_source,
        config.data,
        config.eval,
        _eval_dir(config, label),
        trained_dir=model_dir,
        methods=["dense"],
    )
    return [{**row, "method": label} for row in rows]


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
        else:
            examples = load_qa_split(config.data, config.data.eval_split, config.data.max_eval_examples)
            method = method_label(config, trained=model_dir is not None)
            if config.eval.runner != "in_process":
                rows.append({"method": method, "runner": config.eval.runner, **_evaluate_at_scale(config, examples)})
                return summary
            if model_dir:
                generator = load_trained_generator(config, model_dir)
            else:
                generator = build_generator(config.model)
            rows.append({"method": method, **_evaluate_splits(config, generator, method, examples, model_dir)})
    return summary


def _evaluate_at_scale(config: RagPetConfig, examples: list[QAExample]) -> dict:
    """`eval.runner=ray_data` (the configured or trained model, answered by a pool of Ray Data actors) or
    `eval.runner=endpoint` (a running service)."""
    from rag_pet.evaluation.at_scale import evaluate_with_runner
    from rag_pet.evaluation.qa_eval import workload
    from rag_pet.inference.spec import spec_for_model_dir

    model_dir = Path(config.eval.model_dir).expanduser() if config.eval.model_dir else None
    work = workload(config.eval, examples, config.rag.k if config.objective == "rag" else None)
    spec = spec_for_model_dir(config, model_dir) if config.eval.runner == "ray_data" else None
    return evaluate_with_runner(config.eval, work, examples, _eval_dir(config, config.eval.runner), spec)


def build_index(config: RagPetConfig) -> dict:
    """`jobs.index`: encode the configured corpus with the configured retriever into a new sharded index version."""
    from rag_pet.retrieval.build import build_index_version
    from rag_pet.runtime import ensure_ray

    ensure_ray()
    directory, manifest = build_index_version(config.index_source)
    return {"directory": str(directory), **asdict(manifest)}


def serve(config: RagPetConfig) -> dict:
    """`jobs.serve`: serve the run `serve.run_dir` names (or the configured model) until SIGINT/SIGTERM."""
    from rag_pet.inference.spec import resolve_spec
    from rag_pet.serving.launch import serve_until_stopped

    with run_directory_lock(config.run_dir):
        return serve_until_stopped(resolve_spec(config))
