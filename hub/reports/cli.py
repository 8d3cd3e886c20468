"""`hub reports send`: compute a period's reports and queue those whose figures changed.

The lead exposes `send_reports` as a typer command; the hub's OutboxRelay then
publishes what it queued and ingest routes it to the reporting system.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NoReturn

import typer

from hub.config import HubConfig, load_config
from hub.errors import ConfigError
from hub.reports.connector import reporting_for
from hub.reports.periods import parse_period
from hub.reports.submit import submit
from hub.settings import Settings
from hub.store.db import Database
from hub.store.models import utcnow


def send_reports(
    settings: Settings,
    period: str,
    agency: str | None,
    *,
    config: HubConfig | None = None,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Submit `period` (for one agency, or all) from the store `settings` names; print the result.

    Args:
        config: the hub's config (default: read from `settings.config`); its System of
            kind `reporting` is the reports' source.
        now: the instant computed at (default: now).

    Raises:
        typer.BadParameter: a malformed period.
        typer.Exit: the config has no System of kind `reporting`, or is invalid.
    """
    try:
        parsed = parse_period(period)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--period") from exc
    try:
        config = config or load_config(settings.config)
    except ConfigError as exc:
        _fail(f"config error: {exc}")
    found = [s for s in config.systems.values() if s.kind == "reporting"]
    if not found:
        _fail(f"{settings.config}: no system of kind 'reporting' (the reports' source)")
    reporting = reporting_for(found[0], settings.queue_prefix)
    db = Database(settings.sqlalchemy_url())
    try:
        if settings.auto_migrate:
            db.upgrade()
        results = submit(db.engine, reporting, parsed, agency, now=now or utcnow())
    finally:
        db.close()
    for r in results:
        figures = " ".join(f"{k}={v}" for k, v in r["indicators"].items())
        state = f"queued v{r['version']}" if r["queued"] else f"unchanged v{r['version']}"
        typer.echo(f"{r['report_id']}: {state}  {figures}")
    if not results:
        typer.echo(f"{parsed.label}: no agency has dossiers received before the period's end")
    return results


def _fail(message: str) -> NoReturn:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(2)
