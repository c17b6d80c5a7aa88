"""Errors a user can act on: each names the offending field or file and the fix."""


class RagPetError(Exception):
    """Base class for errors reported to the user as one line, without a traceback."""


class ConfigError(RagPetError, ValueError):
    """A configuration value is invalid; the message names the field, the value and what is allowed."""

    def __init__(self, field: str, value: object, allowed: str):
        self.field, self.value, self.allowed = field, value, allowed
        super().__init__(f"config error: {field}={value!r} is invalid; allowed: {allowed}")

    def __reduce__(self):  # rebuilt from its fields when it crosses a process boundary (Ray workers, tasks)
        return type(self), (self.field, self.value, self.allowed)


class DataFormatError(RagPetError, ValueError):
    """An input data file is malformed; the message names the file, the line and the field."""

    def __init__(self, path: str, line: int | None, problem: str):
        self.path, self.line, self.problem = path, line, problem
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"data error: {where}: {problem}")

    def __reduce__(self):
        return type(self), (self.path, self.line, self.problem)
