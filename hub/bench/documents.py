"""Large documents: edXML packages of 10 and 200 MiB through the local document axis.

For each size, a fresh deployment (the document systems added to its config)
gets one package: a document with one attachment of N MiB of random bytes,
written to disk by streaming (`build` from a blob store, never whole in memory).
The sender uploads it from the file with `sendEdoc`; once it waits for its
recipient, the recipient fetches it with `getEdoc` (the base64 in the streamed
answer decoded as it arrives) and acknowledges it with `updateStatus`.

Reported per size: package bytes, upload MiB/s (to the OK answer: spooled,
parsed, attachment in the blob store, stored and routed), fetch MiB/s, the
whole exchange, hub CPU seconds, and each hub process's peak RSS (VmHWM). VmHWM
is a high-water mark for the life of a process, so each size gets processes of
its own, and the mark is reset to the current RSS just before the exchange
(`/proc/<pid>/clear_refs`): the figure is this package's peak, not start-up's
(imports, migrations) nor the larger of the two sizes.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from hub.bench.deploy import DOC_KEYS, DOC_RECIPIENT, DOC_SENDER, Backend, Deployment, wait_for
from hub.bench.procs import PROC, cpu_seconds
from hub.connectors.edxml import (
    AttachmentRef,
    Business,
    BusinessDocType,
    DocumentHeader,
    DocumentPackage,
    EdDate,
    FileBlobStore,
    Organization,
    build,
)
from hub.connectors.edxml.model import Code, PromulgationInfo

MiB = 1 << 20
SIZES_MIB = (10, 200)
API = "/api/v1/edoc"
TIMEOUT = 600.0  # seconds for one request: a 200 MiB package on a busy machine
_DATA = b'"data":"'


@dataclass(frozen=True)
class Package:
    """An edXML package written to a file, and what to check it against."""

    path: Path
    size: int
    sha256: str
    attachment_size: int
    attachment_sha256: str


@dataclass(frozen=True)
class Fetched:
    """A package fetched with getEdoc: its decoded size and SHA-256."""

    size: int
    sha256: str


def write_package(path: Path, attachment_bytes: int, *, sender: str, recipient: str) -> Package:
    """A document with one attachment of random bytes, streamed to `path`."""
    store = FileBlobStore(path.with_name(path.name + ".blobs"))
    try:
        with store.writer() as w:
            left = attachment_bytes
            while left:
                chunk = os.urandom(min(left, MiB))
                w.write(chunk)
                left -= len(chunk)
        assert w.ref is not None
        name = f"attachment-{attachment_bytes // MiB}MiB.bin"
        ref = AttachmentRef(
            name, name, None, "application/octet-stream", w.ref.size, w.ref.sha256, w.ref.key
        )
        number = uuid.uuid4().hex[:8]
        header = DocumentHeader(
            from_=Organization(sender, organ_name=f"bench {sender}"),
            to=(Organization(recipient, organ_name=f"bench {recipient}"),),
            document_id=f"{sender},{date.today():%Y/%m/%d},{number}/BENCH",
            code=Code(number, "BENCH"),
            promulgation=PromulgationInfo("TP. Hồ Chí Minh", EdDate.of(date.today())),
            subject=f"bench: one attachment of {attachment_bytes:,} bytes",
        )
        package = DocumentPackage(
            header, business=Business(BusinessDocType.NEW), attachments=(ref,)
        )
        digest, size = hashlib.sha256(), 0
        with path.open("wb") as out:
            for part in build(package, store):
                out.write(part)
                digest.update(part)
                size += len(part)
    finally:
        shutil.rmtree(store.directory, ignore_errors=True)
    return Package(path, size, digest.hexdigest(), ref.size, ref.sha256)


def client(url: str, system: str) -> httpx.Client:
    """An HTTP client calling the hub as `system` (one of deploy.DOC_KEYS)."""
    headers = {"authorization": f"Bearer {DOC_KEYS[system]}"}
    return httpx.Client(base_url=url, headers=headers, timeout=TIMEOUT)


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as source:
        while chunk := source.read(MiB):
            yield chunk


def _ok(response: httpx.Response, operation: str) -> dict[str, Any]:
    answer = response.json() if response.content else {}
    if response.status_code != 200 or answer.get("status") != "OK":
        raise RuntimeError(f"{operation}: HTTP {response.status_code}: {response.text[:500]}")
    return dict(answer)


def send(sender: httpx.Client, package: Package, organ: str) -> str:
    """Upload the package from its file with sendEdoc; returns the DocId."""
    headers = {
        "from": organ,
        "messagetype": "edoc",
        "hash-file": package.sha256,
        "content-length": str(package.size),
    }
    r = sender.post(f"{API}/sendEdoc", content=_chunks(package.path), headers=headers)
    return str(_ok(r, "sendEdoc")["DocId"])


def wait_listed(recipient: httpx.Client, doc_id: str, timeout: float = 60.0) -> None:
    """Wait until the package is listed to its recipient (routed, delivery waiting)."""

    def listed() -> bool:
        r = recipient.post(f"{API}/getReceivedEdocList", headers={"messagetype": "edoc"})
        return any(item["docId"] == doc_id for item in _ok(r, "getReceivedEdocList")["data"])

    wait_for(listed, timeout, f"package {doc_id} listed to its recipient", interval=0.05)


class _DataField:
    """Decodes the base64 `data` of a getEdoc answer as it streams, hashing (and writing) it."""

    def __init__(self, out: BinaryIO | None) -> None:
        self.out = out
        self.digest = hashlib.sha256()
        self.size = 0
        self.head, self.rest, self.tail = b"", b"", b""
        self.inside = self.ended = False

    def feed(self, chunk: bytes) -> None:
        if self.ended:
            self.tail += chunk
            return
        if not self.inside:
            self.head += chunk
            at = self.head.find(_DATA)
            if at < 0:
                return
            if b'"status":"OK"' not in self.head[:at]:
                raise RuntimeError(f"getEdoc: not OK: {self.head[:500]!r}")
            chunk, self.inside = self.head[at + len(_DATA) :], True
        end = chunk.find(b'"')
        if end >= 0:
            chunk, self.tail, self.ended = chunk[:end], chunk[end:], True
        data = self.rest + chunk
        cut = len(data) - len(data) % 4
        self.rest = data[cut:]
        decoded = base64.b64decode(data[:cut], validate=True)
        self.digest.update(decoded)
        self.size += len(decoded)
        if self.out is not None:
            self.out.write(decoded)

    def result(self) -> Fetched:
        if not self.ended or self.rest or self.tail.strip() != b'"}':
            raise RuntimeError(f"getEdoc: the answer ended early ({self.size:,} bytes decoded)")
        return Fetched(self.size, self.digest.hexdigest())


def fetch(recipient: httpx.Client, doc_id: str, out: BinaryIO | None = None) -> Fetched:
    """Fetch the package with getEdoc, streamed; its bytes go to `out` when given."""
    with recipient.stream("POST", f"{API}/getEdoc", headers={"docid": doc_id}) as r:
        if r.status_code != 200:
            raise RuntimeError(f"getEdoc: HTTP {r.status_code}: {r.read()[:500]!r}")
        field = _DataField(out)
        for chunk in r.iter_raw(MiB):
            field.feed(chunk)
    return field.result()


def acknowledge(recipient: httpx.Client, doc_id: str) -> None:
    """updateStatus done: the recipient took the package."""
    r = recipient.post(f"{API}/updateStatus", headers={"docid": doc_id, "status": "done"})
    _ok(r, "updateStatus")


def memory_mib(pid: int) -> dict[str, float]:
    """Peak (VmHWM) and current (VmRSS) resident memory of a process, in MiB."""
    out = {}
    for line in (PROC / str(pid) / "status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            out[key] = round(int(value.split()[0]) / 1024, 1)  # kB
    return out


def reset_peak(pid: int) -> bool:
    """Reset the process's VmHWM to its current RSS (Linux >= 4.0); False if not allowed."""
    try:
        (PROC / str(pid) / "clear_refs").write_text("5")
    except OSError:
        return False
    return True


