"""Bi-encoder retriever: query and document towers (shared or separate weights), mean or CLS pooling."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import torch
from torch import nn
from transformers import AutoModel, AutoTokenizer, BertConfig, PreTrainedTokenizerBase

from rag_pet.config import RetrieverConfig
from rag_pet.errors import ConfigError
from rag_pet.models.pretrained import minilm_dir


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Sentence vectors from token states: the mask-weighted mean, or the first ([CLS]) token."""
    if pooling == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


class BiEncoder(nn.Module):
    """Encodes queries and documents into one vector space; the query tower is what joint RAG training updates."""

    def __init__(
        self,
        query_tower: nn.Module,
        doc_tower: nn.Module,
        tokenizer: PreTrainedTokenizerBase,
        config: RetrieverConfig,
        name: str,
    ):
        super().__init__()
        self.query_tower, self.doc_tower, self.tokenizer = query_tower, doc_tower, tokenizer
        self.config, self.name = config, name

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return self.doc_tower.config.hidden_size

    def tokenize(self, texts: list[str], max_length: int) -> dict[str, torch.Tensor]:
        """Padded, truncated token tensors of `texts` for either tower."""
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}

    def embed(self, tower: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Pooled (and, if configured, normalised) vectors of tokenised texts through one tower."""
        hidden = tower(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        vectors = pool(hidden, attention_mask, self.config.pooling)
        return nn.functional.normalize(vectors, dim=-1) if self.config.normalize else vectors

    def _encode(self, tower: nn.Module, texts: list[str], max_length: int) -> torch.Tensor:
        device = next(tower.parameters()).device
        batch = {name: tensor.to(device) for name, tensor in self.tokenize(texts, max_length).items()}
        return self.embed(tower, **batch)

    def encode_queries(self, texts: list[str]) -> torch.Tensor:
        """Query vectors (differentiable: call under `torch.no_grad()` for inference)."""
        return self._encode(self.query_tower, texts, self.config.query_max_length)

    def encode_documents(self, texts: list[str]) -> torch.Tensor:
        """Document vectors."""
        return self._encode(self.doc_tower, texts, self.config.doc_max_length)

    def doc_weights_hash(self) -> str:
        """sha256 over the document tower's parameters: an index is only valid for the weights that built it."""
        digest = hashlib.sha256()
        for name, tensor in sorted(self.doc_tower.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()


def _tiny_tower(config: RetrieverConfig, vocab_size: int) -> nn.Module:
    bert = BertConfig(
        vocab_size=vocab_size,
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        intermediate_size=config.hidden_size * 2,
        max_position_embeddings=512,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.init_seed)
        return AutoModel.from_config(bert)


def encoder_source(config: RetrieverConfig) -> tuple[str, Path]:
    """The encoder's name (for manifests) and the directory its tokenizer (and weights) come from."""
    if config.source == "path":
        path = Path(config.path).expanduser()
        if not (path / "config.json").is_file():
            raise ConfigError("retriever.path", config.path, "a local directory holding a transformers config.json")
        return str(path), path
    name = "all-MiniLM-L6-v2" if config.source == "minilm" else f"tiny-bert-{config.hidden_size}x{config.num_layers}"
    return name, minilm_dir()


def build_encoder(config: RetrieverConfig) -> BiEncoder:
    """Load (or, for `source=tiny`, initialise) the bi-encoder."""
    name, directory = encoder_source(config)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    if config.source == "tiny":
        query_tower = _tiny_tower(config, len(tokenizer))
    else:
        query_tower = AutoModel.from_pretrained(directory)
    doc_tower = query_tower if config.shared else copy.deepcopy(query_tower)
    return BiEncoder(query_tower, doc_tower, tokenizer, config, name)
