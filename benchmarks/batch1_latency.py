"""Batch-1 answers of SmolLM2-135M-Instruct: rag_pet's timed batch-1 path against a plain `model.generate` of the
same prompt for exactly as many new tokens, side by side in one run.

Each question (SQuAD validation, in the study's chat prompt, `eval.max_new_tokens` 12) is answered by every path in
turn, the order rotated per question, for `--passes` passes; each path's figure for a question is its best pass (a
neighbour's burst on this shared machine slows one pass, rarely all), and the table gives the median over questions.
rag_pet's rows come from `Answerer.answering_alone` (its `DecodeClock` stamps each decoding step); the plain rows
time themselves with a transformers streamer (`BaseStreamer.put`, once a token), a separate instrument. The plain
model is what a user would load: `AutoModelForCausalLM.from_pretrained`, library attention defaults, forced to the
rag_pet answer's token count with `min_new_tokens`. Time to first token (TTFT) is prefill + first token; ms/token is
the mean decoding step after it. "RAG" rows read the gold paragraph and the next one (k=2, 128 tokens each, RAG-Token
greedy), as the study's RAG cells do; plain `generate` has no counterpart for RAG decoding, so those rows compare
rag_pet's precisions only.

python benchmarks/batch1_latency.py [--questions 12] [--passes 2] [--rag-k 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM
from transformers.generation.streamers import BaseStreamer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
STUDY = ["experiment=zero_shot", "data.chat_template=true", "eval.max_new_tokens=12", "rag.passage_max_tokens=128"]
GOAL = 1.2  # rag_pet's ms/token at most this multiple of plain generate's


@dataclass(frozen=True)
class Timing:
    """One answer: seconds to the first token, per later token (None under 2 tokens), whole; tokens decoded."""

    first_token_s: float | None
    per_token_s: float | None
    total_s: float
    tokens: int | None


class StampStreamer(BaseStreamer):
    """The plain baseline's clock: transformers calls `put` with the prompt, then once per new token."""

    def __init__(self):
        self.prompt_seen, self.stamps = False, []

    def put(self, value) -> None:
        if self.prompt_seen:
            self.stamps.append(time.perf_counter())
        self.prompt_seen = True

    def end(self) -> None:
        pass


def compose(overrides: list[str]):
    from rag_pet.experiment_config import compose_experiment

    run_dir = tempfile.mkdtemp(prefix="rag_pet_batch1_")
    return compose_experiment(REPO / "conf", [*overrides, f"run_dir={run_dir}"])


def plain_generate(model, tokenizer, prompt: list[int], tokens: int, context) -> Timing:
    """`model.generate` of `prompt`, greedy, exactly `tokens` new tokens."""
    ids = torch.tensor([prompt], device=model.device)
    streamer = StampStreamer()
    with context, torch.inference_mode():
        start = time.perf_counter()
        model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=tokens,
            min_new_tokens=tokens,
            do_sample=False,
            num_beams=1,
            pad_token_id=tokenizer.pad_token_id,
            streamer=streamer,
        )
        total = time.perf_counter() - start
    stamps = streamer.stamps
    per_token = (stamps[-1] - stamps[0]) / (len(stamps) - 1) if len(stamps) > 1 else None
    return Timing(stamps[0] - start, per_token, total, len(stamps))


def timed_alone(answer_alone, question: str, passages, max_new_tokens: int) -> Timing:
    start = time.perf_counter()
    _, clock = answer_alone(question, passages, max_new_tokens)
    return Timing(clock.first_token_s, clock.seconds_per_token, time.perf_counter() - start, clock.tokens)


def timed_whole(answer: Callable, question: str, passages, max_new_tokens: int) -> Timing:
    start = time.perf_counter()
    answer([question], [passages] if passages is not None else None, max_new_tokens)
    return Timing(None, None, time.perf_counter() - start, None)


