"""Scale-out: one `--role api` process and 1, then 2, `--role worker` processes.

Each configuration is a fresh deployment on the services backend (PostgreSQL and
RabbitMQ are what the processes share), loaded closed-loop at the client count
where the single all-in-one process saturated, with 1 KiB messages.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from hub.bench.deploy import Deployment, services_backend
from hub.bench.e2e import Plan, closed_loop, measure

WORKERS = (1, 2)


def run_scale(
    pg_url: str,
    amqp_url: str,
    directory: Path,
    clients: int,
    plan: Plan,
) -> list[dict[str, Any]]:
    """Throughput of api + N workers at `clients` concurrent clients, for each N."""
    out = []
    for workers in WORKERS:
        roles = ["api"] + ["worker"] * workers
        with services_backend(pg_url, amqp_url) as backend:
            place = directory / f"scale-{workers}"
            with Deployment(backend, place, roles) as dep:
                engine = backend.engine()
                try:
                    load = closed_loop(dep, 1024, clients, plan)
                    step = measure(dep, engine, 1024, f"{plan.tag}-scale{workers}-", load)
                finally:
                    engine.dispose()
        step.extra["processes"] = f"1 api + {workers} worker" + ("s" if workers > 1 else "")
        step.extra["workers"] = workers
        plan.report(step)
        out.append(asdict(step))
    return out
