"""Parsing memory stays flat: a 200 MB package peaks within 64 MB of a 10 MB one.

Each package is built by streaming (blob written in 1 MiB pieces, `build` output
written chunk by chunk to a file), then parsed in a child process that prints its
own peak RSS (VmHWM), so the figures are the parser's alone.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hub.connectors.edxml import (
    AttachmentRef,
    DocumentHeader,
    DocumentPackage,
    FileBlobStore,
    Organization,
    build,
)
from tests.conftest import REPO

MB = 1024 * 1024
CHILD = """
import resource, sys
from hub.connectors.edxml import FileBlobStore, parse
with open(sys.argv[1], "rb") as source:
    package = parse(source, FileBlobStore(sys.argv[2]), max_bytes=1 << 40)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    with open("/proc/self/status") as status:
        peak = next(int(l.split()[1]) for l in status if l.startswith("VmHWM:"))
except OSError:
    pass
print(package.attachments[0].sha256, package.attachments[0].size, peak)
"""


def _package_file(directory: Path, size: int) -> tuple[Path, str, int]:
    """An edXML file of about `size` bytes with one attachment, built by streaming."""
    store = FileBlobStore(directory / "source-blobs")
    raw_size, digest = size * 3 // 4, hashlib.sha256()
    with store.writer() as blob:
        for _ in range(raw_size // MB):
            piece = os.urandom(MB)
            digest.update(piece)
            blob.write(piece)
    assert blob.ref is not None
    attachment = AttachmentRef(
        "cid:1", "ho-so.zip", None, "application/zip", blob.ref.size, blob.ref.sha256, blob.ref.key
    )
    header = DocumentHeader(
        from_=Organization("000.00.00.H29"), to=(Organization("000.00.00.G22"),), document_id="d"
    )
    path = directory / f"package-{size // MB}MB.edxml"
    with path.open("wb") as out:
        for chunk in build(DocumentPackage(header, attachments=(attachment,)), store):
            out.write(chunk)
    shutil.rmtree(store.directory)
    return path, digest.hexdigest(), blob.ref.size


def _peak_kib(directory: Path, size: int) -> int:
    """Peak RSS (KiB) of a child process parsing a package of `size` bytes."""
    path, sha256, raw_size = _package_file(directory, size)
    try:
        run = subprocess.run(
            [sys.executable, "-c", CHILD, str(path), str(directory / "parsed-blobs")],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        got_sha, got_size, peak = run.stdout.split()
        assert (got_sha, int(got_size)) == (sha256, raw_size)
        return int(peak)
    finally:
        path.unlink()
        shutil.rmtree(directory / "parsed-blobs", ignore_errors=True)


@pytest.mark.slow
def test_parse_memory_is_flat(tmp_path: Path) -> None:
    small = _peak_kib(tmp_path, 10 * MB)
    large = _peak_kib(tmp_path, 200 * MB)
    figures = (
        f"peak RSS parsing: 10 MB package {small / 1024:.1f} MiB, 200 MB {large / 1024:.1f} MiB"
    )
    print(figures)
    assert large - small <= 64 * 1024, figures
