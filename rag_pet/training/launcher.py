"""Start training: standalone in this process, or on Ray Train workers with `TorchTrainer`."""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag_pet.config import RagPetConfig, to_dict
from rag_pet.devices import resolve_device
from rag_pet.disk import OutOfDiskError, free_bytes, out_of_disk
from rag_pet.errors import ConfigError
from rag_pet.runtime import ensure_ray
from rag_pet.storage import atomic_directory
from rag_pet.training.checkpoint import MODEL_DIR, TrainState, read_state
from rag_pet.training.context import LocalContext
from rag_pet.training.export import export_deepspeed_checkpoint
from rag_pet.training.resources import WorkerRequest, wait_for_resources
from rag_pet.training.tasks import TrainingObjective, run_train_loop, train_loop_per_worker

logger = logging.getLogger(__name__)
FINAL_CHECKPOINT = "final_checkpoint"
CHECKPOINTS_DIR = "checkpoints"  # under the run dir, unless trainer.storage_path says elsewhere


@dataclass
class TrainingResult:
    """Where the final trained weights are, the progress record, and the wall time of the launch."""

    checkpoint_dir: Path
    state: TrainState
    wall_seconds: float

    @property
    def model_dir(self) -> Path:
        """The adapter (PEFT) or full model saved with `save_pretrained`."""
        return self.checkpoint_dir / MODEL_DIR


def storage_location(config: RagPetConfig) -> str:
    """Where checkpoints go: `trainer.storage_path` (a local path or a URI such as s3://) or `<run_dir>/checkpoints`."""
    location = config.trainer.storage_path or str(Path(config.run_dir) / CHECKPOINTS_DIR)
    return location if "://" in location else str(Path(location).expanduser().resolve())


