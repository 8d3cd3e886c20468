"""Where attachment bytes live: a content-addressed blob store.

Attachments of edXML packages reach hundreds of MB, so they never travel
inside events or stay in memory: the parser decodes them into a blob store
and the package carries the blob's key. `FileBlobStore` names each blob by its
SHA-256, so an attachment sent to ten recipients is stored once.

    with store.writer() as w:       # a temp file
        w.write(chunk)              # hashed and counted as written
    w.ref                           # BlobRef(key, size, sha256), renamed into place

An exception inside the `with` block discards the temp file: nothing is left.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

_KEY = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class BlobRef:
    """A stored blob: its key in the store, its size in bytes and its SHA-256 (hex)."""

    key: str
    size: int
    sha256: str


class BlobWriter(Protocol):
    """An open blob: bytes are hashed and counted as written.

    `close` stores it and returns its BlobRef (again on later calls); `discard`
    drops it. The writer's context manager calls one or the other.
    """

    @property
    def size(self) -> int: ...

    @property
    def sha256(self) -> str: ...

    def write(self, data: bytes) -> None: ...

    def close(self) -> BlobRef: ...

    def discard(self) -> None: ...


class BlobStore(Protocol):
    """What the edXML codec needs from a blob store."""

    def writer(self) -> AbstractContextManager[BlobWriter]:
        """A new blob; stored when the block ends, discarded if it raises."""
        ...

    def open(self, key: str) -> BinaryIO:
        """The blob's bytes. Raises KeyError if there is no such blob."""
        ...

    def exists(self, key: str) -> bool: ...


class FileBlobWriter:
    """A blob being written to a temp file in the store's directory."""

    def __init__(self, store: FileBlobStore) -> None:
        self._store = store
        fd, name = tempfile.mkstemp(dir=store.tmp, prefix="blob-")
        self._file: BinaryIO | None = os.fdopen(fd, "wb")
        self._path = Path(name)
        self._hash = hashlib.sha256()
        self._size = 0
        self.ref: BlobRef | None = None

    @property
    def size(self) -> int:
        return self._size

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def write(self, data: bytes) -> None:
        if self._file is None:
            raise ValueError("write to a closed blob")
        self._file.write(data)
        self._hash.update(data)
        self._size += len(data)

    def close(self) -> BlobRef:
        """Flush, then rename the temp file to its SHA-256 (kept once if already there)."""
        if self.ref is not None:
            return self.ref
        if self._file is None:
            raise ValueError("close of a discarded blob")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        key = self.sha256
        target = self._store.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            self._path.unlink()
        else:
            os.replace(self._path, target)
        self.ref = BlobRef(key, self._size, key)
        return self.ref

    def discard(self) -> None:
        """Drop the temp file; nothing is stored."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.ref is None:
            self._path.unlink(missing_ok=True)


class FileBlobStore:
    """Blobs as files under `directory`, named by SHA-256 (`ab/abcdef...`)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.tmp = self.directory / ".tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        """Where the blob `key` lives. Raises KeyError for a malformed key."""
        if not _KEY.fullmatch(key):
            raise KeyError(f"not a blob key: {key!r}")
        return self.directory / key[:2] / key

    def writer(self) -> AbstractContextManager[FileBlobWriter]:
        return self._writer()

    @contextmanager
    def _writer(self) -> Iterator[FileBlobWriter]:
        blob = FileBlobWriter(self)
        try:
            yield blob
        except BaseException:
            blob.discard()
            raise
        blob.close()

    def open(self, key: str) -> BinaryIO:
        try:
            return self.path(key).open("rb")
        except FileNotFoundError:
            raise KeyError(f"no blob {key}") from None

    def exists(self, key: str) -> bool:
        try:
            return self.path(key).is_file()
        except KeyError:
            return False

    def keys(self) -> Iterator[str]:
        """Every stored blob's key."""
        for file in self.directory.glob("??/*"):
            if _KEY.fullmatch(file.name):
                yield file.name

    def pending(self) -> list[Path]:
        """Temp files of blobs being written (none once every writer has ended)."""
        return list(self.tmp.iterdir())
