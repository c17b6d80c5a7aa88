"""Config schemas of the Ray Serve endpoints (`serve.*`): what is served, where, for whom, within which limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rag_pet.config.checks import positive
from rag_pet.errors import ConfigError


@dataclass
class DeploymentConfig:
    """Replicas and resources of one Serve deployment; `autoscaling` (Serve's autoscaling_config: min_replicas,
    max_replicas, target_ongoing_requests, ...), when not empty, replaces the fixed `num_replicas`.

    A batch takes up to `max_batch_size` queued requests, waiting at most `batch_wait_timeout_s` for more: 0 adds
    no latency when idle, and under load requests queue up while the previous batch computes."""

    num_replicas: int = 1
    autoscaling: dict[str, Any] = field(default_factory=dict)
    num_cpus: float = 0.5
    num_gpus: float = 0.0
    max_ongoing_requests: int = 64
    max_batch_size: int = 16
    batch_wait_timeout_s: float = 0.0

    def check(self, section: str) -> None:
        for name in ("num_replicas", "max_ongoing_requests", "max_batch_size"):
            positive(f"{section}.{name}", getattr(self, name))
        for name in ("num_cpus", "num_gpus", "batch_wait_timeout_s"):
            positive(f"{section}.{name}", getattr(self, name), allow_zero=True)


@dataclass
class ServeConfig:
    """Ray Serve research endpoints (`python -m jobs.serve`): what is served, where, for whom, within which limits.

    `run_dir` is a finished training run (its config, weights and index are served); `adapters` adds PEFT adapters
    trained on the same base model (id -> run directory or adapter folder), chosen per request. With
    `auth_token_env` set, requests need `Authorization: Bearer <the value of that environment variable>`.
    """

    run_dir: str | None = None
    adapters: dict[str, str] = field(default_factory=dict)
    index_version: int | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    app_name: str = "rag_pet"
    route_prefix: str = "/"
    auth_token_env: str | None = None
    max_question_chars: int = 2000
    max_k: int = 20
    max_new_tokens: int = 64
    max_batch_questions: int = 32
    max_adapters_per_replica: int = 4
    health_check_period_s: float = 10.0
    health_check_timeout_s: float = 30.0
    config_file: str | None = None
    write_config_only: bool = False
    retriever: DeploymentConfig = field(default_factory=DeploymentConfig)
    generator: DeploymentConfig = field(default_factory=DeploymentConfig)
    ingress: DeploymentConfig = field(default_factory=lambda: DeploymentConfig(num_cpus=0.25, max_ongoing_requests=256))

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError("serve.port", self.port, "a TCP port in 1-65535")
        if not self.route_prefix.startswith("/"):
            raise ConfigError("serve.route_prefix", self.route_prefix, "a path starting with /")
        for name in (
            "max_question_chars",
            "max_k",
            "max_new_tokens",
            "max_batch_questions",
            "max_adapters_per_replica",
            "health_check_period_s",
            "health_check_timeout_s",
        ):
            positive(f"serve.{name}", getattr(self, name))
        for name in ("retriever", "generator", "ingress"):
            getattr(self, name).check(f"serve.{name}")
