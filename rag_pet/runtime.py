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
        # by default locally with the dashboard: it serves the state API that Ray Train's controller polls
        ray.init(**({} if address else local_options))
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
