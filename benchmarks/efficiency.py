"""How close rag_pet's hot paths come to this machine's matmul peak, and to the plain transformers + peft loop.

Measured in one run: the dense matmul peak (torch, at the shapes of SmolLM2-135M's own matmuls; fp32, and bf16 where
the CPU or GPU has native bf16), then each workload with its tokens/s or seconds, its peak memory and its achieved
FLOP/s as a fraction of that peak. Each workload runs in its own process, so its peak memory is its own.

FLOPs are those the work needs, the same count for rag_pet and the baseline: every linear layer of the transformer
body at every real token (forward, activation gradient, and weight gradient where trained), attention scores, and
the vocabulary head only where a loss is taken or a token is decoded. Computing the head at prompt positions is
waste, not work, so it lowers the fraction rather than raising it.

python benchmarks/efficiency.py [--quick] [--workloads lora_fp32 ...] [--json out.json] [--before-tree DIR]
                              [--profile WORKLOAD]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))


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


# ---------------------------------------------------------------------------------------------------------------------
# The limit: dense matmul FLOP/s at the model's shapes


def layer_linears(config) -> list[tuple[int, int]]:
    """(in, out) of every linear layer of one Llama-style decoder layer: q, k, v, o, gate, up, down."""
    hidden, inter = config.hidden_size, config.intermediate_size
    kv = hidden // config.num_attention_heads * config.num_key_value_heads
    attention = [(hidden, hidden), (hidden, kv), (hidden, kv), (hidden, hidden)]
    return [*attention, (hidden, inter), (hidden, inter), (inter, hidden)]


def model_linear_shapes(config, tokens: int) -> list[tuple[int, int, int]]:
    """(M, K, N) of the distinct linear shapes of the decoder body for a batch of `tokens` tokens."""
    return [(tokens, k, n) for k, n in sorted(set(layer_linears(config)))]


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

    from rag_pet.devices import has_native_bf16
    from rag_pet.models.pretrained import smollm2_dir

    config = AutoConfig.from_pretrained(smollm2_dir())
    dtypes = {"fp32": torch.float32, **({"bf16": torch.bfloat16} if has_native_bf16(device()) else {})}
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
    per_layer = sum(k * n for k, n in layer_linears(config))
    layers, hidden = config.num_hidden_layers, config.hidden_size
    return per_layer * layers, config.vocab_size * hidden, layers * hidden


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
    from rag_pet.experiment_config import compose_experiment

    run_dir = tempfile.mkdtemp(prefix="rag_pet_efficiency_")
    return compose_experiment(REPO / "conf", [*overrides, f"run_dir={run_dir}"])


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


def rag_pet_loop(overrides: list[str], steps: int, warmup: int, passes: int = 2) -> dict:
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
    seconds = timed_steps(lambda batch: engine.train_step([batch], next(counter)), batches, warmup, passes)
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


def answering_inputs(overrides: list[str], questions: int, k: int):
    """An `Answerer` for the configured generator, the evaluation's questions, and k passages each (the gold
    paragraph first, then the corpus's next ones): fixed context, so every run reads the same prompts."""
    from rag_pet.data import load_qa_split
    from rag_pet.data.prompts import PromptEncoder
    from rag_pet.data.squad import squad_corpus
    from rag_pet.inference.answering import Answerer, RetrievedPassage
    from rag_pet.models import build_generator

    config = compose(overrides)
    generator = build_generator(config.model)
    encoder = PromptEncoder.from_config(generator.tokenizer, config.data, False, config.rag.passage_max_tokens)
    answerer = Answerer(generator, encoder, config.rag, device(), config.eval.precision)
    examples = load_qa_split(config.data, config.data.eval_split, questions)
    corpus = squad_corpus()
    position = {passage.id: number for number, passage in enumerate(corpus)}
    passages = None
    if k:
        passages = []
        for example in examples:
            first = position[example.gold_passage_id]
            found = [corpus[(first + j) % len(corpus)] for j in range(k)]
            passages.append([RetrievedPassage(p.id, p.title, p.text, 1.0 - 0.1 * j) for j, p in enumerate(found)])
    return config, answerer, examples, passages