def cpus_per_worker(requested: float | None, num_workers: int, node_cpus: list[float], reserved: float = 0.0) -> float:
    """The CPU reservation of a worker: as configured, or (None) an equal share of the cluster, at most one node.

    `reserved` CPUs are left for actors the workers need (index shards, a re-indexing encoder) and the workers share
    the rest, fractions included (the worker computes on the CPUs it holds rounded up); a share may fall below one
    CPU, since otherwise those actors could never be placed and the workers would wait forever."""
    if requested is not None:
        return requested
    if not reserved:
        return float(max(1, min(int(sum(node_cpus) // num_workers), int(max(node_cpus, default=1)))))
    share = max((sum(node_cpus) - reserved) / num_workers, 0.1)
    return min(share, max(node_cpus, default=1))


def _alive_nodes() -> list[dict[str, float]]:
    import ray

    return [node["Resources"] for node in ray.nodes() if node["Alive"]]


def worker_request(config: RagPetConfig, objective: TrainingObjective) -> WorkerRequest:
    """What the run's Ray Train workers (and its objective's own actors) take of the cluster Ray is connected to."""
    trainer, reserved = config.trainer, objective.reserved_cpus(config)
    node_cpus = [node.get("CPU", 0.0) for node in _alive_nodes()]
    cpus = cpus_per_worker(trainer.cpus_per_worker, trainer.num_workers, node_cpus, reserved)
    return WorkerRequest(trainer.num_workers, cpus, 1.0 if trainer.use_gpu else 0.0, reserved)


def _run_with_ray(
    config: RagPetConfig, objective: TrainingObjective, storage: str, callbacks: Sequence[object]
) -> Path:
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    ensure_ray()
    trainer = config.trainer
    scaling = ScalingConfig(
        num_workers=trainer.num_workers,
        use_gpu=trainer.use_gpu,
        resources_per_worker={"CPU": worker_request(config, objective).cpus},
    )
    # Failed workers are restarted by `_fit_with_restarts`, not by FailureConfig: Ray Train retries every worker
    # failure and its failure policy is not public, but out of disk space would fail the same way each time.
    # Preemptions stay Ray Train's to retry (they count against `max_preemption_failures`, not `max_failures`).
    run = RunConfig(
        name="train",
        storage_path=storage,
        failure_config=FailureConfig(max_failures=0),
        checkpoint_config=CheckpointConfig(num_to_keep=trainer.num_to_keep),
        callbacks=list(callbacks),
    )
    result = _fit_with_restarts(
        lambda: TorchTrainer(
            train_loop_per_worker,
            train_loop_config={"config": to_dict(config), "objective": objective},
            scaling_config=scaling,
            run_config=run,
        ).fit(),
        config,
        storage,
    )
    if result.checkpoint is None:
        raise ConfigError(
            "trainer.checkpoint_every",
            trainer.checkpoint_every,
            f"a run that ends with a checkpoint; none reached {storage} (see the Ray logs there)",
        )
    with atomic_directory(Path(config.run_dir) / FINAL_CHECKPOINT) as staging:
        result.checkpoint.to_directory(str(staging))
    return Path(config.run_dir) / FINAL_CHECKPOINT


def _fit_with_restarts(fit: Callable[[], Any], config: RagPetConfig, storage: str) -> Any:
    """`fit()`, run again after a worker group failure (up to `trainer.max_failures` times) or a failure of Ray
    Train's controller (up to `trainer.max_relaunches`). Every run has the same RunConfig name and storage, so it
    restores the latest checkpoint. Out of disk space is raised at once as an `OutOfDiskError`, naming `storage`
    when the failed write did not name its file (Ray Train's checkpoint upload does not)."""
    import ray
    from ray.train import TrainingFailedError, WorkerGroupError

    trainer = config.trainer
    failures = {"worker": 0, "controller": 0}
    limits = {"worker": trainer.max_failures, "controller": trainer.max_relaunches}
    while True:
        try:
            return fit()
        except (TrainingFailedError, ray.exceptions.RayActorError) as err:  # a controller's actor can die too
            if (full := out_of_disk(err)) is not None:
                raise (full if full.path else OutOfDiskError(storage, free_bytes(storage))) from None
            source = "worker" if isinstance(err, WorkerGroupError) else "controller"
            failures[source] += 1
            if failures[source] > limits[source]:
                raise
            logger.warning(
                "a Ray Train %s failed (%s); restarting from the latest checkpoint (%d of %d)",
                source,
                type(err).__name__,
                failures[source],
                limits[source],
            )


def _keep_final(checkpoint: Path, config: RagPetConfig) -> Path:
    """Link a local run's last checkpoint to `<run_dir>/final_checkpoint`, where Ray runs leave theirs too:
    hard links where both are on one file system (checkpoint files are written once, never changed, so the two
    names share them safely and a full model is not written twice), copies elsewhere."""
    with atomic_directory(Path(config.run_dir) / FINAL_CHECKPOINT) as staging:
        shutil.copytree(checkpoint, staging, dirs_exist_ok=True, copy_function=_link_or_copy)
    return Path(config.run_dir) / FINAL_CHECKPOINT


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system, or one without hard links
        shutil.copy2(source, target)


def preflight(config: RagPetConfig, objective: TrainingObjective) -> None:
    """Everything that can be checked or prepared once, before any worker starts: what the objective needs (data,
    model, index, built if missing), and the workers' resources."""
    objective.preflight(config)
    _check_resources(config, objective)


def _check_resources(config: RagPetConfig, objective: TrainingObjective) -> None:
    """Under Ray, refuse (or wait `trainer.resource_wait_s` for) workers the cluster cannot hold."""
    if config.trainer.launcher == "ray":
        ensure_ray()
        wait_for_resources(worker_request(config, objective), _alive_nodes, config.trainer.resource_wait_s)


def launch_training(
    config: RagPetConfig, objective: TrainingObjective, callbacks: Sequence[object] = ()
) -> TrainingResult:
    """Train `objective` as configured (`trainer.launcher`) and return the final checkpoint, copied under the run
    dir.

    `callbacks` are Ray Train callbacks (`trainer.launcher=ray` only), e.g. a sweep trial's `TuneReportCallback`."""
    if callbacks and config.trainer.launcher != "ray":
        raise ConfigError("trainer.launcher", config.trainer.launcher, "ray: a sweep's trials report through Ray Train")
    start = time.perf_counter()
    preflight(config, objective)
    storage = storage_location(config)
    if config.trainer.launcher == "ray":
        final = _run_with_ray(config, objective, storage, callbacks)
    else:
        context = LocalContext(Path(storage), resolve_device(config.trainer.use_gpu), config.trainer.num_to_keep)
        run_train_loop(config, context, objective)
        final = _keep_final(context.checkpoints()[-1], config)
    if config.deepspeed.enabled:
        export_deepspeed_checkpoint(final, objective.build_model(config), config.deepspeed.zero_stage)
    return TrainingResult(final, read_state(final), time.perf_counter() - start)
