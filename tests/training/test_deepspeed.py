"""DeepSpeed ZeRO in the train loop: its JSON, ZeRO-2/3 on 2 Ray Train workers against DDP, resume and export."""

import shutil

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from rag_pet.errors import ConfigError
from rag_pet.models import attach_adapter, build_generator
from rag_pet.objectives import objective_of
from rag_pet.training import LocalContext, run_train_loop
from rag_pet.training.deepspeed_engine import deepspeed_json
from rag_pet.training.export import consolidated_state_dict, export_deepspeed_checkpoint
from tests.conftest import compose_config, train

# 8 examples = one optimizer step of 2 workers x 2 micro-batches x batch 2; no dropout, so runs are comparable
COMPARABLE = (
    "trainer.num_workers=2",
    "trainer.cpus_per_worker=1",
    "trainer.batch_size=2",
    "trainer.grad_accum_steps=2",
    "trainer.max_steps=4",
    "trainer.log_every=1",
    "trainer.checkpoint_every=2",
    "peft.dropout=0",
)


def test_deepspeed_json_follows_the_trainer_and_deepspeed_groups(tiny_config):
    config = tiny_config(
        "deepspeed=zero3_offload",
        "trainer.precision=bf16",
        "trainer.grad_accum_steps=4",
        "trainer.max_grad_norm=0.5",
        "+deepspeed.config={zero_optimization: {reduce_bucket_size: 1000}}",
    )
    ds = deepspeed_json(config.trainer, config.deepspeed)
    assert ds["train_micro_batch_size_per_gpu"] == config.trainer.batch_size
    assert ds["gradient_accumulation_steps"] == 4 and ds["gradient_clipping"] == 0.5
    assert ds["bf16"] == {"enabled": True} and ds["fp16"] == {"enabled": False}
    zero = ds["zero_optimization"]
    assert zero["stage"] == 3 and zero["reduce_bucket_size"] == 1000  # the override merges, it does not replace
    assert zero["offload_optimizer"]["device"] == "cpu" and zero["offload_param"]["device"] == "cpu"
    assert ds["optimizer"]["params"]["torch_adam"] is True and ds["zero_force_ds_cpu_optimizer"] is False


def save_tiny_model(config, directory):
    """The tiny model as a local checkpoint: loaded with `model=hf_path`, ZeRO-3 builds it partitioned (zero.Init)."""
    generator = build_generator(config.model)
    generator.model.save_pretrained(directory)
    generator.tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def ddp_on_two_ray_workers(ray_local, tmp_path_factory):
    """The tiny model saved as a checkpoint, and the plain DDP run on 2 Ray Train workers each ZeRO stage is held
    to (trained once for the module)."""
    root = tmp_path_factory.mktemp("two_workers")
    model_dir = save_tiny_model(compose_config(["debug=tiny"], run_dir=root / "unused"), root / "tiny_model")
    overrides = ["debug=tiny", "model=hf_path", f"model.path={model_dir}", *COMPARABLE, "deepspeed=disabled"]
    return model_dir, train(compose_config(overrides, run_dir=root / "disabled"))


# Both stages repeat the DDP run on 2 workers (with -m slow); the default suite trains and exports every stage on one.
@pytest.mark.slow
@pytest.mark.parametrize("stage", ["zero2", "zero3"])
def test_zero_on_two_ray_workers_matches_ddp(ddp_on_two_ray_workers, tmp_path, stage):
    model_dir, ddp = ddp_on_two_ray_workers
    ddp_losses = [record["loss"] for record in ddp.state.history]
    assert len(ddp_losses) == 4 and ddp_losses[-1] < ddp_losses[0]
    overrides = ["debug=tiny", "model=hf_path", f"model.path={model_dir}", *COMPARABLE, f"deepspeed={stage}"]
    result = train(compose_config(overrides, run_dir=tmp_path / stage))
    assert [record["loss"] for record in result.state.history] == pytest.approx(ddp_losses, rel=1e-4)
    state_dir = result.checkpoint_dir / "deepspeed" / "state"
    assert sorted(path.name for path in state_dir.glob("zero_pp_rank_*_optim_states.pt")) == [
        "zero_pp_rank_0_mp_rank_00_optim_states.pt",
        "zero_pp_rank_1_mp_rank_00_optim_states.pt",
    ]  # both workers' partitions merged into one checkpoint
    exported = load_file(result.model_dir / "adapter_model.safetensors")
    reference = load_file(ddp.model_dir / "adapter_model.safetensors")
    assert exported.keys() == reference.keys()
    for name, tensor in reference.items():
        torch.testing.assert_close(exported[name], tensor, rtol=1e-3, atol=1e-5)
    # the consolidated adapter loads the way evaluation loads any adapter, and predicts like DDP's
    tokens = torch.arange(3, 19).reshape(2, 8)
    logits = {}
    for name, run in (("ddp", ddp), (stage, result)):
        base = AutoModelForCausalLM.from_pretrained(model_dir)
        model = attach_adapter(base, run.model_dir).eval()
        with torch.no_grad():
            logits[name] = model(input_ids=tokens).logits
    torch.testing.assert_close(logits[stage], logits["ddp"], rtol=1e-3, atol=1e-4)