def answering(overrides: list[str], questions: int, k: int) -> dict:
    """Seconds per question of `Answerer.answer` in evaluation-sized batches, and the answers."""
    config, answerer, examples, passages = answering_inputs(overrides, questions, k)
    size = config.eval.batch_size
    texts = [example.question for example in examples]
    answerer.answer(texts[:size], passages[:size] if passages else None, config.eval.max_new_tokens)  # warm-up
    answers, start = [], time.perf_counter()
    for first in range(0, len(texts), size):
        batch_passages = passages[first : first + size] if passages else None
        answers += answerer.answer(texts[first : first + size], batch_passages, config.eval.max_new_tokens)
    seconds = (time.perf_counter() - start) / len(texts)
    return {"s_per_question": seconds, "answers": answers, "peak_memory_bytes": peak_memory_bytes()}


def rag_training(overrides: list[str], steps: int, warmup: int) -> dict:
    """A RAG training step (k=2 passages of 160 tokens, batch 4) over a 100-paragraph SQuAD index built here."""
    from rag_pet.retrieval.live_index import ensure_index
    from rag_pet.runtime import ensure_ray

    storage = tempfile.mkdtemp(prefix="rag_pet_efficiency_index_")
    common = ["rag.k=2", "rag.passage_max_tokens=160", "trainer.batch_size=4", "corpus.max_passages=100"]
    overrides = [*overrides, *common, f"index.storage_path={storage}", "index.encode_cpus=1"]
    ensure_ray(include_dashboard=False, log_to_driver=False)
    ensure_index(compose(overrides).index_source)
    return rag_pet_loop(overrides, steps, warmup, passes=1)


def encoding(passages: int) -> dict:
    """MiniLM document encoding of SciFact abstracts through rag_pet's encoder (the single-process path Ray Data's
    actors run), batch 64, longest first."""
    from rag_pet.config import RetrieverConfig
    from rag_pet.data import load_scifact, passage_text
    from rag_pet.models.encoder import build_encoder

    texts = [passage_text(p) for p in load_scifact().corpus[:passages]]
    encoder = build_encoder(RetrieverConfig(source="minilm")).to(device()).eval()
    texts.sort(key=len, reverse=True)
    batches = [texts[start : start + 64] for start in range(0, len(texts), 64)]
    with torch.inference_mode():
        encoder.encode_documents(batches[-1][:8])
        synchronize()
        start = time.perf_counter()
        for batch in batches:
            encoder.encode_documents(batch)
        synchronize()
        seconds = time.perf_counter() - start
    config = encoder.doc_tower.config
    lengths = torch.cat([encoder.tokenize(b, encoder.config.doc_max_length)["attention_mask"].sum(1) for b in batches])
    hidden, layers = config.hidden_size, config.num_hidden_layers
    per_token = 2 * layers * (4 * hidden * hidden + 2 * hidden * config.intermediate_size)
    flops = float(lengths.sum()) * per_token + float((lengths.double() ** 2).sum()) * layers * 4 * hidden
    return {
        "passages_per_s": len(texts) / seconds,
        "flops_per_s": flops / seconds,
        "precision": "fp32",
        "peak_memory_bytes": peak_memory_bytes(),
    }


def job_tokens_per_s(overrides: list[str]) -> float:
    """Mean tokens/s of a `jobs.train` run's logged windows after the first (model loading and warm-up)."""
    from train_job import run_job

    storage = tempfile.mkdtemp(prefix="rag_pet_efficiency_job_")
    run_job([*overrides, f"trainer.storage_path={storage}", "eval.after_training=false", "tracking=disabled"])
    state = json.loads(max(Path(storage).rglob("train_state.json")).read_text())
    windows = state["history"][1:]
    return sum(window["tokens_per_s"] for window in windows) / len(windows)


def ray_train(precision: str, steps: int) -> dict:
    """`jobs.train` LoRA under one Ray Train worker and standalone (`trainer.launcher=local`), same steps; the table
    reports the Ray job's share of the standalone job's rate applied to the standalone loop's."""
    common = [*LORA, f"trainer.precision={precision}", f"trainer.max_steps={steps}", "trainer.log_every=2"]
    common.append(f"trainer.checkpoint_every={steps}")
    return {
        "tokens_per_s": job_tokens_per_s([*common, "trainer.launcher=ray"]),
        "standalone_tokens_per_s": job_tokens_per_s([*common, "trainer.launcher=local"]),
        "precision": precision,
    }


