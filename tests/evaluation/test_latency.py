"""Batch-1 latency: warm-up answers are not timed, each part (retrieval, first token, per token) is reported, and the
per-token figure counts decoding steps, so answer length cannot drive it. No test asserts a speed."""

from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag_pet.config import EvalConfig, ModelConfig, RagConfig
from rag_pet.data.prompts import PromptEncoder
from rag_pet.data.types import QAExample
from rag_pet.devices import with_parameters_in
from rag_pet.errors import ConfigError
from rag_pet.evaluation import qa_eval
from rag_pet.evaluation.latency import QuestionTiming, batch1_summary
from rag_pet.evaluation.qa_eval import batch1_latency
from rag_pet.inference.answering import Answerer, RetrievedPassage
from rag_pet.inference.generation import DecodeClock
from rag_pet.models import build_generator
from rag_pet.models.rag_inputs import rag_prompt_encoder
from tests.conftest import compose_config

CPU = torch.device("cpu")
EXAMPLES = [QAExample(f"q{i}", f"Where is tower number {i} of the old city?", ("Paris",)) for i in range(6)]
PASSAGES = [
    RetrievedPassage("a", "Tower", "The tower stands in Paris, by the river.", 0.9),
    RetrievedPassage("b", "Sky", "The sky is blue today over the city.", 0.4),
    RetrievedPassage("c", "Bridge", "The bridge crosses the river twice.", 0.1),
]
ALWAYS = ("batch1_latency_p50_ms", "batch1_latency_p95_ms")
STEP_TIMED = ("batch1_ttft_p50_ms", "batch1_ttft_p95_ms", "batch1_ms_per_token_p50", "batch1_ms_per_token_p95")
RETRIEVAL = ("batch1_retrieval_p50_ms", "batch1_retrieval_p95_ms")


@pytest.fixture(scope="module")
def generator():
    """The debug=tiny generator, built once: the tests below take their eval settings from `tiny_config`."""
    return build_generator(compose_config(["debug=tiny"]).model)


def closed_book(config, generator):
    prompts = PromptEncoder.from_config(generator.tokenizer, config.data, generator.is_seq2seq)
    return Answerer(generator, prompts, None, CPU, config.eval.precision)


def rag_answerer(config, generator, decoding: str):
    rag = RagConfig(k=2, passage_max_tokens=16, decoding=decoding, num_beams=2)
    prompts = rag_prompt_encoder(config.data, rag, generator.tokenizer, generator.is_seq2seq)
    return Answerer(generator, prompts, rag, CPU, config.eval.precision), rag.k


class Retriever:
    """The top passages for every question, counting the questions asked."""

    def __init__(self):
        self.asked: list[list[str]] = []

    def __call__(self, questions: list[str], depth: int) -> list[list[RetrievedPassage]]:
        self.asked.append(list(questions))
        return [PASSAGES[:depth] for _ in questions]


def test_closed_book_reports_whole_answer_first_token_and_per_token_times(tiny_config, generator):
    config = tiny_config("eval.latency_questions=4", "eval.max_new_tokens=8")
    metrics = batch1_latency(None, closed_book(config, generator), config.eval, EXAMPLES, None)
    assert metrics["batch1_latency_questions"] == 4
    assert all(metrics[key] > 0 for key in ALWAYS + STEP_TIMED)
    assert not any(key in metrics for key in RETRIEVAL)
    assert metrics["batch1_latency_p95_ms"] >= metrics["batch1_ttft_p95_ms"] > 0


@pytest.mark.parametrize("decoding", ["token_greedy", "token_beam", "sequence_fast", "sequence_thorough"])
def test_rag_reports_retrieval_apart_and_asks_one_question_at_a_time(tiny_config, generator, decoding):
    config = tiny_config("eval.latency_questions=3", "eval.latency_warmup=1", "eval.max_new_tokens=6")
    answerer, k = rag_answerer(config, generator, decoding)
    retrieve = Retriever()
    metrics = batch1_latency(retrieve, answerer, config.eval, EXAMPLES, k)
    assert all(metrics[key] > 0 for key in ALWAYS + STEP_TIMED + RETRIEVAL)
    assert [len(batch) for batch in retrieve.asked] == [1] * (1 + 3)


