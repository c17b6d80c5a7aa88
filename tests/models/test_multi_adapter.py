import torch
from peft import LoraConfig, get_peft_model

from rag_pet.config import ModelConfig
from rag_pet.models import attach_adapter, build_generator
from rag_pet.models.multi_adapter import AdapterSwitch, LoadedAdapter

TINY = ModelConfig(source="tiny", arch="llama", hidden_size=32, num_layers=2, num_heads=4)
INPUTS = torch.tensor([[5, 17, 99, 1024, 7]])


def save_adapter(seed: int, directory) -> str:
    torch.manual_seed(seed)
    lora = LoraConfig(r=4, lora_alpha=16, target_modules="all-linear", init_lora_weights=False)
    get_peft_model(build_generator(TINY).model, lora).save_pretrained(directory)
    return str(directory)


def logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=INPUTS).logits


def test_each_slot_reproduces_its_adapter_and_none_the_base_model(tmp_path):
    paths = [save_adapter(seed, tmp_path / f"a{seed}") for seed in (1, 2)]
    expected = [logits(attach_adapter(build_generator(TINY).model, path)) for path in paths]
    base_logits = logits(build_generator(TINY).model)

    switch = AdapterSwitch(build_generator(TINY).model)
    slots = [switch.load(path, f"a{number}") for number, path in enumerate(paths)]
    for slot, want in zip(slots, expected, strict=True):
        with switch.active(slot) as model:
            torch.testing.assert_close(logits(model), want)
    with switch.active(None) as model:
        torch.testing.assert_close(logits(model), base_logits)
    assert not torch.allclose(expected[0], expected[1])


def test_unloading_frees_a_slot_and_the_same_adapter_loads_again(tmp_path):
    path = save_adapter(1, tmp_path / "a")
    want = logits(attach_adapter(build_generator(TINY).model, path))
    switch = AdapterSwitch(build_generator(TINY).model)
    loaded = LoadedAdapter(switch, switch.load(path, "a"))
    first = loaded.slot
    loaded.__del__()  # what Serve's LRU does when it evicts the adapter
    loaded.__del__()  # and again when the object is collected: harmless
    assert switch.loaded == []
    with switch.active(None) as model:
        torch.testing.assert_close(logits(model), logits(build_generator(TINY).model))
    again = switch.load(path, "a")
    assert again != first and switch.loaded == [again]
    with switch.active(again) as model:
        torch.testing.assert_close(logits(model), want)


def test_an_adapter_named_after_a_study_cell_loads(tmp_path):
    """A study cell's experiment name (`default.rag_lora-seed0`) holds a dot, which peft refuses in a module name."""
    path = save_adapter(1, tmp_path / "a")
    want = logits(attach_adapter(build_generator(TINY).model, path))
    switch = AdapterSwitch(build_generator(TINY).model)
    slot = switch.load(path, "default.rag_lora-seed0")
    with switch.active(slot) as model:
        torch.testing.assert_close(logits(model), want)
