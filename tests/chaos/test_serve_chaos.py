"""Chaos, bounded: a random Serve replica (Retriever, Generator or RagPipeline) killed every 10 s for 60 s under a
steady `/rag` load; fewer than 1 % of requests may fail, and each failure is listed."""

import random
import threading

import pytest
import ray

from rag_pet.data import load_qa_split
from rag_pet.evaluation.qa_eval import workload
from rag_pet.evaluation.runners import load_endpoint
from rag_pet.served_run import resolve_spec
from rag_pet.serving.launch import start_service, stop_service
from tests.conftest import compose_config
from tests.serving.test_http import free_port, tiny_rag

KILL_EVERY_S = 10.0
DURATION_S = 60.0
DEPLOYMENTS = ("Retriever", "Generator", "RagPipeline")


def replica_names(app: str) -> list[str]:
    """Serve names replica actors SERVE_REPLICA::<app>#<deployment>#<id>."""
    named = ray.util.list_named_actors(all_namespaces=True)
    prefixes = tuple(f"SERVE_REPLICA::{app}#{deployment}#" for deployment in DEPLOYMENTS)
    return sorted(
        actor["name"] for actor in named if actor["namespace"] == "serve" and actor["name"].startswith(prefixes)
    )


@pytest.mark.slow
def test_requests_survive_replicas_killed_every_ten_seconds(ray_local, tmp_path):
    replicas = [f"serve.{name}.num_replicas=2" for name in ("retriever", "generator", "ingress")]
    own_app = ["serve.app_name=chaos", "serve.route_prefix=/chaos"]  # other apps of the session may hold /
    overrides = [*tiny_rag(tmp_path), *replicas, f"serve.port={free_port()}", *own_app]
    config = compose_config(overrides, run_dir=tmp_path / "run")
    service = start_service(resolve_spec(config))
    examples = load_qa_split(config.data, "validation", 32)
    kills: list[str] = []
    stop = threading.Event()

    def killer() -> None:
        chooser = random.Random(0)
        while not stop.wait(KILL_EVERY_S):
            victim = chooser.choice(replica_names("chaos"))
            ray.kill(ray.get_actor(victim, namespace="serve"), no_restart=True)  # Serve starts a replacement
            kills.append(victim.split("#")[1])

    thread = threading.Thread(target=killer, daemon=True)
    try:
        thread.start()
        load = load_endpoint(service.url, workload(config.eval, examples, config.rag.k), 8, DURATION_S)
    finally:
        stop.set()
        thread.join()
        stop_service(service)
    total = len(load.latencies_s) + load.errors
    print(
        f"\nserve chaos: {len(kills)} replicas killed ({', '.join(kills)}); {total} requests,"
        f" {load.retried} sent twice, {load.errors} failed ({100 * load.errors / total:.2f} %): {load.failures}"
    )
    assert len(kills) >= DURATION_S // KILL_EVERY_S - 1 and total > 0
    assert load.errors < 0.01 * total, load.failures
