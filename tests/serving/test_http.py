"""The Serve application over real HTTP on loopback: tiny generator with two LoRA adapters, tiny retriever over a
64-passage SQuAD index; every endpoint, bad input, auth, adapter routing, and the three evaluation paths."""

from __future__ import annotations

import itertools
import json
import logging
import socket
from collections import Counter
from urllib.parse import urlparse

import httpx
import pytest
import schemathesis
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from peft import LoraConfig, get_peft_model
from schemathesis import GenerationMode

from rag_pet.config import RagPetConfig
from rag_pet.data import load_qa_split
from rag_pet.data.prompts import PromptEncoder
from rag_pet.errors import ConfigError
from rag_pet.evaluation.qa_eval import workload
from rag_pet.evaluation.runners import predict_from_endpoint, predict_in_process, predict_with_ray_data
from rag_pet.experiment import evaluate_model, run_experiment
from rag_pet.inference.answering import Answerer
from rag_pet.inference.components import AdaptedAnswerer, build_passage_retriever
from rag_pet.models import attach_adapter, build_generator
from rag_pet.served_run import resolve_spec
from rag_pet.serving.launch import start_service, stop_service
from tests.conftest import compose_config

pytestmark = pytest.mark.usefixtures("ray_local")
TOKEN_ENV = "RAG_PET_TEST_TOKEN"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def tiny_rag(root) -> list[str]:
    """Tiny generator and retriever over a 64-passage SQuAD index in `root`, with small Serve reservations."""
    return [
        "debug=tiny",
        "objective=rag",
        "retriever=tiny",
        "corpus.max_passages=64",
        f"index.storage_path={root / 'indexes'}",
        "index.shard_cpus=0.1",
        "index.encode_cpus=0.5",
        "rag.k=2",
        "rag.passage_max_tokens=24",
        "serve.retriever.num_cpus=0.1",
        "serve.generator.num_cpus=0.1",
        "serve.ingress.num_cpus=0.1",
    ]


def save_adapter(config: RagPetConfig, seed: int, directory) -> str:
    """A LoRA adapter with random (non-zero) weights on the tiny base: distinct outputs without training."""
    torch.manual_seed(seed)
    generator = build_generator(config.model)
    lora = LoraConfig(r=4, lora_alpha=16, target_modules="all-linear", init_lora_weights=False)
    get_peft_model(generator.model, lora).save_pretrained(directory)
    return str(directory)


def documented(http: httpx.Client, method: str, route: str) -> set[int]:
    """The status codes the service's OpenAPI document lists for `method` on `route`."""
    return {int(code) for code in http.get("/openapi.json").json()["paths"][route][method]["responses"]}


def post_raw(http: httpx.Client, route: str, body: str | bytes) -> httpx.Response:
    """POST `body` as it is, labelled JSON (httpx's `json=` cannot send a lone surrogate or non-UTF-8 bytes)."""
    return http.post(route, content=body, headers={"content-type": "application/json"})


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("serving")
    base = [
        *tiny_rag(root),
        "serve.max_question_chars=200",
        "serve.max_k=8",
        "serve.max_batch_questions=4",
        f"serve.port={free_port()}",
    ]
    plain = compose_config(base, run_dir=root / "run")
    adapters = {name: save_adapter(plain, seed, root / name) for seed, name in enumerate(["alpha", "beta"])}
    with_adapters = [*base, *(f"+serve.adapters.{name}={path}" for name, path in adapters.items())]
    config = compose_config(with_adapters, run_dir=root / "run")
    service = start_service(resolve_spec(config))
    yield config, service, root
    stop_service(service)


@pytest.fixture(scope="module")
def client(setup):
    with httpx.Client(base_url=setup[1].url, timeout=120) as http:
        yield http


