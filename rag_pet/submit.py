"""Submit any job of this project to a Ray cluster through the Ray Jobs API, follow it, stop it, read its logs, fetch
its results.

The project is shipped as the job's `working_dir` (without outputs, virtual environments and caches); the cluster's
nodes bring the dependencies (the image in `cluster/Dockerfile`), or the job asks for `pip` packages or an `image`.
Ray unpacks the working_dir in its temporary directory, which it garbage-collects, so a submitted job writes its run
directory and index store under `output` (a path every node sees), named after the submission id, and records that
path in the job's metadata for `--fetch`. Token authentication is Ray's own: the client finds the token where
`ray.init` does (`RAY_AUTH_TOKEN`, `RAY_AUTH_TOKEN_PATH`, `~/.ray/auth_token`)."""

from __future__ import annotations

import logging
import os
import re
import secrets
import shlex
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from rag_pet.errors import ConfigError, RagPetError
from rag_pet.job_output import EPHEMERAL, output_overrides

JOBS = ("train", "evaluate", "index", "sweep", "serve", "compare")
DEFAULT_ADDRESS = "http://127.0.0.1:8265"
ENDED_STATES = ("SUCCEEDED", "FAILED", "STOPPED")
PROJECT_ROOT = Path(__file__).resolve().parents[1]
RESULTS_KEY = "rag_pet_results"  # the job's metadata entry naming its results directory
AGENT_STARTING = "No available agent"  # the dashboard's answer while the head's Jobs agent is still starting


@dataclass
class SubmitConfig:
    """Where and how jobs are submitted (`conf/submit.yaml`; the command line overrides it).

    `address`: the cluster's dashboard (`http://<head>:8265`); `RAY_ADDRESS` wins, as with `ray job submit`.
    `output`: where a submitted job's results go (an absolute path every node sees, or `ephemeral`).
    `excludes`: paths of the project not uploaded. `env_vars`, `pip` (requirements) and `image` (a container image
    URI the job runs in) go into the job's `runtime_env`. `agent_wait_s`: how long to wait for a head whose Jobs
    agent is still starting."""

    address: str | None = None
    output: str | None = None
    excludes: list[str] = field(default_factory=list)
    env_vars: dict[str, str] = field(default_factory=dict)
    pip: list[str] = field(default_factory=list)
    image: str | None = None
    connect_timeout_s: float = 5.0
    agent_wait_s: float = 60.0

    def __post_init__(self) -> None:
        for name in ("connect_timeout_s", "agent_wait_s"):
            if getattr(self, name) < 0:
                raise ConfigError(name, getattr(self, name), "seconds, 0 or more")


@dataclass
class Command:
    """What `python -m jobs.submit` was asked to do: submit `job`, or stop, print the logs of, or fetch one job."""

    job: str | None = None
    overrides: list[str] = field(default_factory=list)
    wait: bool = False
    stop: str | None = None
    logs: str | None = None
    fetch: str | None = None
    to: str | None = None


def load_settings(
    config_file: Path,
    address: str | None,
    image: str | None,
    pip: list[str],
    env: list[str],
    output: str | None = None,
    ephemeral: bool = False,
) -> SubmitConfig:
    """`conf/submit.yaml` with the command line's `--address`, `--output`/`--ephemeral`, `--image`, `--pip` and
    `--env KEY=VALUE` on top."""
    from omegaconf import OmegaConf

    from rag_pet.config import to_structured

    settings = to_structured(OmegaConf.load(config_file), SubmitConfig)
    if output and ephemeral:
        raise ConfigError("--ephemeral", True, f"either --ephemeral or --output, not both (--output {output})")
    settings.address = address or settings.address
    settings.output = EPHEMERAL if ephemeral else output or settings.output
    settings.image = image or settings.image
    settings.pip = [*settings.pip, *pip]
    for pair in env:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError("--env", pair, "KEY=VALUE")
        settings.env_vars[key] = value
    return settings


