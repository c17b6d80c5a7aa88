"""Bad overrides reach the user as one `error: config error:` line with exit status 2; Hydra's own flags still work."""

import sys

import pytest

from rag_pet.cli import config_error
from rag_pet.config import register_configs
from rag_pet.console import VERBOSE_ENV, take_verbose_flag
from tests.conftest import CONF_DIR, jobs_in_background

REPO = CONF_DIR.parent
EXPERIMENTS = ", ".join(sorted(path.stem for path in (CONF_DIR / "experiment").glob("*.yaml")))
MODELS = ", ".join(sorted(path.stem for path in (CONF_DIR / "model").glob("*.yaml")))


BAD_OVERRIDES = [
    ("train", "trainer.lr=abc", "trainer.lr='abc' is invalid; allowed: a float"),
    ("train", "model=nosuch", f"model='nosuch' is invalid; allowed: one of {MODELS}"),
    ("evaluate", "experiment=nosuch", f"experiment='nosuch' is invalid; allowed: one of {EXPERIMENTS}"),
    (
        "train",
        "index.max_passages=2000",
        "index.max_passages='2000' is invalid; allowed: a key the config has (`--cfg job` lists them); did you "
        "mean corpus.max_passages?",
    ),
    (
        "train",
        "trainer.lerning_rate=1e-4",
        "trainer.lerning_rate='1e-4' is invalid; allowed: a key the config has (`--cfg job` lists them); did "
        "you mean trainer.lr?",
    ),
]
HYDRA_FLAGS = ("train", "--cfg", "job", "debug=tiny")
TINY_RUN = ("train", "debug=tiny", "trainer.max_steps=20")


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    """Every `python -m jobs.<job>` this module runs, started together (`jobs_in_background`), each with its own
    `hydra.run.dir`: the futures and run directories by job line."""
    lines = [(job, override) for job, override, _ in BAD_OVERRIDES] + [HYDRA_FLAGS, TINY_RUN]
    run_dirs = {line: tmp_path_factory.mktemp("job") for line in lines}
    commands = {
        line: ([sys.executable, "-m", f"jobs.{line[0]}", *line[1:], f"hydra.run.dir={run_dirs[line]}"], {})
        for line in lines
    }
    with jobs_in_background(commands, cwd=REPO, timeout=300) as started:
        yield {line: (started[line], run_dirs[line]) for line in lines}


@pytest.mark.parametrize(("job", "override", "expected"), BAD_OVERRIDES)
def test_a_bad_override_is_one_line_and_exit_status_2(jobs, job, override, expected):
    done, run_dir = jobs[(job, override)]
    result = done.result()
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"error: config error: {expected}"]
    assert not any(run_dir.iterdir())


def test_hydra_flags_still_work(jobs):
    result = jobs[HYDRA_FLAGS][0].result()
    assert result.returncode == 0, result.stderr
    assert "experiment_name: default" in result.stdout
    assert "max_steps: 4" in result.stdout


def test_a_job_shows_its_plan_progress_and_results_and_leaves_library_output_in_its_log(jobs):
    done, run_dir = jobs[TINY_RUN]
    result = done.result()
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    log = run_dir / "train.log"
    assert lines[0] == f"log: {log}" and lines[1].startswith("default: lora, 20 training steps")
    steps = [line for line in lines if line.startswith("step ")]
    assert 2 <= len(steps) <= 11 and steps[-1].startswith("step 20/20") and "left" in steps[-2]
    assert "run directory:" in lines[-1] and any(line.startswith("method ") for line in lines)
    assert len(lines) <= 20 and result.stderr == ""
    text = log.read_text()
    # Ray's driver output and its workers' (forwarded by Ray to the driver's stdout) are in the file
    assert "Started a local Ray instance" in text and "(RayTrainWorker pid=" in text


def test_the_verbose_flag_is_taken_off_the_command_line(monkeypatch):
    monkeypatch.delenv(VERBOSE_ENV, raising=False)
    argv = ["jobs/train.py", "-v", "debug=tiny"]
    assert take_verbose_flag(argv) and argv == ["jobs/train.py", "debug=tiny"]
    assert not take_verbose_flag(argv) and argv == ["jobs/train.py", "debug=tiny"]
    monkeypatch.setenv(VERBOSE_ENV, "1")
    assert take_verbose_flag(argv)


@pytest.mark.parametrize(
    ("overrides", "field", "value"),
    [
        (["model=tiny_t5,nosuch"], "model", "nosuch"),
        (["debug=tiny", "trainer.max_steps=choice(2,1.5)"], "trainer.max_steps", 1.5),
        (["trainer.lr=abc", "model=tiny_t5,smollm2"], "trainer.lr", "abc"),
    ],
)
def test_each_value_of_a_sweep_is_checked(overrides, field, value):
    register_configs()
    error = config_error(CONF_DIR, "config", overrides, multirun=True)
    assert (error.field, error.value) == (field, value)


@pytest.mark.parametrize("overrides", [["model=a,b"], ["trainer.lr"], ["debug=tiny"]])
def test_what_hydra_reports_itself_is_left_to_hydra(overrides):
    register_configs()
    assert config_error(CONF_DIR, "config", overrides, multirun=False) is None


def test_a_job_main_called_with_a_composed_config_returns_its_metrics(tmp_path):
    from hydra.core.global_hydra import GlobalHydra

    from jobs.train import main
    from rag_pet.config.compose import compose

    GlobalHydra.instance().clear()
    metrics = main(compose(CONF_DIR, ["debug=tiny", "trainer.launcher=local", f"run_dir={tmp_path}"]))

    assert metrics["train_steps"] == 4 and 0.0 <= metrics["f1"] <= 1.0 and metrics["loss"] > 0


def test_a_bad_override_is_answered_before_torch_and_ray_load():
    import subprocess

    check = (
        "import sys; import jobs.compare, jobs.evaluate, jobs.index, jobs.serve, jobs.sweep, jobs.train; "
        "from rag_pet.cli import config_error; "
        f"assert config_error('{CONF_DIR}', 'config', ['trainer.lr=abc'], multirun=False).field == 'trainer.lr'; "
        "print(sorted({'torch', 'ray', 'transformers'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", check], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_ctrl_c_stops_a_running_job_with_one_line_and_status_130(tmp_path):
    import signal
    import subprocess

    from rag_pet.cli import INTERRUPTED

    command = [sys.executable, "-m", "jobs.train", "debug=tiny", "trainer.max_steps=100000"]
    command.append(f"hydra.run.dir={tmp_path}")
    job = subprocess.Popen(
        command,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # a shell's background job ignores it
    )
    try:
        assert job.stdout.readline().startswith("log: ") and job.stdout.readline().startswith("default: lora")
        job.send_signal(signal.SIGINT)
        _, stderr = job.communicate(timeout=120)
    finally:
        job.kill()
    assert job.returncode == 130 and stderr.splitlines() == [INTERRUPTED]