WORKLOADS = {
    "peak": lambda quick: measure_peak(),
    "lora_plain_fp32": lambda quick: plain_loop("lora", "fp32", 6 if quick else 10, 2),
    "lora_fp32": lambda quick: rag_pet_loop(LORA + ["trainer.precision=fp32"], 6 if quick else 10, 2),
    "lora_plain_bf16": lambda quick: plain_loop("lora", "bf16", 6 if quick else 10, 2),
    "lora_bf16": lambda quick: rag_pet_loop(LORA + ["trainer.precision=bf16"], 6 if quick else 10, 2),
    "lora_ray_fp32": lambda quick: ray_train("fp32", 8 if quick else 12),
    "full_plain_fp32": lambda quick: plain_loop("full", "fp32", 4, 1),
    "full_fp32": lambda quick: rag_pet_loop(FULL + ["trainer.precision=fp32"], 4, 1),
    "hybrid_fp32": lambda quick: rag_training(["experiment=hybrid_rag_lora", "trainer.precision=fp32"], 3, 1),
    "joint_fp32": lambda quick: rag_training(["experiment=joint_rag", "trainer.precision=fp32"], 3, 1),
    "answer_closed_book": lambda quick: answering(CLOSED_BOOK + FP32, 40 if quick else 100, 0),
    "answer_closed_book_auto": lambda quick: answering(CLOSED_BOOK, 40 if quick else 100, 0),
    "answer_rag_k2": lambda quick: answering(RAG_ANSWERS + FP32, 24 if quick else 100, 2),
    "answer_rag_k2_auto": lambda quick: answering(RAG_ANSWERS, 24 if quick else 100, 2),
    "answer_rag_sequence": lambda quick: answering(RAG_ANSWERS + FP32 + ["rag.decoding=sequence_fast"], 12, 2),
    "encode_minilm": lambda quick: encoding(128 if quick else 256),
}
LORA = ["experiment=closed_book_lora"]
FULL = ["experiment=closed_book_full"]
RAG_ANSWERS = ["experiment=rag_frozen", "rag.passage_max_tokens=160", "rag.decoding=token_greedy"]
CLOSED_BOOK = ["experiment=quickstart"]
FP32 = ["eval.precision=fp32"]
NEEDS_RAY = {"lora_ray_fp32", "hybrid_fp32", "joint_fp32"}


