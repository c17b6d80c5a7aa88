"""Start and stop the service: resolve what is served, write its Serve config file, run it on Ray Serve."""

from __future__ import annotations

import logging
import os
import signal
import threading
from dataclasses import dataclass
from pathlib import Path

import yaml
from ray import serve
from ray.serve.schema import ServeDeploySchema

from rag_pet.config import ServeConfig
from rag_pet.console import console_logger
from rag_pet.errors import ConfigError
from rag_pet.inference.spec import InferenceSpec, resolve_index_version
from rag_pet.retrieval.live_index import open_index
from rag_pet.retrieval.sharded import shards_running
from rag_pet.runtime import ensure_ray
from rag_pet.serving.app import IMPORT_PATH, build_application, serve_options
from rag_pet.serving.running import proxy_address, refuse_clash, running_serve
from rag_pet.storage import write_text_atomic

logger = logging.getLogger(__name__)
SERVE_CONFIG = "serve_config.yaml"


@dataclass
class RunningService:
    """A started application: where it listens, what it serves, and its Serve config file."""

    url: str
    spec: InferenceSpec
    config_file: Path
    owns_index: bool = False


def serve_config_document(spec: InferenceSpec, host: str, port: int) -> dict:
    """The Serve config (the format `serve build` writes) that deploys this spec with `serve deploy` or KubeRay,
    its proxy on `host`:`port`."""
    serve_settings = spec.config.serve
    document = {
        "proxy_location": "EveryNode",
        "http_options": {"host": host, "port": port},
        "applications": [
            {
                "name": serve_settings.app_name,
                "route_prefix": serve_settings.route_prefix,
                "import_path": IMPORT_PATH,
                "args": spec.to_args(),
            }
        ],
    }
    ServeDeploySchema.model_validate(document)
    return document


def write_serve_config(spec: InferenceSpec, host: str, port: int) -> Path:
    """Write the Serve config file atomically to `serve.config_file` (default `<run_dir>/serve_config.yaml`)."""
    path = Path(spec.config.serve.config_file or Path(spec.config.run_dir) / SERVE_CONFIG).expanduser().resolve()
    header = (
        "# Deploy with `serve deploy` or as a KubeRay RayService serveConfigV2. Paths must be readable on every node;\n"
        "# with serve.auth_token_env set, that variable must be set in the replicas' environment.\n"
    )
    write_text_atomic(path, header + yaml.safe_dump(serve_config_document(spec, host, port), sort_keys=False))
    return path


def _auth_token(serve_settings: ServeConfig) -> str | None:
    name = serve_settings.auth_token_env
    if name is None:
        return None
    token = os.environ.get(name)
    if not token:
        raise ConfigError("serve.auth_token_env", name, "the name of a set environment variable holding the token")
    return token


def start_service(spec: InferenceSpec) -> RunningService:
    """Check and start the application of a resolved spec (`resolve_spec`), joining or starting Ray; returns at
    once. Its URL is where it answers: on a cluster whose Serve already runs, the running proxy's address (a
    warning line says so when the request differs), and a running application's name or route is refused."""
    token = _auth_token(spec.config.serve)
    for name in ("retriever", "generator", "ingress"):
        serve_options(spec.config.serve, name)  # a bad deployment setting is reported before Ray starts
    ensure_ray()
    spec.index_version = resolve_index_version(spec)
    settings = spec.config.serve
    running = running_serve()
    if settings.write_config_only:
        host, port = proxy_address(running, settings)
        return RunningService(_url(host, port, settings), spec, write_serve_config(spec, host, port))
    refuse_clash(running, settings)
    owns_index = not shards_running(spec.config.index_source.name, spec.index_version)
    serve.start(http_options={"host": settings.host, "port": settings.port})
    host, port = proxy_address(running_serve(), settings)
    config_file = write_serve_config(spec, host, port)
    serve.run(
        build_application(spec, token),
        name=settings.app_name,
        route_prefix=settings.route_prefix,
        blocking=False,
    )
    url = _url(host, port, settings)
    logger.info("serving %s at %s (index v%d)", settings.app_name, url, spec.index_version)
    return RunningService(url, spec, config_file, owns_index)


def _url(host: str, port: int, settings: ServeConfig) -> str:
    return f"http://{host}:{port}{settings.route_prefix.rstrip('/')}"


def stop_service(service: RunningService) -> None:
    """Delete the application and stop the index shard actors it started (they are detached); shards that were
    already up when it started (another service's, a training run's) are left alone."""
    serve.delete(service.spec.config.serve.app_name)
    if service.owns_index:
        open_index(service.spec.config.index_source, service.spec.index_version, detached=True).stop()


def serve_until_stopped(spec: InferenceSpec) -> dict:
    """`jobs.serve`: start the service and keep it up until SIGINT/SIGTERM, then shut it down cleanly."""
    service = start_service(spec)
    summary = {"url": service.url, "config_file": str(service.config_file), "index_version": service.spec.index_version}
    if spec.config.serve.write_config_only:
        return summary
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    console_logger().info("serving at %s (OpenAPI: %s/docs); Ctrl-C stops", service.url, service.url)
    stop.wait()
    console_logger().info("shutting down")
    stop_service(service)
    serve.shutdown()
    return summary
