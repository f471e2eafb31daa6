"""File identity shared by every reader: a file's content hash, which sensors, ledgers and sync decisions compare
(never modification times); and writing a file so that no reader ever sees half of it."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def snapshot(path: Path) -> Iterator[tuple[Path, str]]:
    """A private copy of `path` and the SHA-256 of exactly those bytes, read once: whatever replaces the file
    meanwhile, what is parsed is what is hashed. The copy is removed when the block ends."""
    data = Path(path).read_bytes()
    with tempfile.TemporaryDirectory(prefix="vital-snapshot-") as folder:
        copy = Path(folder) / Path(path).name
        copy.write_bytes(data)
        copy.chmod(0o400)
        yield copy, hashlib.sha256(data).hexdigest()


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, flush it to disk, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as temporary:
        temporary.write(data)
        temporary.flush()
        os.fsync(temporary.fileno())
        partial = Path(temporary.name)
    os.replace(partial, path)
