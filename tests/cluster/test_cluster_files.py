"""The files in `cluster/` are what a user deploys: each parses, names entry points and configs that exist, pins the
Ray this project runs, and the RayService carries the Serve config `jobs.serve` writes."""

import re
import shlex
from pathlib import Path

import pytest
import ray
import yaml
from ray.serve.schema import ServeDeploySchema

from rag_pet.experiment_config import compose_experiment
from rag_pet.served_run import resolve_spec
from rag_pet.serving.launch import serve_config_document
from tests.conftest import CONF_DIR, compose_config

ROOT = CONF_DIR.parent
CLUSTER = ROOT / "cluster"
MANIFESTS = sorted(CLUSTER.glob("*.yaml"))
JOB_COMMAND = re.compile(r"python -m jobs\.(\w+)((?: [^\s<>`]+)*)")
GROUP_CHOICE = re.compile(r"^(experiment|sweep|study|model|peft|deepspeed)=(\w+)$")


def yaml_documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def job_commands(text: str) -> list[tuple[str, list[str]]]:
    return [(match[1], shlex.split(match[2])) for match in JOB_COMMAND.finditer(text)]


@pytest.mark.parametrize("path", MANIFESTS, ids=[p.name for p in MANIFESTS])
def test_every_cluster_file_parses_and_names_jobs_and_configs_that_exist(path):
    assert yaml_documents(path)
    commands = job_commands(path.read_text())
    assert commands, f"{path.name} names no job"
    for job, overrides in commands:
        assert (ROOT / "jobs" / f"{job}.py").is_file(), job
        for override in overrides:
            if match := GROUP_CHOICE.match(override):
                assert (CONF_DIR / match[1] / f"{match[2]}.yaml").is_file(), override


def test_the_kubernetes_files_run_this_ray_on_the_image_the_dockerfile_builds():
    dockerfile = (CLUSTER / "Dockerfile").read_text()
    assert f"FROM rayproject/ray:{ray.__version__}-" in dockerfile
    for source in re.findall(r"^COPY (?:--\S+ )*(.+) \S+$", dockerfile, flags=re.M):
        for name in source.split():
            assert (ROOT / name).exists(), name
    for name in ("rayjob-train.yaml", "rayservice-rag.yaml"):
        (manifest,) = yaml_documents(CLUSTER / name)
        spec = manifest["spec"].get("rayClusterSpec") or manifest["spec"]["rayClusterConfig"]
        assert spec["rayVersion"] == ray.__version__
        groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
        images = {c["image"] for group in groups for c in group["template"]["spec"]["containers"]}
        assert images == {"YOUR-REGISTRY/rag_pet:latest"}
    (launcher,) = yaml_documents(CLUSTER / "ray-cluster.yaml")
    assert launcher["docker"]["image"] == "YOUR-REGISTRY/rag_pet:latest"


def test_the_rayjob_entrypoint_composes_as_jobs_train_would(tmp_path):
    (manifest,) = yaml_documents(CLUSTER / "rayjob-train.yaml")
    ((job, overrides),) = job_commands(manifest["spec"]["entrypoint"])
    config = compose_experiment(CONF_DIR, [*overrides, f"run_dir={tmp_path}"], "entrypoint")
    assert job == "train" and config.trainer.use_gpu and config.trainer.num_workers == 4


def test_the_rayservice_serve_config_is_the_one_jobs_serve_writes(tmp_path):
    (manifest,) = yaml_documents(CLUSTER / "rayservice-rag.yaml")
    deployed = yaml.safe_load(manifest["spec"]["serveConfigV2"])
    ServeDeploySchema.model_validate(deployed)
    spec = resolve_spec(compose_config(["debug=tiny", "serve.host=0.0.0.0"], run_dir=tmp_path))
    spec.index_version = 1
    written = serve_config_document(spec, spec.config.serve.host, spec.config.serve.port)
    for document in (deployed, written):
        document["applications"][0].pop("args")  # a run's own: pasted from its serve_config.yaml, as the file says
    assert deployed == written