def test_each_endpoint_answers(client):
    retrieved = client.post("/retrieve", json={"questions": ["Who won the game?", "Where is it?"], "k": 3}).json()
    assert [len(hits) for hits in retrieved["passages"]] == [3, 3]
    scores = [hit["score"] for hit in retrieved["passages"][0]]
    assert scores == sorted(scores, reverse=True) and all(hit["id"] and hit["text"] for hit in retrieved["passages"][0])
    assert retrieved["index"]["version"] == 1 and retrieved["index"]["num_vectors"] == 64

    generated = client.post("/generate", json={"question": "Who won the game?", "adapter": "alpha"}).json()
    assert len(generated["answers"]) == 1 and generated["adapter"] == "alpha"

    rag = client.post("/rag", json={"question": "Who won the game?", "return_k": 4}).json()
    assert len(rag["results"]) == 1 and len(rag["results"][0]["passages"]) == 4
    assert set(rag["latency_ms"]) == {"retrieve", "generate", "total"} and rag["adapter"] == "base"

    adapters = client.get("/adapters").json()
    assert adapters["adapters"] == ["base", "alpha", "beta"] and adapters["default"] == "base"
    assert client.get("/healthz").json()["status"] == "ok"
    assert {"/retrieve", "/generate", "/rag"} <= set(client.get("/openapi.json").json()["paths"])
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize(
    ("route", "body", "status", "message"),
    [
        ("/rag", "{not json", 422, "JSON decode error"),
        ("/rag", b'{"question": "\xff"}', 400, "There was an error parsing the body"),
        ("/retrieve", '{"question": "Who?", "k": "\\ud800"}', 422, '"loc":["body","k"]'),
        ("/rag", {"k": 2}, 422, "exactly one of `question`"),
        ("/rag", {"question": "x" * 201}, 422, "limit is 200 (serve.max_question_chars)"),
        ("/rag", {"question": "Who?", "k": 0}, 422, "greater than 0"),
        ("/retrieve", {"question": "Who?", "k": 9}, 422, "limit of 8 (serve.max_k)"),
        ("/generate", {"question": "Who?", "max_new_tokens": 65}, 422, "(serve.max_new_tokens)"),
        ("/generate", {"questions": ["a", "b", "c", "d", "e"]}, 422, "limit is 4 (serve.max_batch_questions)"),
        ("/generate", {"question": "Who?", "adapter": "gamma"}, 404, "unknown adapter 'gamma'"),
        ("/generate", {"question": "Who?", "adapter": ""}, 404, "unknown adapter ''"),
    ],
)
def test_bad_requests_get_a_clear_4xx_and_the_service_keeps_serving(client, route, body, status, message):
    response = post_raw(client, route, body) if isinstance(body, (str, bytes)) else client.post(route, json=body)
    assert response.status_code == status and status in documented(client, "post", route)
    assert message in response.text
    assert client.post("/generate", json={"question": "Who won?"}).status_code == 200


@pytest.mark.parametrize("route", ["/rag", "/generate", "/retrieve"])
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"question": "\\ud800"}', "question contains a lone surrogate (\\ud800 at character 0)"),
        ('{"questions": ["Who won?", "a\\udfffb"]}', "questions[1] contains a lone surrogate (\\udfff at character 1)"),
    ],
)
def test_a_lone_surrogate_gets_a_422_naming_the_field_and_the_service_keeps_serving(client, route, body, message):
    response = post_raw(client, route, body)
    assert response.status_code == 422 and 422 in documented(client, "post", route)
    (error,) = response.json()["detail"]
    assert message in error["msg"] and "send valid Unicode text" in error["msg"]
    assert client.post(route, json={"question": "Who won?"}).status_code == 200


def test_the_openapi_document_without_auth_has_no_bearer_scheme_and_lists_each_answer(client):
    document = client.get("/openapi.json").json()
    assert "securitySchemes" not in document.get("components", {})
    operations = {(method, route): op for route, ops in document["paths"].items() for method, op in ops.items()}
    assert not any("security" in op for op in operations.values())
    assert {key: {int(code) for code in op["responses"]} for key, op in operations.items()} == {
        ("post", "/retrieve"): {200, 400, 422},
        ("post", "/generate"): {200, 400, 404, 422},
        ("post", "/rag"): {200, 400, 404, 422},
        ("get", "/adapters"): {200},
        ("get", "/healthz"): {200},
    }


