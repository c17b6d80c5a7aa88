"""One live run per run directory: an advisory lock the operating system drops when its process ends.

`fcntl.flock` is released by the kernel however the holder exits (`kill -9` included), so a crashed run never leaves
its directory locked, and re-running the same command resumes it.
"""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rag_pet.errors import ConfigError

LOCK_FILE = ".run.lock"


@contextmanager
def run_directory_lock(run_dir: str | Path) -> Iterator[None]:
    """Hold `run_dir` for this process; a second live run on it stops at once, naming the holder."""
    path = Path(run_dir) / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise ConfigError(
                "run_dir",
                str(run_dir),
                f"a directory no live run is using ({holder} holds it): wait for that run, or set another"
                " hydra.run.dir",
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
