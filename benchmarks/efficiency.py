"""How close rag_pet's hot paths come to this machine's matmul peak, and to the plain transformers + peft loop.

Measured in one run: the dense matmul peak (torch, at the shapes of SmolLM2-135M's own matmuls; fp32, and bf16 where
the CPU or GPU has native bf16), then each workload with its tokens/s or seconds, its peak memory and its achieved
FLOP/s as a fraction of that peak. Each workload runs in its own process, so its peak memory is its own.

FLOPs are those the work needs, the same count for rag_pet and the baseline: every linear layer of the transformer
body at every real token (forward, activation gradient, and weight gradient where trained), attention scores, and
the vocabulary head only where a loss is taken or a token is decoded. Computing the head at prompt positions is
waste, not work, so it lowers the fraction rather than raising it.

python benchmarks/efficiency.py [--quick] [--workloads lora_step ...] [--json out.json] [--before before.json]
"""

from __future__ import annotations

import itertools
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def on_gpu() -> bool:
    return torch.cuda.is_available()


def device() -> torch.device:
    return torch.device("cuda" if on_gpu() else "cpu")


def synchronize() -> None:
    if on_gpu():
        torch.cuda.synchronize()


def peak_memory_bytes() -> int:
    if on_gpu():
        return int(torch.cuda.max_memory_allocated())
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def native_bf16() -> bool:
    """Whether bf16 matmuls run natively here (CUDA compute capability 8+, or a CPU with avx512_bf16 / AMX)."""
    if on_gpu():
        return torch.cuda.is_bf16_supported()
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


# ---------------------------------------------------------------------------------------------------------------------
# The limit: dense matmul FLOP/s at the model's shapes


def model_linear_shapes(config, tokens: int) -> list[tuple[int, int, int]]:
    """(M, K, N) of the decoder's linear layers and head for a batch of `tokens` tokens."""
    hidden, inter = config.hidden_size, config.intermediate_size
    kv = hidden // config.num_attention_heads * config.num_key_value_heads
    return [(tokens, hidden, hidden), (tokens, hidden, kv), (tokens, hidden, inter), (tokens, inter, hidden)]


def matmul_flops_per_second(m: int, k: int, n: int, dtype: torch.dtype, seconds: float = 1.0) -> float:
    """Best-of-runs FLOP/s of `x @ w.T` (what nn.Linear runs) at one shape."""
    x = torch.randn(m, k, device=device(), dtype=dtype)
    w = torch.randn(n, k, device=device(), dtype=dtype)
    for _ in range(3):
        torch.nn.functional.linear(x, w)
    synchronize()
    best, stop = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < stop:
        start = time.perf_counter()
        for _ in range(5):
            torch.nn.functional.linear(x, w)
        synchronize()
        best = min(best, (time.perf_counter() - start) / 5)
    return 2 * m * k * n / best


def measure_peak() -> dict:
    """The machine's matmul peak per dtype: the best FLOP/s over the model's own matmul shapes at 2 batch sizes."""
    from transformers import AutoConfig

    from rag_pet.models.pretrained import smollm2_dir

    config = AutoConfig.from_pretrained(smollm2_dir())
    dtypes = {"fp32": torch.float32, **({"bf16": torch.bfloat16} if native_bf16() else {})}
    peaks = {}
    for name, dtype in dtypes.items():
        shapes = model_linear_shapes(config, 256) + model_linear_shapes(config, 1024)
        peaks[name] = max(matmul_flops_per_second(*shape, dtype) for shape in shapes)
    return {"peak_flops": peaks, "threads": torch.get_num_threads(), "device": device_name()}


def device_name() -> str:
    if on_gpu():
        return torch.cuda.get_device_name()
    return f"CPU, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


# ---------------------------------------------------------------------------------------------------------------------
# FLOPs the work needs


def decoder_dims(model) -> tuple[int, int, int]:
    """(linear weights of the decoder body, head weights, layers x hidden) of a Llama-style causal LM."""
    config = model.config
    hidden, inter = config.hidden_size, config.intermediate_size
    kv = hidden // config.num_attention_heads * config.num_key_value_heads
    per_layer = hidden * (2 * hidden + 2 * kv) + 3 * hidden * inter
    return per_layer * config.num_hidden_layers, config.vocab_size * hidden, config.num_hidden_layers * hidden


def train_step_flops(model, batch_tokens: list[tuple[int, int]], trainable: int, full: bool) -> float:
    """FLOPs of one training step over rows given as (real tokens, answer tokens)."""
    body, head, layer_width = decoder_dims(model)
    per_token_body = (6 if full else 4) * body
    flops = 0.0
    for tokens, answer in batch_tokens:
        flops += tokens * per_token_body + 3 * 4 * tokens * tokens * layer_width / 2  # attention scores, causal
        flops += answer * (6 if full else 4) * head
    return flops + 2 * trainable * sum(tokens for tokens, _ in batch_tokens) * (0 if full else 1)


# ---------------------------------------------------------------------------------------------------------------------
# Workloads


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from rag_pet.config import register_configs, to_config

    register_configs()
    run_dir = tempfile.mkdtemp(prefix="rag_pet_efficiency_")
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return to_config(hydra_compose(config_name="config", overrides=[*overrides, f"run_dir={run_dir}"]))


