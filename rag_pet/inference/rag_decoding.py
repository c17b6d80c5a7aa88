"""Decoding a RAG model: RAG-Token (greedy or beam) and RAG-Sequence (fast or thorough), after Lewis et al. (2020).

Every question is expanded into K generator rows, one per retrieved passage (row b*K + k). RAG-Token runs the
library's own `generate` over those rows with a logits processor that replaces each row's next-token distribution
by the marginal over the question's K passages; all K rows then choose the same tokens, so they stay in step (beam
search included) and row b*K holds the answer. RAG-Sequence generates a candidate from each passage and ranks the
candidates by p(y|x) = sum_k p(z_k|x) p(y|x,z_k): over the passages that produced y ("fast"), or over all K
("thorough", one more scoring pass per candidate).

A `DecodeClock` passed in timestamps the steps of the one `generate` call (all K rows of a question advance together,
so a step is one token of the answer): time to the first token is prefill of the K rows + first step, per-token time
the later steps. RAG-Sequence's scoring pass comes after the last step, so it counts in the whole answer's time only.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import LogitsProcessor, LogitsProcessorList, PreTrainedTokenizerBase

from rag_pet.data.prompts import collate_prompts, collate_rag
from rag_pet.inference.generation import DecodeClock, first_line
from rag_pet.models.rag import answer_token_logprobs


class MarginalizeOverDocuments(LogitsProcessor):
    """Next-token log-probs marginalised over each question's K passages: log sum_k p(z_k|x) p(y_t|x,z_k,y_<t)."""

    def __init__(self, log_prior: torch.Tensor):
        self.log_prior = log_prior  # (B, K)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        questions, k = self.log_prior.shape
        logprobs = torch.log_softmax(scores.float(), dim=-1).view(questions, k, -1, scores.shape[-1])
        marginal = torch.logsumexp(logprobs + self.log_prior[:, :, None, None].to(logprobs.device), dim=1)
        return marginal[:, None].expand_as(logprobs).reshape(scores.shape).to(scores.dtype)


def _generate(
    generator: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[list[int]],
    is_seq2seq: bool,
    max_new_tokens: int,
    num_beams: int,
    processors: LogitsProcessorList | None = None,
    clock: DecodeClock | None = None,
) -> list[list[int]]:
    """New token ids per row, cut after the first eos."""
    device = next(generator.parameters()).device
    batch = {n: t.to(device) for n, t in collate_prompts(prompts, tokenizer.pad_token_id, left=not is_seq2seq).items()}
    output = generator.generate(
        **batch,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        num_beams=num_beams,
        logits_processor=processors,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        stopping_criteria=clock.criteria() if clock is not None else None,
    )
    new = output if is_seq2seq else output[:, batch["input_ids"].shape[1] :]
    rows = []
    for ids in new.tolist():
        if is_seq2seq and ids and ids[0] == generator.config.decoder_start_token_id:
            ids = ids[1:]
        cut = ids.index(tokenizer.eos_token_id) + 1 if tokenizer.eos_token_id in ids else len(ids)
        rows.append(ids[:cut])
    return rows


def _text(tokenizer: PreTrainedTokenizerBase, ids: list[int]) -> str:
    return first_line(tokenizer.decode(ids, skip_special_tokens=True))


@torch.inference_mode()
def answer_log_likelihoods(
    generator: nn.Module, pad_token_id: int, prompts: list[list[int]], answers: list[list[int]], is_seq2seq: bool
) -> torch.Tensor:
    """log p(answer | prompt) per row, by teacher forcing (the training computation)."""
    device = next(generator.parameters()).device
    features = [{"prompt": p, "answer": a or [pad_token_id]} for p, a in zip(prompts, answers, strict=True)]
    batch = {n: t.to(device) for n, t in collate_rag(features, pad_token_id, is_seq2seq).items()}
    logprobs, _ = answer_token_logprobs(generator, batch, is_seq2seq)
    return logprobs.sum(-1).cpu()


@torch.inference_mode()
def rag_generate(
    generator: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[list[int]],
    log_prior: torch.Tensor,
    is_seq2seq: bool,
    decoding: str,
    max_new_tokens: int,
    num_beams: int = 4,
    clock: DecodeClock | None = None,
) -> list[str]:
    """One answer per question from its K (question ⊕ passage) prompts and (B, K) document log prior; `clock`
    timestamps the decoding steps."""
    generator.eval()
    questions, k = log_prior.shape
    if decoding.startswith("token_"):
        beams = num_beams if decoding == "token_beam" else 1
        processors = LogitsProcessorList([MarginalizeOverDocuments(log_prior)])
        rows = _generate(generator, tokenizer, prompts, is_seq2seq, max_new_tokens, beams, processors, clock)
        return [_text(tokenizer, rows[b * k]) for b in range(questions)]
    rows = _generate(generator, tokenizer, prompts, is_seq2seq, max_new_tokens, 1, clock=clock)
    if decoding == "sequence_fast":
        pairs = [(b * k + j, rows[b * k + j]) for b in range(questions) for j in range(k)]
    else:  # thorough: every distinct candidate of a question under every one of its passages
        pairs = [
            (b * k + j, candidate)
            for b in range(questions)
            for candidate in {tuple(rows[b * k + i]): None for i in range(k)}
            for j in range(k)
        ]
    scores = answer_log_likelihoods(
        generator, tokenizer.pad_token_id, [prompts[row] for row, _ in pairs], [list(a) for _, a in pairs], is_seq2seq
    )
    totals: list[dict[tuple[int, ...], list[torch.Tensor]]] = [{} for _ in range(questions)]
    for (row, answer), score in zip(pairs, scores, strict=True):
        b, j = divmod(row, k)
        totals[b].setdefault(tuple(answer), []).append(log_prior[b, j].cpu() + score)
    best = [max(found, key=lambda a: torch.logsumexp(torch.stack(found[a]), 0).item()) for found in totals]
    return [_text(tokenizer, list(answer)) for answer in best]
