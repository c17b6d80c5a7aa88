"""Out of disk space, from a real full device (/dev/full), through causes and worker text, to one line and exit 2."""

import errno
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from rag_pet.cli import run_job
from rag_pet.disk import OutOfDiskError, free_bytes, out_of_disk
from rag_pet.storage import write_text_atomic

FULL_DEVICE = Path("/dev/full")  # every write to it fails with ENOSPC
pytestmark = pytest.mark.skipif(not FULL_DEVICE.exists(), reason="needs Linux's /dev/full")


def write_to_full_device() -> None:
    with FULL_DEVICE.open("w") as handle:
        handle.write("x" * 65536)
        handle.flush()


def test_a_real_full_device_is_recognised_with_its_path():
    with pytest.raises(OSError) as caught:
        write_to_full_device()
    assert caught.value.errno == errno.ENOSPC
    found = out_of_disk(caught.value)
    assert isinstance(found, OutOfDiskError) and found.path is None  # a write error does not name its file


def test_it_is_recognised_as_the_cause_of_another_error_and_in_a_workers_text(tmp_path):
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "ckpt" / "model.safetensors"))
        except OSError as err:
            raise RuntimeError("checkpoint upload failed") from err
    except RuntimeError as wrapped:
        found = out_of_disk(wrapped)
    assert found.path == str(tmp_path / "ckpt" / "model.safetensors")
    assert found.free_bytes == free_bytes(tmp_path)  # the nearest existing parent's filesystem
    text = RuntimeError(f"Worker 0 failed:\nOSError: [Errno 28] No space left on device: '{tmp_path}/x'")
    assert out_of_disk(text).path == f"{tmp_path}/x"
    assert out_of_disk(ValueError("something else")) is None
    assert out_of_disk(OSError(errno.EACCES, "Permission denied")) is None


@pytest.fixture
def full_disk(monkeypatch):
    """Atomic writes whose temporary file's bytes go to /dev/full: a real ENOSPC from the kernel."""
    real_fdopen = os.fdopen

    def onto_full_device(fd, mode):
        os.close(fd)
        return real_fdopen(os.open(FULL_DEVICE, os.O_WRONLY), mode)

    monkeypatch.setattr(os, "fdopen", onto_full_device)


@pytest.mark.usefixtures("full_disk")
def test_an_atomic_write_that_runs_out_of_disk_names_its_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "results.json"
    with pytest.raises(OutOfDiskError) as caught:
        write_text_atomic(target, "x" * 65536)
    assert caught.value.path == str(target) and caught.value.free_bytes == free_bytes(tmp_path)
    assert list(tmp_path.iterdir()) == []


@dataclass
class NoSettings:
    pass


@pytest.mark.usefixtures("full_disk")
def test_a_job_that_runs_out_of_disk_prints_one_line_exits_2_and_logs_it(tmp_path, capsys):
    log_file = tmp_path / "train.log"
    empty = OmegaConf.create({})
    handler = logging.FileHandler(log_file)
    logging.getLogger().addHandler(handler)
    try:
        with pytest.raises(SystemExit) as exited:
            run_job(lambda config: write_text_atomic(tmp_path / "out" / "metrics.json", "x" * 65536), empty, NoSettings)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    assert exited.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: out of disk space") and "MiB free" in lines[0]
    assert lines[0] in log_file.read_text()


def test_a_worker_group_out_of_disk_is_raised_at_once_while_other_failures_restart(tiny_config, caplog, tmp_path):
    """Ray Train's error types as `fit` raises them: out of disk fails the same way on every restart, so the first
    one ends the run; any other worker failure restarts it up to `trainer.max_failures` times."""
    from ray.train import ControllerError, WorkerGroupError

    from rag_pet.training.launcher import _fit_with_restarts

    config = tiny_config("trainer.max_failures=2", "trainer.max_relaunches=1")
    calls = []

    def failing(error: Exception):
        def fit():
            calls.append(type(error).__name__)
            raise error

        return fit

    full = OSError(errno.ENOSPC, "No space left on device", "/ckpt/model.safetensors")
    with pytest.raises(OutOfDiskError) as caught:
        _fit_with_restarts(failing(WorkerGroupError("rank 0 failed", {0: full})), config, "/ckpt")
    assert calls == ["WorkerGroupError"] and caught.value.path == "/ckpt/model.safetensors"

    calls.clear()
    with caplog.at_level(logging.WARNING), pytest.raises(WorkerGroupError):
        _fit_with_restarts(failing(WorkerGroupError("rank 1 failed", {1: RuntimeError("killed")})), config, "/ckpt")
    assert len(calls) == 3 and "restarting from the latest checkpoint (2 of 2)" in caplog.text

    calls.clear()
    with pytest.raises(ControllerError):
        _fit_with_restarts(failing(ControllerError(RuntimeError("controller died"))), config, "/ckpt")
    assert len(calls) == 2

    # Ray Train's checkpoint upload fails without naming its file: the run's checkpoint storage is named instead
    unnamed = OSError(errno.ENOSPC, "Error writing bytes to file. Detail: [errno 28] No space left on device")
    with pytest.raises(OutOfDiskError) as caught:
        _fit_with_restarts(failing(WorkerGroupError("rank 0 failed", {0: unnamed})), config, str(tmp_path))
    assert caught.value.path == str(tmp_path) and caught.value.free_bytes == free_bytes(tmp_path)
