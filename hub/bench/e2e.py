"""End to end through the hub: HTTP ingest -> store -> broker -> router -> delivery -> destination.

A step loads a running deployment from `clients` concurrent connections for a
fixed time, waits until everything it got accepted is delivered, and reports:

- `msgs_per_s`: messages accepted AND delivered within the load window, per second;
- latency p50/p95/p99 from acceptance to delivery, read from the store;
- CPU per message of the hub, RabbitMQ (beam.smp), PostgreSQL (every postgres
  process), the destination and the load generator, from /proc, over the load
  window plus the drain (so every accepted message's whole cost is counted);
- cores each used during the load window, and which one was at a core's limit.

A sweep steps the client count up and stops at the first step that adds less
than 5 % throughput; the step before it is the saturation point (throughput
stopped rising there; more clients only add queueing).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa

from hub.bench.deploy import Deployment
from hub.bench.loadgen import LoadResult, run_closed_loop, template
from hub.bench.procs import Probe, Usage, pids_named
from hub.bench.store import StepStore, step_store, wait_drained

GAIN = 0.05  # a step adding less than this fraction of throughput means saturation
AT_LIMIT = 0.9  # cores: a single-threaded process this busy is the bottleneck
Generate = Callable[[str], LoadResult]  # id prefix -> load result


@dataclass(frozen=True)
class Plan:
    """How every step of a run is made: its length, its id tag, the generator, progress."""

    seconds: float
    tag: str
    report: Callable[[Step], None]
    generator: str = "auto"  # auto (wrk when installed) | wrk | python


@dataclass
class Step:
    """One load step, as stored in the results."""

    size_kib: int
    clients: int | None
    rate: float | None  # open loop: the rate asked for
    seconds: float
    generator: str
    answered_2xx: int
    http_errors: dict[str, int]
    accepted: int
    delivered: int
    drained: bool
    msgs_per_s: float
    accepted_per_s: float
    latency_ms: dict[str, float | None]
    http_ms: dict[str, float | None]
    cpu_us_per_msg: dict[str, float | None]
    cores: dict[str, float]
    limit: str
    extra: dict[str, Any] = field(default_factory=dict)


def probe_for(dep: Deployment) -> Probe:
    """The processes to account for in a deployment."""
    groups: dict[str, Callable[[], list[int]]] = {"hub": dep.hub_pids}
    if dep.sink is not None:
        sink_pid = dep.sink.pid
        groups["sink"] = lambda: [sink_pid]
    if dep.backend.name == "services":
        groups["rabbitmq"] = lambda: pids_named("beam.smp")
        groups["postgres"] = lambda: pids_named("postgres")
    return Probe(groups, threaded=dep.hub_pids)


def measure(dep: Deployment, engine: sa.Engine, size: int, prefix: str, load: Generate) -> Step:
    """Run one load, wait for its deliveries, and read /proc and the store."""
    probe = probe_for(dep)
    before = probe.snapshot()
    result = load(prefix)
    during = probe.snapshot()
    drained = wait_drained(engine, prefix)
    after = probe.snapshot()
    dep.check()
    stored = step_store(engine, prefix, result.started + result.seconds)
    return build_step(
        dep, size, result, stored, drained, probe.usage(before, during), probe.usage(before, after)
    )


def build_step(
    dep: Deployment,
    size: int,
    load: LoadResult,
    stored: StepStore,
    drained: bool,
    window: Usage,
    whole: Usage,
) -> Step:
    cores = core_use(dep, window, load)
    return Step(
        size_kib=size // 1024,
        clients=load.clients or None,
        rate=None,
        seconds=round(load.seconds, 2),
        generator=load.generator,
        answered_2xx=load.requests,
        http_errors=load.errors,
        accepted=stored.accepted,
        delivered=stored.delivered,
        drained=drained,
        msgs_per_s=round(stored.delivered_in_window / load.seconds, 1),
        accepted_per_s=round(stored.accepted / load.seconds, 1),
        latency_ms=_rounded(
            {"p50": stored.p50_ms, "p95": stored.p95_ms, "p99": stored.p99_ms, "max": stored.max_ms}
        ),
        http_ms=_rounded({"p50": load.http_p50_ms, "p99": load.http_p99_ms}),
        cpu_us_per_msg=cpu_per_message(whole, load, stored.accepted),
        cores=cores,
        limit=limiting(cores),
        extra={"late_sends": load.late_sends} if load.late_sends else {},
    )


def _rounded(values: dict[str, float | None]) -> dict[str, float | None]:
    return {k: None if v is None else round(v, 2) for k, v in values.items()}


def cpu_per_message(whole: Usage, load: LoadResult, count: int) -> dict[str, float | None]:
    """Microseconds of CPU per accepted message, per component and for the whole machine."""
    if count == 0:
        return {}
    out: dict[str, float | None] = {
        group: round(seconds / count * 1e6, 1) for group, seconds in whole.seconds.items()
    }
    out["generator"] = round(load.cpu_seconds / count * 1e6, 1)
    out["machine"] = round(whole.machine_cores * whole.wall / count * 1e6, 1)
    return out


def core_use(dep: Deployment, window: Usage, load: LoadResult) -> dict[str, float]:
    """Cores used during the load window: each group, hub processes and threads, the busiest."""
    cores = {group: round(window.cores(group), 2) for group in window.seconds}
    names = {h.pid: h.name for h in dep.hubs}
    for pid, used in (window.per_pid.get("hub") or {}).items():
        cores[f"{names.get(pid, pid)} process"] = round(used, 2)
    for pid, used in window.loop_threads.items():
        cores[f"{names.get(pid, pid)} event loop"] = round(used, 2)
    busiest_pg = window.busiest("postgres")
    if busiest_pg is not None:
        cores["postgres busiest process"] = round(busiest_pg[1], 2)
    cores["generator"] = round(load.cpu_seconds / load.seconds, 2) if load.seconds else 0.0
    cores["machine"] = round(window.machine_cores, 2)
    # Whatever else ran on the machine meanwhile (other users, the bench itself).
    ours = sum(window.cores(g) for g in window.seconds) + cores["generator"]
    cores["others"] = round(max(0.0, window.machine_cores - ours), 2)
    return cores


def limiting(cores: dict[str, float]) -> str:
    """Which resource was at its limit: a single-threaded one at a full core, or the machine."""
    single = {k: v for k, v in cores.items() if k.endswith((" event loop", " process"))}
    single.update({k: cores[k] for k in ("sink", "generator") if k in cores})
    if "postgres busiest process" in cores:
        single["postgres busiest process"] = cores["postgres busiest process"]
    name, used = max(single.items(), key=lambda kv: kv[1]) if single else ("", 0.0)
    ncpu = os.cpu_count() or 1
    machine = cores.get("machine", 0.0)
    if used >= AT_LIMIT:
        what = name if name not in ("sink", "generator") else f"the {name}"
        loop = cores.get(name.removesuffix(" process") + " event loop")
        if name.endswith(" process") and loop is not None:
            # A Python process runs Python on one core at a time (the GIL).
            what += f" (GIL: event loop {loop:.0%}, other threads {used - loop:.0%})"
        return f"{what} at {used:.0%} of a core"
    if machine >= AT_LIMIT * ncpu:
        top = sorted(
            ((k, v) for k, v in cores.items() if k in ("hub", "rabbitmq", "postgres", "sink")),
            key=lambda kv: -kv[1],
        )
        shares = ", ".join(f"{k} {v:.2f}" for k, v in [*top, ("others", cores.get("others", 0))])
        return f"machine CPU ({machine:.2f} of {ncpu} cores busy: {shares})"
    return f"no CPU at its limit (busiest: {name} {used:.0%}; machine {machine:.2f} cores)"


def idle_cores(dep: Deployment, seconds: float = 3.0) -> dict[str, float]:
    """Cores each group uses with no load: the floor under every CPU-per-message figure."""
    probe = probe_for(dep)
    before = probe.snapshot()
    time.sleep(seconds)
    usage = probe.usage(before, probe.snapshot())
    return {group: round(usage.cores(group), 3) for group in usage.seconds}


def closed_loop(dep: Deployment, size: int, clients: int, plan: Plan) -> Generate:
    body = template(size)

    def generate(prefix: str) -> LoadResult:
        return run_closed_loop(
            dep.url, body, clients, plan.seconds, prefix, dep.directory, plan.generator
        )

    return generate


def sweep(
    dep: Deployment, engine: sa.Engine, size: int, steps: Sequence[int], plan: Plan
) -> dict[str, Any]:
    """Step the client count up until throughput stops rising; steps and the saturation point."""
    done: list[Step] = []
    for clients in steps:
        prefix = f"{plan.tag}-{size // 1024}k-c{clients}-"
        step = measure(dep, engine, size, prefix, closed_loop(dep, size, clients, plan))
        plan.report(step)
        done.append(step)
        if len(done) >= 2 and step.msgs_per_s < done[-2].msgs_per_s * (1 + GAIN):
            break
    return {"steps": [asdict(s) for s in done], "saturation": saturation(done)}


def saturation(steps: Sequence[Step]) -> dict[str, Any]:
    """Where throughput stopped rising: the step before the first one that added < 5 %.

    When every step still added 5 % or more, the busiest step, marked not reached.
    """
    plateau = len(steps) >= 2 and steps[-1].msgs_per_s < steps[-2].msgs_per_s * (1 + GAIN)
    knee = steps[-2] if plateau else max(steps, key=lambda s: s.msgs_per_s)
    return {
        "clients": knee.clients,
        "msgs_per_s": knee.msgs_per_s,
        "reached": plateau,
        "limit": knee.limit,
        "cores": knee.cores,
    }


def run_e2e(
    dep: Deployment, engine: sa.Engine, sizes: Sequence[int], steps: Sequence[int], plan: Plan
) -> dict[str, Any]:
    """The sweep for the first size; the other sizes at its saturating client count."""
    out: dict[str, Any] = {}
    first, *others = sizes
    out[f"{first // 1024}KiB"] = sweep(dep, engine, first, steps, plan)
    at = out[f"{first // 1024}KiB"]["saturation"]["clients"]
    for size in others:
        out[f"{size // 1024}KiB"] = sweep(dep, engine, size, [at], plan)
    return out
