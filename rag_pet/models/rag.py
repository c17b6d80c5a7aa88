"""RAG marginal likelihood (Lewis et al., 2020): a query encoder scores retrieved documents, a generator reads each.

    p(z_k | x)        = softmax_k(q(x) . d(z_k) / temperature)       (document prior over the top-K)
    RAG-Sequence:  p(y | x) = sum_k p(z_k | x) prod_t p(y_t | x, z_k, y_<t)
    RAG-Token:     p(y | x) = prod_t sum_k p(z_k | x) p(y_t | x, z_k, y_<t)

Document vectors come with the search results (frozen document tower) or are re-encoded from the passages' tokens
(trainable document tower), and the prior is recomputed from them here, so the loss's gradient reaches the query
tower through the softmax and the generator (or its adapter) through the per-passage likelihoods.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from torch import nn
from transformers import AutoModel
from transformers.utils import ModelOutput

from rag_pet.config import RagConfig, RetrieverConfig
from rag_pet.data.prompts import last_positions
from rag_pet.models.adaptation import prepends_virtual_tokens
from rag_pet.models.encoder import BiEncoder, build_encoder

QUERY_ENCODER_DIR = "query_encoder"
DOC_ENCODER_DIR = "doc_encoder"
GENERATOR_DIR = "generator"
BERT_ATTENTION = ["query", "key", "value"]


def answer_token_logprobs(
    generator: nn.Module, batch: dict[str, torch.Tensor], is_seq2seq: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """log p(y_t | prompt, y_<t) for every answer token, as (N, T) with its (N, T) mask.

    Decoder-only batches put the answers in the last T columns (`rag_pet.data.prompts.collate_rag`), so only those
    positions are projected onto the vocabulary (`logits_to_keep`): the (N, L, V) logits are never built.
    """
    labels = batch["labels"]
    mask = labels != -100
    tail = labels.shape[1] + 1
    if is_seq2seq:
        logits = generator(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels).logits
    elif prepends_virtual_tokens(generator):
        # peft puts virtual tokens before the input, which moves every position (and drops position_ids): the
        # answer still fills the last T + 1 positions of the logits
        logits = generator(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, -tail:-1]
    else:
        logits = generator(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            position_ids=batch.get("position_ids"),
            logits_to_keep=last_positions(batch["input_ids"].shape[1], tail).to(labels.device),
        ).logits[:, :-1]
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    picked = logprobs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return picked.masked_fill(~mask, 0.0), mask


def document_log_prior(scores: torch.Tensor, doc_mask: torch.Tensor | None, temperature: float) -> torch.Tensor:
    """log p(z_k | x) over the K retrieved documents; missing results (mask False) get probability zero."""
    logits = scores / temperature
    if doc_mask is not None:
        logits = logits.masked_fill(~doc_mask, float("-inf"))
    return torch.log_softmax(logits, dim=-1)


def rag_sequence_nll(log_prior: torch.Tensor, token_logprobs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """-log p(y|x) per question under RAG-Sequence; prior (B, K), token log-probs (B, K, T), mask (B, T)."""
    sequence = (token_logprobs * mask[:, None].to(token_logprobs.dtype)).sum(-1)
    return -torch.logsumexp(log_prior + sequence, dim=1)


def rag_token_nll(log_prior: torch.Tensor, token_logprobs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """-log p(y|x) per question under RAG-Token: the documents are marginalised at every answer token."""
    per_token = torch.logsumexp(log_prior[..., None] + token_logprobs, dim=1)
    return -(per_token * mask.to(per_token.dtype)).sum(-1)


MARGINALS = {"sequence": rag_sequence_nll, "token": rag_token_nll}


@dataclass
class RagOutput(ModelOutput):
    """Mean negative log marginal likelihood over the questions, and the document prior it used."""

    loss: torch.Tensor | None = None
    doc_log_prior: torch.Tensor | None = None


class RagModel(nn.Module):
    """Retriever (bi-encoder) and generator trained as one module, so DDP and DeepSpeed see one set of parameters."""

    def __init__(self, generator: nn.Module, retriever: BiEncoder, is_seq2seq: bool, marginal: str, temperature: float):
        """`marginal`: "sequence" or "token" (`MARGINALS`); `temperature` divides the query-document scores."""
        super().__init__()
        self.generator, self.retriever = generator, retriever
        self.is_seq2seq, self.marginal, self.temperature = is_seq2seq, marginal, temperature

    def doc_log_prior(
        self,
        query_input_ids: torch.Tensor,
        query_attention_mask: torch.Tensor,
        doc_vectors: torch.Tensor | None = None,
        doc_input_ids: torch.Tensor | None = None,
        doc_attention_mask: torch.Tensor | None = None,
        doc_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, K) log prior from the current query tower and the index's (or re-encoded) document vectors."""
        queries = self.retriever.embed(self.retriever.query_tower, query_input_ids, query_attention_mask)
        if doc_input_ids is not None:
            documents = self.retriever.embed(self.retriever.doc_tower, doc_input_ids, doc_attention_mask)
            documents = documents.view(queries.shape[0], -1, documents.shape[-1])
        else:
            documents = doc_vectors.to(queries.dtype)
        scores = torch.einsum("bd,bkd->bk", queries, documents)
        return document_log_prior(scores, doc_mask, self.temperature)

    def forward(
        self,
        query_input_ids: torch.Tensor,
        query_attention_mask: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor,
        position_ids: torch.Tensor | None = None,
        doc_vectors: torch.Tensor | None = None,
        doc_input_ids: torch.Tensor | None = None,
        doc_attention_mask: torch.Tensor | None = None,
        doc_mask: torch.Tensor | None = None,
    ) -> RagOutput:
        """Loss over B questions whose K passages each fill one generator row (row b*K + k)."""
        log_prior = self.doc_log_prior(
            query_input_ids, query_attention_mask, doc_vectors, doc_input_ids, doc_attention_mask, doc_mask
        )
        batch = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
        if position_ids is not None:
            batch["position_ids"] = position_ids
        token_logprobs, mask = answer_token_logprobs(self.generator, batch, self.is_seq2seq)
        questions, k = log_prior.shape
        token_logprobs = token_logprobs.view(questions, k, -1)
        nll = MARGINALS[self.marginal](log_prior, token_logprobs, mask.view(questions, k, -1)[:, 0])
        return RagOutput(loss=nll.mean(), doc_log_prior=log_prior)

    def save_pretrained(self, directory: Path, safe_serialization: bool = True) -> None:
        """The generator (adapter or full model) and every retriever tower that trains, each `save_pretrained`."""
        directory = Path(directory)
        self.generator.save_pretrained(directory / GENERATOR_DIR, safe_serialization=safe_serialization)
        save_trained_towers(self.retriever, directory)