def training_features(config) -> tuple[list[dict], list[int]]:
    """The closed-book training features and the order a seeded sampler draws them (as rag_pet's loader does)."""
    from torch.utils.data import DistributedSampler

    from rag_pet.data.prompts import PromptEncoder
    from rag_pet.models.generator import build_tokenizer
    from rag_pet.training.batching import load_training_examples

    tokenizer = build_tokenizer(config.model)
    encoder = PromptEncoder.from_config(tokenizer, config.data, is_seq2seq=False)
    examples = load_training_examples(config.data, config.trainer.batch_size, 1)
    features = [encoder.training_features(e) for e in examples]
    order = list(DistributedSampler(features, 1, 0, shuffle=True, seed=config.seed, drop_last=True))
    return features, order


def row_shapes(features: list[dict]) -> list[tuple[int, int]]:
    return [(len(f["input_ids"]), sum(label != -100 for label in f["labels"])) for f in features]


def timed_steps(step, batches: list, warmup: int, passes: int = 2) -> float:
    """Mean seconds of `step(batch)` over the batches after the first `warmup`, each batch's time the best of
    `passes` passes over them: a neighbour's burst on a shared machine slows one pass, rarely both."""
    for batch in batches[:warmup]:
        step(batch)
    best = [float("inf")] * (len(batches) - warmup)
    for _ in range(passes):
        for number, batch in enumerate(batches[warmup:]):
            synchronize()
            start = time.perf_counter()
            step(batch)
            synchronize()
            best[number] = min(best[number], time.perf_counter() - start)
    return sum(best) / len(best)


def plain_loop(method: str, precision: str, steps: int, warmup: int) -> dict:
    """The code a user would write instead: the model, `get_peft_model`, AdamW, `loss.backward()`, nothing of
    rag_pet's training code (only its data, for the same batches)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from rag_pet.models.pretrained import smollm2_dir

    config = compose(["experiment=closed_book_lora", f"peft={method}"])
    features, order = training_features(config)
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir(), dtype=torch.float32).to(device())
    if method == "lora":
        model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, task_type="CAUSAL_LM"))
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=5e-4, weight_decay=0.0)
    size = config.trainer.batch_size
    rows = [[features[i] for i in order[start : start + size]] for start in range(0, size * steps, size)]

    def pad(rows_of: list[list[int]], value: int) -> torch.Tensor:
        width = max(len(r) for r in rows_of)
        return torch.tensor([r + [value] * (width - len(r)) for r in rows_of], device=device())

    batches = [
        {
            "input_ids": pad([f["input_ids"] for f in batch], 0),
            "attention_mask": pad([[1] * len(f["input_ids"]) for f in batch], 0),
            "labels": pad([f["labels"] for f in batch], -100),
        }
        for batch in rows
    ]
    dtype = torch.bfloat16 if precision == "bf16" else None

    def step(batch: dict) -> None:
        with torch.autocast(device().type, dtype=dtype, enabled=dtype is not None):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    seconds = timed_steps(step, batches, warmup)
    shapes = [row_shapes(batch) for batch in rows[warmup:]]
    return training_result(model, shapes, seconds, sum(p.numel() for p in trainable), method == "full", precision)


def training_result(model, shapes: list[list[tuple[int, int]]], seconds: float, trainable: int, full: bool, precision):
    tokens = sum(t for batch in shapes for t, _ in batch) / len(shapes)
    flops = sum(train_step_flops(model, batch, trainable, full) for batch in shapes) / len(shapes)
    return {
        "s_per_step": seconds,
        "tokens_per_s": tokens / seconds,
        "flops_per_s": flops / seconds,
        "precision": precision,
        "peak_memory_bytes": peak_memory_bytes(),
    }


def rag_pet_loop(overrides: list[str], steps: int, warmup: int) -> dict:
    """rag_pet's own training step (task batches, engine step) in this process, as a standalone run takes it."""
    from rag_pet.training.context import LocalContext
    from rag_pet.training.tasks import build_engine, build_task

    config = compose(overrides)
    ctx = LocalContext(Path(tempfile.mkdtemp()), device())
    torch.manual_seed(config.seed)
    task = build_task(config, ctx)
    engine = build_engine(task, config, ctx)
    engine.model.train()
    stream = task.micro_batches(0)
    batches = [next(stream) for _ in range(steps)]
    counter = itertools.count()
    seconds = timed_steps(lambda batch: engine.train_step([batch], next(counter)), batches, warmup)
    shapes = [batch_shapes(batch) for batch in batches[warmup:]]
    trainable = sum(p.numel() for p in task.model.parameters() if p.requires_grad)
    full = config.peft.method == "full"
    generator = getattr(task.model, "generator", task.model)
    result = training_result(generator, shapes, seconds, trainable, full, config.trainer.precision)
    task.close()
    return result


def batch_shapes(batch: dict) -> list[tuple[int, int]]:
    """(real tokens, answer tokens) per generator row of a collated batch."""
    answers = (batch["labels"] != -100).sum(1).tolist()
    return list(zip(batch["attention_mask"].sum(1).tolist(), answers, strict=True))
