"""A job's terminal: its plan, its progress, its results and one line for anything the user must act on.

Everything else a job prints (Ray's driver and worker output, transformers' and W&B's, the C++ core worker's
messages, the job's own INFO log) goes to the job's log file (Hydra's `<job>.log` in the run or study directory),
which the terminal names once. The redirection is at the file-descriptor level, so output that never passes
through Python's `logging` or `sys.stdout` (Ray's core worker, a library's `print`) reaches the file too.
`-v` on a job's command line, or `RAG_PET_VERBOSE=1`, shows everything on the terminal as before.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

CONSOLE = "rag_pet.console"  # the logger of plan and progress lines: on the terminal and in the log file
VERBOSE_ENV = "RAG_PET_VERBOSE"
VERBOSE_FLAGS = ("-v", "--verbose")
_terminal: dict[str, TextIO] = {}  # "out" and "err" while a job's output goes to its log file


def console_logger() -> logging.Logger:
    """The logger whose INFO lines (a job's plan and progress) reach the terminal; other loggers' reach the file."""
    return logging.getLogger(CONSOLE)


def show(text: str) -> None:
    """Print `text` (a result table, where results are) on the terminal, and into the log file when quiet."""
    print(text, flush=True)
    if "out" in _terminal:
        _terminal["out"].write(text + "\n")
        _terminal["out"].flush()


def error_line(text: str) -> None:
    """Print one line the user must act on to the terminal's stderr, and into the log file when quiet."""
    print(text, file=sys.stderr, flush=True)
    if "err" in _terminal:
        _terminal["err"].write(text + "\n")
        _terminal["err"].flush()


def is_quiet() -> bool:
    """Whether the job's output goes to its log file now."""
    return bool(_terminal)


def duration(seconds: float) -> str:
    """`2 min 05 s`, or `41 s` under a minute."""
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


class Progress:
    """Progress lines of `total` units of work on the console, about `lines` of them; from the second on, each with
    the time left at the rate since the first (so start-up does not count as work)."""

    def __init__(self, what: str, total: int, lines: int = 10):
        self.what, self.total = what, total
        self.every = max(1, total // lines)
        self.shown = 0
        self.first: tuple[int, float] | None = None

    def update(self, done: int, detail: str = "") -> None:
        """`done` units so far; a line when another `total / lines` are done, and at the end."""
        if done - self.shown < self.every and done < self.total:
            return
        self.shown = done
        now = time.monotonic()
        line = f"{self.what} {done}/{self.total}" + (f"  {detail}" if detail else "")
        if self.first is None:
            self.first = (done, now)
        elif done < self.total and done > self.first[0]:
            rate = (now - self.first[1]) / (done - self.first[0])
            line += f"  about {duration(rate * (self.total - done))} left"
        console_logger().info(line)


def take_verbose_flag(argv: list[str]) -> bool:
    """Remove `-v`/`--verbose` from `argv` (Hydra does not know it); whether the job shows everything."""
    found = any(arg in VERBOSE_FLAGS for arg in argv[1:])
    argv[1:] = [arg for arg in argv[1:] if arg not in VERBOSE_FLAGS]
    return found or os.environ.get(VERBOSE_ENV, "") not in ("", "0")


class _TerminalHandler(logging.Handler):
    """Shows the console logger's lines, and warnings and errors of rag_pet's own loggers as one line each."""

    def __init__(self, out: TextIO, err: TextIO):
        super().__init__(logging.INFO)
        self.out, self.err = out, err

    def filter(self, record: logging.LogRecord) -> bool:
        own = record.name == "rag_pet" or record.name.startswith("rag_pet.") or record.name == "__main__"
        return record.name == CONSOLE or (own and record.levelno >= logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.levelno >= logging.WARNING:
                first = message.strip().splitlines()[0] if message.strip() else ""
                self.err.write(f"{record.levelname.lower()}: {first}\n")
                self.err.flush()
            else:
                self.out.write(message + "\n")
                self.out.flush()
        except Exception:
            self.handleError(record)


def job_log_file() -> Path | None:
    """The file Hydra's job logging writes to, or None when it writes none."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            return Path(handler.baseFilename)
    return None


@contextmanager
def quiet_terminal(log_file: Path) -> Iterator[None]:
    """Within the block, stdout and stderr (file descriptors 1 and 2, inherited by every process started in it,
    Ray's included) write to `log_file`; the terminal gets only what `show`, `error_line` and the console logger
    send, and rag_pet's warnings. An exception that escapes is one line on the terminal (its traceback goes to
    the file)."""
    sys.stdout.flush()
    sys.stderr.flush()
    out = os.fdopen(os.dup(1), "w", buffering=1)
    err = os.fdopen(os.dup(2), "w", buffering=1)
    log_fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    # Library progress bars would fill the file with carriage-return frames; Ray's workers inherit the setting.
    bars = os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS")
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    root = logging.getLogger()
    streams = [h for h in root.handlers if type(h) is logging.StreamHandler]  # Hydra's console, now the file
    for handler in streams:
        root.removeHandler(handler)
    terminal = _TerminalHandler(out, err)
    root.addHandler(terminal)
    _terminal.update(out=out, err=err)
    out.write(f"log: {log_file}\n")
    try:
        yield
    except Exception as exc:  # a bug, not a user error (those exit with their line before this)
        traceback.print_exc()  # into the log file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        err.write(f"error: {type(exc).__name__}: {first} (the traceback is in {log_file})\n")
        raise SystemExit(1) from None
    finally:
        _terminal.clear()
        root.removeHandler(terminal)
        for handler in streams:
            root.addHandler(handler)
        if bars is None:
            os.environ.pop("HF_HUB_DISABLE_PROGRESS_BARS", None)
        else:
            os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = bars
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        out.close()
        err.close()
