"""The HTTP front of the service: `/retrieve`, `/generate`, `/rag` (FastAPI, OpenAPI at `/docs`), composing the
Retriever and Generator deployments through their handles.

Requests beyond the configured limits get a 422 naming the limit and its setting, as do bodies that do not validate
(lone surrogates included); a body that cannot be parsed (not UTF-8) gets a 400, an unknown adapter a 404; with
`serve.auth_token_env` set, every API route wants `Authorization: Bearer <token>` (401 otherwise). Each route's OpenAPI
entry lists these answers; the bearer scheme and the 401s appear only where auth is on.
"""

import asyncio
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import ray
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from ray import serve
from ray.serve.handle import DeploymentHandle

from rag_pet.config import ServeConfig
from rag_pet.inference.answering import RetrievedPassage
from rag_pet.inference.spec import BASE_ADAPTER, InferenceSpec
from rag_pet.serving.deployments import AnswerItem
from rag_pet.serving.schemas import (
    NOT_BLANK_PATTERN,
    AdaptersResponse,
    ErrorResponse,
    GenerateRequest,
    GenerateResponse,
    Hit,
    IndexInfo,
    RagAnswer,
    RagRequest,
    RagResponse,
    RetrieveRequest,
    RetrieveResponse,
    is_blank,
)