def gold_passages(examples, k: int):
    """The gold paragraph first, then the corpus's next ones (benchmarks/efficiency.py's fixed RAG context)."""
    from rag_pet.data.squad import squad_corpus
    from rag_pet.inference.answering import RetrievedPassage

    corpus = squad_corpus()
    position = {passage.id: number for number, passage in enumerate(corpus)}
    found = []
    for example in examples:
        first = position[example.gold_passage_id]
        hits = [corpus[(first + j) % len(corpus)] for j in range(k)]
        found.append([RetrievedPassage(p.id, p.title, p.text, 1.0 - 0.1 * j) for j, p in enumerate(hits)])
    return found


@dataclass
class Paths:
    """What answers: rag_pet at `eval.precision` and at fp32 (each on its batch-1 weights), rag_pet's batched
    `answer` (the old batch-1 path), and the plain models."""

    alone: Callable
    alone32: Callable
    answer: Callable
    precision: str
    plain32: torch.nn.Module
    plain16: torch.nn.Module
    tokenizer: object
    tokens: int

    def closed_book(self, question: str, prompt: list[int], count: int) -> dict[str, Callable[[], Timing]]:
        """Every closed-book path for one question; plain generate decodes `count` tokens (rag_pet's answer's)."""
        autocast = torch.autocast("cpu", dtype=torch.bfloat16)
        return {
            f"rag_pet batch-1, eval.precision=auto ({self.precision} weights)": partial(
                timed_alone, self.alone, question, None, self.tokens
            ),
            "rag_pet batch-1, eval.precision=fp32": partial(timed_alone, self.alone32, question, None, self.tokens),
            "rag_pet before: Answerer.answer under bf16 autocast (whole answer)": partial(
                timed_whole, self.answer, question, None, self.tokens
            ),
            "plain generate, fp32": partial(plain_generate, self.plain32, self.tokenizer, prompt, count, nullcontext()),
            "plain generate, bf16 weights": partial(
                plain_generate, self.plain16, self.tokenizer, prompt, count, nullcontext()
            ),
            "plain generate, fp32 weights under bf16 autocast": partial(
                plain_generate, self.plain32, self.tokenizer, prompt, count, autocast
            ),
        }

    def rag(self, question: str, passages: list, k: int) -> dict[str, Callable[[], Timing]]:
        """rag_pet's RAG-Token paths for one question over its `k` passages."""
        return {
            f"RAG k={k}: rag_pet batch-1, {self.precision} weights": partial(
                timed_alone, self.alone, question, passages, self.tokens
            ),
            f"RAG k={k}: rag_pet batch-1, fp32": partial(timed_alone, self.alone32, question, passages, self.tokens),
            f"RAG k={k}: rag_pet before, bf16 autocast (whole answer)": partial(
                timed_whole, self.answer, question, passages, self.tokens
            ),
        }


def best_of(paths: dict[str, Callable[[], Timing]], passes: int, rotate: int) -> dict[str, Timing]:
    """Each path's fastest of `passes` runs, the paths taken in turn starting at the `rotate`-th."""
    names = list(paths)
    names = names[rotate % len(names) :] + names[: rotate % len(names)]
    best: dict[str, Timing] = {}
    for _ in range(passes):
        for name in names:
            timing = paths[name]()
            if name not in best or timing.total_s < best[name].total_s:
                best[name] = timing
    return {name: best[name] for name in paths}


