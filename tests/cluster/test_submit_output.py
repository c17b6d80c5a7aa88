"""Where a submitted job's results go (`--output`, `--ephemeral`, `--fetch`), and the Jobs API's failures as one
line, a head whose Jobs agent is still starting included. The error paths run against a small stand-in for
`JobSubmissionClient`; the acceptance test submits to a real head node it starts (slow suite)."""

from types import SimpleNamespace

import pytest
import requests
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser

from rag_pet.config.compose import compose
from rag_pet.errors import ConfigError, RagPetError
from rag_pet.experiment_config import compose_experiment
from rag_pet.job_output import check_output, output_overrides, quoted
from rag_pet.study import register_study_configs
from rag_pet.submit import RESULTS_KEY, JobsApi, SubmitConfig, fetch, follow, load_settings, stop, submit
from rag_pet.training.launcher import storage_location
from tests.cluster.test_submit import ROOT, head_node, submission_id, submit_job

CONF = ROOT / "conf"
SUBMIT_YAML = CONF / "submit.yaml"
AGENT_STARTING = "Request failed with status code 500: No available agent to submit job, please try again later.."
CONFIG_OF = {"train": "config", "evaluate": "config", "index": "config", "serve": "config", "sweep": "sweep_job"}


def composed(config_name: str, overrides: list[str]):
    """The job's config with Hydra's own node, as `python -m jobs.<job> <overrides>` composes it."""
    register_study_configs()
    GlobalHydra.instance().clear()
    return compose(CONF, overrides, config_name, hydra_node=True)


@pytest.mark.parametrize("job", sorted(CONFIG_OF))
def test_the_run_directory_checkpoints_and_index_store_go_under_the_output(job, tmp_path):
    user = ["debug=tiny"]
    overrides, results = output_overrides(job, user, str(tmp_path), "job_1")

    cfg = composed(CONFIG_OF[job], overrides)

    assert results == str(tmp_path / job / "job_1") == cfg.hydra.run.dir
    assert cfg.index.storage_path == str(tmp_path / "indexes")
    config = compose_experiment(CONF, [*overrides, f"run_dir={results}"])  # run_dir is Hydra's run.dir
    assert storage_location(config) == str(tmp_path / job / "job_1" / "checkpoints")


def test_a_study_goes_under_the_output_by_name_with_its_indexes_and_its_own_overrides(tmp_path):
    user = ["study=smoke", "study.overrides=['eval.max_new_tokens=3','data.chat_template=true']"]
    overrides, results = output_overrides("compare", user, str(tmp_path), "compare_1")

    cfg = composed("compare", overrides)

    assert results == str(tmp_path / "studies" / "smoke") == cfg.study_dir == cfg.hydra.run.dir
    expected = ["eval.max_new_tokens=3", "data.chat_template=true", f"index.storage_path={tmp_path / 'indexes'}"]
    assert list(cfg.study.overrides) == expected


def test_a_run_directory_the_user_sets_stays_theirs_and_must_be_absolute(tmp_path):
    own = tmp_path / "mine"
    overrides, results = output_overrides("sweep", [f"hydra.run.dir={own}"], str(tmp_path), "s_1")
    assert results == str(own) and overrides == [f"hydra.run.dir={own}", f"index.storage_path={tmp_path / 'indexes'}"]
    for key in ("hydra.run.dir", "index.storage_path", "trainer.storage_path"):
        with pytest.raises(ConfigError, match=f"{key}='outputs/x'"):
            output_overrides("train", [f"{key}=outputs/x"], str(tmp_path), "t_1")
    assert output_overrides("train", ["trainer.storage_path=s3://b/ckpt"], str(tmp_path), "t_1")[1]


def test_ephemeral_results_are_chosen_explicitly():
    settings = load_settings(SUBMIT_YAML, None, None, [], [], ephemeral=True)

    assert settings.output == "ephemeral" and settings.agent_wait_s == 60
    assert output_overrides("train", ["debug=tiny"], settings.output, "t_1") == (["debug=tiny"], None)
    with pytest.raises(ConfigError, match="--ephemeral"):
        load_settings(SUBMIT_YAML, None, None, [], [], output="/shared", ephemeral=True)


@pytest.mark.parametrize("output", [None, "outputs/cluster", "s3://bucket/rag_pet", "gs://bucket/rag_pet"])
def test_a_missing_relative_or_bucket_output_is_refused(output):
    with pytest.raises(ConfigError, match=f"output={output!r}"):
        check_output(output)


def test_a_submission_without_an_output_is_refused_in_one_line_before_connecting():
    done = submit_job("train", "debug=tiny", "--wait", address="http://127.0.0.1:9")

    assert done.returncode == 2
    (line,) = [line for line in done.stderr.splitlines() if line.strip()]
    assert line.startswith("error: config error: output=None") and "--output" in line and "--ephemeral" in line


@pytest.mark.parametrize("text", ["plain=1", "it's", "ends\\", "a\\'b", "x=[1,2], y={a: b}"])
def test_quoted_values_reach_hydra_unchanged(text):
    assert OverridesParser.create().parse_override(f"k={quoted(text)}").value() == text


