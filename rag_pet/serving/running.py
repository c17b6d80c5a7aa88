"""What the Serve instance of the connected Ray cluster already runs: where its HTTP proxy listens and which
applications answer at which route. Serve keeps one proxy per cluster, started by the first application, and
ignores the HTTP options of every later one; a new application is checked against what runs."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ray.serve.context import _get_global_client
from ray.serve.schema import ServeInstanceDetails

from rag_pet.config import ServeConfig
from rag_pet.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunningServe:
    """The running instance: its proxy's host and port, and each application's route prefix by name."""

    host: str
    port: int
    routes: dict[str, str]


def running_serve() -> RunningServe | None:
    """The Serve instance of the connected cluster, or None where none runs.

    Serve's Python API returns neither the proxy's HTTP options nor the applications' route prefixes; its REST API
    (`GET /api/serve/applications/` on the dashboard) answers with `ServeInstanceDetails`, which this reads from the
    controller itself, so no dashboard is needed."""
    client = _get_global_client(raise_if_no_controller_running=False)
    if client is None:
        return None
    details = ServeInstanceDetails.model_validate(client.get_serve_details())
    routes = {name: app.route_prefix for name, app in details.applications.items() if app.route_prefix}
    return RunningServe(details.http_options.host, details.http_options.port, routes)


def refuse_clash(running: RunningServe | None, settings: ServeConfig) -> None:
    """A `ConfigError` when a running application has `serve.app_name` or answers at `serve.route_prefix`: Serve
    would replace it (same name) or refuse the new one deep in its controller (same route)."""
    for name, route in (running.routes if running else {}).items():
        if name == settings.app_name:
            raise ConfigError(
                "serve.app_name",
                name,
                f"a name no running application has: '{name}' already answers at {route} on this cluster; pick "
                f"another serve.app_name (and serve.route_prefix), or stop it first (`serve.delete('{name}')`)",
            )
        if route == settings.route_prefix:
            raise ConfigError(
                "serve.route_prefix",
                route,
                f"a route no running application answers at: application '{name}' answers at {route} on this "
                "cluster; pick another serve.route_prefix",
            )


def proxy_address(running: RunningServe | None, settings: ServeConfig) -> tuple[str, int]:
    """Where the application will answer: the running proxy's host and port, or the requested ones where no Serve
    runs yet. One warning line when the request differs from the running proxy's, naming both and the fix."""
    if running is None:
        return settings.host, settings.port
    if (running.host, running.port) != (settings.host, settings.port):
        logger.warning(
            "serve.host=%s serve.port=%d not used: this cluster's Serve proxy already listens on %s:%d (one per "
            "cluster), so the app answers there; pass serve.host=%s serve.port=%d, or serve on another Ray cluster",
            settings.host,
            settings.port,
            running.host,
            running.port,
            running.host,
            running.port,
        )
    return running.host, running.port
