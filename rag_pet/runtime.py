"""The one place a process starts or joins Ray: every job, evaluation and service calls `ensure_ray`."""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

import ray

from rag_pet.errors import ConfigError

logger = logging.getLogger(__name__)


def ensure_ray(**local_options: Any) -> None:
    """Join the cluster `RAY_ADDRESS` names, or start a local one; nothing when this process is already connected.

    `local_options` (`num_cpus`, `include_dashboard`, ...) are `ray.init` arguments for a local instance (tests and
    benchmarks size theirs); they are ignored when joining a cluster, whose resources are its own.

    Token authentication stays Ray's own setting (`RAY_AUTH_MODE`, and the token from `RAY_AUTH_TOKEN`,
    `RAY_AUTH_TOKEN_PATH` or `~/.ray/auth_token`), which client and cluster must share; a local cluster started here
    uses Ray's default. A cluster that cannot be reached or refuses the token is one line naming the variable.
    """
    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS")
    if address:
        _check_reachable(address)
    try:
        ray.init(**({} if address else _local_instance(local_options)))
    except ray.exceptions.AuthenticationError:
        raise ConfigError(
            "RAY_AUTH_MODE",
            os.environ.get("RAY_AUTH_MODE"),
            "the cluster's setting: its token in RAY_AUTH_TOKEN or ~/.ray/auth_token, or disabled on both sides",
        ) from None
    except ConnectionError as err:
        if not address:
            raise
        raise ConfigError("RAY_ADDRESS", address, f"the address of a running Ray cluster, or unset ({err})") from None
    where = f"the cluster at {address}" if address else "a local Ray instance"
    logger.info("connected to %s (%s)", where, ray.get_runtime_context().gcs_address)


def _local_instance(options: dict[str, Any]) -> dict[str, Any]:
    """`ray.init` options of a local instance whose workers ask its own state API, even beside other local instances.

    Ray Train's placement-group cleaner asks the state API whether its controller lives. Left to find the API by
    itself ("auto"), it fails on a host with several local Ray instances ("Found multiple active Ray instances") or
    asks another instance, is told the controller is gone and removes a live run's placement group. The dashboard
    serves that API, so it runs on a port chosen here, and every worker of the job is told its address."""
    if options.get("include_dashboard") is False:
        return options
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    runtime_env = dict(options.get("runtime_env") or {})
    env_vars = {**runtime_env.get("env_vars", {}), "RAY_API_SERVER_ADDRESS": f"http://127.0.0.1:{port}"}
    return {
        **options,
        "include_dashboard": True,
        "dashboard_host": "127.0.0.1",
        "dashboard_port": port,
        "runtime_env": {**runtime_env, "env_vars": env_vars},
    }


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Refuse a `host:port` (or `ray://host:port`) nobody listens on now: Ray itself would wait about a minute and
    then end the process from its core worker, with no error this process could report."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():  # "auto", "local" or a form Ray resolves itself
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as err:
        raise ConfigError(
            "RAY_ADDRESS", address, f"the address of a running Ray cluster, or unset to start a local one ({err})"
        ) from None
