"""The Serve application: Retriever and Generator deployments behind the RagPipeline HTTP ingress.

`build_app` is an application builder in Serve's sense (`import_path: rag_pet.serving.app:build_app` with `args`),
so a written Serve config file deploys with `serve deploy` or a KubeRay RayService exactly what `jobs.serve` runs.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from ray.serve.config import AutoscalingConfig
from ray.serve.schema import DeploymentSchema

from rag_pet.config.schema import DeploymentConfig
from rag_pet.errors import RagPetConfigError
from rag_pet.serving.deployments import RetrieverDeployment, generator_deployment
from rag_pet.serving.ingress import RagIngress
from rag_pet.serving.spec import ServeSpec

IMPORT_PATH = "rag_pet.serving.app:build_app"


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
        except (ValidationError, TypeError, ValueError) as err:
            message = str(err).strip().splitlines()[-1]
            raise RagPetConfigError(f"{field}.autoscaling", settings.autoscaling, message) from None
        options["autoscaling_config"] = dict(settings.autoscaling)
    else:
        options["num_replicas"] = settings.num_replicas
    try:
        DeploymentSchema(name=field, **options)
    except ValidationError as err:
        raise RagPetConfigError(field, settings, str(err).strip().splitlines()[-1]) from None
    return options


def build_application(spec: ServeSpec, auth_token: str | None = None):
    """The bound application; `auth_token` reaches the ingress replicas through their runtime environment."""
    if spec.index_version is None:
        raise RagPetConfigError("serve.index_version", None, "the index version to serve (resolve_index_version)")
    serve = spec.config.serve
    args = spec.to_args()

    def options(name: str) -> dict:
        settings = getattr(serve, name)
        return deployment_options(settings, f"serve.{name}", serve.health_check_period_s, serve.health_check_timeout_s)

    retriever = RetrieverDeployment.options(**options("retriever")).bind(args, spec.index_version)
    generator = generator_deployment(serve.max_adapters_per_replica).options(**options("generator")).bind(args)
    ingress_options = options("ingress")
    if auth_token and serve.auth_token_env:
        ingress_options["ray_actor_options"]["runtime_env"] = {"env_vars": {serve.auth_token_env: auth_token}}
    return RagIngress.options(**ingress_options).bind(retriever, generator, args)


def build_app(args: dict[str, Any]):
    """Serve application builder: `args` are a resolved `ServeSpec.to_args()`; the token comes from the replicas'
    environment (`serve.auth_token_env`)."""
    return build_application(ServeSpec.from_args(args))
