"""Generator loading: tiny models from a config (tests), the bundled SmolLM2, or any local HF model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    LlamaConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    T5Config,
)

from rag_pet.config import ModelConfig
from rag_pet.errors import ConfigError
from rag_pet.models.pretrained import minilm_dir, smollm2_dir

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class Generator:
    """A language model with its tokenizer, and whether it is an encoder-decoder."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    is_seq2seq: bool


def weights_dir(config: ModelConfig) -> Path | None:
    """The directory the generator's pretrained weights come from; None for a tiny model built from config."""
    if config.source == "smollm2":
        return smollm2_dir()
    if config.source == "path":
        path = Path(config.path).expanduser()
        if not (path / "config.json").is_file():
            raise ConfigError("model.path", config.path, "a local directory holding a transformers config.json")
        return path
    return None


def build_tokenizer(config: ModelConfig) -> PreTrainedTokenizerBase:
    """The generator's tokenizer; tiny models borrow MiniLM's WordPiece vocabulary ([SEP] ends an answer)."""
    source = weights_dir(config)
    tokenizer = AutoTokenizer.from_pretrained(source or minilm_dir())
    if source is None:
        tokenizer.eos_token = tokenizer.sep_token
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.eos_token is None:
        raise ConfigError("model.path", config.path, "a tokenizer that defines an eos_token")
    return tokenizer


def _tiny_config(config: ModelConfig, tokenizer: PreTrainedTokenizerBase):
    # A wide init (0.2, not 0.02) gives random embeddings the norm that lets a frozen tiny model's adapter
    # reach confident predictions, as pretrained embeddings do; with 0.02 the logits cannot exceed ~1.
    shared = dict(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    if config.arch == "t5":
        return T5Config(
            d_model=config.hidden_size,
            d_kv=config.hidden_size // config.num_heads,
            d_ff=config.hidden_size * 2,
            num_layers=config.num_layers,
            num_heads=config.num_heads,
            decoder_start_token_id=tokenizer.pad_token_id,
            **shared,
        )
    return LlamaConfig(
        hidden_size=config.hidden_size,
        intermediate_size=config.hidden_size * 2,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_heads,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        initializer_range=0.2,
        **shared,
    )


def attention_implementation(requested: str) -> str | None:
    """transformers' `attn_implementation` for `model.attn_implementation`; `auto` is eager attention on a machine
    without CUDA (torch's CPU SDPA kernel runs bf16 backward ~4x slower than eager's matmuls: LoRA steps under bf16
    autocast were 20 % faster eager, fp32 steps and greedy answers unchanged) and the library's default elsewhere."""
    if requested != "auto":
        return requested
    return None if torch.cuda.is_available() else "eager"


def build_skeleton(config: ModelConfig) -> tuple[PreTrainedModel, bool]:
    """The generator's architecture on the meta device (no weights, no memory): for validating adaptations."""
    tokenizer = build_tokenizer(config)
    source = weights_dir(config)
    model_config = _tiny_config(config, tokenizer) if source is None else AutoConfig.from_pretrained(source)
    is_seq2seq = bool(model_config.is_encoder_decoder)
    auto = AutoModelForSeq2SeqLM if is_seq2seq else AutoModelForCausalLM
    with torch.device("meta"):
        return auto.from_config(model_config), is_seq2seq


def build_generator(config: ModelConfig, weights: Path | None = None) -> Generator:
    """Load (or, for `source=tiny`, initialise) the generator; `weights` overrides the pretrained directory."""
    tokenizer = build_tokenizer(config)
    dtype = DTYPES[config.dtype]
    attention = attention_implementation(config.attn_implementation)
    source = weights or weights_dir(config)
    if source is None:
        model_config = _tiny_config(config, tokenizer)
        is_seq2seq = model_config.is_encoder_decoder
        auto = AutoModelForSeq2SeqLM if is_seq2seq else AutoModelForCausalLM
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.init_seed)  # the same "pretrained" weights in every process
            model = auto.from_config(model_config, dtype=dtype, attn_implementation=attention)
    else:
        is_seq2seq = bool(AutoConfig.from_pretrained(source).is_encoder_decoder)
        auto = AutoModelForSeq2SeqLM if is_seq2seq else AutoModelForCausalLM
        model = auto.from_pretrained(source, dtype=dtype, attn_implementation=attention)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return Generator(model, tokenizer, is_seq2seq)
