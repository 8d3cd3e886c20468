"""The results as a table and as JSON, checked against the targets (PASS / MISS).

A target missed is printed as MISS with the measured value, never left out. A
target whose measurement was not run (or is not available yet) says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

RSS_GROWTH_MIB = 64  # a 200 MiB package may cost this much more peak memory than a 10 MiB one


@dataclass(frozen=True)
class Target:
    """A figure the hub should reach, and where to find it in the results of a backend."""

    name: str
    find: Callable[[dict[str, Any]], float | None]
    ok: Callable[[float], bool]
    unit: str


def _e2e(size: str) -> Callable[[dict[str, Any]], float | None]:
    def find(res: dict[str, Any]) -> float | None:
        found = (res.get("e2e") or {}).get("sizes", {}).get(size)
        return None if not found else float(found["saturation"]["msgs_per_s"])

    return find


def _raw_fraction(res: dict[str, Any], raw: dict[str, Any] | None) -> float | None:
    hub = _e2e("1KiB")(res)
    base = (raw or {}).get("1KiB")
    if hub is None or not base or not base.get("msgs_per_s"):
        return None
    return hub / float(base["msgs_per_s"])


def _p99_at_half(res: dict[str, Any]) -> float | None:
    for step in (res.get("load") or {}).get("steps", []):
        if step["extra"].get("fraction") == 0.5:
            p99 = step["latency_ms"]["p99"]
            return None if p99 is None else float(p99)
    return None


def _rss_growth(res: dict[str, Any]) -> float | None:
    """MiB more peak RSS for 200 MiB than for 10 MiB, in the hub process that grew most."""
    sizes = (res.get("documents") or {}).get("sizes") or {}
    small, big = sizes.get("10MiB"), sizes.get("200MiB")
    if not small or not big:
        return None
    grown = [
        float(big["hub"][name]["peak_rss_mib"] - small["hub"][name]["peak_rss_mib"])
        for name in big["hub"]
        if name in small["hub"]
    ]
    return max(grown) if grown else None


TARGETS = [
    Target("e2e 1 KiB >= 1,000 msgs/s", _e2e("1KiB"), lambda v: v >= 1000, "msgs/s"),
    Target("p99 < 50 ms at 50 % of saturation", _p99_at_half, lambda v: v < 50, "ms"),
    Target("e2e 100 KiB >= 300 msgs/s", _e2e("100KiB"), lambda v: v >= 300, "msgs/s"),
    Target(
        "peak RSS 200 MB within 64 MB of 10 MB",
        _rss_growth,
        lambda v: v <= RSS_GROWTH_MIB,
        "MiB more",
    ),
]


def checks(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target for every backend in the results, PASS, MISS or not run."""
    out = []
    raw = (results.get("services") or {}).get("raw")
    for backend, res in results.items():
        for target in TARGETS:
            value = target.find(res)
            out.append(_check(backend, target.name, value, target.ok, target.unit))
        fraction = _raw_fraction(res, raw)
        out.append(
            _check(backend, "e2e 1 KiB >= 1/10 of raw broker 1 KiB", fraction, _tenth, "x raw")
        )
    return out


def _tenth(value: float) -> bool:
    return value >= 0.1


def _check(
    backend: str, name: str, value: float | None, ok: Callable[[float], bool], unit: str
) -> dict[str, Any]:
    result = "not run" if value is None else ("PASS" if ok(value) else "MISS")
    shown = None if value is None else round(value, 3 if unit == "x raw" else 1)
    return {"backend": backend, "target": name, "value": shown, "unit": unit, "result": result}