def measure(dep: Deployment, package: Package) -> dict[str, Any]:
    """Send, wait, fetch and acknowledge one package; figures and each hub process's memory."""
    names = {h.pid: h.name for h in dep.hubs}
    start = {pid: memory_mib(pid) for pid in names}
    reset = {pid: reset_peak(pid) for pid in names}
    before = {pid: memory_mib(pid) for pid in names}
    organ = DOC_SENDER.split(":")[0]
    with client(dep.url, DOC_SENDER) as sender, client(dep.url, DOC_RECIPIENT) as recipient:
        cpu0, t0 = _hub_cpu(dep), time.perf_counter()
        doc_id = send(sender, package, organ)
        cpu1, t1 = _hub_cpu(dep), time.perf_counter()
        wait_listed(recipient, doc_id)
        t2 = time.perf_counter()
        got = fetch(recipient, doc_id)
        cpu3, t3 = _hub_cpu(dep), time.perf_counter()
        acknowledge(recipient, doc_id)
        t4 = time.perf_counter()
    dep.check()
    if got.size < package.attachment_size:
        raise RuntimeError(f"getEdoc gave {got.size:,} bytes for a {package.size:,} byte package")
    end = {pid: memory_mib(pid) for pid in names}
    return {
        "attachment_bytes": package.attachment_size,
        "package_bytes": package.size,
        "fetched_bytes": got.size,
        "fetched_identical": got.sha256 == package.sha256,  # rebuilt byte for byte
        "upload_s": round(t1 - t0, 3),
        "upload_mib_s": _rate(package.size, t1 - t0),
        "listed_s": round(t2 - t1, 3),
        "fetch_s": round(t3 - t2, 3),
        "fetch_mib_s": _rate(got.size, t3 - t2),
        "total_s": round(t4 - t0, 3),
        "hub_cpu_s": {"upload": round(cpu1 - cpu0, 2), "fetch": round(cpu3 - cpu1, 2)},
        "hub": {
            names[pid]: {
                "start_hwm_mib": start[pid]["VmHWM"],
                "peak_reset": reset[pid],
                "rss_before_mib": before[pid]["VmRSS"],
                "peak_rss_mib": end[pid]["VmHWM"],
                "rss_after_mib": end[pid]["VmRSS"],
            }
            for pid in names
        },
    }


