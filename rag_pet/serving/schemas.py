"""JSON bodies of the HTTP API (validated by pydantic; FastAPI publishes them as OpenAPI at `/docs`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator


def _require_utf8(field: str, text: object) -> None:
    """Reject a string UTF-8 cannot encode (a lone surrogate: valid JSON, not text), naming the field."""
    if not isinstance(text, str):
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as bad:
        surrogate = f"\\u{ord(text[bad.start]):04x}"
        raise ValueError(
            f"{field} contains a lone surrogate ({surrogate} at character {bad.start}): send valid Unicode text"
        ) from None


class QuestionsRequest(BaseModel):
    """One question (`question`) or several (`questions`), answered in order."""

    model_config = ConfigDict(extra="forbid")

    question: str | None = Field(default=None, min_length=1, description="a single question")
    questions: list[str] | None = Field(default=None, min_length=1, description="several questions, answered in order")

    @field_validator("question", "questions", mode="before")
    @classmethod
    def _utf8(cls, value: object, info: ValidationInfo) -> object:
        if isinstance(value, list):
            for number, text in enumerate(value):
                _require_utf8(f"{info.field_name}[{number}]", text)
        else:
            _require_utf8(info.field_name, value)
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> QuestionsRequest:
        if (self.question is None) == (self.questions is None):
            raise ValueError("give exactly one of `question` (a string) or `questions` (a list of strings)")
        return self

    @property
    def texts(self) -> list[str]:
        """The questions of the request as a list."""
        return [self.question] if self.question is not None else list(self.questions or [])


class RetrieveRequest(QuestionsRequest):
    k: int | None = Field(default=None, gt=0, description="passages per question (default: the served rag.k)")


class GenerateRequest(QuestionsRequest):
    adapter: str | None = Field(
        default=None, description="adapter id (see /adapters); `base` for the untrained base model; default: the run's"
    )
    max_new_tokens: int | None = Field(default=None, gt=0, description="answer length limit (default: the served one)")


class RagRequest(GenerateRequest):
    k: int | None = Field(default=None, gt=0, description="passages the answer reads (default: the served rag.k)")
    return_k: int | None = Field(
        default=None, gt=0, description="passages returned per question, the first k of them read (default: k)"
    )


class ErrorResponse(BaseModel):
    """The body of every 4xx answer."""

    detail: str | list[dict[str, Any]] = Field(
        description="what was wrong, naming the field or the `serve.*` limit; request validation gives a list of errors"
    )


class Hit(BaseModel):
    id: str
    title: str
    text: str
    score: float = Field(description="inner product of the question and passage vectors")


class IndexInfo(BaseModel):
    name: str
    version: int
    num_vectors: int


class RetrieveResponse(BaseModel):
    passages: list[list[Hit]]
    index: IndexInfo
    latency_ms: dict[str, float]


class GenerateResponse(BaseModel):
    answers: list[str]
    adapter: str
    latency_ms: dict[str, float]


class RagAnswer(BaseModel):
    answer: str
    passages: list[Hit]


class RagResponse(BaseModel):
    results: list[RagAnswer]
    adapter: str
    index: IndexInfo
    latency_ms: dict[str, float] = Field(description="retrieve, generate and total milliseconds inside the service")


class AdaptersResponse(BaseModel):
    default: str
    adapters: list[str]
    max_loaded_per_replica: int
