"""QA evaluation through Ray Data batch inference or a running Serve endpoint (`eval.runner`)."""

from __future__ import annotations

import os
from pathlib import Path

from rag_pet.config import EvalConfig
from rag_pet.data.types import QAExample
from rag_pet.errors import ConfigError
from rag_pet.evaluation.qa_eval import score_and_write
from rag_pet.evaluation.runners import Workload, predict_from_endpoint, predict_with_ray_data
from rag_pet.inference.spec import InferenceSpec, resolve_index_version
from rag_pet.runtime import ensure_ray


def _token(settings: EvalConfig) -> str | None:
    name = settings.auth_token_env
    if name is None:
        return None
    if not os.environ.get(name):
        raise ConfigError("eval.auth_token_env", name, "the name of a set environment variable holding the token")
    return os.environ[name]


def evaluate_with_runner(
    settings: EvalConfig, work: Workload, examples: list[QAExample], out_dir: Path, spec: InferenceSpec | None = None
) -> dict[str, float]:
    """EM/F1, recall@1/5 (RAG), latency percentiles, throughput and errors of `eval.runner` on `examples`; the
    Ray Data runner answers with `spec`, the endpoint runner with the service at `eval.endpoint_url`."""
    if settings.runner == "endpoint":
        predictions = predict_from_endpoint(
            settings.endpoint_url, work, settings.concurrency, _token(settings), settings.request_timeout_s
        )
    else:
        ensure_ray()
        if work.k:
            spec.index_version = resolve_index_version(spec)
        predictions = predict_with_ray_data(
            spec, work, settings.concurrency, settings.cpus_per_predictor, settings.gpus_per_predictor
        )
    return score_and_write(examples, predictions, out_dir)