def _hub_cpu(dep: Deployment) -> float:
    return sum(cpu_seconds(pid, children=False) for pid in dep.hub_pids())


def _rate(size: int, seconds: float) -> float:
    return round(size / MiB / seconds, 1) if seconds > 0 else 0.0


def run_documents(
    open_backend: Callable[[], AbstractContextManager[Backend]],
    directory: Path,
    sizes_mib: Sequence[int] = SIZES_MIB,
    report: Callable[[str, dict[str, Any]], None] = lambda size, result: None,
) -> dict[str, Any]:
    """One package of each size, each through a fresh deployment; results by size."""
    out: dict[str, Any] = {}
    for mib in sizes_mib:
        place = directory / f"documents-{mib}MiB"
        place.mkdir(parents=True, exist_ok=True)
        package = write_package(
            place / "package.xml",
            mib * MiB,
            sender=DOC_SENDER.split(":")[0],
            recipient=DOC_RECIPIENT.split(":")[0],
        )
        try:
            with open_backend() as backend, Deployment(backend, place, documents=True) as dep:
                out[f"{mib}MiB"] = measure(dep, package)
        finally:
            package.path.unlink(missing_ok=True)
            shutil.rmtree(place / "blobs", ignore_errors=True)
        report(f"{mib}MiB", out[f"{mib}MiB"])
    return out
