"""Train-loop reports as they happen, in the process that launched the Ray Train run.

Ray Train calls its callbacks in the controller actor, not where the run was launched (where the W&B run is open).
A `ReportForwarder` puts rank 0's report on a Ray queue; a thread here hands each one to `on_report`. So a run's
curves reach W&B while it trains, and a sweep trial that ASHA stops keeps the curve it had."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ray.exceptions import RayActorError
from ray.train.v2.api.callback import UserCallback
from ray.util.queue import Empty, Queue

from rag_pet.runtime import ensure_ray


class ReportForwarder(UserCallback):
    """Puts the first worker's metrics of every report on `queue` (the loop reports reduced, identical metrics)."""

    def __init__(self, reports: Queue):
        self.reports = reports

    def after_report(self, run_context, metrics: list[dict[str, Any]], checkpoint) -> None:
        self.reports.put(dict(metrics[0]))


@contextmanager
def report_stream(on_report: Callable[[dict[str, Any]], None]) -> Iterator[ReportForwarder]:
    """A callback for `RunConfig(callbacks=...)`; every report it forwards reaches `on_report` in this process, in
    order, before the block exits. Joins or starts Ray first (`ensure_ray`): the queue's actor would otherwise start
    a default local instance, whose workers cannot find their own state API beside another local instance."""
    ensure_ray()
    reports = Queue(actor_options={"num_cpus": 0})
    done = threading.Event()

    def drain(block: bool) -> None:
        while True:
            try:
                on_report(reports.get(block=block, timeout=0.5 if block else None))
            except (Empty, queue.Empty):
                return

    def follow() -> None:
        try:
            while not done.is_set():
                drain(block=True)
        except RayActorError:  # the queue went with a stopped sweep trial's placement group; so does this process
            return

    thread = threading.Thread(target=follow, name="train-report-stream", daemon=True)
    thread.start()
    try:
        yield ReportForwarder(reports)
    finally:
        done.set()
        thread.join()
        drain(block=False)
        reports.shutdown()
