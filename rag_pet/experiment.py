"""Run one experiment end to end: evaluate before, train, evaluate after, track, and report."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import wandb

from rag_pet.config import RagPetConfig, to_dict
from rag_pet.data import QAExample, load_qa_split
from rag_pet.evaluation import evaluate_qa
from rag_pet.models import Generator, attach_adapter, build_generator
from rag_pet.storage import write_json_atomic
from rag_pet.tracking import log_history, start_run
from rag_pet.training import launch_training
from rag_pet.training.context import resolve_device

logger = logging.getLogger(__name__)


def load_trained_generator(config: RagPetConfig, model_dir: Path, base: Generator | None = None) -> Generator:
    """The generator with trained weights from `model_dir`: an adapter on the base model, or a full model."""
    if config.peft.method == "full":
        return build_generator(config.model, weights=model_dir)
    base = base or build_generator(config.model)
    return Generator(attach_adapter(base.model, model_dir), base.tokenizer, base.is_seq2seq)


def _evaluate(config: RagPetConfig, generator: Generator, label: str, examples: list[QAExample]) -> dict:
    out_dir = Path(config.run_dir) / "eval" / label.replace("-", "_")
    metrics = evaluate_qa(
        generator, examples, config.data, config.eval, resolve_device(config.trainer.use_gpu), out_dir
    )
    logger.info(
        "%s on %s (%d questions): EM %.3f F1 %.3f",
        label,
        config.data.eval_split,
        len(examples),
        metrics["exact_match"],
        metrics["f1"],
    )
    return metrics


def _eval_split(config: RagPetConfig) -> str:
    """The split results are reported on: BEIR qrels split for BEIR retrieval, else the QA split."""
    if config.eval.task == "retrieval" and config.index.corpus != "squad":
        return f"{config.index.corpus} {config.eval.retrieval_split}"
    return config.data.eval_split


@contextmanager
def _tracked_run(config: RagPetConfig, job_type: str) -> Iterator[tuple[object, list[dict], dict]]:
    """Open the W&B run; on success write `results.json` and log the result rows the block appended."""
    run_dir = Path(config.run_dir).resolve()
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
        write_json_atomic(run_dir / "results.json", summary)
        columns = sorted({key for row in rows for key in row})
        tracker.log({"results": wandb.Table(columns=columns, data=[[row.get(c) for c in columns] for row in rows])})
        for row in rows:
            tracker.summary.update({f"{row['method']}/{k}": v for k, v in row.items() if isinstance(v, (int, float))})
    finally:
        tracker.finish()


def run_experiment(config: RagPetConfig) -> dict:
    """Evaluate zero-shot (if asked), train (unless frozen), evaluate the result; return the result rows."""
    with _tracked_run(config, "train") as (tracker, rows, summary):
        examples = load_qa_split(config.data, config.data.eval_split, config.data.max_eval_examples)
        base = None
        if config.eval.before_training or config.peft.method == "frozen":
            base = build_generator(config.model)
            rows.append(
                {
                    "method": "zero-shot",
                    **_evaluate(config, base, "zero-shot", examples),
                    "trainable_params": 0,
                    "train_seconds": 0.0,
                }
            )
        if config.peft.method != "frozen":
            result = launch_training(config)
            log_history(tracker, result.state.history, "train")
            state = result.state
            row = {
                "method": config.peft.method,
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
                "model_dir": str(result.model_dir),
            }
            if config.eval.after_training:
                row.update(
                    _evaluate(
                        config, load_trained_generator(config, result.model_dir, base), config.peft.method, examples
                    )
                )
            rows.append(row)
    return summary


def evaluate_model(config: RagPetConfig) -> dict:
    """`eval.task=qa`: the base generator, or the trained weights in `eval.model_dir`, on `data.eval_split`.

    `eval.task=retrieval`: dense (sharded index), BM25 and hybrid retrieval on the eval questions' relevant passages.
    """
    with _tracked_run(config, "evaluate") as (_, rows, summary):
        if config.eval.task == "retrieval":
            from rag_pet.evaluation.retrieval_eval import evaluate_retrieval

            rows.extend(evaluate_retrieval(config, Path(config.run_dir) / "eval"))
        else:
            examples = load_qa_split(config.data, config.data.eval_split, config.data.max_eval_examples)
            if config.eval.model_dir:
                generator = load_trained_generator(config, Path(config.eval.model_dir).expanduser())
                method = config.peft.method
            else:
                generator, method = build_generator(config.model), "zero-shot"
            rows.append({"method": method, **_evaluate(config, generator, method, examples)})
    return summary
