"""Files written whole or not at all.

Every file a run writes (checkpoints, records, curves, the metrics file, GIFs) is written to a
temporary file beside its target and then renamed over it: a rename within one folder is atomic, so
a crash, a kill or a full disk mid-write leaves the earlier file as it was, and nothing that reads
the folder (a resume, the dashboard, a gallery) ever sees half a file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` (``NAME.XXXX.tmp``) for the block to write; when the block
    ends, the file is flushed to disk and renamed to ``path``. If the block or the rename fails, the
    temporary file is removed and ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as file:
            os.fsync(file.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes the file private; these are ordinary files
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def check_writable(path: str | os.PathLike, what: str) -> None:
    """Before long work that ends in writing ``path``: raise ``ValueError`` now, in one sentence
    naming ``what`` (an option, a role), if it could not be written then."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what} {path} is a folder: give the path of a file to write")
    if not path.parent.is_dir():
        raise ValueError(f"{what} {path}: the folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise ValueError(f"{what} {path}: the folder {path.parent} is not writable")
