"""Three ways to get answers for an eval set: in this process, Ray Data batch inference, or a Serve endpoint.

All three ask the same `Workload` and return the same `Predictions` (answers, retrieved ids, latencies), and all
three prompt, retrieve and decode with the same code (`rag_pet.inference.answering`), so greedy answers agree.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import httpx
import numpy as np
import ray

from rag_pet.devices import resolve_device
from rag_pet.inference.answering import RetrievedPassage
from rag_pet.inference.components import AdaptedAnswerer, build_passage_retriever
from rag_pet.inference.spec import BASE_ADAPTER, InferenceSpec

AnswerFn = Callable[[list[str], list[list[RetrievedPassage]] | None, int], list[str]]


@dataclass(frozen=True)
class Workload:
    """What to ask: the questions, passages per question (`k`; None: closed-book) and how deep to retrieve for
    recall (`depth` >= k), the adapter, the answer length and the batch size of the batch runners."""

    questions: list[str]
    k: int | None
    depth: int | None
    adapter: str | None
    max_new_tokens: int
    batch_size: int


@dataclass
class Predictions:
    """Answers ("" where a request failed), retrieved ids, and one latency per request (endpoint) or batch; for an
    endpoint, each failed request (`failures`: question and status) and how many were sent twice (`retried`).
    In process, `passages` holds the top-k passages each question was answered from (None closed-book)."""

    answers: list[str]
    retrieved: list[list[str]]
    latencies_s: list[float] = field(default_factory=list)
    wall_seconds: float = 0.0
    errors: int = 0
    failures: list[str] = field(default_factory=list)
    retried: int = 0
    passages: list[list[RetrievedPassage]] | None = None


def predict_in_process(retrieve: Callable | None, answer: AnswerFn, work: Workload) -> Predictions:
    """Batches of `work.batch_size` through `retrieve(questions, depth)` and `answer(questions, passages, tokens)`."""
    answers: list[str] = []
    retrieved: list[list[str]] = []
    read: list[list[RetrievedPassage]] = []
    latencies = []
    start = time.perf_counter()
    for first in range(0, len(work.questions), work.batch_size):
        batch = work.questions[first : first + work.batch_size]
        began = time.perf_counter()
        found = retrieve(batch, work.depth) if retrieve is not None and work.k else None
        passages = [hits[: work.k] for hits in found] if found is not None else None
        answers.extend(answer(batch, passages, work.max_new_tokens))
        latencies.append(time.perf_counter() - began)
        retrieved.extend([[hit.id for hit in hits] for hits in found] if found is not None else [[] for _ in batch])
        read.extend(passages or [])
    wall = time.perf_counter() - start
    return Predictions(answers, retrieved, latencies, wall, passages=read if read else None)


class BatchPredictor:
    """Ray Data `map_batches` callable: one served spec (retriever + generator + adapter) per predictor actor."""

    def __init__(self, args: dict, work: dict, use_gpu: bool):
        spec = InferenceSpec.from_args(args)
        self.work = Workload(**{**work, "questions": []})
        self.model = AdaptedAnswerer(spec, resolve_device(use_gpu))
        adapter = spec.resolve_adapter(self.work.adapter)
        self.slot = self.model.load(adapter) if adapter != BASE_ADAPTER else None
        self.retriever = build_passage_retriever(spec, spec.index_version) if self.work.k else None

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        questions = [str(q) for q in batch["question"]]
        began = time.perf_counter()
        retrieve = self.retriever.retrieve if self.retriever is not None else None
        result = predict_in_process(
            retrieve,
            lambda qs, ps, tokens: self.model.answer(self.slot, qs, ps, tokens),
            Workload(**{**asdict(self.work), "questions": questions, "batch_size": len(questions)}),
        )
        elapsed = time.perf_counter() - began
        return {
            "position": list(batch["position"]),
            "answer": result.answers,
            "retrieved": ["\t".join(ids) for ids in result.retrieved],
            "batch_seconds": [elapsed] * len(questions),
        }


def predict_with_ray_data(
    spec: InferenceSpec, work: Workload, concurrency: int, cpus_per_predictor: float, gpus_per_predictor: float = 0.0
) -> Predictions:
    """Batch inference over the questions with Ray Data: `concurrency` predictor actors, `work.batch_size` a batch."""
    start = time.perf_counter()
    dataset = ray.data.from_items([{"position": i, "question": q} for i, q in enumerate(work.questions)])
    rows = dataset.map_batches(
        BatchPredictor,
        fn_constructor_kwargs={
            "args": spec.to_args(),
            "work": {**asdict(work), "questions": []},
            "use_gpu": gpus_per_predictor > 0,
        },
        batch_size=work.batch_size,
        compute=ray.data.ActorPoolStrategy(size=concurrency),
        num_cpus=cpus_per_predictor,
        num_gpus=gpus_per_predictor,
    ).take_all()
    wall = time.perf_counter() - start
    rows.sort(key=lambda row: row["position"])
    batch_times = {}
    for row in rows:  # one latency per batch: rows of a batch share their batch's time
        batch_times.setdefault(row["position"] // work.batch_size, row["batch_seconds"])
    return Predictions(
        [row["answer"] for row in rows],
        [row["retrieved"].split("\t") if row["retrieved"] else [] for row in rows],
        list(batch_times.values()),
        wall,
    )


def request_body(question: str, work: Workload) -> dict:
    """The JSON body of one question: `/rag` with k passages (and `return_k` for recall), or `/generate`."""
    body = {"question": question, "max_new_tokens": work.max_new_tokens}
    if work.adapter:
        body["adapter"] = work.adapter
    if work.k:
        body.update(k=work.k, return_k=work.depth or work.k)
    return body


@dataclass
class _Client:
    """`concurrency` workers posting questions from a shared queue of (position, question); one latency each."""

    route: str
    work: Workload
    headers: dict[str, str]
    answers: list[str]
    retrieved: list[list[str]]
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    failures: list[str] = field(default_factory=list)
    retried: int = 0

    async def _answer(self, client: httpx.AsyncClient, question: str) -> httpx.Response:
        """One request, sent again once after a 5xx or a lost connection: Serve fails the requests a dying replica
        held (the ingress's own, which nothing behind the proxy retries), and answering is idempotent."""
        body = request_body(question, self.work)
        try:
            response = await client.post(self.route, json=body, headers=self.headers)
            if response.status_code < 500:
                return response
        except httpx.TransportError:
            pass
        self.retried += 1
        return await client.post(self.route, json=body, headers=self.headers)

    async def post(self, client: httpx.AsyncClient, position: int, question: str) -> None:
        began = time.perf_counter()
        try:
            response = await self._answer(client, question)
            response.raise_for_status()
        except httpx.HTTPError as err:
            self.errors += 1
            status = err.response.status_code if isinstance(err, httpx.HTTPStatusError) else type(err).__name__
            self.failures.append(f"question {position}: {status}")
            return
        self.latencies.append(time.perf_counter() - began)
        body = response.json()
        if self.work.k:
            self.answers[position] = body["results"][0]["answer"]
            self.retrieved[position] = [hit["id"] for hit in body["results"][0]["passages"]]
        else:
            self.answers[position] = body["answers"][0]

    async def run(self, concurrency: int, timeout_s: float, deadline: float | None) -> float:
        """Post until every question is asked once (`deadline` None) or, cycling through them, until `deadline`."""
        count = len(self.work.questions)
        positions = itertools.count() if deadline is not None else iter(range(count))
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(timeout=timeout_s, limits=limits) as client:

            async def worker() -> None:
                for position in positions:
                    if deadline is not None and time.perf_counter() >= deadline:
                        return
                    await self.post(client, position % count, self.work.questions[position % count])

            start = time.perf_counter()
            await asyncio.gather(*[worker() for _ in range(concurrency)])
            return time.perf_counter() - start


def _client(url: str, work: Workload, token: str | None) -> _Client:
    route = f"{url.rstrip('/')}/{'rag' if work.k else 'generate'}"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return _Client(route, work, headers, [""] * len(work.questions), [[] for _ in work.questions])


def predict_from_endpoint(
    url: str, work: Workload, concurrency: int, token: str | None = None, timeout_s: float = 120.0
) -> Predictions:
    """One HTTP request per question to a running service, at most `concurrency` in flight."""
    client = _client(url, work, token)
    wall = asyncio.run(client.run(concurrency, timeout_s, deadline=None))
    return Predictions(
        client.answers, client.retrieved, client.latencies, wall, client.errors, client.failures, client.retried
    )


def load_endpoint(
    url: str, work: Workload, concurrency: int, duration_s: float, token: str | None = None, timeout_s: float = 120.0
) -> Predictions:
    """A fixed-concurrency load for `duration_s`, cycling through the questions; latencies and errors of every
    request (the answers hold the last answer to each question)."""
    client = _client(url, work, token)
    wall = asyncio.run(client.run(concurrency, timeout_s, deadline=time.perf_counter() + duration_s))
    return Predictions(
        client.answers, client.retrieved, client.latencies, wall, client.errors, client.failures, client.retried
    )