def save_trained_towers(retriever: BiEncoder, directory: Path, only: str | None = None) -> None:
    """`save_pretrained` (adapter or full tower, with the tokenizer) of each retriever tower that trains.

    A shared tower is saved once, as `query_encoder/`; `only="doc"` saves just the tower that encodes documents.
    """
    shared = retriever.doc_tower is retriever.query_tower
    towers = {QUERY_ENCODER_DIR: retriever.query_tower}
    if not shared:
        towers[DOC_ENCODER_DIR] = retriever.doc_tower
    if only == "doc" and not shared:
        towers.pop(QUERY_ENCODER_DIR)
    for name, tower in towers.items():
        if any(parameter.requires_grad for parameter in tower.parameters()):
            tower.save_pretrained(Path(directory) / name, safe_serialization=True)
            retriever.tokenizer.save_pretrained(Path(directory) / name)


def adapt_retriever(retriever: BiEncoder, rag: RagConfig) -> BiEncoder:
    """Make exactly the towers that `rag.query_encoder` / `rag.doc_encoder` name trainable (LoRA on attention)."""
    shared = retriever.doc_tower is retriever.query_tower
    retriever.requires_grad_(False)
    if rag.query_encoder == "lora":
        lora = LoraConfig(r=rag.lora_r, lora_alpha=2 * rag.lora_r, lora_dropout=0.0, target_modules=BERT_ATTENTION)
        retriever.query_tower = get_peft_model(retriever.query_tower, lora)
        if shared:
            retriever.doc_tower = retriever.query_tower
    elif rag.query_encoder == "full":
        retriever.query_tower.requires_grad_(True)
    if rag.doc_encoder == "trainable" and not (shared and rag.query_encoder == "lora"):
        retriever.doc_tower.requires_grad_(True)
    freeze_unused_pooler(retriever)
    return retriever


def freeze_unused_pooler(retriever: BiEncoder) -> None:
    """BERT's pooler head is not part of mean/CLS pooling: it gets no gradient, which DDP would report as an error."""
    for tower in (retriever.query_tower, retriever.doc_tower):
        pooler = getattr(getattr(tower, "base_model", tower), "pooler", None)
        if pooler is not None:
            pooler.requires_grad_(False)


def build_trained_encoder(config: RetrieverConfig, trained_dir: Path | None = None) -> BiEncoder:
    """The configured bi-encoder, with the towers a training run saved in `trained_dir` (if any) put in."""
    encoder = build_encoder(config)
    return load_trained_retriever(encoder, Path(trained_dir)) if trained_dir else encoder


def load_trained_retriever(retriever: BiEncoder, model_dir: Path) -> BiEncoder:
    """Put the towers a RAG or retriever run saved under `model_dir` into a freshly built bi-encoder."""
    shared = retriever.doc_tower is retriever.query_tower
    for name in (QUERY_ENCODER_DIR, DOC_ENCODER_DIR):
        folder = Path(model_dir) / name
        if not folder.is_dir():
            continue
        attribute = "query_tower" if name == QUERY_ENCODER_DIR else "doc_tower"
        if (folder / "adapter_config.json").is_file():
            tower = PeftModel.from_pretrained(getattr(retriever, attribute), folder, is_trainable=False)
        else:
            tower = AutoModel.from_pretrained(folder)
        setattr(retriever, attribute, tower)
        if shared:
            retriever.doc_tower = retriever.query_tower = tower
    return retriever