def run_submission(
    settings: SubmitConfig, command: Command, say: Callable[[str], None], write: Callable[[str], None]
) -> None:
    """`python -m jobs.submit`: submit a job (and with `wait` follow it, `write` its logs as they grow), or stop a
    job, print its logs or fetch its results, each line through `say`; a followed job that did not succeed raises
    `JobFailed`."""
    if sum(map(bool, (command.job, command.stop, command.logs, command.fetch))) != 1:
        raise ConfigError(
            "job", command.job, f"one of {', '.join(JOBS)} with its overrides, or --stop/--logs/--fetch ID"
        )
    if command.job:  # refuse a bad job or output before connecting
        submission_id = new_submission_id(command.job)
        overrides, results = output_overrides(command.job, command.overrides, settings.output, submission_id)
    api = JobsApi(connect(settings), resolve_address(settings), settings.agent_wait_s, say)
    if command.stop:
        return say(f"job {command.stop}: {stop(api, command.stop)}")
    if command.logs:
        return write(
            api.call("reading the logs", "try again", lambda: api.client.get_job_logs(command.logs), command.logs)
        )
    if command.fetch:
        return say(fetch(api, command.fetch, Path(command.to) if command.to else None))
    submit(api, submission_id, entrypoint(command.job, overrides), results, settings)
    say(f"submitted {submission_id}: python -m jobs.{command.job} {shlex.join(overrides)}".rstrip())
    if not command.wait:
        say(f"follow it: python -m jobs.submit --logs {submission_id}; stop it: --stop {submission_id}")
        return say(where_results_go(submission_id, results))
    status = follow(api, submission_id, write)
    say(where_results_go(submission_id, results))
    if status != "SUCCEEDED":
        raise JobFailed(failure_line(api, submission_id))
    say(f"job {submission_id} SUCCEEDED")


class JobFailed(RagPetError):
    """The followed job ended without success: exit status 1 with this line."""


def where_results_go(submission_id: str, results: str | None) -> str:
    """The line that says where a job's results are and how to bring them home."""
    if results is None:
        return "results: in the job's temporary working_dir on the cluster (--ephemeral); see its run directory above"
    return f"results: {results} (bring them here: python -m jobs.submit --fetch {submission_id} --to <dir>)"


def new_submission_id(job: str) -> str:
    """`<job>_<UTC time>_<random>`: the job's submission id and the name of its results directory."""
    return f"{job}_{time.strftime('%Y%m%d_%H%M%S', time.gmtime())}_{secrets.token_hex(3)}"


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
    except (OSError, RuntimeError) as err:  # requests' and Ray's connection errors are OSErrors
        raise ConfigError(field_name, address, f"the dashboard of a running Ray cluster ({_reason(err)})") from None


@dataclass
class JobsApi:
    """The Jobs API client with every call's failure as one line, and calls retried while the head's Jobs agent is
    still starting (up to `agent_wait_s`, said once)."""

    client: Any
    address: str
    agent_wait_s: float
    say: Callable[[str], None] = print
    poll_s: float = 2.0

    def call(self, what: str, todo: str, request: Callable[[], Any], submission_id: str | None = None) -> Any:
        """`request()`; a failure raises one line: what failed, why, and `todo`."""
        from ray.exceptions import AuthenticationError

        deadline, waiting = time.monotonic() + self.agent_wait_s, False
        while True:
            try:
                return request()
            except AuthenticationError:
                raise _auth_error() from None
            except (RuntimeError, OSError) as err:  # requests' errors are OSErrors
                if not (isinstance(err, RuntimeError) and AGENT_STARTING in str(err) and time.monotonic() < deadline):
                    raise self._failure(err, what, todo, submission_id) from None
            if not waiting:
                self.say(f"waiting up to {self.agent_wait_s:g} s for the cluster's job agent to start...")
            waiting = True
            time.sleep(max(0.0, min(self.poll_s, deadline - time.monotonic())))

    def _failure(self, err: Exception, what: str, todo: str, submission_id: str | None) -> RagPetError:
        if isinstance(err, OSError):
            return RagPetError(f"jobs API error: {what} failed: no answer from {self.address} ({_reason(err)}); {todo}")
        if submission_id and ("does not exist" in str(err) or "404" in str(err)):
            return ConfigError("ID", submission_id, "a submission id of this cluster (`ray job list`)")
        if AGENT_STARTING in str(err):
            todo = (
                f"the head's Jobs agent did not start within agent_wait_s={self.agent_wait_s:g} s; check the head"
                " (`ray status`), then try again or raise agent_wait_s in conf/submit.yaml"
            )
        return RagPetError(f"jobs API error: {what} failed at {self.address}: {_reason(err)}; {todo}")


