"""Check a training request against the cluster before Ray Train starts: Ray would otherwise wait for resources that
never come (its worker group start times out and the failure policy retries, forever)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from rag_pet.errors import ConfigError

logger = logging.getLogger(__name__)
POLL_S = 5.0


@dataclass(frozen=True)
class WorkerRequest:
    """What the run asks of the cluster: workers of `cpus` and `gpus` each, and CPUs for its own actors."""

    num_workers: int
    cpus: float
    gpus: float
    reserved_cpus: float = 0.0


def worker_slots(nodes: list[dict[str, float]], cpus: float, gpus: float) -> int:
    """How many workers of `cpus` CPUs and `gpus` GPUs fit on these nodes (a worker lives on one node)."""

    def fits(have: float, need: float) -> float:
        return math.floor(have / need + 1e-9) if need > 0 else math.inf

    return int(sum(min(fits(node.get("CPU", 0.0), cpus), fits(node.get("GPU", 0.0), gpus)) for node in nodes))


def shortfall(request: WorkerRequest, nodes: list[dict[str, float]]) -> ConfigError | None:
    """The error naming what does not fit, or None when the request fits the nodes."""
    total_cpus = sum(node.get("CPU", 0.0) for node in nodes)
    total_gpus = sum(node.get("GPU", 0.0) for node in nodes)
    cluster = f"the cluster has {total_cpus:g} CPUs and {total_gpus:g} GPUs on {len(nodes)} node(s)"
    if request.gpus and not total_gpus:
        return ConfigError("trainer.use_gpu", True, f"false: {cluster}")
    slots = worker_slots(nodes, request.cpus, request.gpus)
    if slots < request.num_workers:
        each = f"{request.cpus:g} CPU" + (f" and {request.gpus:g} GPU" if request.gpus else "")
        return ConfigError(
            "trainer.num_workers",
            request.num_workers,
            f"at most {slots}: each worker takes {each} and {cluster} (or lower trainer.cpus_per_worker)",
        )
    if request.num_workers * request.cpus + request.reserved_cpus > total_cpus + 1e-9:
        return ConfigError(
            "trainer.cpus_per_worker",
            request.cpus,
            f"at most {(total_cpus - request.reserved_cpus) / request.num_workers:g}: the run's index shards and"
            f" encoder take {request.reserved_cpus:g} CPUs besides the workers and {cluster}",
        )
    return None


def wait_for_resources(
    request: WorkerRequest, nodes: Callable[[], list[dict[str, float]]], wait_s: float, sleep=time.sleep
) -> None:
    """Return once the request fits the cluster; wait up to `wait_s` (an autoscaler adding nodes), logging what is
    missing, then raise the error that names the field to change."""
    deadline = time.monotonic() + wait_s
    while (error := shortfall(request, nodes())) is not None:
        left = deadline - time.monotonic()
        if left <= 0:
            if wait_s:
                raise ConfigError(
                    error.field, error.value, f"{error.allowed}; waited {wait_s:g} s (trainer.resource_wait_s)"
                )
            raise error
        logger.info("waiting up to %.0f s more for the cluster to offer what training needs: %s", left, error.allowed)
        sleep(min(POLL_S, left))