@pytest.mark.slow  # DeepSpeed first compiles its CPU communication op: a minute on a fresh clone
@pytest.mark.parametrize(
    "overrides",
    [
        ("deepspeed=zero0",),
        ("deepspeed=zero1",),
        ("deepspeed=zero2", "trainer.precision=bf16"),
        ("deepspeed=zero3_offload",),
    ],
)
def test_every_stage_offload_and_bf16_learn_and_export(tiny_config, overrides):
    config = tiny_config(
        *overrides,
        "trainer.launcher=local",
        "data.max_train_examples=4",
        "trainer.batch_size=4",
        "trainer.lr=3e-2",
        "trainer.max_steps=12",
        "trainer.log_every=1",
        "trainer.checkpoint_every=12",
    )
    result = train(config)
    losses = [record["loss"] for record in result.state.history]
    assert losses[-1] < 0.7 * losses[0]
    adapter = load_file(result.model_dir / "adapter_model.safetensors")
    assert adapter and all(torch.isfinite(tensor).all() for tensor in adapter.values())
    assert any(tensor.abs().sum() > 0 for name, tensor in adapter.items() if "lora_B" in name)  # B starts at zero


@pytest.mark.slow  # DeepSpeed first compiles its CPU communication op: a minute on a fresh clone
def test_deepspeed_resume_reproduces_the_uninterrupted_run(tiny_config, tmp_path):
    overrides = (
        "deepspeed=zero3",
        "data.max_train_examples=8",
        "trainer.batch_size=2",
        "trainer.max_steps=4",
        "trainer.checkpoint_every=2",
        "trainer.log_every=1",
        "trainer.num_to_keep=3",
        "peft.dropout=0",
    )
    straight_context = LocalContext(tmp_path / "straight", torch.device("cpu"), keep=3)
    config = tiny_config(*overrides)
    straight = run_train_loop(config, straight_context, objective_of(config))
    halfway = straight_context.checkpoints()[0]
    assert halfway.name == "checkpoint_00000002"
    shutil.copytree(halfway, tmp_path / "resumed" / halfway.name)
    resumed = run_train_loop(config, LocalContext(tmp_path / "resumed", torch.device("cpu")), objective_of(config))
    assert [r["loss"] for r in resumed["history"]] == pytest.approx([r["loss"] for r in straight["history"]], rel=1e-5)


@pytest.mark.slow  # DeepSpeed first compiles its CPU communication op: a minute on a fresh clone
def test_full_finetuning_under_zero3_exports_a_loadable_model(tiny_config, tmp_path):
    config = tiny_config("deepspeed=zero3", "peft=full", "trainer.launcher=local", "trainer.max_steps=2")
    result = train(config)
    consolidated = consolidated_state_dict(result.checkpoint_dir, zero_stage=3)
    model = AutoModelForCausalLM.from_pretrained(result.model_dir)
    initial = build_generator(config.model).model.state_dict()
    trained = model.state_dict()
    name = "model.layers.0.self_attn.q_proj.weight"
    torch.testing.assert_close(trained[name], consolidated[name])
    assert not torch.equal(trained[name], initial[name])
    # exporting again is idempotent and atomic: the directory is replaced whole
    export_deepspeed_checkpoint(result.checkpoint_dir, objective_of(config).build_model(config), zero_stage=3)
    torch.testing.assert_close(AutoModelForCausalLM.from_pretrained(result.model_dir).state_dict()[name], trained[name])


@pytest.mark.slow  # DeepSpeed first compiles its CPU communication op: a minute on a fresh clone
def test_resuming_with_the_other_engine_is_a_config_error(tiny_config, tmp_path):
    overrides = ("trainer.launcher=local", f"trainer.storage_path={tmp_path / 'ckpt'}", "trainer.max_steps=2")
    train(tiny_config(*overrides))
    with pytest.raises(ConfigError, match="deepspeed.enabled=True is invalid; allowed: false, as in the run"):
        train(tiny_config(*overrides, "deepspeed=zero2", "trainer.max_steps=4"))