def test_two_adapters_give_different_answers_each_equal_to_offline_inference(setup, client):
    config, service, _ = setup
    examples = load_qa_split(config.data, "validation", 4)
    questions = [e.question for e in examples]
    served = {
        name: client.post("/generate", json={"questions": questions, "adapter": name, "max_new_tokens": 6}).json()
        for name in ("alpha", "beta")
    }
    offline = {}
    for name in ("alpha", "beta"):
        generator = build_generator(config.model)
        generator.model = attach_adapter(generator.model, service.spec.adapters[name])
        prompts = PromptEncoder.from_config(generator.tokenizer, config.data, generator.is_seq2seq)
        offline[name] = Answerer(generator, prompts, None, torch.device("cpu")).answer(questions, None, 6)
    assert served["alpha"]["answers"] == offline["alpha"]
    assert served["beta"]["answers"] == offline["beta"]
    assert served["alpha"]["answers"] != served["beta"]["answers"]


def test_a_second_app_asking_for_another_port_answers_on_the_running_proxy_and_says_so(setup, client, caplog):
    """Serve keeps one HTTP proxy per cluster: an app asking for port B beside one on port A answers on A, at its
    own route, and one line says that B was not used; an app taking a running app's name or route is refused, and a
    Serve config written for this cluster names the running proxy."""
    _, first, root = setup
    running_port, asked = urlparse(first.url).port, free_port()
    small = [*tiny_rag(root), f"serve.port={asked}"]  # on the module's index, with small reservations
    caplog.set_level(logging.WARNING, logger="rag_pet.serving.running")
    second = start_service(
        resolve_spec(compose_config([*small, "serve.app_name=second", "serve.route_prefix=/second"], root / "second"))
    )
    try:
        assert second.url == f"http://127.0.0.1:{running_port}/second"
        (warning,) = [record.getMessage() for record in caplog.records if record.name == "rag_pet.serving.running"]
        assert f"serve.port={asked} not used" in warning and f"listens on 127.0.0.1:{running_port}" in warning
        with httpx.Client(base_url=second.url, timeout=120) as http:
            assert len(http.post("/generate", json={"question": "Who won?"}).json()["answers"]) == 1
        assert len(client.post("/generate", json={"question": "Who won?"}).json()["answers"]) == 1
        for name, route, field in (("second", "/third", "serve.app_name"), ("third", "/second", "serve.route_prefix")):
            clash = compose_config([*small, f"serve.app_name={name}", f"serve.route_prefix={route}"], root / "third")
            with pytest.raises(ConfigError, match=f"{field}=.*'second'"):
                start_service(resolve_spec(clash))
        only = [*small, "serve.app_name=written", "serve.route_prefix=/written", "serve.write_config_only=true"]
        written = start_service(resolve_spec(compose_config(only, root / "written")))
        assert written.url == f"http://127.0.0.1:{running_port}/written"
        assert yaml.safe_load(written.config_file.read_text())["http_options"]["port"] == running_port
    finally:
        stop_service(second)
    assert client.get("/healthz").json()["status"] == "ok"


@pytest.mark.slow  # a whole evaluation through Serve and Ray Data; each endpoint's answers stay in the default suite
def test_serve_ray_data_and_in_process_evaluation_agree(setup):
    config, service, _ = setup
    examples = load_qa_split(config.data, "validation", 8)
    work = workload(config.eval, examples, config.rag.k)
    work = type(work)(**{**work.__dict__, "adapter": "beta", "batch_size": 3})
    spec = service.spec
    model = AdaptedAnswerer(spec, torch.device("cpu"))
    slot = model.load("beta")
    retriever = build_passage_retriever(spec, spec.index_version)
    local = predict_in_process(retriever.retrieve, lambda q, p, t: model.answer(slot, q, p, t), work)
    batch = predict_with_ray_data(spec, work, concurrency=1, cpus_per_predictor=0.5)
    remote = predict_from_endpoint(service.url, work, concurrency=4)
    assert remote.errors == 0 and len(remote.latencies_s) == len(examples)
    assert local.answers == batch.answers == remote.answers
    assert local.retrieved == batch.retrieved == remote.retrieved
    assert all(len(ids) == 5 for ids in local.retrieved)  # retrieved 5 deep for recall@5, answered from the first 2


