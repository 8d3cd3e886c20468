"""The `hub` command: serve, send, trace, dead letters, routes, database."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import orjson
import typer

from hub.settings import DEMO_CONFIG, Settings

app = typer.Typer(
    help="LGSP Hub: integration and data-sharing hub.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
dead_letters = typer.Typer(help="Inspect, replay or discard dead letters.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(dead_letters, name="dead-letters")
app.add_typer(db_app, name="db")


def _settings() -> Settings:
    return Settings()


def _fail(message: str) -> NoReturn:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _config(settings: Settings) -> Any:
    from hub.config import load_config
    from hub.errors import ConfigError

    try:
        return load_config(settings.config)
    except ConfigError as exc:
        _fail(f"config error: {exc}" + "".join(f"\n  - {p}" for p in exc.problems[1:]))


def _cli_actor() -> str:
    """Who acts from the command line, for the audit trail."""
    return f"cli:{os.environ.get('USER') or os.environ.get('LOGNAME') or 'unknown'}"


@app.command("pause")
def pause_cmd(
    system: Annotated[str, typer.Argument(help="the system id, e.g. 000.00.12.H29:qlvb")],
    reason: Annotated[str | None, typer.Option(help="why (shown to operators)")] = None,
) -> None:
    """Stop delivering to a system under maintenance; its messages wait in the hub."""
    from hub.store.pauses import pause

    db = _receiving_store(system)
    done = pause(db.engine, system, _cli_actor(), reason)
    db.close()
    typer.echo(f"{system} paused" if done else f"{system} was paused already")


@app.command("resume")
def resume_cmd(system: Annotated[str, typer.Argument(help="the system id")]) -> None:
    """Deliver to a paused system again; what waited goes first."""
    from hub.store.pauses import resume

    db = _receiving_store(system)
    done = resume(db.engine, system, _cli_actor())
    db.close()
    typer.echo(f"{system} resumed" if done else f"{system} was not paused")


def _receiving_store(system: str) -> Any:
    """The store, once `system` is known to be a configured system that receives."""
    settings = _settings()
    found = _config(settings).systems.get(system)
    if found is None or not found.may_receive:
        _fail(f"no system {system!r} that receives messages in {settings.config}")
    return _database(settings)


reports = typer.Typer(help="Indicator reports to the government reporting system.")
app.add_typer(reports, name="reports")


@reports.command("send")
def reports_send(
    period: Annotated[str, typer.Option(help="2026-10, 2026-Q4 or 2026")],
    agency: Annotated[str | None, typer.Option(help="one agency's code (default: all)")] = None,
) -> None:
    """Compute a period's reports and queue those whose figures are new (a correction is a
    new version); the running hub sends them."""
    from hub.reports.cli import send_reports

    send_reports(_settings(), period, agency)


@app.command()
def serve(
    role: Annotated[str, typer.Option(help="all | api | worker")] = "all",
    host: Annotated[str | None, typer.Option(help="default HUB_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="default HUB_PORT")] = None,
    demo: Annotated[
        bool | None,
        typer.Option(
            help="also run the demo's simulators (default: on with the demo config and --role "
            "all; with split roles give --demo to one process only, their ports are fixed)"
        ),
    ] = None,
) -> None:
    """Run the hub: API, router and delivery workers (or one role, to scale out)."""
    if role not in ("all", "api", "worker"):
        _fail(f"--role must be all, api or worker, not {role!r}")
    settings = _settings()
    from hub import logs

    logs.configure(settings.log_level, settings.log_format)
    for noisy in ("alembic", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    config = _config(settings)
    from hub.runtime import Hub

    hub = Hub(settings, config)
    sink, offices = None, []
    is_demo = Path(settings.config).resolve() == DEMO_CONFIG.resolve()
    if demo if demo is not None else (is_demo and role == "all"):
        from adapters.sink import RecordingSink

        sink = RecordingSink(port=9101).start()
        typer.echo(f"demo destination simulator listening on {sink.url}")
        offices = _demo_eoffices(f"http://{host or settings.host}:{port or settings.port}", config)
        offices += _demo_government_office(config)
        offices += _demo_portal(config)
    where = f"http://{host or settings.host}:{port or settings.port}"
    logging.getLogger("hub.cli").info(
        "%s in the foreground: Ctrl-C stops it; run other commands from another terminal",
        "hub worker running" if role == "worker" else f"hub ({role}) serving on {where}",
    )
    try:
        if role == "worker":
            asyncio.run(_run_worker(hub))
        else:
            _run_api(hub, role, host or settings.host, port or settings.port, settings.log_level)
    finally:
        if sink:
            sink.stop()
        for office in offices:
            office.stop()


def _demo_eoffices(hub_url: str, config: Any) -> list[Any]:
    """An e-office simulator for each demo system pushed to on 127.0.0.1 (answers status 01)."""
    from urllib.parse import urlsplit

    from adapters.eoffice import EofficeSimulator

    offices = []
    for system in config.systems.values():
        at = urlsplit(system.endpoint or "")
        if system.kind != "edxml" or at.hostname != "127.0.0.1" or at.port is None:
            continue
        office = EofficeSimulator(
            system.organ,
            name=system.name,
            port=at.port,
            hub=hub_url,
            key=system.api_key,
            auto_status="01",
        ).start()
        typer.echo(f"demo e-office of {system.organ} listening on {office.url}/soap")
        offices.append(office)
    return offices


def _demo_government_office(config: Any) -> list[Any]:
    """The Government Office simulator for a demo system of that kind on 127.0.0.1, with
    two directives waiting to be pulled."""
    from urllib.parse import urlsplit

    from adapters.government_office import GovernmentOffice

    started = []
    for system in config.systems.values():
        at = urlsplit(system.endpoint or "")
        if system.kind != "government_office" or at.hostname != "127.0.0.1" or not at.port:
            continue
        key = str(system.options.get("outbound_key", ""))
        office = GovernmentOffice([key], port=at.port).start()
        office.create(TenNhiemVu="Đẩy nhanh giải ngân vốn đầu tư công năm 2026")
        office.create(TenNhiemVu="Triển khai Đề án 06 về dữ liệu dân cư", HanXuLy="2027-03-31")
        typer.echo(f"demo Government Office task system listening on {office.url}")
        started.append(office)
    return started


def _demo_portal(config: Any) -> list[Any]:
    """The National Public Service Portal and reporting system simulators of the demo."""
    from urllib.parse import urlsplit

    from adapters.national_portal import NationalPortal
    from adapters.reporting_system import ReportingSystem

    started: list[Any] = []
    for system in config.systems.values():
        at = urlsplit(system.endpoint or "")
        if at.hostname != "127.0.0.1" or not at.port:
            continue
        if system.kind == "national_portal":
            portal = NationalPortal(port=at.port).start()
            typer.echo(f"demo National Public Service Portal listening on {portal.url}")
            started.append(portal)
        elif system.kind == "reporting_system":
            reports = ReportingSystem(port=at.port).start()
            typer.echo(f"demo government reporting system listening on {reports.url}")
            started.append(reports)
    return started


def _run_api(hub: Any, role: Any, host: str, port: int, log_level: str) -> None:
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    from hub.api.app import create_app
    from hub.server import uvicorn_options

    settings = hub.settings
    # On SIGTERM uvicorn stops accepting, lets requests under way finish (15 s at most),
    # stops the hub, then raises the signal again to the handler it found. The default
    # one would end the process by SIGTERM (exit -15) after a clean stop; this one lets
    # uvicorn return, so a graceful stop exits 0.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        uvicorn.run(
            create_app(hub, role),
            host=host,
            port=port,
            log_level=log_level,
            # JSON logs: uvicorn's loggers go to the root handler set by hub.logs.configure.
            log_config=None if hub.settings.log_format == "json" else LOGGING_CONFIG,
            access_log=False,
            timeout_graceful_shutdown=15,
            **uvicorn_options(settings),
        )
    finally:
        signal.signal(signal.SIGTERM, previous)


async def _run_worker(hub: Any) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await hub.start("worker")
    if hub.settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(hub.settings.metrics_port, hub.settings.host, hub.metrics.registry)
    try:
        await stop.wait()
    finally:
        await hub.stop()


@app.command()
def send(
    file: Annotated[Path, typer.Argument(help="a CloudEvent as JSON, or - for stdin")],
    key: Annotated[str, typer.Option(envvar="HUB_KEY", help="the sending system's API key")],
    url: Annotated[
        str | None, typer.Option(help="hub base URL (default from HUB_HOST/HUB_PORT)")
    ] = None,
) -> None:
    """Send a message to a running hub, as a system would."""
    settings = _settings()
    body = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
    base = url or f"http://{settings.host}:{settings.port}"
    response = httpx.post(
        f"{base}/api/v1/messages",
        content=body,
        timeout=30,
        headers={"authorization": f"Bearer {key}", "content-type": "application/cloudevents+json"},
    )
    typer.echo(response.text)
    if response.status_code >= 300:
        raise typer.Exit(1)


def _database(settings: Settings) -> Any:
    from hub.store.db import Database

    db = Database(settings.sqlalchemy_url())
    if settings.auto_migrate:
        db.upgrade()
    return db


@app.command()
def trace(message_id: str) -> None:
    """Show a message, its deliveries and every hop with its time (reads the store)."""
    from hub.store.inspect import get_message

    db = _database(_settings())
    found = get_message(db.engine, message_id)
    db.close()
    if found is None:
        _fail(f"no message {message_id!r}")
    typer.echo(f"{found['id']}  {found['type']}  from {found['source']}  [{found['status']}]")
    for d in found["deliveries"]:
        typer.echo(
            f"  -> {d['destination']}: {d['status']}, {d['attempts']} tries"
            + (f", last error: {d['last_error']}" if d["last_error"] else "")
        )
    for h in found["trace"]:
        where = f" {h['destination']}" if h["destination"] else ""
        typer.echo(f"  {vietnam_time(h['at'])}  {h['stage']}{where}  {h['detail'] or ''}".rstrip())


def vietnam_time(at: str | None) -> str:
    """An RFC 3339 time as the CLI shows every time: in Vietnam (UTC+07:00), with the offset."""
    if not at:
        return ""
    from datetime import datetime, timedelta, timezone

    moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(timezone(timedelta(hours=7))).isoformat(timespec="milliseconds")


@dead_letters.command("list")
def dead_letters_list(
    destination: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option()] = 50,
) -> None:
    """List dead letters, newest first."""
    from hub.store.inspect import list_dead_letters

    db = _database(_settings())
    items, _ = list_dead_letters(db.engine, destination=destination, limit=limit, before=None)
    db.close()
    for item in items:
        typer.echo(orjson.dumps(item).decode())
    if not items:
        typer.echo("no dead letters")


@dead_letters.command("replay")
def dead_letters_replay(
    delivery_id: int,
    by: Annotated[str | None, typer.Option(help="who (default cli:$USER)")] = None,
) -> None:
    """Try a dead letter again now (the running hub picks it up)."""
    from hub.store.inspect import replay

    db = _database(_settings())
    ok = replay(db.engine, delivery_id, by=by or _cli_actor())
    db.close()
    if not ok:
        _fail(f"no dead letter {delivery_id}")
    typer.echo(f"dead letter {delivery_id} will be tried again")


@dead_letters.command("discard")
def dead_letters_discard(
    delivery_id: int,
    by: Annotated[str | None, typer.Option(help="who (default cli:$USER)")] = None,
) -> None:
    """Give a dead letter up for good."""
    from hub.store.inspect import discard

    db = _database(_settings())
    ok = discard(db.engine, delivery_id, by=by or _cli_actor())
    db.close()
    if not ok:
        _fail(f"no dead letter {delivery_id}")
    typer.echo(f"dead letter {delivery_id} discarded")


@app.command()
def routes() -> None:
    """Print the routing table as configured."""
    config = _config(_settings())
    for rule in config.routes:
        match = f"type={rule.type}" + (f" source={rule.source}" if rule.source else "")
        match += "".join(f" {p} in {list(v)}" for p, v in rule.data)
        to = ", ".join(rule.to) + (f" from_data={rule.from_data}" if rule.from_data else "")
        typer.echo(f"{rule.name}: {match} -> {to}")


@app.command()
def bench(
    backend: Annotated[str, typer.Option(help="services | embedded | both")] = "services",
    duration: Annotated[
        float | None, typer.Option(help="seconds per load step (default 30, --quick 5)")
    ] = None,
    quick: Annotated[bool, typer.Option(help="smoke run: 5 s steps, fewer client counts")] = False,
    out: Annotated[Path, typer.Option(help="JSON results file")] = Path("bench-results/bench.json"),
    only: Annotated[
        str, typer.Option(help="sections, comma-separated")
    ] = "raw,e2e,load,scale,documents",
    clients: Annotated[
        str | None, typer.Option(help="client counts to step through, e.g. 4,8,16")
    ] = None,
    sizes: Annotated[str | None, typer.Option(help="message sizes in KiB, e.g. 1,10,100")] = None,
    pg_url: Annotated[str, typer.Option(help="PostgreSQL for the services backend")] = (
        "postgresql://postgres@127.0.0.1:5432/test"
    ),
    amqp_url: Annotated[str, typer.Option(help="RabbitMQ for the services backend")] = (
        "amqp://guest:guest@127.0.0.1:5672//"
    ),
    generator: Annotated[
        str, typer.Option(help="closed-loop load: auto (wrk if installed) | wrk | python")
    ] = "auto",
    show: Annotated[bool, typer.Option(help="only print the table of --out")] = False,
) -> None:
    """Measure the hub end to end (and the broker's own ceiling); print a table, write JSON."""
    from hub.bench import SECTIONS, BenchOptions, run_bench, show_results

    if show:
        try:
            show_results(out, typer.echo)
        except FileNotFoundError as exc:
            _fail(str(exc))
        return

    backends = ["services", "embedded"] if backend == "both" else [backend]
    sections = [s.strip() for s in only.split(",") if s.strip()]
    if not set(backends) <= {"services", "embedded"}:
        _fail(f"--backend must be services, embedded or both, not {backend!r}")
    if not sections or not set(sections) <= set(SECTIONS):
        _fail(f"--only takes {','.join(SECTIONS)}, not {only!r}")
    if generator not in ("auto", "wrk", "python"):
        _fail(f"--generator must be auto, wrk or python, not {generator!r}")

    def numbers(text: str | None) -> list[int] | None:
        try:
            return [int(x) for x in text.split(",")] if text else None
        except ValueError:
            _fail(f"not a list of whole numbers: {text!r}")

    options = BenchOptions(
        backends=backends,
        duration=duration,
        quick=quick,
        out=out,
        only=sections,
        clients=numbers(clients),
        sizes_kib=numbers(sizes),
        pg_url=pg_url,
        amqp_url=amqp_url,
        generator=generator,
    )
    run_bench(options, typer.echo)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations."""
    from hub.store.db import Database, revision

    db = Database(_settings().sqlalchemy_url())
    before = revision(db.engine)
    db.upgrade()
    after = revision(db.engine)
    db.close()
    if before is None:
        typer.echo(f"database created: schema at revision {after}")
    elif before != after:
        typer.echo(f"database upgraded from revision {before} to {after}")
    else:
        typer.echo(f"database was up to date (revision {after}); nothing applied")


@app.command("demo-traffic")
def demo_traffic(
    count: Annotated[int, typer.Option(help="notes to send")] = 120,
    rate: Annotated[float, typer.Option(help="notes per second")] = 4.0,
    url: Annotated[str, typer.Option(help="the running demo hub")] = "http://127.0.0.1:8000",
) -> None:
    """Send demo notes to a running demo hub (`hub serve`), for the console to show."""
    from hub.demo.traffic import send

    try:
        answered = send(url, count, rate, typer.echo)
    except httpx.HTTPError as exc:
        _fail(f"no demo hub answers at {url}: {exc}")
    typer.echo("answered: " + ", ".join(f"{n} x {code}" for code, n in sorted(answered.items())))


audit_app = typer.Typer(help="The audit trail of operator actions.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the audit trail's hash chain; name the first altered, missing or moved entry."""
    from hub.audit import verify

    db = _database(_settings())
    result = verify(db.engine)
    db.close()
    broken = result.broken
    if broken is None:
        typer.echo(f"audit trail holds: {result.count} entries, head {result.head}")
        return
    where = f" (written as entry {broken.moved_from})" if broken.moved_from else ""
    _fail(
        f"audit trail broken at entry {broken.seq}: {broken.problem}{where};"
        f" {result.count} entries before it hold"
    )


@audit_app.command("export")
def audit_export(
    since: Annotated[str | None, typer.Option("--from", help="ISO 8601 time, inclusive")] = None,
    until: Annotated[str | None, typer.Option("--to", help="ISO 8601 time, exclusive")] = None,
) -> None:
    """Print the entries in a time window as JSON lines, with their hashes (for an
    inspector, who can check the chain with the same rule as `verify`)."""
    from hub.audit import export

    def when(text: str | None) -> Any:
        if text is None:
            return None
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            _fail(f"not an ISO 8601 time: {text!r}")
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    db = _database(_settings())
    for entry in export(db.engine, when(since), when(until)):
        typer.echo(orjson.dumps(entry).decode())
    db.close()


operators_app = typer.Typer(help="Operator accounts (the config's operators:).")
app.add_typer(operators_app, name="operators")


@operators_app.command("hash-password")
def operators_hash_password() -> None:
    """Read a password (asked twice, not echoed) and print its hash for `password_hash:`."""
    from hub.passwords import hash_password

    password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    if len(password) < 10:
        _fail("use at least 10 characters")
    typer.echo(hash_password(password))


systems_app = typer.Typer(help="Registered systems: their API keys.", no_args_is_help=True)
app.add_typer(systems_app, name="systems")


@systems_app.command("rotate-key")
def systems_rotate_key(
    system: Annotated[str, typer.Argument(help="the system id")],
    retire_previous: Annotated[
        bool, typer.Option(help="end the previous key now (default: it stays valid)")
    ] = False,
) -> None:
    """Issue a new API key for a system and print it once; the hub keeps only its hash.

    The system's previous key stays valid until the next rotation or
    --retire-previous, so the system can switch without a gap. Running hubs take
    the new key within a second or two.
    """
    from hub.keys import rotate

    settings = _settings()
    if system not in _config(settings).systems:
        _fail(f"no system {system!r} in {settings.config}")
    db = _database(settings)
    issued = rotate(db.engine, system, _cli_actor(), retire_previous=retire_previous)
    db.close()
    typer.echo(issued.key)
    retired = ", ".join(issued.retired) or "none"
    typer.echo(f"key id {issued.key_id}; retired: {retired}", err=True)


@systems_app.command("keys")
def systems_keys(system: Annotated[str, typer.Argument(help="the system id")]) -> None:
    """A system's issued keys: ids, when made and retired, by whom (never a secret)."""
    from hub.keys import listing

    db = _database(_settings())
    for item in listing(db.engine, system):
        typer.echo(orjson.dumps(item).decode())
    db.close()


@systems_app.command("new-key")
def systems_new_key() -> None:
    """Print a new API key and the `api_key_hash:` line to put in the config instead
    of the key (give the key to the system; the config holds only the hash)."""
    from hub.keys import hash_line, new_key

    key, key_id, salt, digest = new_key()
    typer.echo(f"key:          {key}")
    typer.echo(f"api_key_hash: {hash_line(key_id, salt, digest)}")


if __name__ == "__main__":
    app()
