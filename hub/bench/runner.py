"""Runs the sections of `hub bench` on each backend and writes the results.

A run with every section writes a fresh results file. A run with `--only` keeps
the other sections of an existing file (same `--out`) and replaces the ones it
ran, so a long benchmark can be run in parts (each part holding the services for
a few minutes); `load` and `scale` take the saturation point from the file's
`e2e` section when they run without it, or measure a 1 KiB sweep first.
`documents` starts deployments of its own, one per package size.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from hub.bench import documents, e2e, load, raw, report, scale
from hub.bench.deploy import Backend, Deployment, embedded_backend, services_backend
from hub.bench.machine import describe

SECTIONS = ("raw", "e2e", "load", "scale", "documents")
BACKENDS = ("services", "embedded")
FULL_CLIENTS = (4, 8, 16, 32, 64)
QUICK_CLIENTS = (4, 16)
SIZES_KIB = (1, 10, 100)
RAW_SIZES = (1024, 32 * 1024)
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
Echo = Callable[[str], None]


@dataclass
class BenchOptions:
    """What to run; unset figures take the full (or `quick`) defaults."""

    backends: Sequence[str] = ("services",)
    duration: float | None = None
    quick: bool = False
    out: Path = Path("bench-results/bench.json")
    only: Sequence[str] = SECTIONS
    clients: Sequence[int] | None = None
    sizes_kib: Sequence[int] | None = None
    pg_url: str = PG_URL
    amqp_url: str = AMQP_URL
    generator: str = "auto"  # auto | wrk | python
    argv: list[str] = field(default_factory=lambda: list(sys.argv))

    @property
    def seconds(self) -> float:
        return self.duration or (5.0 if self.quick else 30.0)

    @property
    def steps(self) -> Sequence[int]:
        return self.clients or (QUICK_CLIENTS if self.quick else FULL_CLIENTS)

    @property
    def sizes(self) -> list[int]:
        return [k * 1024 for k in self.sizes_kib or SIZES_KIB]

    @property
    def raw_seconds(self) -> float:
        return 3.0 if self.quick else max(3.0, self.seconds / 3)

    @property
    def partial(self) -> bool:
        return set(self.only) != set(SECTIONS)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def run_bench(options: BenchOptions, echo: Echo = print) -> dict[str, Any]:
    """Run the chosen sections, write the JSON file, print the table; returns the document."""
    started = time.monotonic()
    previous = _read(options.out) if options.partial else {}
    results: dict[str, Any] = previous.get("results", {})
    tag = "b" + uuid.uuid4().hex[:8]
    directory = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    try:
        commit = _commit()
        for name in options.backends:
            old = results.get(name, {})
            new = _run_backend(name, options, old, directory, tag, echo)
            for section in new.values():
                if "run_at" in section:
                    section["commit"] = commit
            results[name] = {**old, **new}
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    checked = report.checks(results)
    document = {
        "tool": "hub bench",
        "runs": [*previous.get("runs", []), _run_record(options, started)],
        "machine": _machine(options, previous),
        "results": results,
        "checks": checked,
    }
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    echo("")
    _echo_runs(document, echo)
    echo(report.table(results, checked))
    echo(f"\nresults written to {options.out}")
    return document


def _echo_runs(document: dict[str, Any], echo: Echo) -> None:
    """One line per run that wrote into the results (a file can gather several parts)."""
    for run in document.get("runs", []):
        quick = ", quick" if run.get("quick") else ""
        echo(
            f"run {run['at']} (commit {run.get('commit')}, {run['seconds']:g} s steps{quick}): "
            f"{','.join(run['backends'])} / {','.join(run['sections'])}"
        )
    echo("")


def _commit() -> str | None:
    """The git commit of the code measured, with `+dirty` when the tree has changes."""
    repo = Path(__file__).resolve().parent.parent.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no", "hub"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def _machine(options: BenchOptions, previous: dict[str, Any]) -> dict[str, Any]:
    """The machine; service versions are asked only when the services were used now."""
    services = "services" in options.backends
    info = describe(services, options.pg_url, options.amqp_url)
    if not services:
        old = previous.get("machine") or {}
        info.update({k: old[k] for k in ("rabbitmq", "postgresql") if k in old})
    return info


def show_results(path: Path, echo: Echo = print) -> dict[str, Any]:
    """Print the table of an existing results file (targets checked again)."""
    document = _read(path)
    if not document:
        raise FileNotFoundError(f"no results in {path}")
    results = document.get("results", {})
    _echo_runs(document, echo)
    echo(report.table(results, report.checks(results)))
    return document


def _run_record(options: BenchOptions, started: float) -> dict[str, Any]:
    return {
        "at": now(),
        "elapsed_s": round(time.monotonic() - started),
        "commit": _commit(),
        "argv": options.argv,
        "backends": list(options.backends),
        "sections": list(options.only),
        "quick": options.quick,
        "seconds": options.seconds,
        "generator": options.generator,
    }


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    found = orjson.loads(path.read_bytes())
    return found if isinstance(found, dict) else {}


@contextmanager
def _backend(name: str, options: BenchOptions, directory: Path) -> Iterator[Backend]:
    if name == "services":
        with services_backend(options.pg_url, options.amqp_url) as backend:
            yield backend
    else:
        with embedded_backend(directory) as backend:
            yield backend


def _saturation(section: dict[str, Any] | None) -> dict[str, Any] | None:
    sizes = (section or {}).get("sizes") or {}
    found = sizes.get("1KiB") or next(iter(sizes.values()), None)
    return None if not found else dict(found["saturation"])


def _run_backend(
    name: str,
    options: BenchOptions,
    old: dict[str, Any],
    directory: Path,
    tag: str,
    echo: Echo,
) -> dict[str, Any]:
    """The sections of one backend run now (the others stay as they were)."""
    only = set(options.only)
    new: dict[str, Any] = {}
    if name == "services" and "raw" in only:
        new["raw"] = _raw(options, echo)
    plan = e2e.Plan(options.seconds, tag, _progress(name, echo), options.generator)
    needs_sweep = bool(only & {"load", "scale"}) and _saturation(old.get("e2e")) is None
    if "e2e" in only or needs_sweep or "load" in only:
        sizes = options.sizes if "e2e" in only else [1024]
        with (
            _backend(name, options, directory) as backend,
            Deployment(backend, directory / name) as dep,
        ):
            engine = backend.engine()
            try:
                if "e2e" in only or needs_sweep:
                    new["e2e"] = _e2e(name, dep, engine, sizes, options, plan, echo)
                if "load" in only:
                    sat = _saturation(new.get("e2e") or old.get("e2e"))
                    assert sat is not None
                    new["load"] = _load(name, dep, engine, sat, plan, echo)
            finally:
                engine.dispose()
    if "scale" in only and name == "services":
        sat = _saturation(new.get("e2e") or old.get("e2e"))
        assert sat is not None
        new["scale"] = _scale(name, sat, options, directory, plan, echo)
    if "documents" in only:
        new["documents"] = _documents(name, options, directory, echo)
    return new


def _progress(backend: str, echo: Echo) -> Callable[[e2e.Step], None]:
    def show(step: e2e.Step) -> None:
        lat = step.latency_ms
        what = f"{step.clients} clients" if step.clients else f"{step.rate:,.0f}/s open loop"
        echo(
            f"  {backend} {step.size_kib} KiB, {what}: {step.msgs_per_s:,.0f} msgs/s "
            f"delivered (accepted {step.accepted_per_s:,.0f}/s), p50 {lat['p50']} ms, "
            f"p99 {lat['p99']} ms, errors {sum(step.http_errors.values())}; {step.limit}"
        )

    return show


def _raw(options: BenchOptions, echo: Echo) -> dict[str, Any]:
    out: dict[str, Any] = {"run_at": now()}
    for size in RAW_SIZES:
        echo(f"  services raw broker {size // 1024} KiB for {options.raw_seconds:g} s ...")
        result = raw.run_raw(options.amqp_url, size, options.raw_seconds)
        echo(
            f"  services raw broker {size // 1024} KiB: {result['msgs_per_s']:,.0f} msgs/s, "
            f"p50 {result['latency_ms']['p50']} ms, p99 {result['latency_ms']['p99']} ms"
        )
        out[f"{size // 1024}KiB"] = result
    return out


def _e2e(
    name: str,
    dep: Deployment,
    engine: Any,
    sizes: list[int],
    options: BenchOptions,
    plan: e2e.Plan,
    echo: Echo,
) -> dict[str, Any]:
    idle = e2e.idle_cores(dep)
    echo(f"  {name} idle (cores): {idle}")
    echo(f"  {name} e2e: {plan.seconds:g} s per step, clients {list(options.steps)} ...")
    found = e2e.run_e2e(dep, engine, sizes, options.steps, plan)
    return {"run_at": now(), "seconds": plan.seconds, "idle_cores": idle, "sizes": found}


def _load(
    name: str, dep: Deployment, engine: Any, sat: dict[str, Any], plan: e2e.Plan, echo: Echo
) -> dict[str, Any]:
    rate = float(sat["msgs_per_s"])
    echo(f"  {name} open loop at fractions of {rate:,.0f} msgs/s ...")
    steps = load.run_load(dep, engine, rate, plan)
    return {"run_at": now(), "saturation_msgs_per_s": rate, "steps": steps}


def _scale(
    name: str,
    sat: dict[str, Any],
    options: BenchOptions,
    directory: Path,
    plan: e2e.Plan,
    echo: Echo,
) -> dict[str, Any]:
    clients = int(sat["clients"])
    echo(f"  {name} scale-out at {clients} clients ...")
    steps = scale.run_scale(options.pg_url, options.amqp_url, directory, clients, plan)
    return {"run_at": now(), "clients": clients, "steps": steps}


def _documents(name: str, options: BenchOptions, directory: Path, echo: Echo) -> dict[str, Any]:
    def show(size: str, r: dict[str, Any]) -> None:
        peaks = ", ".join(f"{p} {m['peak_rss_mib']:,.0f} MiB" for p, m in r["hub"].items())
        echo(
            f"  {name} edXML {size} attachment ({r['package_bytes'] / documents.MiB:,.0f} MiB "
            f"package): upload {r['upload_mib_s']:,.1f} MiB/s, fetch {r['fetch_mib_s']:,.1f} "
            f"MiB/s, total {r['total_s']:,.1f} s; peak RSS {peaks}"
        )

    echo(f"  {name} documents: one package of each of {list(documents.SIZES_MIB)} MiB ...")
    place = directory / f"{name}-documents"
    found = documents.run_documents(lambda: _backend(name, options, place), place, report=show)
    return {"run_at": now(), "sizes": found}
