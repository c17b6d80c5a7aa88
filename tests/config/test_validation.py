import sys
from pathlib import Path

import pytest

from rag_pet.errors import ConfigError
from tests.conftest import compose_config, jobs_in_background

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("override", "field", "allowed"),
    [
        (
            "peft.method=bogus",
            "peft.method",
            "one of lora, dora, adalora, ia3, loha, lokr, prefix, prompt, ptuning, full, frozen",
        ),
        ("trainer.lr=-1", "trainer.lr", "a number > 0"),
        ("trainer.num_workers=0", "trainer.num_workers", "a number > 0"),
        ("data.eval_split=holdout", "data.eval_split", "one of train, validation_seen, validation, test"),
        ("data.seen_holdout=1.5", "data.seen_holdout", "a fraction in [0, 1)"),
        ("data=fictional data.fictional_entities=2", "data.fictional_entities", "at least 3"),
        (
            "data=nq_open data.train_on=passages",
            "data.train_on",
            "questions unless data.name is one of squad, fictional",
        ),
        ("model.dtype=float16", "model.dtype", "float32 or bfloat16 on CPU"),
        ("trainer.precision=fp8", "trainer.precision", "one of auto, fp32, bf16, fp16"),
        ("trainer.precision=fp16", "trainer.precision", "fp32 or bf16 on CPU"),
        ("deepspeed.zero_stage=5", "deepspeed.zero_stage", "one of 0, 1, 2, 3"),
        (
            "deepspeed=zero2 deepspeed.offload_params=true",
            "deepspeed.offload_params",
            "false unless deepspeed.zero_stage=3",
        ),
        ("deepspeed=zero3 peft=adalora", "peft.method", "a method other than adalora with deepspeed.enabled"),
        ("tracking.mode=cloud", "tracking.mode", "one of offline, online, disabled"),
        (
            "deepspeed=zero2 +deepspeed.config={optimizer:{params:{lr:0.1}}}",
            "deepspeed.config.optimizer.params.lr",
            "unset: set trainer.lr instead",
        ),
        (
            "deepspeed=zero2 +deepspeed.config={train_micro_batch_size_per_gpu:64}",
            "deepspeed.config.train_micro_batch_size_per_gpu",
            "unset: set trainer.batch_size instead",
        ),
        ("deepspeed=zero2 +deepspeed.config={bf16:{enabled:true}}", "deepspeed.config.bf16", "trainer.precision"),
    ],
)
def test_bad_values_name_the_field_and_what_is_allowed(override, field, allowed):
    with pytest.raises(ConfigError) as caught:
        compose_config(["debug=tiny", *override.split()])
    assert caught.value.field == field
    message = str(caught.value)
    assert field in message and allowed in message
    assert "\n" not in message


ONE_LINE_ERRORS = [
    (
        "peft.method=bogus",
        "config error: peft.method='bogus' is invalid; allowed: one of lora, dora, adalora, ia3, loha, lokr, "
        "prefix, prompt, ptuning, full, frozen",
    ),
    ("trainer.lr=-1", "config error: trainer.lr=-1.0 is invalid; allowed: a number > 0"),
]
WRONG_TYPE = "trainer.max_steps=many"


@pytest.fixture(scope="module")
def train_jobs(tmp_path_factory):
    """`python -m jobs.train <override>` for each override this module tries, started together
    (`jobs_in_background`): the futures by override."""
    overrides = [WRONG_TYPE, *(override for override, _ in ONE_LINE_ERRORS)]
    commands = {
        override: (
            [sys.executable, "-m", "jobs.train", override, f"hydra.run.dir={tmp_path_factory.mktemp('job')}"],
            {},
        )
        for override in overrides
    }
    with jobs_in_background(commands, cwd=REPO, timeout=300) as started:
        yield started


def test_wrong_type_is_one_line_naming_the_field(train_jobs):
    result = train_jobs[WRONG_TYPE].result()
    assert result.returncode == 2
    assert result.stderr == "error: config error: trainer.max_steps='many' is invalid; allowed: an integer\n"


def test_jsonl_dataset_needs_a_path():
    with pytest.raises(ConfigError, match="data.path"):
        compose_config(["debug=tiny", "data=jsonl", "data.path=null"])


@pytest.mark.parametrize(("override", "expected"), ONE_LINE_ERRORS)
def test_train_job_exits_with_one_clear_line(train_jobs, override, expected):
    result = train_jobs[override].result()
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {expected}"]
    assert "Traceback" not in result.stderr


def test_user_errors_survive_pickling_across_ray_processes():
    import pickle

    from rag_pet.errors import DataFormatError

    error = pickle.loads(pickle.dumps(ConfigError("rag.k", 9, "at most 8")))
    assert str(error) == "config error: rag.k=9 is invalid; allowed: at most 8" and error.field == "rag.k"
    assert (
        str(pickle.loads(pickle.dumps(DataFormatError("f.jsonl", 3, "no question"))))
        == "data error: f.jsonl:3: no question"
    )