def run(questions: int, passes: int, rag_k: int, warmup: int) -> tuple[dict[str, list[Timing]], dict]:
    """Every path's best-of-passes timing per question, and what the run saw (answers agreeing, precision)."""
    from rag_pet.data import load_qa_split
    from rag_pet.inference.answering import Answerer
    from rag_pet.models import build_generator
    from rag_pet.models.pretrained import smollm2_dir
    from rag_pet.models.rag_inputs import rag_prompt_encoder

    config = compose(STUDY)
    device = torch.device("cpu")
    generator = build_generator(config.model)
    prompts = rag_prompt_encoder(config.data, config.rag, generator.tokenizer, False)
    tokens = config.eval.max_new_tokens
    auto = Answerer(generator, prompts, config.rag, device, config.eval.precision)
    fp32 = Answerer(generator, prompts, config.rag, device, "fp32")
    plain32 = AutoModelForCausalLM.from_pretrained(smollm2_dir()).eval()
    plain16 = AutoModelForCausalLM.from_pretrained(smollm2_dir(), dtype=torch.bfloat16).eval()
    examples = load_qa_split(config.data, config.data.eval_split, questions + warmup)
    warm, examples = examples[:warmup], examples[warmup:]
    rag = gold_passages(examples, rag_k) if rag_k else [None] * len(examples)
    batched = auto.answer([e.question for e in examples], None, tokens)  # the evaluation's batch answers
    timings: dict[str, list[Timing]] = {}
    agree = 0
    with auto.answering_alone() as alone, fp32.answering_alone() as alone32:
        paths = Paths(alone, alone32, auto.answer, auto.precision, plain32, plain16, generator.tokenizer, tokens)
        for example in warm:  # untimed: every path once
            count = alone(example.question, None, tokens)[1].tokens
            best_of(paths.closed_book(example.question, prompts.prompt_ids(example), count), 1, 0)
        for number, (example, passages) in enumerate(zip(examples, rag, strict=True)):
            answer, seen = alone(example.question, None, tokens)  # its answer and length (untimed)
            agree += answer == batched[number]
            found = paths.closed_book(example.question, prompts.prompt_ids(example), seen.tokens)
            if passages is not None:
                found |= paths.rag(example.question, passages, rag_k)
            for name, timing in best_of(found, passes, number).items():
                timings.setdefault(name, []).append(timing)
            print(f"question {number + 1}/{len(examples)}: {seen.tokens} tokens", file=sys.stderr, flush=True)
    return timings, {"agree": agree, "questions": len(examples), "precision": auto.precision}


def median_ms(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) * 1000 if values else None


def table(best: dict[str, list[Timing]]) -> tuple[str, dict[str, float | None]]:
    """The printed table: per path, median TTFT, ms/token and whole answer, and ms/token against plain generate."""
    per_token = {name: median_ms(t.per_token_s for t in timings) for name, timings in best.items()}
    plain = {"fp32": per_token["plain generate, fp32"], "bf16": per_token["plain generate, bf16 weights"]}
    rows = [
        "| path (batch 1) | TTFT p50 ms | ms/token p50 | whole answer p50 ms | ms/token vs plain fp32 |"
        " vs plain bf16 weights |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, timings in best.items():
        ttft, whole, mine = (
            median_ms(t.first_token_s for t in timings),
            median_ms(t.total_s for t in timings),
            per_token[name],
        )
        ratios = [f"{mine / plain[p]:.2f}x" if mine and not name.startswith("RAG") else "-" for p in ("fp32", "bf16")]
        cells = [f"{v:.1f}" if v is not None else "-" for v in (ttft, mine, whole)]
        rows.append(f"| {name} | {' | '.join(cells)} | {' | '.join(ratios)} |")
    return "\n".join(rows), per_token


def revision() -> str:
    found = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    return found.stdout.strip() + (" + uncommitted changes" if dirty else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=12, help="SQuAD validation questions timed")
    parser.add_argument("--passes", type=int, default=2, help="passes over the questions; each path keeps its best")
    parser.add_argument("--rag-k", type=int, default=2, help="passages of the RAG rows (0: closed-book only)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed questions first")
    args = parser.parse_args()
    started = time.perf_counter()
    best, seen = run(args.questions, args.passes, args.rag_k, args.warmup)
    printed, per_token = table(best)
    platform = next(name for name in best if name.startswith("rag_pet batch-1, eval.precision=auto"))
    plain = min(per_token["plain generate, fp32"], per_token["plain generate, bf16 weights"])
    ratio = per_token[platform] / plain
    print(f"revision {revision()}; CPU, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads")
    print(
        f"{seen['questions']} questions, best of {args.passes} passes, {time.perf_counter() - started:.0f} s;"
        f" eval.precision=auto resolves to {seen['precision']}"
    )
    print(printed)
    print(
        f"rag_pet batch-1 ms/token vs the faster plain generate: {ratio:.2f}x"
        f" (goal <= {GOAL}x: {'met' if ratio <= GOAL else 'not met'})"
    )
    print(f"rag_pet batch-1 answers equal to the batched evaluation's: {seen['agree']}/{seen['questions']}")


if __name__ == "__main__":
    main()
