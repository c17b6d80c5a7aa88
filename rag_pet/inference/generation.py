"""Batched greedy answer generation for decoder-only and encoder-decoder generators, and a clock that times its
decoding steps."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase, StoppingCriteria, StoppingCriteriaList

from rag_pet.data.prompts import collate_prompts


class DecodeClock(StoppingCriteria):
    """Timestamps every decoding step of `generate` and never stops it: transformers asks its stopping criteria once
    a step, right after the step's tokens are chosen (greedy, sampling and beam search alike), so the first stamp
    ends prefill + first token and the gaps between stamps are the per-token decoding cost, whatever the length."""

    def __init__(self, timer: Callable[[], float] = time.perf_counter):
        self.timer = timer
        self.started = timer()
        self.steps: list[float] = []

    def start(self) -> None:
        """Start timing an answer now (before its prompt is batched); forgets earlier steps."""
        self.started, self.steps = self.timer(), []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        if input_ids.is_cuda:  # the step's kernels are done, not only queued
            torch.cuda.synchronize(input_ids.device)
        self.steps.append(self.timer())
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    @property
    def tokens(self) -> int:
        """Decoding steps run (new tokens per row, the eos included)."""
        return len(self.steps)

    @property
    def first_token_s(self) -> float | None:
        """Seconds from `start` to the first new token (prompt batching, prefill, first token); None before it."""
        return self.steps[0] - self.started if self.steps else None

    @property
    def seconds_per_token(self) -> float | None:
        """Mean seconds of a decoding step after the first; None with fewer than 2 steps."""
        return (self.steps[-1] - self.steps[0]) / (len(self.steps) - 1) if len(self.steps) > 1 else None

    def criteria(self) -> StoppingCriteriaList:
        """This clock as `generate`'s `stopping_criteria`."""
        return StoppingCriteriaList([self])


def first_line(text: str) -> str:
    """The answer part of a generation: up to the first newline, stripped."""
    return text.strip().split("\n", 1)[0].strip()


@torch.inference_mode()
def generate_answers(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[list[int]],
    is_seq2seq: bool,
    batch_size: int,
    max_new_tokens: int,
    device: torch.device,
    clock: DecodeClock | None = None,
) -> list[str]:
    """Greedy answers for tokenised prompts, in order; `clock` timestamps the decoding steps."""
    model.eval()
    answers: list[str] = []
    for start in range(0, len(prompts), batch_size):
        batch = collate_prompts(prompts[start : start + batch_size], tokenizer.pad_token_id, left=not is_seq2seq)
        batch = {name: tensor.to(device) for name, tensor in batch.items()}
        output = model.generate(
            **batch,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            stopping_criteria=clock.criteria() if clock is not None else None,
        )
        new_tokens = output if is_seq2seq else output[:, batch["input_ids"].shape[1] :]
        answers.extend(first_line(text) for text in tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
    return answers
