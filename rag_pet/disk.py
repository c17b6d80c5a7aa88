"""Out of disk space, recognised wherever it is raised (the platform's own writes, Ray Train's checkpoint uploads,
W&B, a worker's error passed on as text) and reported as one line naming the path and the space left there."""

from __future__ import annotations

import errno
import re
import shutil
from pathlib import Path

from rag_pet.errors import RagPetError

FULL = (errno.ENOSPC, errno.EDQUOT)
# how the two errors read once a Ray worker's exception has been turned into text
FULL_TEXT = re.compile(r"(?:No space left on device|Disk quota exceeded)(?:: '([^']+)')?")


class OutOfDiskError(RagPetError):
    """A write failed for want of disk space; the message names the path and the space left on its filesystem."""

    def __init__(self, path: str | None, free_bytes: int | None):
        self.path, self.free_bytes = path, free_bytes
        where = f"writing {path}" if path else "while writing"
        left = f"{free_bytes / 2**20:,.1f} MiB free there" if free_bytes is not None else "free space unknown"
        super().__init__(
            f"out of disk space {where} ({left}); free space, or point the run's outputs elsewhere"
            " (hydra.run.dir, trainer.storage_path, index.storage_path)"
        )

    def __reduce__(self):
        return type(self), (self.path, self.free_bytes)


def out_of_disk(err: BaseException) -> OutOfDiskError | None:
    """The `OutOfDiskError` that `err` amounts to (itself, an `OSError` among its causes or among the worker errors
    of a Ray Train `WorkerGroupError`, or a worker's error whose text says so); None for any other error."""
    seen: set[int] = set()
    pending: list[BaseException] = [err]
    while pending:
        found = pending.pop()
        if id(found) in seen:
            continue
        seen.add(id(found))
        if isinstance(found, OutOfDiskError):
            return found
        if isinstance(found, OSError) and found.errno in FULL:
            return OutOfDiskError(found.filename, free_bytes(found.filename))
        pending += [link for link in (found.__cause__, found.__context__) if link is not None]
        pending += list(getattr(found, "worker_failures", {}).values())
    match = FULL_TEXT.search(str(err))
    if match is None:
        return None
    return OutOfDiskError(match.group(1), free_bytes(match.group(1)))


def free_bytes(path: str | Path | None) -> int | None:
    """Free bytes on the filesystem that holds `path` (its nearest existing parent); None when unknown."""
    if not path:
        return None
    for candidate in (Path(path), *Path(path).parents):
        if candidate.exists():
            try:
                return shutil.disk_usage(candidate).free
            except OSError:
                return None
    return None