def run_workload(name: str, quick: bool, tree: Path = REPO) -> dict:
    """One workload in a fresh process (its own peak memory) on the code of `tree`; its result dict."""
    script = tree / "benchmarks" / Path(__file__).name
    command = [sys.executable, str(script), "--run", name, *(["--quick"] if quick else [])]
    start = time.perf_counter()
    completed = subprocess.run(command, cwd=tree, capture_output=True, text=True)
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    if completed.returncode or not lines:
        raise RuntimeError(f"workload {name} failed:\n{completed.stderr[-3000:]}")
    result = json.loads(lines[-1][len("RESULT ") :])
    print(f"  {name} ({tree.name}): {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return result


def fraction(result: dict | None, peaks: dict) -> str:
    if not result or "flops_per_s" not in result:
        return "-"
    peak = peaks.get(result["precision"])
    return f"{result['flops_per_s'] / peak:.0%}" if peak else "-"


def cell(result: dict | None, key: str, digits: int = 1) -> str:
    return f"{result[key]:.{digits}f}" if result and key in result else "-"


def ratio(a: dict | None, b: dict | None, key: str, higher_is_better: bool = True) -> str:
    if not a or not b or key not in a or key not in b:
        return "-"
    value = a[key] / b[key] if higher_is_better else b[key] / a[key]
    return f"{value:.2f}x"


ROWS = [
    # (label, workload, its plain-loop baseline, the workload of the "before" run it is compared with, key, higher
    # is better); rows at the default precision compare with the fp32 default the code had before
    ("LoRA step, fp32 (tokens/s)", "lora_fp32", "lora_plain_fp32", "lora_fp32", "tokens_per_s", True),
    ("LoRA step, bf16 autocast (tokens/s)", "lora_bf16", "lora_plain_bf16", "lora_bf16", "tokens_per_s", True),
    ("LoRA step, default precision (tokens/s)", "lora_bf16", "lora_plain_bf16", "lora_fp32", "tokens_per_s", True),
    (
        "LoRA, 1 Ray Train worker, fp32 (tokens/s)",
        "lora_ray_fp32",
        "lora_plain_fp32",
        "lora_ray_fp32",
        "tokens_per_s",
        True,
    ),
    ("full fine-tuning step, fp32 (tokens/s)", "full_fp32", "full_plain_fp32", "full_fp32", "tokens_per_s", True),
    ("hybrid RAG + LoRA step, fp32 (s/step)", "hybrid_fp32", None, "hybrid_fp32", "s_per_step", False),
    ("joint RAG step, fp32 (s/step)", "joint_fp32", None, "joint_fp32", "s_per_step", False),
    (
        "closed-book answers, fp32 (s/question)",
        "answer_closed_book",
        None,
        "answer_closed_book",
        "s_per_question",
        False,
    ),
    (
        "closed-book answers, default precision (s/question)",
        "answer_closed_book_auto",
        None,
        "answer_closed_book",
        "s_per_question",
        False,
    ),
    ("RAG-Token answers, k=2, fp32 (s/question)", "answer_rag_k2", None, "answer_rag_k2", "s_per_question", False),
    (
        "RAG-Token answers, k=2, default precision (s/question)",
        "answer_rag_k2_auto",
        None,
        "answer_rag_k2",
        "s_per_question",
        False,
    ),
    (
        "RAG-Sequence answers, k=2, fp32 (s/question)",
        "answer_rag_sequence",
        None,
        "answer_rag_sequence",
        "s_per_question",
        False,
    ),
    ("MiniLM encoding, fp32 (passages/s)", "encode_minilm", None, "encode_minilm", "passages_per_s", True),
]


def on_step_scale(result: dict | None, run: dict) -> dict | None:
    """A Ray Train row as the standalone loop's tokens/s times the Ray job's rate over the standalone job's: the
    jobs' logged windows and the loop's per-step figures are not measured alike."""
    if not result or "standalone_tokens_per_s" not in result or "lora_fp32" not in run:
        return result
    share = result["tokens_per_s"] / result["standalone_tokens_per_s"]
    return {**result, "tokens_per_s": run["lora_fp32"]["tokens_per_s"] * share}


def table(results: dict, before: dict) -> str:
    peaks = results["peak"]["peak_flops"]
    lines = [
        f"Device: {results['peak']['device']}; matmul peak measured in this run: "
        + ", ".join(f"{name} {value / 1e9:.0f} GFLOP/s" for name, value in peaks.items()),
        "",
        "| workload | plain loop | rag_pet before | rag_pet after | after vs before | after vs plain | "
        "% of peak (after) | peak memory (after) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label, name, baseline, before_name, key, higher in ROWS:
        after, earlier = results.get(name), before.get(before_name)
        plain = results.get(baseline) if baseline else None
        after, earlier = on_step_scale(after, results), on_step_scale(earlier, before)
        digits = 3 if key == "s_per_question" else 1
        memory = f"{after['peak_memory_bytes'] / 2**30:.2f} GiB" if after and "peak_memory_bytes" in after else "-"
        note = ""
        if after and earlier and "answers" in after:
            differ = sum(a != b for a, b in zip(after["answers"], earlier["answers"], strict=True))
            note = " (same answers)" if not differ else f" ({differ} answers differ)"
        lines.append(
            f"| {label} | {cell(plain, key, digits)} | {cell(earlier, key, digits)} | {cell(after, key, digits)}{note}"
            f" | {ratio(after, earlier, key, higher)} | {ratio(after, plain, key, higher)} | {fraction(after, peaks)}"
            f" | {memory} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", nargs="*", default=list(WORKLOADS), help="a subset of " + ", ".join(WORKLOADS))
    parser.add_argument("--quick", action="store_true", help="fewer steps and questions (a smoke run)")
    parser.add_argument("--json", type=Path, help="write every result here")
    parser.add_argument(
        "--before-tree",
        type=Path,
        help="a checkout of the code to compare with (git worktree add DIR REV; this script copied into its"
        " benchmarks/): each of its workloads runs right before the same one here, so both see the same machine",
    )
    parser.add_argument(
        "--profile", metavar="WORKLOAD", help="run one workload under torch.profiler and print where its time goes"
    )
    parser.add_argument("--run", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.profile:
        with torch.profiler.profile() as profiler:
            WORKLOADS[args.profile](True)
        print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
        return
    if args.run:
        print("RESULT " + json.dumps(WORKLOADS[args.run](args.quick)), flush=True)
        return
    try:
        import ray  # noqa: F401
    except ImportError:  # the GPU machine runs without Ray: the Ray-free workloads only
        args.workloads = [name for name in args.workloads if name not in NEEDS_RAY]
    names = ["peak", *[name for name in args.workloads if name != "peak"]]
    compared = {before_name for _, _, _, before_name, _, _ in ROWS}
    results, before = {}, {}
    for name in names:
        if args.before_tree and name in compared:
            before[name] = run_workload(name, args.quick, args.before_tree.resolve())
        results[name] = run_workload(name, args.quick)
    if args.json:
        args.json.write_text(json.dumps({"after": results, "before": before}, indent=1))
    print(table(results, before))


if __name__ == "__main__":
    main()
