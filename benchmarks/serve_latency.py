"""Ray Serve endpoints of a tiny model: HTTP overhead, @serve.batch throughput, a fixed-concurrency load with and
without a replica killed mid-way. Every ratio is against a baseline measured in the same run.

python benchmarks/serve_latency.py [--requests 200] [--load-seconds 60]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import httpx
import ray
import torch
from ray import serve

from rag_pet.data import load_qa_split
from rag_pet.evaluation.latency import latency_summary
from rag_pet.evaluation.qa_eval import workload
from rag_pet.evaluation.runners import load_endpoint, predict_from_endpoint
from rag_pet.experiment_config import compose_experiment
from rag_pet.inference.components import AdaptedAnswerer
from rag_pet.runtime import ensure_ray
from rag_pet.served_run import resolve_spec
from rag_pet.serving.launch import start_service, stop_service

CONF = Path(__file__).resolve().parents[1] / "conf"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def config(root: Path, port: int, *overrides: str):
    return compose_experiment(
        CONF,
        [
            "debug=tiny",
            "objective=rag",
            "retriever=tiny",
            "corpus.max_passages=256",
            f"index.storage_path={root / 'indexes'}",
            "index.shard_cpus=0.1",
            "index.encode_cpus=1",
            "rag.k=2",
            "rag.passage_max_tokens=48",
            f"serve.port={port}",
            "serve.retriever.num_cpus=0.1",
            "serve.generator.num_cpus=0.1",
            "serve.ingress.num_cpus=0.1",
            f"run_dir={root / 'run'}",
            *overrides,
        ],
    )


def p50_ms(latencies: list[float]) -> float:
    return statistics.median(latencies) * 1000


def kill_one_generator_replica(app: str) -> str:
    """SIGKILL-like `ray.kill` of one Generator replica actor (Serve names them SERVE_REPLICA::<app>#Generator#id)."""
    names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["namespace"] == "serve"]
    victim = sorted(n for n in names if n.startswith(f"SERVE_REPLICA::{app}#Generator#"))[0]
    ray.kill(ray.get_actor(victim, namespace="serve"), no_restart=True)
    return victim


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200, help="sequential requests for the latency figures")
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight for the throughput figures")
    parser.add_argument("--throughput-requests", type=int, default=640)
    parser.add_argument(
        "--throughput-new-tokens",
        type=int,
        default=64,
        help="answer length for the throughput figures: long enough that generation, not per-request overhead, is "
        "the work batching can share",
    )
    parser.add_argument("--load-seconds", type=float, default=60.0)
    parser.add_argument("--load-concurrency", type=int, default=16)
    args = parser.parse_args()
    root, port = Path(tempfile.mkdtemp(prefix="rag_pet_serve_bench_")), free_port()
    ensure_ray(num_cpus=8, include_dashboard=False, log_to_driver=False)
    base = config(
        root, port, f"eval.max_new_tokens={args.new_tokens}", f"serve.generator.max_batch_size={args.concurrency}"
    )
    examples = load_qa_split(base.data, "validation", 200)
    closed_book = replace(workload(base.eval, examples, None), batch_size=1)
    questions = closed_book.questions

    service = start_service(resolve_spec(base))
    direct = AdaptedAnswerer(resolve_spec(base), torch.device("cpu"))
    direct_latencies, http_latencies = [], []
    with httpx.Client(base_url=service.url, timeout=60) as client:
        for number in range(args.requests):  # interleaved, so both see the same background load
            question = questions[number % len(questions)]
            began = time.perf_counter()
            direct.answer(None, [question], None, args.new_tokens)
            direct_latencies.append(time.perf_counter() - began)
            began = time.perf_counter()
            client.post("/generate", json={"question": question, "max_new_tokens": args.new_tokens}).raise_for_status()
            http_latencies.append(time.perf_counter() - began)
    health = []
    with httpx.Client(base_url=service.url, timeout=60) as client:
        for _ in range(args.requests):
            began = time.perf_counter()
            client.get("/healthz").raise_for_status()
            health.append(time.perf_counter() - began)
    http_p50, direct_p50 = p50_ms(http_latencies), p50_ms(direct_latencies)
    print(f"/generate p50 over HTTP {http_p50:.2f} ms vs direct in-process call {direct_p50:.2f} ms:")
    print(f"  +{http_p50 - direct_p50:.2f} ms added, {http_p50 / direct_p50:.2f}x")
    print(f"  (of which proxy + ingress alone, GET /healthz p50: {p50_ms(health):.2f} ms)")

    many = replace(
        closed_book,
        questions=(questions * 8)[: args.throughput_requests],
        max_new_tokens=args.throughput_new_tokens,
    )
    batched = predict_from_endpoint(service.url, many, concurrency=args.concurrency)
    stop_service(service)
    unbatched_config = config(root, port, "serve.generator.max_batch_size=1")
    service = start_service(resolve_spec(unbatched_config))
    unbatched = predict_from_endpoint(service.url, many, concurrency=args.concurrency)
    stop_service(service)
    batched_qps = len(many.questions) / batched.wall_seconds
    unbatched_qps = len(many.questions) / unbatched.wall_seconds
    print(
        f"throughput at {args.concurrency} concurrent /generate ({args.throughput_new_tokens} new tokens),"
        f" @serve.batch(max_batch_size={args.concurrency}):"
    )
    print(f"  {batched_qps:.1f} req/s vs")
    print(f"  max_batch_size=1 {unbatched_qps:.1f} req/s: {batched_qps / unbatched_qps:.2f}x")
    print(f"  errors {batched.errors} / {unbatched.errors}")

    two = config(root, port, f"eval.max_new_tokens={args.new_tokens}", "serve.generator.num_replicas=2")
    service = start_service(resolve_spec(two))
    rag = workload(two.eval, examples, two.rag.k)
    for label, kill in (("steady", False), ("one Generator replica killed mid-way", True)):
        killed: list[str] = []
        if kill:
            threading.Timer(
                args.load_seconds / 2, lambda out=killed: out.append(kill_one_generator_replica("rag_pet"))
            ).start()
        load = load_endpoint(service.url, rag, args.load_concurrency, args.load_seconds)
        total = len(load.latencies_s) + load.errors
        stats = latency_summary(load.latencies_s, len(load.latencies_s), load.wall_seconds)
        print(
            f"{args.load_seconds:.0f} s /rag load, concurrency {args.load_concurrency}, 2 Generator replicas, {label}:"
            f" {total} requests, {load.errors} failed ({100 * load.errors / max(total, 1):.2f} %),"
            f" {stats['throughput_qps']:.1f} req/s, p50 {stats['latency_p50_ms']:.1f} ms,"
            f" p95 {stats['latency_p95_ms']:.1f} ms, p99 {stats['latency_p99_ms']:.1f} ms"
            + (f"; killed {killed[0]}" if killed else "")
        )
    stop_service(service)
    serve.shutdown()


if __name__ == "__main__":
    main()
