"""The Serve application: Retriever and Generator deployments behind the RagPipeline HTTP ingress.

`build_app` is an application builder in Serve's sense (`import_path: rag_pet.serving.app:build_app` with `args`),
so a written Serve config file deploys with `serve deploy` or a KubeRay RayService exactly what `jobs.serve` runs.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from ray.serve.config import AutoscalingConfig
from ray.serve.schema import DeploymentSchema

from rag_pet.config import DeploymentConfig, ServeConfig
from rag_pet.errors import ConfigError
from rag_pet.inference.spec import InferenceSpec
from rag_pet.serving.deployments import RetrieverDeployment, generator_deployment
from rag_pet.serving.ingress import RagIngress

IMPORT_PATH = "rag_pet.serving.app:build_app"


def _first_error(err: ValidationError) -> str:
    return "; ".join(error["msg"] for error in err.errors())


def deployment_options(settings: DeploymentConfig, field: str, health_period_s: float, health_timeout_s: float) -> dict:
    """Serve deployment options from one `serve.<deployment>` section; a bad autoscaling block names its field."""
    options: dict[str, Any] = {
        "max_ongoing_requests": settings.max_ongoing_requests,
        "ray_actor_options": {"num_cpus": settings.num_cpus, "num_gpus": settings.num_gpus},
        "health_check_period_s": health_period_s,
        "health_check_timeout_s": health_timeout_s,
    }
    if settings.autoscaling:
        try:
            AutoscalingConfig(**settings.autoscaling)
        except ValidationError as err:
            raise ConfigError(f"{field}.autoscaling", settings.autoscaling, _first_error(err)) from None
        options["autoscaling_config"] = dict(settings.autoscaling)
    else:
        options["num_replicas"] = settings.num_replicas
    try:
        DeploymentSchema(name=field, **options)
    except ValidationError as err:
        raise ConfigError(field, settings, _first_error(err)) from None
    return options


def serve_options(serve: ServeConfig, name: str) -> dict:
    """`deployment_options` of the `serve.<name>` deployment (`retriever`, `generator` or `ingress`)."""
    return deployment_options(
        getattr(serve, name), f"serve.{name}", serve.health_check_period_s, serve.health_check_timeout_s
    )


def build_application(spec: InferenceSpec, auth_token: str | None = None):
    """The bound application; `auth_token` reaches the ingress replicas through their runtime environment."""
    if spec.index_version is None:
        raise ConfigError("serve.index_version", None, "the index version to serve (resolve_index_version)")
    serve = spec.config.serve
    args = spec.to_args()
    retriever = RetrieverDeployment.options(**serve_options(serve, "retriever")).bind(args)
    generator = generator_deployment(serve.max_adapters_per_replica)
    generator = generator.options(**serve_options(serve, "generator")).bind(args)
    ingress_options = serve_options(serve, "ingress")
    if auth_token and serve.auth_token_env:
        ingress_options["ray_actor_options"]["runtime_env"] = {"env_vars": {serve.auth_token_env: auth_token}}
    return RagIngress.options(**ingress_options).bind(retriever, generator, args)


def build_app(args: dict[str, Any]):
    """Serve application builder: `args` are a resolved `InferenceSpec.to_args()`; the token comes from the replicas'
    environment (`serve.auth_token_env`)."""
    return build_application(InferenceSpec.from_args(args))