def submit(api: JobsApi, submission_id: str, command: str, results: str | None, settings: SubmitConfig) -> str:
    """Submit `command` with the project's runtime env as `submission_id`, its results directory in its metadata."""
    metadata = {RESULTS_KEY: results or EPHEMERAL}

    def request() -> str:
        env = runtime_env(settings)
        return api.client.submit_job(
            entrypoint=command, runtime_env=env, submission_id=submission_id, metadata=metadata
        )

    return api.call("submitting the job", "check the cluster (`ray status`) and submit again", request)


def follow(api: JobsApi, submission_id: str, write: Callable[[str], None], poll_s: float = 1.0) -> str:
    """Write the job's logs as they grow until it ends; its final status (`SUCCEEDED`, `FAILED`, `STOPPED`)."""
    todo = f"the job may still run: python -m jobs.submit --logs {submission_id} (or --stop {submission_id})"
    written = 0
    while True:
        status = str(api.call("reading the job's status", todo, lambda: api.client.get_job_status(submission_id)).value)
        logs = api.call("reading the job's logs", todo, lambda: api.client.get_job_logs(submission_id))
        if len(logs) > written:
            write(logs[written:])
            written = len(logs)
        if status in ENDED_STATES:
            return status
        time.sleep(poll_s)


def failure_line(api: JobsApi, submission_id: str) -> str:
    """One line on why a job failed: its status message, else the last line of its logs."""
    todo = f"read them with python -m jobs.submit --logs {submission_id}"
    info = api.call("reading the job's status", todo, lambda: api.client.get_job_info(submission_id))
    logs = api.call("reading the job's logs", todo, lambda: api.client.get_job_logs(submission_id))
    lines = [line for line in logs.splitlines() if line.strip()]
    message = (info.message or "").strip().splitlines()
    reason = lines[-1] if lines else (message[-1] if message else "no message")
    return f"job {submission_id} {info.status.value}: {reason}"


def stop(api: JobsApi, submission_id: str, wait_s: float = 60.0) -> str:
    """Ask the job to stop and wait for it to end; its final status."""
    todo = f"try again, or `ray job stop {submission_id}`"
    api.call("stopping the job", todo, lambda: api.client.stop_job(submission_id), submission_id)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        status = api.call("reading the job's status", todo, lambda: api.client.get_job_status(submission_id))
        if str(status.value) in ENDED_STATES:
            return str(status.value)
        time.sleep(0.5)
    raise RagPetError(f"job error: {submission_id} did not stop within {wait_s:.0f} s; try again or `ray job stop`")


def fetch(api: JobsApi, submission_id: str, to: Path | None) -> str:
    """Where a finished job's results are, copied into `to/<submission id>` when given; one line when the job ran
    ephemeral, still runs, or wrote where this machine cannot see."""
    info = api.call("reading the job", "try again", lambda: api.client.get_job_info(submission_id), submission_id)
    results = (info.metadata or {}).get(RESULTS_KEY)
    if not results or results == EPHEMERAL:
        raise ConfigError(
            "--fetch",
            submission_id,
            "a job submitted with --output (this one kept its results in its temporary working_dir)",
        )
    if str(info.status.value) not in ENDED_STATES:
        raise RagPetError(
            f"fetch error: job {submission_id} is {info.status.value}; fetch it once it has ended (--wait)"
        )
    source = Path(results)
    if not source.is_dir():
        raise RagPetError(
            f"fetch error: {results} is not visible from this machine; copy it from a node that mounts it, e.g."
            f" rsync -a <node>:{results}/ {to / submission_id if to else submission_id}/"
        )
    if to is None:
        return f"results of {submission_id}: {results}"
    target = to / submission_id
    shutil.copytree(source, target, dirs_exist_ok=True)
    return f"fetched {results} -> {target}"


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


def _reason(err: Exception) -> str:
    """The error's message in one line; an HTTP failure's status, and the last line of a traceback it carries."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    status = re.match(r"Request failed with status code (\d+):? ?", lines[0])
    if not status:
        return lines[0][:300]
    text = lines[-1] if len(lines) > 1 or status.end() == len(lines[0]) else lines[0][status.end() :]
    return f"HTTP {status.group(1)}: {text.rstrip('.')}"[:300]