class FakeClient:
    """Stands in for `JobSubmissionClient`: each method answers from `answers` (a value, or an exception raised)."""

    def __init__(self, **answers):
        self.answers, self.calls = answers, []

    def __getattr__(self, name):
        def method(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            answer = self.answers[name]
            answer = answer.pop(0) if isinstance(answer, list) else answer
            if isinstance(answer, Exception):
                raise answer
            return answer

        return method


def api_of(client: FakeClient, wait_s: float = 5.0, said: list | None = None) -> JobsApi:
    return JobsApi(client, "http://head:8265", wait_s, (said if said is not None else []).append, poll_s=0.01)


def test_a_starting_jobs_agent_is_waited_for_then_the_job_is_submitted():
    client = FakeClient(submit_job=[RuntimeError(AGENT_STARTING), RuntimeError(AGENT_STARTING), "train_1"])
    said = []

    got = submit(api_of(client, said=said), "train_1", "python -m jobs.train", "/out/train/train_1", SubmitConfig())

    assert got == "train_1" and len(client.calls) == 3
    assert said == ["waiting up to 5 s for the cluster's job agent to start..."]
    kwargs = client.calls[-1][2]
    assert kwargs["submission_id"] == "train_1" and kwargs["metadata"] == {RESULTS_KEY: "/out/train/train_1"}


def test_a_jobs_agent_that_never_starts_is_one_line_after_the_wait():
    client = FakeClient(submit_job=RuntimeError(AGENT_STARTING))

    with pytest.raises(RagPetError) as err:
        submit(api_of(client, wait_s=0.05), "train_1", "python -m jobs.train", None, SubmitConfig())

    message = str(err.value)
    assert "\n" not in message and len(client.calls) > 1
    assert message.startswith("jobs API error: submitting the job failed at http://head:8265: HTTP 500: No available")
    assert "agent_wait_s=0.05" in message


def test_every_other_jobs_api_failure_is_one_line_saying_what_to_do():
    traceback = "Request failed with status code 500: Traceback (most recent call last):\n  File x\nValueError: boom."
    lost = FakeClient(get_job_status=requests.exceptions.ConnectionError("Connection refused\nmore"))
    broken = FakeClient(get_job_status=SimpleNamespace(value="RUNNING"), get_job_logs=RuntimeError(traceback))
    unknown = FakeClient(stop_job=RuntimeError("Request failed with status code 404: Job x does not exist."))

    with pytest.raises(RagPetError) as no_answer:
        follow(api_of(lost), "train_1", print)
    with pytest.raises(RagPetError) as failed:
        follow(api_of(broken), "train_1", print)
    with pytest.raises(ConfigError, match="ID='x'"):
        stop(api_of(unknown), "x")

    for err in (no_answer, failed):
        assert "\n" not in str(err.value) and "python -m jobs.submit --logs train_1" in str(err.value)
    assert "no answer from http://head:8265 (Connection refused)" in str(no_answer.value)
    assert "HTTP 500: ValueError: boom;" in str(failed.value)


def job_info(results: str | None, status: str = "SUCCEEDED") -> SimpleNamespace:
    return SimpleNamespace(metadata={RESULTS_KEY: results} if results else {}, status=SimpleNamespace(value=status))


def test_fetch_copies_a_finished_jobs_results_home_or_says_why_not(tmp_path):
    results = tmp_path / "shared" / "train" / "train_1"
    (results / "eval").mkdir(parents=True)
    (results / "results.json").write_text("{}")

    assert fetch(api_of(FakeClient(get_job_info=job_info(str(results)))), "train_1", None).endswith(str(results))
    line = fetch(api_of(FakeClient(get_job_info=job_info(str(results)))), "train_1", tmp_path / "home")
    assert (tmp_path / "home" / "train_1" / "results.json").is_file() and "home/train_1" in line
    with pytest.raises(ConfigError, match="--fetch='train_1'.*--output"):
        fetch(api_of(FakeClient(get_job_info=job_info("ephemeral"))), "train_1", None)
    with pytest.raises(RagPetError, match="is RUNNING"):
        fetch(api_of(FakeClient(get_job_info=job_info(str(results), "RUNNING"))), "train_1", None)
    with pytest.raises(RagPetError, match="rsync -a <node>:/nowhere/train_1/"):
        fetch(api_of(FakeClient(get_job_info=job_info("/nowhere/train_1"))), "train_1", None)


@pytest.mark.slow
def test_a_job_submitted_to_a_fresh_head_leaves_its_results_at_the_output_after_the_node_stops(tmp_path):
    output, home = tmp_path / "shared", tmp_path / "home"
    job = ["train", "debug=tiny", "tracking=wandb_offline", "trainer.max_steps=2", "data.max_eval_examples=4"]
    with head_node() as address:  # submitted at once: the head's Jobs agent is still starting
        done = submit_job(*job, "--output", str(output), "--wait", address=address)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        job_id = submission_id(done.stdout)
        fetched = submit_job("--fetch", job_id, "--to", str(home), address=address)

    run_dir = output / "train" / job_id
    assert f"results: {run_dir} " in done.stdout and "SUCCEEDED" in done.stdout
    assert (run_dir / "results.json").is_file()
    assert list(run_dir.glob("eval/*/predictions.jsonl"))
    assert list((run_dir / "wandb").glob("offline-run-*"))
    assert (run_dir / "checkpoints").is_dir()
    assert fetched.returncode == 0, fetched.stderr[-2000:]
    assert (home / job_id / "results.json").read_text() == (run_dir / "results.json").read_text()
