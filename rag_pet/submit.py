"""Submit any job of this project to a Ray cluster through the Ray Jobs API, follow it, stop it, read its logs.

The project is shipped as the job's `working_dir` (without outputs, virtual environments and caches); the cluster's
nodes bring the dependencies (the image in `cluster/Dockerfile`), or the job asks for `pip` packages or an `image`.
Token authentication is Ray's own: the client finds the token where `ray.init` does (`RAY_AUTH_TOKEN`,
`RAY_AUTH_TOKEN_PATH`, `~/.ray/auth_token`)."""

from __future__ import annotations

import logging
import os
import shlex
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from rag_pet.errors import ConfigError, RagPetError

JOBS = ("train", "evaluate", "index", "sweep", "serve", "compare")
DEFAULT_ADDRESS = "http://127.0.0.1:8265"
FAILED_STATES = ("FAILED", "STOPPED")
PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class SubmitConfig:
    """Where and how jobs are submitted (`conf/submit.yaml`; the command line overrides it).

    `address`: the cluster's dashboard (`http://<head>:8265`); `RAY_ADDRESS` wins, as with `ray job submit`.
    `excludes`: paths of the project not uploaded. `env_vars`, `pip` (requirements) and `image` (a container image
    URI the job runs in) go into the job's `runtime_env`."""

    address: str | None = None
    excludes: list[str] = field(default_factory=list)
    env_vars: dict[str, str] = field(default_factory=dict)
    pip: list[str] = field(default_factory=list)
    image: str | None = None
    connect_timeout_s: float = 5.0


def load_settings(
    config_file: Path, address: str | None, image: str | None, pip: list[str], env: list[str]
) -> SubmitConfig:
    """`conf/submit.yaml` with the command line's `--address`, `--image`, `--pip` and `--env KEY=VALUE` on top."""
    from omegaconf import OmegaConf

    from rag_pet.config import to_structured

    settings = to_structured(OmegaConf.load(config_file), SubmitConfig)
    settings.address = address or settings.address
    settings.image = image or settings.image
    settings.pip = [*settings.pip, *pip]
    for pair in env:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError("--env", pair, "KEY=VALUE")
        settings.env_vars[key] = value
    return settings


def run_submission(
    settings: SubmitConfig,
    job: str | None,
    overrides: list[str],
    wait: bool,
    stop_id: str | None,
    logs_id: str | None,
) -> int:
    """`python -m jobs.submit`: submit `job` (and with `wait` follow it), or stop a job, or print its logs; the exit
    status (1: the followed job did not succeed)."""
    if bool(job) + bool(stop_id) + bool(logs_id) != 1:
        raise ConfigError("job", job, f"one of {', '.join(JOBS)} with its overrides, or --stop ID, or --logs ID")
    client = connect(settings)
    if stop_id:
        print(f"job {stop_id}: {_known(lambda: stop(client, stop_id), stop_id)}")
        return 0
    if logs_id:
        print(_known(lambda: client.get_job_logs(logs_id), logs_id), end="")
        return 0
    submission_id = submit(client, job, overrides, settings)
    print(f"submitted {submission_id}: python -m jobs.{job} {' '.join(overrides)}".rstrip())
    if not wait:
        print(f"follow it: python -m jobs.submit --logs {submission_id}; stop it: --stop {submission_id}")
        return 0
    status = follow(client, submission_id, lambda text: print(text, end="", flush=True))
    if status == "SUCCEEDED":
        print(f"job {submission_id} SUCCEEDED")
        return 0
    print(f"error: {failure_line(client, submission_id)}", file=sys.stderr)
    return 1


def _known(call: Callable[[], Any], submission_id: str) -> Any:
    """`call()`, with the client's error for an unknown submission id as one line."""
    try:
        return call()
    except RuntimeError as err:
        if "does not exist" not in str(err) and "404" not in str(err):
            raise
        raise ConfigError("ID", submission_id, "a submission id of this cluster (`ray job list`)") from None


def entrypoint(job: str, overrides: list[str]) -> str:
    """The shell command the cluster runs: `python -m jobs.<job> <overrides>`."""
    if job not in JOBS:
        raise ConfigError("job", job, f"one of {', '.join(JOBS)}")
    return shlex.join(["python", "-m", f"jobs.{job}", *overrides])


def runtime_env(settings: SubmitConfig, project: Path = PROJECT_ROOT) -> dict[str, Any]:
    """The job's runtime environment: the project as `working_dir`, the configured excludes, variables, pip
    requirements and image."""
    env: dict[str, Any] = {
        "working_dir": str(project),
        "excludes": list(settings.excludes),
        "env_vars": {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **settings.env_vars},
    }
    if settings.pip:
        env["pip"] = list(settings.pip)
    if settings.image:
        env["image_uri"] = settings.image
    return env