def test_no_latency_questions_no_metrics(tiny_config, generator):
    config = tiny_config()
    assert config.eval.latency_questions == 0
    assert batch1_latency(None, closed_book(config, generator), config.eval, EXAMPLES, None) == {}


@pytest.mark.parametrize("warmup", [0, 2, 5])
def test_warmup_answers_come_first_and_are_not_timed(tiny_config, generator, monkeypatch, warmup):
    config = tiny_config("eval.latency_questions=3", f"eval.latency_warmup={warmup}")
    answerer = closed_book(config, generator)
    asked, summarised = [], []
    answer_alone = Answerer._answer_alone

    def counting(self, model, question, passages, max_new_tokens):
        asked.append(question)
        return answer_alone(self, model, question, passages, max_new_tokens)

    def summary(timings):
        summarised.append(list(timings))
        return batch1_summary(timings)

    monkeypatch.setattr(Answerer, "_answer_alone", counting)
    monkeypatch.setattr(qa_eval, "batch1_summary", summary)
    metrics = batch1_latency(None, answerer, config.eval, EXAMPLES, None)
    warm = [EXAMPLES[(3 + i) % len(EXAMPLES)].question for i in range(warmup)]
    assert asked == warm + [e.question for e in EXAMPLES[:3]]
    assert len(summarised) == 1 and len(summarised[0]) == 3
    assert metrics["batch1_latency_questions"] == 3


def test_another_answer_function_is_timed_whole(tiny_config):
    config = tiny_config("eval.latency_questions=2", "eval.latency_warmup=1")
    calls = []

    def answer(questions, passages, tokens):
        calls.append((list(questions), passages))
        return ["x"] * len(questions)

    metrics = batch1_latency(Retriever(), answer, config.eval, EXAMPLES, 2)
    assert len(calls) == 3 and all(len(qs) == 1 and len(ps[0]) == 2 for qs, ps in calls)
    assert set(metrics) == {"batch1_latency_questions", *ALWAYS, *RETRIEVAL}


@pytest.mark.parametrize("decoding", [None, "token_greedy", "sequence_fast"])
def test_answers_alone_equal_the_batched_answers_in_fp32(tiny_config, generator, decoding):
    config = tiny_config()
    if decoding is None:
        answerer, passages = closed_book(config, generator), None
    else:
        answerer, k = rag_answerer(config, generator, decoding)
        passages = [PASSAGES[:k] for _ in EXAMPLES[:4]]
    questions = [e.question for e in EXAMPLES[:4]]
    batched = answerer.answer(questions, passages, 6)
    with answerer.answering_alone() as answer_alone:
        alone = [answer_alone(q, passages[i] if passages else None, 6) for i, q in enumerate(questions)]
    assert [answer for answer, _ in alone] == batched
    assert all(1 <= clock.tokens <= 6 for _, clock in alone)


def test_bf16_answers_alone_run_on_a_cast_copy_and_leave_the_weights_alone(tiny_config, generator):
    config = tiny_config("eval.latency_questions=2", "eval.precision=bf16")
    answerer = closed_book(config, generator)
    before = {name: p.clone() for name, p in answerer.generator.model.named_parameters()}
    metrics = batch1_latency(None, answerer, config.eval, EXAMPLES, None)
    assert all(metrics[key] > 0 for key in ALWAYS + ("batch1_ttft_p50_ms",))
    for name, p in answerer.generator.model.named_parameters():
        assert p.dtype == torch.float32 and torch.equal(p, before[name])


def test_a_cast_copy_keeps_buffers_and_tied_weights():
    model = build_generator(ModelConfig(source="tiny", hidden_size=32, num_heads=4)).model
    assert with_parameters_in(model, "fp32") is model
    cast = with_parameters_in(model, "bf16")
    assert all(p.dtype == torch.bfloat16 for p in cast.parameters())
    assert all(b.dtype == dict(model.named_buffers())[n].dtype for n, b in cast.named_buffers())
    assert cast.get_output_embeddings().weight is cast.get_input_embeddings().weight
    assert all(p.dtype == torch.float32 for p in model.parameters())


