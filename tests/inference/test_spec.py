"""What a service serves is checked on the driver, before any replica starts."""

import json

import pytest
import torch
import yaml
from peft import IA3Config, LoraConfig, get_peft_model

from rag_pet.config import DeploymentConfig, to_dict
from rag_pet.errors import ConfigError
from rag_pet.inference.spec import resolve_index_version
from rag_pet.models import build_generator
from rag_pet.served_run import resolve_spec
from rag_pet.serving.app import deployment_options
from rag_pet.serving.launch import serve_config_document, write_serve_config
from tests.conftest import compose_config


def save_adapter(config, directory, kind=LoraConfig):
    torch.manual_seed(0)
    settings = (
        kind(target_modules=["q_proj", "v_proj"]) if kind is IA3Config else kind(r=2, target_modules="all-linear")
    )
    if kind is IA3Config:
        settings.feedforward_modules = []
    get_peft_model(build_generator(config.model).model, settings).save_pretrained(directory)
    return directory


def fake_run(tmp_path, config, name="run"):
    """A run directory as training leaves it: config.json and final_checkpoint/model with an adapter."""
    run = tmp_path / name
    save_adapter(config, run / "final_checkpoint" / "model")
    (run / "config.json").write_text(json.dumps(to_dict(config)))
    return run


def test_a_run_is_served_with_its_own_adapter_as_default_and_extra_adapters(tmp_path):
    config = compose_config(["debug=tiny", "experiment_name=mine"], run_dir=tmp_path / "out")
    run = fake_run(tmp_path, config)
    other = save_adapter(config, tmp_path / "other")
    spec = resolve_spec(
        compose_config(["debug=tiny", f"serve.run_dir={run}", f"+serve.adapters.other={other}"], tmp_path / "out")
    )
    assert spec.default_adapter == "mine" and set(spec.adapters) == {"mine", "other"}
    assert spec.adapters["mine"] == str(run / "final_checkpoint" / "model")


@pytest.mark.parametrize(
    ("make", "field", "fix"),
    [
        (lambda tmp, c: ["serve.run_dir=" + str(tmp)], "serve.run_dir", "config.json"),
        (lambda tmp, c: ["+serve.adapters.x=" + str(tmp)], "serve.adapters.x", "adapter_config.json"),
        (lambda tmp, c: ["+serve.adapters.base=" + str(save_adapter(c, tmp / "b"))], "serve.adapters.base", "base"),
    ],
)
def test_bad_serve_inputs_name_the_field(tmp_path, make, field, fix):
    config = compose_config(["debug=tiny"], run_dir=tmp_path / "out")
    with pytest.raises(ConfigError, match=field) as error:
        resolve_spec(compose_config(["debug=tiny", *make(tmp_path, config)], run_dir=tmp_path / "out"))
    assert fix in str(error.value)


def test_an_adapter_trained_on_another_base_model_is_refused(tmp_path):
    other_base = compose_config(["debug=tiny", "model.hidden_size=48"], run_dir=tmp_path / "out")
    run = fake_run(tmp_path, other_base)
    with pytest.raises(ConfigError, match="serve.adapters.wide"):
        resolve_spec(compose_config(["debug=tiny", f"+serve.adapters.wide={run}"], run_dir=tmp_path / "out"))


def test_adapters_of_different_peft_types_are_refused(tmp_path):
    config = compose_config(["debug=tiny"], run_dir=tmp_path / "out")
    lora, ia3 = save_adapter(config, tmp_path / "lora"), save_adapter(config, tmp_path / "ia3", IA3Config)
    overrides = ["debug=tiny", f"+serve.adapters.a={lora}", f"+serve.adapters.b={ia3}"]
    with pytest.raises(ConfigError, match="one PEFT type"):
        resolve_spec(compose_config(overrides, run_dir=tmp_path / "out"))


def test_a_pinned_index_version_built_for_another_retriever_is_refused(tmp_path, ray_local):
    base = ["debug=tiny", "retriever=tiny", "corpus.max_passages=16", f"index.storage_path={tmp_path / 'ix'}"]
    built = resolve_index_version(resolve_spec(compose_config(base, run_dir=tmp_path / "out")))
    assert built == 1
    other = compose_config([*base, "retriever.init_seed=5", "serve.index_version=1"], run_dir=tmp_path / "out")
    with pytest.raises(ConfigError, match="serve.index_version") as error:
        resolve_index_version(resolve_spec(other))
    assert "other document-encoder weights" in str(error.value)


def test_the_written_serve_config_file_is_a_valid_serve_deploy_config(tmp_path):
    config = compose_config(["debug=tiny", "serve.port=8123"], run_dir=tmp_path / "out")
    spec = resolve_spec(config)
    spec.index_version = 1
    path = write_serve_config(spec, config.serve.host, config.serve.port)
    document = yaml.safe_load(path.read_text())
    assert document == serve_config_document(spec, config.serve.host, config.serve.port)
    application = document["applications"][0]
    assert application["import_path"] == "rag_pet.serving.app:build_app"
    assert document["http_options"] == {"host": "127.0.0.1", "port": 8123}
    assert application["args"]["index_version"] == 1


def test_deployment_options_come_from_config_and_bad_autoscaling_names_its_field():
    options = deployment_options(DeploymentConfig(num_replicas=3, num_cpus=2), "serve.generator", 5.0, 20.0)
    assert options["num_replicas"] == 3 and options["ray_actor_options"]["num_cpus"] == 2
    scaled = deployment_options(
        DeploymentConfig(autoscaling={"min_replicas": 1, "max_replicas": 4}), "serve.generator", 5.0, 20.0
    )
    assert scaled["autoscaling_config"]["max_replicas"] == 4 and "num_replicas" not in scaled
    with pytest.raises(ConfigError, match="serve.generator.autoscaling"):
        deployment_options(
            DeploymentConfig(autoscaling={"min_replicas": 3, "max_replicas": 1}), "serve.generator", 5, 20
        )
