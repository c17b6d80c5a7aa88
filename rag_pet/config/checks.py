"""Range and choice checks the config schemas run in `__post_init__`, raising errors that name the field."""

from __future__ import annotations

import math

from rag_pet.errors import ConfigError


def one_of(name: str, value: object, allowed: tuple) -> None:
    """Refuse a value that is not among `allowed`."""
    if value not in allowed:
        raise ConfigError(name, value, "one of " + ", ".join(map(str, allowed)))


def positive(name: str, value: float, allow_zero: bool = False) -> None:
    """Refuse a number that is not finite and > 0 (>= 0 with `allow_zero`)."""
    ok = value >= 0 if allow_zero else value > 0
    if not ok or (isinstance(value, float) and not math.isfinite(value)):
        raise ConfigError(name, value, "a number >= 0" if allow_zero else "a number > 0")
