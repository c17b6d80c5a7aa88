"""Many PEFT adapters on one base model: loaded and unloaded by id, one switched on per generation.

peft keeps several adapters of one kind in a `PeftModel` (`load_adapter`, `set_adapter`, `delete_adapter`,
`disable_adapter`); this class adds the lock that keeps a generation and a load or unload from interleaving when
requests for different adapters are served from threads.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from peft import PeftModel
from torch import nn
from transformers import PreTrainedModel

from rag_pet.naming import safe_name


class AdapterSwitch:
    """The base model and the adapters loaded onto it, each under a unique slot name."""

    def __init__(self, base: PreTrainedModel):
        self.base = base
        self.peft: PeftModel | None = None
        self.lock = threading.RLock()
        self._slots = itertools.count()

    def load(self, directory: str, adapter_id: str) -> str:
        """Load the adapter saved in `directory`; the slot name to activate (and later unload) it by. Any id will
        do: the slot keeps only what peft allows in a module name (a study cell's `default.lora-seed0` has a dot)."""
        slot = f"{safe_name(adapter_id, keep='-', empty='adapter')}-{next(self._slots)}"
        with self.lock:
            if self.peft is None:
                self.peft = PeftModel.from_pretrained(self.base, directory, adapter_name=slot, is_trainable=False)
            else:
                self.peft.load_adapter(directory, adapter_name=slot, is_trainable=False)
            self.peft.eval()
        return slot

    def unload(self, slot: str) -> None:
        """Free an adapter's weights; unloading twice is harmless."""
        with self.lock:
            if self.peft is not None and slot in self.peft.peft_config:
                self.peft.delete_adapter(slot)

    @property
    def loaded(self) -> list[str]:
        """Slot names of the adapters in memory."""
        return list(self.peft.peft_config) if self.peft is not None else []

    @contextmanager
    def active(self, slot: str | None) -> Iterator[nn.Module]:
        """Hold the lock and yield the module that generates with `slot` switched on (None: the base model)."""
        with self.lock:
            if not self.loaded:  # nothing loaded (any more): the adapter layers, if injected, pass inputs through
                if slot is not None:
                    raise KeyError(f"adapter slot {slot!r} is not loaded")
                yield self.base
            elif slot is None:
                with self.peft.disable_adapter():
                    yield self.peft
            else:
                self.peft.set_adapter(slot)
                yield self.peft


class LoadedAdapter:
    """An adapter in an `AdapterSwitch`; deleting it (as Serve's multiplexing LRU does on eviction) unloads it."""

    def __init__(self, switch: AdapterSwitch, slot: str):
        self.switch, self.slot = switch, slot

    def __del__(self) -> None:
        self.switch.unload(self.slot)