T = TypeVar("T")
logger = logging.getLogger(__name__)
app = FastAPI(
    title="rag_pet",
    description="Retrieval, generation with PEFT adapters, and retrieval-augmented generation of a trained run.",
)
bearer = HTTPBearer(auto_error=False)
# Ray Serve routes new requests away from a dead replica but fails the ones it held (node lost, actor killed), and
# does not retry them; inference is idempotent, so each call to a downstream deployment is retried once, on a replica
# the handle's router still considers live. Index shards below need no such layer: their actors restart and Ray
# retries their searches itself (`max_task_retries=-1`).
REPLICA_LOST = (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError)
ERRORS = {
    400: "the body cannot be parsed (it is not UTF-8, say)",
    401: "missing or wrong bearer token",
    404: "unknown adapter (see /adapters)",
    422: "the body does not validate, or asks for more than a `serve.*` limit allows",
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route that answers `codes` besides 200."""
    return {code: {"model": ErrorResponse, "description": ERRORS[code]} for code in codes}


def _encodable(value: Any) -> Any:
    """`value` (JSON-like) with text UTF-8 cannot encode, such as an echoed lone surrogate, backslash-escaped."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, list):
        return [_encodable(item) for item in value]
    if isinstance(value, dict):
        return {_encodable(key): _encodable(item) for key, item in value.items()}
    return value


@app.exception_handler(RequestValidationError)
async def _invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
    """FastAPI's 422, but one that can always be encoded: its default echoes the input and fails (500) on surrogates."""
    return JSONResponse(status_code=422, content={"detail": _encodable(jsonable_encoder(error.errors()))})


def _without_auth(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` (OpenAPI) without the bearer scheme, the routes' security requirements and their 401 answers."""
    schema.get("components", {}).pop("securitySchemes", None)
    for operations in schema["paths"].values():
        for operation in operations.values():
            operation.pop("security", None)
            operation["responses"].pop("401", None)
    return schema


def _with_limits(schema: dict[str, Any], limits: ServeConfig, adapters: list[str]) -> dict[str, Any]:
    """`schema` (OpenAPI) with what this service accepts written into its request bodies: non-blank questions of
    at most `serve.max_question_chars`, at most `serve.max_batch_questions` of them, `k`/`return_k` up to
    `serve.max_k`, `max_new_tokens` up to `serve.max_new_tokens`, and the adapter ids it serves; a request valid by
    the document is then one the service answers."""
    question = {"pattern": NOT_BLANK_PATTERN, "maxLength": limits.max_question_chars}
    bounds = {"k": limits.max_k, "return_k": limits.max_k, "max_new_tokens": limits.max_new_tokens}
    for name in ("RetrieveRequest", "GenerateRequest", "RagRequest"):
        properties = schema.get("components", {}).get("schemas", {}).get(name, {}).get("properties", {})
        if "question" in properties:
            properties["question"].update(question)
        if "questions" in properties:
            properties["questions"]["maxItems"] = limits.max_batch_questions
            properties["questions"]["items"].update(question)
        for key, maximum in bounds.items():
            for branch in _typed(properties.get(key), "integer"):
                branch["maximum"] = maximum
        for branch in _typed(properties.get("adapter"), "string"):
            branch["enum"] = sorted({*adapters, BASE_ADAPTER})
    return schema


def _typed(node: dict[str, Any] | None, kind: str) -> list[dict[str, Any]]:
    """The schema objects of type `kind` in a property (itself, or its `anyOf` branches for an optional field)."""
    if node is None:
        return []
    return [branch for branch in node.get("anyOf", [node]) if branch.get("type") == kind]


def _hits(found: list[RetrievedPassage]) -> list[Hit]:
    return [Hit(id=p.id, title=p.title, text=p.text, score=p.score) for p in found]


async def _retry_once(call: Callable[[], Awaitable[T]]) -> T:
    try:
        return await call()
    except REPLICA_LOST as lost:
        logger.warning("a replica was lost mid-request (%s); retrying once", type(lost).__name__)
        return await call()


@serve.deployment(name="RagPipeline")
@serve.ingress(app)
class RagIngress:
    """Validates requests against the limits in `serve`, fans questions out to the batched deployments."""

    def __init__(self, retriever: DeploymentHandle, generator: DeploymentHandle, args: dict):
        self.spec = InferenceSpec.from_args(args)
        self.retriever, self.generator = retriever, generator
        self.limits = self.spec.config.serve
        self.token = None
        if self.limits.auth_token_env:
            self.token = os.environ.get(self.limits.auth_token_env)
            if not self.token:
                raise RuntimeError(
                    f"serve.auth_token_env={self.limits.auth_token_env} names an environment variable that is not set "
                    "where the replica runs: set it (or pass it in the deployment's runtime_env)"
                )
        self.index: IndexInfo | None = None

    def __serve_build_asgi_app__(self) -> FastAPI:
        """The app Serve runs here (it calls this after `__init__`); its OpenAPI document states this service's
        limits and adapters, and with auth off has no bearer scheme or 401s."""
        schema = _with_limits(self.app.openapi(), self.limits, self.spec.adapter_ids)
        self.app.openapi_schema = _without_auth(schema) if self.token is None else schema
        return self.app

    def _authorize(self, credentials: HTTPAuthorizationCredentials | None) -> None:
        if self.token is None:
            return
        if credentials is None or not secrets.compare_digest(credentials.credentials.encode(), self.token.encode()):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    def _questions(self, texts: list[str]) -> list[str]:
        limits = self.limits
        if len(texts) > limits.max_batch_questions:
            raise HTTPException(
                422,
                f"{len(texts)} questions in one request; the limit is {limits.max_batch_questions} "
                "(serve.max_batch_questions)",
            )
        for number, text in enumerate(texts):
            if is_blank(text):
                raise HTTPException(422, f"question {number} is empty")
            if len(text) > limits.max_question_chars:
                raise HTTPException(
                    422,
                    f"question {number} has {len(text)} characters; the limit is {limits.max_question_chars} "
                    "(serve.max_question_chars)",
                )
        return texts

    def _k(self, k: int | None, name: str = "k") -> int:
        k = k or self.spec.config.rag.k
        if k > self.limits.max_k:
            raise HTTPException(422, f"{name}={k} is above the limit of {self.limits.max_k} (serve.max_k)")
        return k

    def _new_tokens(self, requested: int | None) -> int:
        tokens = requested or self.spec.config.eval.max_new_tokens
        if tokens > self.limits.max_new_tokens:
            raise HTTPException(
                422,
                f"max_new_tokens={tokens} is above the limit of {self.limits.max_new_tokens} (serve.max_new_tokens)",
            )
        return tokens

    def _adapter(self, requested: str | None) -> str:
        try:
            return self.spec.resolve_adapter(requested)
        except KeyError as unknown:
            raise HTTPException(404, f"{unknown.args[0]} (see /adapters)") from None

    async def _index_info(self) -> IndexInfo:
        if self.index is None:
            self.index = IndexInfo(**await _retry_once(lambda: self.retriever.info.remote()))
        return self.index

    async def _retrieve(self, questions: list[str], k: int) -> list[list[RetrievedPassage]]:
        return await asyncio.gather(
            *[_retry_once(lambda q=q: self.retriever.retrieve.remote((q, k))) for q in questions]
        )

    async def _answer(self, adapter: str, items: list[AnswerItem]) -> list[str]:
        handle = self.generator.options(multiplexed_model_id="" if adapter == BASE_ADAPTER else adapter)
        return await asyncio.gather(*[_retry_once(lambda i=i: handle.answer.remote(i)) for i in items])

    @app.post("/retrieve", response_model=RetrieveResponse, responses=_errors(400, 401, 422))
    async def retrieve(self, body: RetrieveRequest, credentials=Depends(bearer)) -> RetrieveResponse:  # noqa: B008
        """Top-k passages per question from the sharded index."""
        self._authorize(credentials)
        questions, k = self._questions(body.texts), self._k(body.k)
        start = time.perf_counter()
        found = await self._retrieve(questions, k)
        elapsed = (time.perf_counter() - start) * 1000
        return RetrieveResponse(
            passages=[_hits(f) for f in found], index=await self._index_info(), latency_ms={"retrieve": elapsed}
        )

    @app.post("/generate", response_model=GenerateResponse, responses=_errors(400, 401, 404, 422))
    async def generate(self, body: GenerateRequest, credentials=Depends(bearer)) -> GenerateResponse:  # noqa: B008
        """Closed-book answers from the base model or an adapter."""
        self._authorize(credentials)
        questions, adapter = self._questions(body.texts), self._adapter(body.adapter)
        tokens = self._new_tokens(body.max_new_tokens)
        start = time.perf_counter()
        answers = await self._answer(adapter, [AnswerItem(q, None, tokens) for q in questions])
        elapsed = (time.perf_counter() - start) * 1000
        return GenerateResponse(answers=answers, adapter=adapter, latency_ms={"generate": elapsed})

    @app.post("/rag", response_model=RagResponse, responses=_errors(400, 401, 404, 422))
    async def rag(self, body: RagRequest, credentials=Depends(bearer)) -> RagResponse:  # noqa: B008
        """Retrieve k passages per question, answer from them (RAG decoding), return both and the time each took."""
        self._authorize(credentials)
        questions, adapter, k = self._questions(body.texts), self._adapter(body.adapter), self._k(body.k)
        depth = max(k, self._k(body.return_k or k, "return_k"))
        tokens = self._new_tokens(body.max_new_tokens)
        start = time.perf_counter()
        found = await self._retrieve(questions, depth)
        retrieved = time.perf_counter()
        items = [AnswerItem(q, f[:k], tokens) for q, f in zip(questions, found, strict=True)]
        answers = await self._answer(adapter, items)
        done = time.perf_counter()
        return RagResponse(
            results=[RagAnswer(answer=a, passages=_hits(f)) for a, f in zip(answers, found, strict=True)],
            adapter=adapter,
            index=await self._index_info(),
            latency_ms={
                "retrieve": (retrieved - start) * 1000,
                "generate": (done - retrieved) * 1000,
                "total": (done - start) * 1000,
            },
        )

    @app.get("/adapters", response_model=AdaptersResponse, responses=_errors(401))
    async def adapters(self, credentials=Depends(bearer)) -> AdaptersResponse:  # noqa: B008
        """The adapter ids requests may name."""
        self._authorize(credentials)
        return AdaptersResponse(
            default=self.spec.default_adapter,
            adapters=self.spec.adapter_ids,
            max_loaded_per_replica=self.limits.max_adapters_per_replica,
        )

    @app.get("/healthz")
    async def healthz(self) -> dict:
        """Liveness of the pipeline and its index (no token needed; nothing private is returned)."""
        return {"status": "ok", "index": (await self._index_info()).model_dump()}
