"""`python -m jobs.submit` against a real Ray cluster the test starts itself (`ray start --head --block` on
127.0.0.1, every port chosen free so other local Ray instances are untouched; stopped by signalling that process).
The cluster has its own token (token authentication on), given to the clients in `RAY_AUTH_TOKEN`, so the tests do
not depend on, or touch, `~/.ray/auth_token`. Starting the head node and its jobs takes about 90 s: those tests are
in the slow suite (`python -m pytest -m slow tests/cluster`)."""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from rag_pet.errors import ConfigError
from rag_pet.submit import SubmitConfig, entrypoint, runtime_env

ROOT = Path(__file__).resolve().parents[2]
PORT_FLAGS = (
    "--port",
    "--dashboard-port",
    "--dashboard-agent-listen-port",
    "--dashboard-agent-grpc-port",
    "--ray-client-server-port",
    "--runtime-env-agent-port",
    "--metrics-export-port",
    "--node-manager-port",
    "--object-manager-port",
)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def wait_for_port(port: int, process: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ray start exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(1)
    raise TimeoutError(f"the test cluster's dashboard did not open port {port}")


TOKEN = secrets.token_hex(32)


@contextmanager
def head_node():
    """A 2-CPU head node on free ports with token authentication on; its dashboard address as soon as the port is
    open (its Jobs agent may still be starting). Stopped, with everything it started, when the block ends."""
    ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS)), strict=True))
    temp_dir = tempfile.mkdtemp(prefix="rp_", dir="/tmp")  # short: Ray's socket paths must stay under 108 bytes
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    env = {**os.environ, "PATH": path, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": TOKEN}
    env.pop("RAY_ADDRESS", None)
    command = [
        "ray",
        "start",
        "--head",
        "--block",
        "--node-ip-address=127.0.0.1",
        "--dashboard-host=127.0.0.1",
        "--include-dashboard=true",
        "--num-cpus=2",
        "--disable-usage-stats",
        f"--temp-dir={temp_dir}",
        *(f"{flag}={port}" for flag, port in ports.items()),
    ]
    head = subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(ports["--dashboard-port"], head)
        yield f"http://127.0.0.1:{ports['--dashboard-port']}"
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster_address():
    """The dashboard address of a head node started for these tests."""
    with head_node() as address:
        yield address


def submit_job(*args: str, address: str | None = None, env: dict | None = None, timeout: int = 600):
    environment = {**os.environ, "RAY_AUTH_TOKEN": TOKEN, **(env or {})}
    environment.pop("RAY_ADDRESS", None)
    environment.pop("RAY_AUTH_MODE", None)
    if address:
        environment["RAY_ADDRESS"] = address
    return subprocess.run(
        [sys.executable, "-m", "jobs.submit", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def submission_id(stdout: str) -> str:
    line = next(line for line in stdout.splitlines() if line.startswith("submitted "))
    return line.split()[1].rstrip(":")


@pytest.mark.slow
def test_a_submitted_training_job_succeeds_with_its_metrics_in_the_logs(cluster_address):
    done = submit_job("train", "debug=tiny", "trainer.max_steps=2", "--ephemeral", "--wait", address=cluster_address)

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "SUCCEEDED" in done.stdout
    assert "lora" in done.stdout and "run directory:" in done.stdout  # the job's own result table
    logs = submit_job("--logs", submission_id(done.stdout), address=cluster_address)
    assert logs.returncode == 0 and "run directory:" in logs.stdout


@pytest.mark.slow
def test_a_failing_job_reports_failed_with_the_tail_of_its_error(cluster_address):
    done = submit_job("train", "debug=tiny", "trainer.max_steps=-1", "--ephemeral", "--wait", address=cluster_address)

    assert done.returncode == 1
    (line,) = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert "FAILED" in line and "trainer.max_steps=-1" in line


@pytest.mark.slow
def test_stop_ends_a_running_job(cluster_address):
    started = submit_job("train", "debug=tiny", "trainer.max_steps=100000", "--ephemeral", address=cluster_address)
    assert started.returncode == 0, started.stderr[-2000:]
    job_id = submission_id(started.stdout)

    stopped = submit_job("--stop", job_id, address=cluster_address)

    assert stopped.returncode == 0, stopped.stderr[-2000:]
    assert stopped.stdout.strip() == f"job {job_id}: STOPPED"


@pytest.mark.slow
def test_a_refused_token_and_an_unknown_job_are_one_line_each(cluster_address):
    refused = submit_job("--logs", "raysubmit_x", address=cluster_address, env={"RAY_AUTH_TOKEN": "not-the-token"})
    unknown = submit_job("--logs", "raysubmit_missing", address=cluster_address)

    for done, field in ((refused, "RAY_AUTH_TOKEN"), (unknown, "ID='raysubmit_missing'")):
        assert done.returncode == 2, done.stderr[-2000:]
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:") and field in lines[0], done.stderr


def test_an_unreachable_cluster_is_one_line():
    done = submit_job("train", "debug=tiny", "--ephemeral", "--wait", address="http://127.0.0.1:9")

    assert done.returncode == 2
    (line,) = [line for line in done.stderr.splitlines() if line.strip()]
    assert line.startswith("error:") and "RAY_ADDRESS='http://127.0.0.1:9'" in line


def test_the_runtime_env_ships_the_project_without_outputs_and_venvs():
    env = runtime_env(SubmitConfig(excludes=[".venv", "outputs"], pip=["x==1"], image="img", env_vars={"A": "1"}))

    assert env["working_dir"] == str(ROOT) and {".venv", "outputs"} <= set(env["excludes"])
    assert env["pip"] == ["x==1"] and env["image_uri"] == "img" and env["env_vars"]["A"] == "1"
    assert entrypoint("sweep", ["sweep=lora_lr", "a b=c"]) == "python -m jobs.sweep sweep=lora_lr 'a b=c'"
    with pytest.raises(ConfigError, match="job='trian'"):
        entrypoint("trian", [])