def resolve_address(settings: SubmitConfig) -> str:
    """`RAY_ADDRESS`, else the configured address, else the local dashboard's default."""
    return os.environ.get("RAY_ADDRESS") or settings.address or DEFAULT_ADDRESS


def connect(settings: SubmitConfig):
    """A `JobSubmissionClient` of the cluster; one `ConfigError` line when nobody answers or the token is refused."""
    from ray.exceptions import AuthenticationError
    from ray.job_submission import JobSubmissionClient

    address = resolve_address(settings)
    field_name = "RAY_ADDRESS" if os.environ.get("RAY_ADDRESS") else "address"
    _check_reachable(address, field_name, settings.connect_timeout_s)
    _use_token_if_found()
    try:
        return JobSubmissionClient(address)
    except AuthenticationError:
        raise _auth_error() from None
    except ConnectionError as err:
        raise ConfigError(field_name, address, f"the dashboard of a running Ray cluster ({_first_line(err)})") from None


def _use_token_if_found() -> None:
    """Send Ray's token when one is found (`ray start` and `ray.init` decide so; the Jobs client does not): with
    `RAY_AUTH_MODE` unset, a token in `RAY_AUTH_TOKEN`, `RAY_AUTH_TOKEN_PATH` or `~/.ray/auth_token` turns token
    authentication on for this process, as it does for a cluster started here."""
    from ray._private.authentication import authentication_token_setup as token_setup

    ray_warnings = logging.getLogger(token_setup.__name__)
    level = ray_warnings.level
    ray_warnings.setLevel(logging.ERROR)  # its notice that token auth is on is meant for a cluster being started
    try:
        token_setup.maybe_enable_token_auth_if_token_available(warn_if_disabled=False)
    finally:
        ray_warnings.setLevel(level)


def _auth_error() -> ConfigError:
    return ConfigError(
        "RAY_AUTH_TOKEN",
        "<refused>" if os.environ.get("RAY_AUTH_TOKEN") else None,
        "the cluster's token (`ray get-auth-token` on its head) in RAY_AUTH_TOKEN or ~/.ray/auth_token;"
        " or RAY_AUTH_MODE=disabled on the cluster and here",
    )


def _check_reachable(address: str, field_name: str, timeout_s: float) -> None:
    """Refuse a `host:port` nobody listens on now, before the client's own retries (about a minute). A dashboard
    URL (`http://<head>:8265`) or a cluster address (`<head>:6379`) is checked; `auto` and `ray://` are left to Ray."""
    parsed = urlparse(address if "://" in address else f"http://{address}")
    if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.port is None:
        return
    try:
        socket.create_connection((parsed.hostname, parsed.port), timeout=timeout_s).close()
    except OSError as err:
        raise ConfigError(field_name, address, f"the dashboard address of a running Ray cluster ({err})") from None


def submit(client, job: str, overrides: list[str], settings: SubmitConfig) -> str:
    """Submit `python -m jobs.<job> <overrides>` with the project's runtime env; the submission id."""
    from ray.exceptions import AuthenticationError

    try:
        return client.submit_job(entrypoint=entrypoint(job, overrides), runtime_env=runtime_env(settings))
    except AuthenticationError:
        raise _auth_error() from None


def follow(client, submission_id: str, write: Callable[[str], None], poll_s: float = 1.0) -> str:
    """Write the job's logs as they grow until it ends; its final status (`SUCCEEDED`, `FAILED`, `STOPPED`)."""
    from ray.job_submission import JobStatus

    written = 0
    while True:
        status = client.get_job_status(submission_id)
        logs = client.get_job_logs(submission_id)
        if len(logs) > written:
            write(logs[written:])
            written = len(logs)
        if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
            return str(status.value)
        time.sleep(poll_s)


def failure_line(client, submission_id: str) -> str:
    """One line on why a job failed: its status message, else the last line of its logs."""
    info = client.get_job_info(submission_id)
    lines = [line for line in client.get_job_logs(submission_id).splitlines() if line.strip()]
    message = (info.message or "").strip().splitlines()
    reason = lines[-1] if lines else (message[-1] if message else "no message")
    return f"job {submission_id} {info.status.value}: {reason}"


def stop(client, submission_id: str, wait_s: float = 60.0) -> str:
    """Ask the job to stop and wait for it to end; its final status."""
    from ray.job_submission import JobStatus

    client.stop_job(submission_id)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        status = client.get_job_status(submission_id)
        if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
            return str(status.value)
        time.sleep(0.5)
    raise RagPetError(f"job error: {submission_id} did not stop within {wait_s:.0f} s; try again or `ray job stop`")


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