@pytest.mark.slow  # starts a second service
def test_bearer_token_is_required_when_auth_is_on(setup, monkeypatch):
    config, _, root = setup
    monkeypatch.setenv(TOKEN_ENV, "s3cret")
    overrides = [
        *tiny_rag(root),
        f"serve.port={config.serve.port}",
        "serve.app_name=secured",
        "serve.route_prefix=/secured",
        f"serve.auth_token_env={TOKEN_ENV}",
    ]
    service = start_service(resolve_spec(compose_config(overrides, run_dir=root / "secured")))
    try:
        with httpx.Client(base_url=service.url, timeout=120) as http:
            body = {"question": "Who won?"}
            assert http.post("/generate", json=body).status_code == 401
            wrong = http.post("/generate", json=body, headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
            right = http.post("/generate", json=body, headers={"Authorization": "Bearer s3cret"})
            assert right.status_code == 200 and len(right.json()["answers"]) == 1
            assert http.get("/adapters").status_code == 401 and 401 in documented(http, "get", "/adapters")
            assert {200, 401} <= documented(http, "post", "/generate")
            document = http.get("/openapi.json").json()
            assert document["components"]["securitySchemes"] == {"HTTPBearer": {"type": "http", "scheme": "bearer"}}
            assert document["paths"]["/generate"]["post"]["security"] == [{"HTTPBearer": []}]
            assert "security" not in document["paths"]["/healthz"]["get"]
    finally:
        stop_service(service)


@pytest.mark.slow  # a whole evaluate job per runner
@pytest.mark.parametrize("runner", ["endpoint", "ray_data"])
def test_the_evaluate_job_reports_quality_latency_and_errors_through_each_runner(setup, runner):
    config, service, root = setup
    overrides = [
        *tiny_rag(root),
        f"eval.runner={runner}",
        f"eval.endpoint_url={service.url}",
        "eval.concurrency=2",
        "eval.cpus_per_predictor=0.5",
        "data.max_eval_examples=4",
    ]
    summary = evaluate_model(compose_config(overrides, run_dir=root / f"eval_{runner}"))
    (row,) = summary["rows"]
    assert row["runner"] == runner and row["count"] == 4 and row["errors"] == 0
    assert 0.0 <= row["retrieval_recall@1"] <= row["retrieval_recall@5"] <= 1.0
    assert row["latency_p50_ms"] <= row["latency_p99_ms"] and row["throughput_qps"] > 0
    assert (root / f"eval_{runner}" / "eval" / runner / "predictions.jsonl").is_file()


@pytest.mark.slow  # trains a RAG run, then serves it
def test_a_trained_rag_run_is_served_from_its_run_directory(setup):
    config, _, root = setup
    run_dir = root / "trained"
    training = [
        *tiny_rag(root),
        "experiment_name=tiny_joint",
        "trainer.launcher=local",
        "rag.query_encoder=full",
        "retriever.shared=false",
        "eval.after_training=false",
    ]
    run_experiment(compose_config(training, run_dir=run_dir))
    serving = [*tiny_rag(root), f"serve.run_dir={run_dir}", f"serve.port={config.serve.port}"]
    service = start_service(
        resolve_spec(compose_config([*serving, "serve.app_name=trained", "serve.route_prefix=/trained"]))
    )
    try:
        assert service.spec.default_adapter == "tiny_joint" and service.spec.retriever_dir is not None
        with httpx.Client(base_url=service.url, timeout=120) as http:
            answered = http.post("/rag", json={"question": "Who won Super Bowl 50?"}).json()
        assert answered["adapter"] == "tiny_joint" and len(answered["results"][0]["passages"]) == 2
        retriever = build_passage_retriever(service.spec, service.spec.index_version)
        expected = [hit.id for hit in retriever.retrieve(["Who won Super Bowl 50?"], 2)[0]]
        assert [hit["id"] for hit in answered["results"][0]["passages"]] == expected  # the trained query tower
    finally:
        stop_service(service)


@pytest.mark.slow  # hundreds of generated requests
def test_generated_requests_never_get_a_5xx_or_an_undocumented_answer(setup):
    """Schemathesis over the service's OpenAPI document with every check (`--checks all`), on requests valid and
    invalid by the document (loopback, 30 examples an operation and mode): no 5xx, every status, content type and
    body as documented, every request the document allows accepted and every one it forbids rejected."""
    _, service, _ = setup
    schema = schemathesis.openapi.from_url(f"{service.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {operation.path for operation in operations} >= {"/retrieve", "/generate", "/rag", "/adapters", "/healthz"}
    statuses: Counter = Counter()
    for operation, mode in itertools.product(operations, (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)):
        if mode == GenerationMode.NEGATIVE and operation.method.upper() == "GET":
            continue  # the GET routes take no input: there is no invalid request to make

        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy(mode))
        def answers_as_documented(case) -> None:
            statuses[f"{case.path} {case.call_and_validate().status_code}"] += 1

        answers_as_documented()
    print(f"\nschemathesis: {sum(statuses.values())} requests, by route and status: {dict(sorted(statuses.items()))}")
    assert sum(statuses.values()) >= 5 * 10


@pytest.mark.slow  # starts its own service
def test_endpoint_latency_sends_questions_one_at_a_time_to_its_own_service(setup, tmp_path):
    from ray import serve

    from rag_pet.served_run import run_spec
    from rag_pet.serving.endpoint_latency import endpoint_latency

    config, _, root = setup
    overrides = [
        *tiny_rag(root),
        f"serve.port={config.serve.port}",  # one Serve proxy per cluster: the one the module's service started
        "serve.app_name=latency",
        "serve.route_prefix=/latency",
        "eval.latency_questions=3",
    ]
    timed = compose_config(overrides, run_dir=tmp_path / "run")
    examples = load_qa_split(timed.data, "validation", 5)
    metrics = endpoint_latency(run_spec(timed, None), timed.eval, examples, timed.rag.k)
    assert metrics["endpoint_errors"] == 0
    assert 0 < metrics["endpoint_latency_p50_ms"] <= metrics["endpoint_latency_p95_ms"]
    assert "latency" not in serve.status().applications  # stopped after the measurement


@pytest.mark.slow  # 30 s beside the session study
def test_a_study_cell_is_served_and_answers_what_its_predictions_hold(setup, tiny_study_run, tmp_path):
    """Every study cell's experiment name holds a dot (`tiny.lora-seed0`), which peft refuses in an adapter name:
    the served run must still load it and answer exactly what the cell's own evaluation answered."""
    from pathlib import Path

    from rag_pet.evaluation.steps import eval_folder

    config, _, _ = setup
    compare, _ = tiny_study_run
    for cell, label, route in (("lora-seed0", "lora", "/generate"), ("rag_lora-seed0", "rag+lora", "/rag")):
        run_dir = Path(compare.study_dir) / "cells" / cell
        rows = [json.loads(line) for line in (run_dir / "eval" / eval_folder(label) / "predictions.jsonl").open()]
        serving = [
            "serve.retriever.num_cpus=0.1",
            "serve.generator.num_cpus=0.1",
            "serve.ingress.num_cpus=0.1",
            f"serve.run_dir={run_dir}",
            f"serve.port={config.serve.port}",
            f"serve.app_name={cell}",
            f"serve.route_prefix=/{cell}",
        ]
        service = start_service(resolve_spec(compose_config(["debug=tiny", *serving], run_dir=tmp_path / cell)))
        try:
            assert "." in service.spec.default_adapter  # the cell's experiment name, `tiny.<cell>`
            with httpx.Client(base_url=service.url, timeout=120) as http:
                response = http.post(route, json={"questions": [row["question"] for row in rows]})
            assert response.status_code == 200, response.text
            body = response.json()
            answers = body["answers"] if route == "/generate" else [result["answer"] for result in body["results"]]
            assert answers == [row["prediction"] for row in rows]
        finally:
            stop_service(service)
