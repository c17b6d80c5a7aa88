"""QA evaluation through Ray Data batch inference or a running Serve endpoint (`eval.runner`)."""

from __future__ import annotations

import os
from pathlib import Path

import ray

from rag_pet.config import RagPetConfig
from rag_pet.data.types import QAExample
from rag_pet.errors import RagPetConfigError
from rag_pet.evaluation.qa_eval import score_and_write, workload
from rag_pet.evaluation.runners import predict_from_endpoint, predict_with_ray_data
from rag_pet.serving.spec import resolve_index_version, spec_for_model_dir


def _token(config: RagPetConfig) -> str | None:
    name = config.eval.auth_token_env
    if name is None:
        return None
    if not os.environ.get(name):
        raise RagPetConfigError("eval.auth_token_env", name, "the name of a set environment variable holding the token")
    return os.environ[name]


def evaluate_with_runner(
    config: RagPetConfig, examples: list[QAExample], model_dir: Path | None, out_dir: Path
) -> dict[str, float]:
    """EM/F1, recall@1/5 (RAG), latency percentiles, throughput and errors of `eval.runner` on `examples`."""
    settings = config.eval
    work = workload(config, examples, rag=config.objective == "rag")
    if settings.runner == "endpoint":
        predictions = predict_from_endpoint(
            settings.endpoint_url, work, settings.concurrency, _token(config), settings.request_timeout_s
        )
    else:
        if not ray.is_initialized():
            ray.init()
        spec = spec_for_model_dir(config, model_dir)
        if work.k:
            spec.index_version = resolve_index_version(spec)
        predictions = predict_with_ray_data(
            spec, work, settings.concurrency, settings.cpus_per_predictor, settings.gpus_per_predictor
        )
    return score_and_write(examples, predictions, out_dir)
