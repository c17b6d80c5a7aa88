"""Batched greedy answer generation for decoder-only and encoder-decoder generators."""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from rag_pet.data.prompts import collate_prompts


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
) -> list[str]:
    """Greedy answers for tokenised prompts, in order."""
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
        )
        new_tokens = output if is_seq2seq else output[:, batch["input_ids"].shape[1] :]
        answers.extend(first_line(text) for text in tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
    return answers
