import pytest
from transformers import CodeGenConfig

from rag_pet.errors import ConfigError, DataFormatError
from rag_pet.models import build_tokenizer
from rag_pet.training.launcher import cpus_per_worker, storage_location
from tests.conftest import train


@pytest.mark.parametrize(
    ("requested", "workers", "nodes", "expected"),
    [
        (0.5, 2, [2.0], 0.5),  # an explicit reservation is kept
        (None, 1, [2.0], 2.0),  # one worker takes the machine
        (None, 2, [2.0], 1.0),  # two share it
        (None, 4, [2.0], 1.0),  # never below one CPU
        (None, 2, [8.0, 8.0, 8.0], 8.0),  # a share never exceeds what one node has
    ],
)
def test_cpus_per_worker(requested, workers, nodes, expected):
    assert cpus_per_worker(requested, workers, nodes) == expected


@pytest.mark.parametrize(
    ("workers", "reserved", "expected"),
    [(1, 0.5, 1.5), (1, 1.5, 0.5), (2, 0.5, 0.75)],  # RAG shards (and a re-index encoder) must still fit 2 CPUs
)
def test_cpus_per_worker_leaves_room_for_the_runs_own_actors(workers, reserved, expected):
    share = cpus_per_worker(None, workers, [2.0], reserved)
    assert share == expected and share * workers + reserved <= 2.0


def test_storage_location_keeps_uris_and_resolves_paths(tiny_config, tmp_path):
    assert storage_location(tiny_config("trainer.storage_path=s3://bucket/runs")) == "s3://bucket/runs"
    assert storage_location(tiny_config()) == str((tmp_path / "run" / "checkpoints").resolve())


def test_bad_training_data_fails_before_ray_starts(tiny_config, tmp_path):
    # The user's own error, raised in this process, not a worker failure wrapped by Ray Train.
    (tmp_path / "train.jsonl").write_text('{"question": "q?", "answers": ["a"]}\n{"question": 3}\n')
    with pytest.raises(DataFormatError, match=r"train.jsonl:2: field 'question'"):
        train(tiny_config("data=jsonl", f"data.path={tmp_path}"))


def test_too_few_examples_for_the_workers_is_a_config_error(tiny_config):
    with pytest.raises(ConfigError, match=r"data.max_train_examples=8 .* >= trainer.batch_size x workers = 16"):
        train(tiny_config("trainer.num_workers=2", "trainer.batch_size=8"))


def test_a_target_module_the_model_lacks_fails_before_ray_starts(tiny_config):
    with pytest.raises(ConfigError, match=r"peft.target_modules=\['nope'\] .* not found in the base model"):
        train(tiny_config("peft.target_modules=[nope]"))


def test_a_method_peft_lacks_for_the_architecture_fails_before_ray_starts(tiny_config, tmp_path):
    model_dir = tmp_path / "codegen"  # peft has LoRA but no IA3 defaults for CodeGen
    CodeGenConfig(n_layer=1, n_embd=32, n_head=4, vocab_size=30522).save_pretrained(model_dir)
    build_tokenizer(tiny_config().model).save_pretrained(model_dir)
    config = tiny_config("model=hf_path", f"model.path={model_dir}", "peft=ia3", "peft.target_modules=null")
    with pytest.raises(ConfigError) as caught:
        train(config)
    message = str(caught.value)
    assert message.startswith("config error: peft.method='ia3' is invalid; allowed: a method peft supports for codegen")
    assert "\n" not in message


@pytest.mark.parametrize(("assigned", "threads"), [(1.0, 1), (1.5, 2), (0.25, 1), (2.0, 2)])
def test_a_worker_computes_on_the_cpus_it_holds_rounded_up(assigned, threads, monkeypatch):
    from rag_pet.training import ray_context

    monkeypatch.setattr(ray_context.os, "cpu_count", lambda: 2)
    assert ray_context.worker_threads(assigned) == threads
    assert ray_context.worker_threads(64.0) == 2  # never more than the machine has
