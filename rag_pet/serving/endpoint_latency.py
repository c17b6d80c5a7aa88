"""Answer latency as a user of the research endpoint sees it: questions sent one at a time over HTTP to a Ray Serve
application of the model, started for the measurement and stopped after."""

from __future__ import annotations

import os
from dataclasses import replace

from rag_pet.config import EvalConfig
from rag_pet.data import QAExample
from rag_pet.evaluation.latency import latency_summary
from rag_pet.evaluation.qa_eval import workload
from rag_pet.evaluation.runners import predict_from_endpoint
from rag_pet.inference.spec import InferenceSpec
from rag_pet.serving.launch import start_service, stop_service


def endpoint_latency(
    spec: InferenceSpec, settings: EvalConfig, examples: list[QAExample], k: int | None
) -> dict[str, float]:
    """p50/p95 milliseconds of the first `settings.latency_questions` questions, each sent alone (with `k` passages,
    or closed-book) to a service of `spec`; requests that failed are counted in `endpoint_errors`."""
    service = start_service(spec)
    try:
        work = replace(workload(settings, examples[: settings.latency_questions], k), batch_size=1)
        token_env = spec.config.serve.auth_token_env
        token = os.environ.get(token_env) if token_env else None
        timed = predict_from_endpoint(service.url, work, 1, token, settings.request_timeout_s)
    finally:
        stop_service(service)
    summary = latency_summary(timed.latencies_s, len(work.questions), timed.wall_seconds)
    return {
        "endpoint_latency_p50_ms": summary.get("latency_p50_ms"),
        "endpoint_latency_p95_ms": summary.get("latency_p95_ms"),
        "endpoint_errors": timed.errors,
    }
