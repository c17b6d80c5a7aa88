import shutil

import pytest
import torch

from rag_pet.objectives import objective_of
from rag_pet.training import LocalContext, run_train_loop
from rag_pet.training.checkpoint import read_state
from tests.conftest import train

MEMORISE = ("data.max_train_examples=4", "trainer.batch_size=4", "trainer.lr=3e-2", "trainer.log_every=1")


def run_local(config, storage):
    context = LocalContext(storage, torch.device("cpu"), keep=config.trainer.num_to_keep)
    return run_train_loop(config, context, objective_of(config)), context


def test_lora_loss_goes_down_on_a_memorisable_batch(tiny_config, tmp_path):
    config = tiny_config(*MEMORISE, "trainer.max_steps=30", "trainer.checkpoint_every=30")
    state, context = run_local(config, tmp_path / "ckpt")
    losses = [record["loss"] for record in state["history"]]
    assert len(losses) == 30
    assert losses[-1] < 0.5 * losses[0]
    assert state["trainable_params"] > 0 and state["step"] == 30
    # accounting: 30 steps x 4 examples of real tokens, FLOPs from the parameter counts, this process's peak RSS
    assert state["tokens"] > 30 * 4 * 5
    assert state["flops"] == state["tokens"] * (4 * state["total_params"] + 2 * state["trainable_params"])
    assert state["peak_memory_bytes"] > 100 * 2**20
    assert 100 * 2**20 < state["train_memory_bytes"] <= state["peak_memory_bytes"]
    assert state["mfu"] is None  # no known peak on CPU


def test_full_finetuning_and_seq2seq_also_learn(tiny_config, tmp_path):
    for extra in (["peft=full", "trainer.lr=3e-3"], ["model=tiny_t5"]):
        config = tiny_config(*MEMORISE, "trainer.max_steps=30", "trainer.checkpoint_every=30", *extra)
        state, _ = run_local(config, tmp_path / "_".join(extra))
        losses = [record["loss"] for record in state["history"]]
        assert losses[-1] < 0.7 * losses[0], extra


def test_resumed_run_continues_from_the_last_checkpoint(tiny_config, tmp_path):
    storage = tmp_path / "ckpt"
    first, context = run_local(tiny_config(*MEMORISE, "trainer.max_steps=4", "trainer.checkpoint_every=2"), storage)
    assert [path.name for path in context.checkpoints()] == ["checkpoint_00000002", "checkpoint_00000004"]

    resumed, context = run_local(tiny_config(*MEMORISE, "trainer.max_steps=8", "trainer.checkpoint_every=2"), storage)
    steps = [record["step"] for record in resumed["history"]]
    assert steps == list(range(1, 9))  # history of steps 1-4 restored, 5-8 trained now
    assert resumed["history"][:4] == first["history"]
    assert read_state(context.checkpoints()[-1]).step == 8
    assert len(context.checkpoints()) == 2  # num_to_keep


def test_resuming_from_a_checkpoint_reproduces_the_uninterrupted_run(tiny_config, tmp_path):
    overrides = (
        "data.max_train_examples=8",
        "trainer.batch_size=2",
        "trainer.max_steps=6",
        "trainer.checkpoint_every=3",
        "trainer.num_to_keep=5",
        "trainer.log_every=1",
        "peft.dropout=0",
    )
    straight, context = run_local(tiny_config(*overrides), tmp_path / "straight")
    halfway = context.checkpoints()[0]
    assert halfway.name == "checkpoint_00000003"

    shutil.copytree(halfway, tmp_path / "resumed" / halfway.name)
    resumed, _ = run_local(tiny_config(*overrides), tmp_path / "resumed")
    assert [r["step"] for r in resumed["history"]] == list(range(1, 7))
    assert [r["loss"] for r in resumed["history"]] == pytest.approx([r["loss"] for r in straight["history"]], rel=1e-5)


@pytest.mark.parametrize("method", ["lora", "prompt", "full"])
def test_training_can_start_from_the_weights_an_earlier_run_trained(tiny_config, tmp_path, method):
    from rag_pet.objectives import objective_of
    from rag_pet.training.closed_book import build_adapted_generator

    first = tiny_config(*MEMORISE, f"peft={method}", "trainer.max_steps=3", "trainer.launcher=local")
    model_dir = train(first).model_dir
    trained = objective_of(first).load_generator(first, model_dir).model.eval()

    second = tiny_config(*MEMORISE, f"peft={method}", f"trainer.init_from={model_dir}")
    adapted, _ = build_adapted_generator(second.model, second.peft, 4, second.trainer.init_from)
    assert any(p.requires_grad for p in adapted.parameters())
    tokens = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        torch.testing.assert_close(adapted.eval()(input_ids=tokens).logits, trained(input_ids=tokens).logits)


def test_init_from_refuses_an_adapter_of_another_method_and_a_missing_directory(tiny_config, tmp_path):
    from rag_pet.errors import ConfigError
    from rag_pet.training.closed_book import build_adapted_generator

    lora_dir = train(tiny_config(*MEMORISE, "trainer.max_steps=1", "trainer.launcher=local")).model_dir
    ia3 = tiny_config("peft=ia3", f"trainer.init_from={lora_dir}")
    with pytest.raises(ConfigError, match="trainer.init_from=.*an adapter of IA3 \\(it holds LORA\\)"):
        build_adapted_generator(ia3.model, ia3.peft, 1, ia3.trainer.init_from)
    missing = tiny_config(f"trainer.init_from={tmp_path / 'nothing'}")
    with pytest.raises(ConfigError, match="trainer.init_from=.*final_checkpoint/model"):
        build_adapted_generator(missing.model, missing.peft, 1, missing.trainer.init_from)
    with pytest.raises(ConfigError, match="trainer.init_from.*closed-book"):
        tiny_config("objective=rag", "retriever=tiny", f"trainer.init_from={lora_dir}")
