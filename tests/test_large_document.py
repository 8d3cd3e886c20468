"""A 200 MiB package streams through the document path with the hub's memory measured.

The hub runs as a separate `hub serve` process (the bench's deployment, embedded
default), so its peak RSS (VmHWM in /proc) is its own. A 1 MiB package goes
through first; the 200 MiB one may then raise the peak by at most 64 MiB: the
package is spooled, parsed and rebuilt in chunks, never held whole. The fetched
package is parsed again and its attachment checked by SHA-256. `-s` prints the
figures.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hub.bench.deploy import DOC_RECIPIENT, DOC_SENDER, Deployment, embedded_backend
from hub.bench.documents import (
    MiB,
    Package,
    acknowledge,
    client,
    fetch,
    memory_mib,
    send,
    wait_listed,
    write_package,
)
from hub.connectors.edxml import DocumentPackage, FileBlobStore, parse

SENDER, RECIPIENT = DOC_SENDER.split(":")[0], DOC_RECIPIENT.split(":")[0]
GROWTH_MIB = 64


def exchange(dep: Deployment, package: Package, fetched: Path) -> dict[str, float]:
    """Send, fetch into `fetched`, acknowledge; seconds of each step."""
    with client(dep.url, DOC_SENDER) as sender, client(dep.url, DOC_RECIPIENT) as recipient:
        t0 = time.perf_counter()
        doc_id = send(sender, package, SENDER)
        t1 = time.perf_counter()
        wait_listed(recipient, doc_id)
        t2 = time.perf_counter()
        with fetched.open("wb") as out:
            fetch(recipient, doc_id, out)
        t3 = time.perf_counter()
        acknowledge(recipient, doc_id)
    return {"upload_s": t1 - t0, "fetch_s": t3 - t2}


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_200_mib_package_streams_through_in_flat_memory(tmp_path: Path) -> None:
    small = write_package(tmp_path / "small.xml", MiB, sender=SENDER, recipient=RECIPIENT)
    big = write_package(tmp_path / "big.xml", 200 * MiB, sender=SENDER, recipient=RECIPIENT)
    fetched = tmp_path / "fetched.xml"
    with (
        embedded_backend(tmp_path) as backend,
        Deployment(backend, tmp_path / "hub", documents=True) as dep,
    ):
        (pid,) = dep.hub_pids()
        exchange(dep, small, fetched)
        after_small = memory_mib(pid)["VmHWM"]
        took = exchange(dep, big, fetched)
        after_big = memory_mib(pid)["VmHWM"]
        dep.check()

    with fetched.open("rb") as source:
        got = parse(source, FileBlobStore(tmp_path / "check"), max_bytes=512 * MiB)
    assert isinstance(got, DocumentPackage)
    (attachment,) = got.attachments
    assert (attachment.size, attachment.sha256) == (big.attachment_size, big.attachment_sha256)
    mib = big.size / MiB
    print(
        f"\n200 MiB attachment, {mib:,.1f} MiB package: upload {mib / took['upload_s']:,.1f} "
        f"MiB/s, fetch {mib / took['fetch_s']:,.1f} MiB/s; hub VmHWM {after_small:,.1f} MiB "
        f"after 1 MiB, {after_big:,.1f} MiB after 200 MiB (+{after_big - after_small:,.1f})"
    )
    assert after_big <= after_small + GROWTH_MIB
