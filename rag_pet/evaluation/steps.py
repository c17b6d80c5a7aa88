"""The evaluation steps of a run, from the whole config: a generator's answers on the eval split and the extra
splits, and its loss on general text (forgetting)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from rag_pet.config import RagPetConfig
from rag_pet.data import QAExample, load_qa_split
from rag_pet.devices import resolve_device
from rag_pet.evaluation.metric_names import (
    BATCH1_LATENCY_METRICS,
    BATCH1_RETRIEVAL_METRICS,
    FORGETTING_METRICS,
    QA_METRICS,
    RECALL_METRICS,
    SPLIT_METRICS,
)
from rag_pet.models import Generator
from rag_pet.naming import safe_name

# One split's answers: (config, generator, examples, out_dir, model_dir) -> metrics.
AnswerSplit = Callable[[RagPetConfig, Generator, list[QAExample], Path, Path | None], dict]

logger = logging.getLogger(__name__)


def eval_folder(label: str) -> str:
    """The folder name of a method's evaluation: its label with every run of other characters than letters, digits,
    `.` and `_` made one `_` ("rag+lora" -> "rag_lora", "retriever (base)" -> "retriever_base")."""
    return safe_name(label, keep=".", empty="eval")


def eval_dir(config: RagPetConfig, label: str) -> Path:
    """Where the evaluation of the method called `label` writes its files."""
    return Path(config.run_dir) / "eval" / eval_folder(label)


def eval_examples(config: RagPetConfig) -> list[QAExample]:
    """The questions of `data.eval_split` (at most `data.max_eval_examples`)."""
    return load_qa_split(config.data, config.data.eval_split, config.data.max_eval_examples)


def evaluate_splits(
    config: RagPetConfig, answer_split: AnswerSplit, generator: Generator, label: str, model_dir: Path | None = None
) -> dict:
    """`answer_split` on `data.eval_split`, then on each of `eval.extra_splits` (metrics suffixed `@<split>`), and
    the generator's loss on the general-text sample (`eval.forgetting_texts`) when asked for."""
    started = time.perf_counter()
    examples = eval_examples(config)
    metrics = _answer_and_log(config, answer_split, generator, label, examples, model_dir)
    quiet = replace(config.eval, latency_questions=0)
    for split in config.eval.extra_splits:
        split_config = replace(config, data=replace(config.data, eval_split=split), eval=quiet)
        split_examples = load_qa_split(config.data, split, config.data.max_eval_examples)
        found = _answer_and_log(split_config, answer_split, generator, f"{label}@{split}", split_examples, model_dir)
        metrics.update({f"{key}@{split}": found[key] for key in SPLIT_METRICS + RECALL_METRICS if key in found})
    if config.eval.forgetting_texts:
        metrics["general_text_loss"] = general_text_loss(config, generator)
    metrics["evaluation_seconds"] = time.perf_counter() - started
    return metrics


def _answer_and_log(
    config: RagPetConfig,
    answer_split: AnswerSplit,
    generator: Generator,
    label: str,
    examples: list[QAExample],
    model_dir: Path | None,
) -> dict:
    metrics = answer_split(config, generator, examples, eval_dir(config, label), model_dir)
    split, em, f1 = config.data.eval_split, metrics["exact_match"], metrics["f1"]
    logger.info("%s on %s (%d questions): EM %.3f F1 %.3f", label, split, len(examples), em, f1)
    return metrics


def general_text_loss(config: RagPetConfig, generator: Generator) -> float:
    """The generator's loss on the general-text sample `eval.forgetting_texts` names."""
    from rag_pet.evaluation.forgetting import general_text_loss as loss
    from rag_pet.evaluation.forgetting import general_texts

    device = resolve_device(config.trainer.use_gpu)
    return loss(generator, general_texts(config.eval.forgetting_texts), device, config.eval.precision)


def answer_metrics(config: RagPetConfig, reads_passages: bool) -> tuple[str, ...]:
    """What `evaluate_splits` reports for a generator answering closed-book or (`reads_passages`) from passages."""
    per_split = SPLIT_METRICS + (RECALL_METRICS if reads_passages else ())
    found = QA_METRICS + per_split[len(SPLIT_METRICS) :]
    found += tuple(f"{key}@{split}" for split in config.eval.extra_splits for key in per_split)
    if config.eval.forgetting_texts:
        found += FORGETTING_METRICS
    if config.eval.latency_questions:
        found += BATCH1_LATENCY_METRICS + (BATCH1_RETRIEVAL_METRICS if reads_passages else ())
    return found