@pytest.fixture(scope="module")
def tiny_llama():
    torch.manual_seed(0)
    generator = build_generator(ModelConfig(source="tiny", hidden_size=32, num_heads=4))
    return generator.model.eval(), generator.tokenizer


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tokens=st.integers(1, 12), beams=st.sampled_from([1, 2]))
def test_the_clock_stamps_each_decoding_step_once_so_length_cannot_drive_per_token(tiny_llama, tokens, beams):
    """With a timer that ticks once per reading, any answer length reads 1 tick to the first token and 1 tick per
    token after it: the per-token figure divides by the steps `generate` really ran."""
    model, tokenizer = tiny_llama
    ticks = iter(range(10_000))
    clock = DecodeClock(timer=lambda: float(next(ticks)))
    prompt = torch.tensor([tokenizer("where is the tower").input_ids])
    with torch.inference_mode():
        model.generate(
            input_ids=prompt,
            attention_mask=torch.ones_like(prompt),
            min_new_tokens=tokens,
            max_new_tokens=tokens,
            num_beams=beams,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            stopping_criteria=clock.criteria(),
        )
    assert clock.tokens == tokens
    assert clock.first_token_s == 1.0
    assert clock.seconds_per_token == (1.0 if tokens > 1 else None)


@given(
    prefill=st.floats(0.001, 5.0),
    step=st.floats(0.001, 1.0),
    lengths=st.lists(st.integers(2, 64), min_size=2, max_size=20),
)
def test_per_token_percentiles_do_not_move_with_answer_length(prefill, step, lengths):
    """Questions that decode at the same speed but answer at different lengths: the whole-answer percentiles
    spread with length, the per-token ones do not."""
    timings = []
    for length in lengths:
        stamps = iter([0.0] + [prefill + i * step for i in range(length)])
        clock = DecodeClock(timer=lambda stamps=stamps: next(stamps))
        for _ in range(length):
            clock(torch.zeros(1, 1, dtype=torch.long), torch.zeros(1, 4))
        total = prefill + (length - 1) * step
        timings.append(QuestionTiming(total, None, clock.first_token_s, clock.seconds_per_token, clock.tokens))
    summary = batch1_summary(timings)
    assert summary["batch1_ms_per_token_p50"] == pytest.approx(step * 1000, rel=1e-6)
    assert summary["batch1_ms_per_token_p95"] == pytest.approx(step * 1000, rel=1e-6)
    assert summary["batch1_ttft_p95_ms"] == pytest.approx(prefill * 1000, rel=1e-6)
    spread = (max(lengths) - min(lengths)) * step * 1000
    assert summary["batch1_latency_p95_ms"] - summary["batch1_latency_p50_ms"] <= spread + 1e-6


def test_latency_warmup_below_zero_names_the_field(tiny_config):
    with pytest.raises(ConfigError, match=r"eval\.latency_warmup"):
        tiny_config("eval.latency_warmup=-1")


def test_latency_warmup_default_is_the_same_in_yaml_and_schema():
    conf = yaml.safe_load((Path(__file__).resolve().parents[2] / "conf" / "eval" / "default.yaml").read_text())
    assert conf["latency_warmup"] == EvalConfig().latency_warmup == 2


def test_the_median_latency_carries_a_distribution_free_interval():
    from rag_pet.evaluation.latency import QuestionTiming, batch1_summary

    seconds = [0.1 * (i + 1) for i in range(50)]  # 100 ms ... 5,000 ms
    summary = batch1_summary([QuestionTiming(s, None, s / 4, s / 40, 12) for s in seconds])
    for name in ("batch1_latency_p50_ms", "batch1_ttft_p50_ms", "batch1_ms_per_token_p50"):
        low, high = summary[f"{name}_low"], summary[f"{name}_high"]
        assert low < summary[name] < high
    # the interval's ends are order statistics (observed timings), not a normal approximation
    for end in ("low", "high"):
        assert min(abs(summary[f"batch1_latency_p50_ms_{end}"] - 1000 * s) for s in seconds) < 1e-6
    assert "batch1_latency_p50_ms_low" not in batch1_summary([QuestionTiming(0.4)])  # one timing: no interval
