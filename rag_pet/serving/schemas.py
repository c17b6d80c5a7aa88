"""JSON bodies of the HTTP API (validated by pydantic; FastAPI publishes them as OpenAPI at `/docs`)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

# What counts as blank in a question: the whitespace of both Python's `str.isspace` and JSON Schema's (ECMA-262)
# `\s`, listed, so the OpenAPI pattern and the service agree whichever regex engine reads the pattern.
BLANK = (
    "\t\n\x0b\x0c\r \x1c\x1d\x1e\x1f\x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + "\u2028\u2029\u202f\u205f\u3000\ufeff"
)
NOT_BLANK_PATTERN = "[^" + "".join(f"\\u{ord(c):04x}" for c in BLANK) + "]"


def is_blank(text: str) -> bool:
    """Whether a question holds nothing but `BLANK` characters."""
    return not text.strip(BLANK)


def _whole_number(value: object) -> object:
    """What JSON Schema calls an integer (4 and 4.0), not a boolean or a numeric string that pydantic would take."""
    if isinstance(value, (bool, str)):
        raise ValueError("must be a JSON integer")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# a positive JSON integer; its schema written out, as pydantic cannot translate `gt` behind a before-validator
Count = Annotated[
    int, BeforeValidator(_whole_number), Field(gt=0), WithJsonSchema({"type": "integer", "exclusiveMinimum": 0})
]


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
    """One question (`question`) or several (`questions`), answered in order.

    The OpenAPI document says so: the fields are not nullable, and `oneOf` requires exactly one of them (an
    absent field is None here), so a client generated from the schema builds only requests the service takes."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"oneOf": [{"required": ["question"]}, {"required": ["questions"]}]}
    )

    question: str = Field(default=None, min_length=1, description="a single question")
    questions: list[str] = Field(default=None, min_length=1, description="several questions, answered in order")

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
    k: Count | None = Field(default=None, description="passages per question (default: the served rag.k)")


class GenerateRequest(QuestionsRequest):
    adapter: str | None = Field(
        default=None, description="adapter id (see /adapters); `base` for the untrained base model; default: the run's"
    )
    max_new_tokens: Count | None = Field(default=None, description="answer length limit (default: the served one)")


class RagRequest(GenerateRequest):
    k: Count | None = Field(default=None, description="passages the answer reads (default: the served rag.k)")
    return_k: Count | None = Field(
        default=None,
        strict=True,
        description="passages returned per question, the first k of them read (default: k)",
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