def _f(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _cpu(step: dict[str, Any]) -> str:
    cpu = step.get("cpu_us_per_msg") or {}
    parts = [_f(cpu.get(k)) for k in ("hub", "rabbitmq", "postgres", "generator")]
    return "/".join(parts)


def _errors(step: dict[str, Any]) -> str:
    errors = step.get("http_errors") or {}
    return str(sum(errors.values()))


HEAD = (
    f"{'backend':9} {'test':30} {'load':>13} {'msgs/s':>8} {'vs raw':>7} "
    f"{'p50':>7} {'p95':>7} {'p99':>8} {'CPU us/msg hub/rmq/pg/gen':>27} {'err':>4}"
)


def _row(backend: str, test: str, load: str, step: dict[str, Any], raw: float | None) -> str:
    lat = step.get("latency_ms") or {}
    rate = step.get("msgs_per_s")
    share = "-" if not raw or rate is None else f"{rate / raw:.2f}"
    return (
        f"{backend:9} {test:30} {load:>13} {_f(rate):>8} {share:>7} "
        f"{_f(lat.get('p50'), 1):>7} {_f(lat.get('p95'), 1):>7} {_f(lat.get('p99'), 1):>8} "
        f"{_cpu(step):>27} {_errors(step):>4}"
    )


def table(results: dict[str, Any], checked: list[dict[str, Any]]) -> str:
    """The human-readable report: one line per measurement, then saturation and targets."""
    lines = [HEAD, "-" * len(HEAD)]
    notes: list[str] = []
    raw = (results.get("services") or {}).get("raw") or {}
    raw_1k = (raw.get("1KiB") or {}).get("msgs_per_s")
    for backend, res in results.items():
        lines += _raw_rows(backend, res.get("raw"))
        lines += _e2e_rows(backend, res.get("e2e"), raw_1k, notes)
        lines += _load_rows(backend, res.get("load"), raw_1k)
        lines += _scale_rows(backend, res.get("scale"), raw_1k)
    lines += _document_rows(results)
    commits = {
        section["commit"]
        for res in results.values()
        for section in res.values()
        if isinstance(section, dict) and section.get("commit")
    }
    if len(commits) > 1:
        notes.append(f"warning: sections measured on different code: {', '.join(sorted(commits))}")
    lines += ["", *notes, "", "targets:"]
    for c in checked:
        value = "-" if c["value"] is None else f"{c['value']:,} {c['unit']}"
        lines.append(f"  {c['result']:8} {c['backend']:9} {c['target']:42} {value}")
    return "\n".join(lines)


def _raw_rows(backend: str, raw: dict[str, Any] | None) -> list[str]:
    rows = []
    for size, r in (raw or {}).items():
        if not isinstance(r, dict):  # run_at, commit
            continue
        step = {**r, "cpu_us_per_msg": {"rabbitmq": r["cpu_us_per_msg"]["rabbitmq"]}}
        rows.append(
            _row(backend, f"raw broker {size} (pika)", f"{r['window']} in flight", step, None)
        )
    return rows


def _e2e_rows(
    backend: str, e2e: dict[str, Any] | None, raw: float | None, notes: list[str]
) -> list[str]:
    rows = []
    for size, res in ((e2e or {}).get("sizes") or {}).items():
        sat = res["saturation"]
        for step in res["steps"]:
            mark = " *" if step["clients"] == sat["clients"] else ""
            load = f"{step['clients']} clients{mark}"
            rows.append(_row(backend, f"e2e {size}", load, step, raw if size == "1KiB" else None))
        plateau = "" if sat["reached"] or len(res["steps"]) < 2 else " (still rising)"
        notes.append(
            f"{backend} e2e {size}: saturation * at {sat['clients']} clients, "
            f"{sat['msgs_per_s']:,.0f} msgs/s{plateau}; limit: {sat['limit']}"
        )
    return rows


def _load_rows(backend: str, load: dict[str, Any] | None, raw: float | None) -> list[str]:
    rows = []
    for step in (load or {}).get("steps", []):
        fraction = step["extra"]["fraction"]
        test = f"open loop {fraction:.0%} of saturation"
        rows.append(_row(backend, test, f"{step['rate']:,.0f}/s", step, None))
    return rows


def _scale_rows(backend: str, scale: dict[str, Any] | None, raw: float | None) -> list[str]:
    rows = []
    for step in (scale or {}).get("steps", []):
        test = f"scale-out {step['extra']['processes']}"
        rows.append(_row(backend, test, f"{step['clients']} clients", step, raw))
    return rows


DOC_HEAD = (
    f"{'backend':9} {'test':30} {'package MiB':>11} {'upload MiB/s':>12} {'fetch MiB/s':>11} "
    f"{'total s':>8} {'hub CPU s':>9} {'peak RSS MiB (before)':>22}"
)


def _document_rows(results: dict[str, Any]) -> list[str]:
    """edXML packages through /api/v1/edoc/: one line per backend and attachment size."""
    rows = ["", DOC_HEAD, "-" * len(DOC_HEAD)]
    for backend, res in results.items():
        sizes = (res.get("documents") or {}).get("sizes") or {}
        if not sizes:
            rows.append(f"{backend:9} {'edXML 10 MiB / 200 MiB':30} {'not run':>11}")
        for size, r in sizes.items():
            cpu = r["hub_cpu_s"]["upload"] + r["hub_cpu_s"]["fetch"]
            peaks = ", ".join(
                f"{m['peak_rss_mib']:,.0f} ({m['rss_before_mib']:,.0f})" for m in r["hub"].values()
            )
            rows.append(
                f"{backend:9} {f'edXML {size} attachment':30} "
                f"{r['package_bytes'] / 1048576:>11,.1f} {r['upload_mib_s']:>12,.1f} "
                f"{r['fetch_mib_s']:>11,.1f} {r['total_s']:>8,.1f} {cpu:>9,.1f} {peaks:>22}"
            )
    return rows
