"""The operator console at /console: server-rendered pages, Vietnamese by default.

Pages: overview (live), systems (pause/resume), messages (search, one message with
its trace), dead letters (inspect, replay one, replay what a filter matches,
discard), routes with their traffic, and the audit trail. Operators sign in with
the name and password of the config's `operators:`; a session lives in the store
(hub/console/sessions.py). Every form that changes something carries the
session's CSRF token and passes through a confirmation page first; every change
is written to the audit trail in the same transaction (hub/audit.py).

Roles: a viewer sees everything but personal data (masked, hub/console/masking.py)
and changes nothing; an operator also replays, discards, pauses and resumes.
"""

from __future__ import annotations

import hmac
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from hub import audit
from hub.config import Operator
from hub.console import queries, sessions
from hub.console.explain import explain, label
from hub.console.i18n import LANGUAGES, translator
from hub.console.masking import masked, masked_errors, masked_strings, masked_text
from hub.logs import redact_url
from hub.passwords import check_password
from hub.runtime import Hub
from hub.store import inspect
from hub.store.inspect import MESSAGE_STATUSES, MessageFilter
from hub.store.pauses import pause, paused, resume

HERE = Path(__file__).parent
COOKIE = "lgsp_console"
LANG_COOKIE = "lgsp_lang"
LOCAL = timezone(timedelta(hours=7), "UTC+7")  # Viet Nam: no daylight saving
DeliveryId = Annotated[int, PathParam(ge=1, le=2**63 - 1)]
URGENCY = {"never_delivered": 0, "failing": 0, "retrying": 1}  # systems page order
REPLAY_LIMIT = 10_000  # dead letters one "replay matching" may put back


class SignIn(Exception):
    """Raised by a page that needs a signed-in operator: answered by a redirect."""


class Refused(Exception):
    """An action the operator may not take, or a bad request: an error page."""

    def __init__(self, status: int, key: str, **values: Any) -> None:
        super().__init__(key)
        self.status, self.key, self.values = status, key, values


def _local(value: Any) -> str:
    """A time as the console shows every time: Viet Nam time, with its offset."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return str(value.astimezone(LOCAL).isoformat(sep=" ", timespec="seconds"))


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value * 1000:.0f} ms" if value < 10 else f"{value:.1f} s"


def _cursor(text: str) -> int | None:
    """A page cursor from the query; anything but a row id a store can hold: none."""
    if text.isascii() and text.isdigit() and len(text) < 19:
        return int(text)
    return None


def _next_page(filters: dict[str, str], cursor: int | None) -> str | None:
    """The query of the next page: the same filters, the next cursor; none at the end."""
    if cursor is None:
        return None
    return "?" + urlencode(
        {**{k: v for k, v in filters.items() if v and k != "cursor"}, "cursor": cursor}
    )


def _parse_local(text: str | None) -> datetime | None:
    """A `datetime-local` field (Viet Nam time) as UTC; empty -> None."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).replace(tzinfo=LOCAL).astimezone(UTC)
    except ValueError as exc:
        raise Refused(400, "bad_time", value=text) from exc


# Pages show personal data to operators: never kept by a browser or a proxy cache,
# never framed by another site (clickjacking), scripts and styles from the hub only.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none';"
    " form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _same_origin(request: Request) -> bool:
    """Whether a POST comes from the console's own pages (or from no browser at all).

    Browsers say where a request comes from: `Sec-Fetch-Site` (every current
    browser), else `Origin`. Either naming another site refuses the form, the
    sign-in form too, which no session token protects (login CSRF). A client that
    is no browser sends neither and is not a victim of a forged form.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return origin != "null" and urlsplit(origin).netloc == request.headers.get("host", "")


def install(app: FastAPI, hub: Hub) -> None:
    """Mount the console on `app`."""
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    env = templates.env
    env.filters["local"] = _local
    env.filters["seconds"] = _seconds
    env.filters["pretty"] = lambda v: orjson.dumps(v, option=orjson.OPT_INDENT_2).decode()
    env.filters["json"] = lambda v: orjson.dumps(v).decode()
    env.filters["redact_url"] = redact_url
    env.globals["explain"] = explain
    env.globals["label"] = label
    router = APIRouter(prefix="/console", include_in_schema=False)

    def lang_of(request: Request) -> str:
        chosen = request.cookies.get(LANG_COOKIE, "vi")
        return chosen if chosen in LANGUAGES else "vi"

    async def signed_in(request: Request) -> tuple[Operator, sessions.Session]:
        token = request.cookies.get(COOKIE)
        session = await hub.db.read(sessions.find, token) if token else None
        operator = hub.config.operator(session.operator) if session else None
        if session is None or operator is None:
            raise SignIn()
        return operator, session

    async def acting(request: Request, role: str) -> tuple[Operator, dict[str, str]]:
        """The operator posting a form, checked for its role and the form's CSRF token."""
        operator, session = await signed_in(request)
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        if not hmac.compare_digest(form.get("csrf", ""), session.csrf):
            raise Refused(403, "csrf")
        if not operator.may(role):
            raise Refused(403, "role_needed", role=role)
        return operator, form

    def render(
        request: Request,
        name: str,
        context: dict[str, Any],
        *,
        who: tuple[Operator, sessions.Session] | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        lang = lang_of(request)
        operator, session = who if who else (None, None)
        return templates.TemplateResponse(
            request,
            name,
            {
                "_": translator(lang),
                "lang": lang,
                "languages": LANGUAGES,
                "operator": operator,
                "csrf": session.csrf if session else "",
                "path": request.url.path,
                **context,
            },
            status_code=status,
        )

    def shown(who: tuple[Operator, sessions.Session], value: Any) -> Any:
        """What a page may show its reader: errors' free text masked for a viewer."""
        return value if who[0].may("operator") else masked_errors(value)

    def see_other(url: str) -> RedirectResponse:
        return RedirectResponse(url, status_code=303)

    async def on_sign_in(request: Request, exc: Exception) -> Response:
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return see_other("/console/login?" + urlencode({"next": back}))

    async def on_refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        try:
            who = await signed_in(request)
        except SignIn:
            who = None
        return render(
            request,
            "error.html",
            {"key": exc.key, "values": exc.values},
            who=who,
            status=exc.status,
        )

    app.add_exception_handler(SignIn, on_sign_in)
    app.add_exception_handler(Refused, on_refused)

    @app.middleware("http")
    async def guarded(request: Request, call_next: Any) -> Response:
        if not request.url.path.startswith("/console"):
            return await call_next(request)  # type: ignore[no-any-return]
        if request.method == "POST" and not _same_origin(request):
            return render(request, "error.html", {"key": "cross_site", "values": {}}, status=403)
        response: Response = await call_next(request)
        response.headers.update(PAGE_HEADERS)
        if request.url.path.startswith("/console/static/"):
            response.headers["Cache-Control"] = "max-age=3600"
        return response

    def _safe_next(target: str | None) -> str:
        # Only back into the console: never an open redirect to another site.
        if target and target.startswith("/console/") and "//" not in target and "\\" not in target:
            return target
        return "/console/overview"

    # -- sign-in -------------------------------------------------------------------------

    @router.get("")
    @router.get("/")
    async def root() -> Response:
        return see_other("/console/overview")

    @router.get("/login")
    async def login_page(request: Request, next: str | None = None) -> Response:
        return render(request, "login.html", {"next": _safe_next(next), "failed": False})

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        name, password = str(form.get("name", "")), str(form.get("password", ""))
        target = _safe_next(str(form.get("next", "")))
        operator = hub.config.operator(name)
        stored = operator.password_hash if operator else None
        client = {"client": request.client.host if request.client else None}
        attempt = await hub.db.run(sessions.claim, name)  # counted before it is checked
        if attempt.wait is not None:
            failed = {"next": target, "throttled": -(-attempt.wait // 60), "name": name}
            page = render(request, "login.html", failed, status=429)
            page.headers["Retry-After"] = str(attempt.wait)
            return page
        assert attempt.id is not None
        if not await hub.db.read(lambda _e: check_password(password, stored)):
            actor = sessions.failed_actor(name)
            await hub.db.run(audit.record, actor, sessions.FAILED, None, client)
            return render(
                request, "login.html", {"next": target, "failed": True, "name": name}, status=401
            )
        assert operator is not None
        await hub.db.run(sessions.succeeded, attempt.id)
        token, _session = await hub.db.run(sessions.start, operator.name)
        await hub.db.run(audit.record, f"operator:{operator.name}", "console.sign_in")
        response = see_other(target)
        response.set_cookie(
            COOKIE,
            token,
            max_age=int(sessions.LIFETIME.total_seconds()),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/console",
        )
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        operator, _form = await acting(request, "viewer")
        await hub.db.run(sessions.end, request.cookies.get(COOKIE, ""))
        await hub.db.run(audit.record, f"operator:{operator.name}", "console.sign_out")
        response = see_other("/console/login")
        response.delete_cookie(COOKIE, path="/console")
        return response

    @router.get("/lang/{code}")
    async def choose_language(code: str, next: str | None = None) -> Response:
        response = see_other(_safe_next(next) if next != "/console/login" else "/console/login")
        if code in LANGUAGES:
            response.set_cookie(
                LANG_COOKIE, code, max_age=365 * 86400, samesite="lax", path="/console"
            )
        return response

    # -- overview ------------------------------------------------------------------------

    async def overview_data() -> dict[str, Any]:
        receivers = hub.receivers()
        rows = await hub.db.read(queries.destinations, receivers)
        depths = {d: await hub.transport.depth(hub.queues.name(d)) for d in receivers}
        now = datetime.now(UTC)
        traffic = await hub.db.read(queries.routes, hub.config, now - queries.WINDOW)
        minutes = queries.WINDOW.total_seconds() / 60
        return {
            "accepted_per_min": await hub.db.read(queries.accepted_per_minute),
            "destinations": rows,
            "depths": depths,
            "paused": hub.paused,
            "routes": [
                {
                    "name": name,
                    "per_min": round(sum(per.values()) / minutes, 1),
                    "destinations": per,
                }
                for name, per in traffic.items()
            ],
            "series": await hub.db.read(queries.series, receivers, now, LOCAL),
            "generated_at": now,
        }

    @router.get("/overview")
    async def overview(request: Request) -> Response:
        who = await signed_in(request)
        return render(request, "overview.html", await overview_data(), who=who)

    @router.get("/overview/live")
    async def overview_live(request: Request) -> Response:
        """The overview's figures as an HTML fragment, fetched every few seconds."""
        who = await signed_in(request)
        return render(request, "overview_live.html", await overview_data(), who=who)

    # -- systems -------------------------------------------------------------------------

    @router.get("/systems")
    async def systems(request: Request) -> Response:
        who = await signed_in(request)
        receivers = hub.receivers()
        health = await hub.db.read(queries.system_health, receivers)
        if not who[0].may("operator"):
            health = {
                k: replace(h, last_error=h.last_error and masked_text(h.last_error))
                for k, h in health.items()
            }
        rows = {r.id: r for r in await hub.db.read(queries.destinations, receivers)}
        held = await hub.db.read(paused)
        states = {d: queries.state(health.get(d), rows.get(d)) for d in receivers}
        return render(
            request,
            "systems.html",
            {
                # What needs a look first: failing, then retrying, then the rest as configured.
                "systems": sorted(
                    hub.config.systems.values(), key=lambda s: URGENCY.get(states.get(s.id, ""), 9)
                ),
                "health": health,
                "rows": rows,
                "states": states,
                "held": held,
            },
            who=who,
        )

    def receiving(system_id: str) -> str:
        system = hub.config.systems.get(system_id)
        if system is None or not system.may_receive:
            raise Refused(404, "no_system", id=system_id)
        return system.id

    @router.get("/systems/{system_id}/{action}")
    async def confirm_system(request: Request, system_id: str, action: str) -> Response:
        who = await signed_in(request)
        if action not in ("pause", "resume"):
            raise Refused(404, "not_found")
        return render(
            request,
            "confirm.html",
            {
                "action": action,
                "target": receiving(system_id),
                "post_to": f"/console/systems/{system_id}/{action}",
                "back": "/console/systems",
                "fields": {},
                "reason_field": action == "pause",
            },
            who=who,
        )

    @router.post("/systems/{system_id}/{action}")
    async def act_system(request: Request, system_id: str, action: str) -> Response:
        operator, form = await acting(request, "operator")
        destination, by = receiving(system_id), f"operator:{operator.name}"
        if action == "pause":
            reason = form.get("reason", "").strip()[:2000] or None
            await hub.db.run(pause, destination, by, reason)
        elif action == "resume":
            await hub.db.run(resume, destination, by)
        else:
            raise Refused(404, "not_found")
        await hub.reload_pauses()
        return see_other("/console/systems")

    # -- messages ------------------------------------------------------------------------

    @router.get("/messages")
    async def messages(request: Request) -> Response:
        who = await signed_in(request)
        q = request.query_params
        form = {
            k: q.get(k, "").strip()
            for k in (
                "id",
                "correlationid",
                "type",
                "source",
                "destination",
                "status",
                "since",
                "until",
                "cursor",
            )
        }
        keys: list[tuple[str, str]] = []
        if form["id"]:  # one event with that id: its page; several sources used it: the list
            keys = await hub.db.read(inspect.message_keys, form["id"])
            if len(keys) == 1:
                return see_other(f"/console/messages/{keys[0][0]}")
        if form["status"] and form["status"] not in MESSAGE_STATUSES:
            raise Refused(400, "bad_status", value=form["status"])
        cursor = _cursor(form["cursor"])
        items: list[dict[str, Any]] = []
        next_cursor = None
        if not form["id"] or keys:
            items, next_cursor = await hub.db.read(
                inspect.list_messages,
                MessageFilter(
                    form["correlationid"] or None,
                    form["type"] or None,
                    form["source"] or None,
                    form["status"] or None,
                    form["destination"] or None,
                    _parse_local(form["since"]),
                    _parse_local(form["until"]),
                    form["id"] or None,
                ),
                limit=50,
                before=cursor,
                source_only=None,
            )
        more = _next_page(form, next_cursor)
        return render(
            request,
            "messages.html",
            {
                "form": form,
                "items": items,
                "more": more,
                "statuses": MESSAGE_STATUSES,
                "systems": sorted(hub.config.systems),
                "not_found": bool(form["id"]) and not items,
            },
            who=who,
        )

    @router.get("/messages/{message_id}")
    async def message(request: Request, message_id: str) -> Response:
        who = await signed_in(request)
        found = await hub.db.read(inspect.get_message, message_id)
        if found is None:
            raise Refused(404, "no_message", id=message_id)
        viewer = not who[0].may("operator")
        envelope = masked(found["envelope"]) if viewer else found["envelope"]
        return render(
            request,
            "message.html",
            {"m": shown(who, found), "envelope": envelope, "masked": viewer},
            who=who,
        )

    # -- dead letters --------------------------------------------------------------------

    def dead_filter(q: Any) -> dict[str, str]:
        return {k: str(q.get(k, "")).strip() for k in ("destination", "type", "source")}

    @router.get("/dead-letters")
    async def dead_letters(request: Request) -> Response:
        who = await signed_in(request)
        f = dead_filter(request.query_params)
        cursor = request.query_params.get("cursor", "")
        items, next_cursor = await hub.db.read(
            inspect.list_dead_letters,
            destination=f["destination"] or None,
            type=f["type"] or None,
            source=f["source"] or None,
            limit=50,
            before=_cursor(cursor),
        )
        more = _next_page(f, next_cursor)
        return render(
            request,
            "dead_letters.html",
            {
                "f": f,
                "items": shown(who, items),
                "more": more,
                "query": urlencode({k: v for k, v in f.items() if v}),
                "systems": sorted(hub.receivers()),
            },
            who=who,
        )

    @router.get("/dead-letters/replay-matching")
    async def confirm_replay_matching(request: Request) -> Response:
        who = await signed_in(request)
        f = dead_filter(request.query_params)
        ids = await hub.db.read(
            inspect.dead_letter_ids,
            destination=f["destination"] or None,
            type=f["type"] or None,
            source=f["source"] or None,
            limit=REPLAY_LIMIT,
        )
        return render(
            request,
            "confirm.html",
            {
                "action": "replay_matching",
                "target": ", ".join(f"{k}={v}" for k, v in f.items() if v) or "*",
                "count": len(ids),
                "post_to": "/console/dead-letters/replay-matching",
                "back": "/console/dead-letters?" + urlencode({k: v for k, v in f.items() if v}),
                "fields": f,
                "reason_field": False,
            },
            who=who,
        )

    @router.post("/dead-letters/replay-matching")
    async def replay_matching(request: Request) -> Response:
        operator, form = await acting(request, "operator")
        f = dead_filter(form)
        _matched, done = await hub.db.run(
            inspect.replay_matching,
            destination=f["destination"] or None,
            type=f["type"] or None,
            source=f["source"] or None,
            by=f"operator:{operator.name}",
            limit=REPLAY_LIMIT,
        )
        return see_other("/console/dead-letters?" + urlencode({"replayed": done}))

    @router.get("/dead-letters/{delivery_id}")
    async def dead_letter(request: Request, delivery_id: DeliveryId) -> Response:
        who = await signed_in(request)
        found = await hub.db.read(inspect.get_dead_letter, delivery_id)
        if found is None:
            raise Refused(404, "no_dead_letter", id=delivery_id)
        return render(request, "dead_letter.html", {"d": shown(who, found)}, who=who)

    @router.get("/dead-letters/{delivery_id}/{action}")
    async def confirm_dead_letter(
        request: Request, delivery_id: DeliveryId, action: str
    ) -> Response:
        who = await signed_in(request)
        if action not in ("replay", "discard"):
            raise Refused(404, "not_found")
        found = await hub.db.read(inspect.get_dead_letter, delivery_id)
        if found is None:
            raise Refused(404, "no_dead_letter", id=delivery_id)
        return render(
            request,
            "confirm.html",
            {
                "action": action,
                "target": f"#{delivery_id} → {found['destination']} ({found['message_id']})",
                "post_to": f"/console/dead-letters/{delivery_id}/{action}",
                "back": f"/console/dead-letters/{delivery_id}",
                "fields": {},
                "reason_field": False,
            },
            who=who,
        )

    @router.post("/dead-letters/{delivery_id}/{action}")
    async def act_dead_letter(request: Request, delivery_id: DeliveryId, action: str) -> Response:
        operator, _form = await acting(request, "operator")
        by = f"operator:{operator.name}"
        if action == "replay":
            found = await hub.db.read(inspect.get_dead_letter, delivery_id)
            done = await hub.db.run(inspect.replay, delivery_id, by=by)
            target = "/console/dead-letters"
            if found:
                target = f"/console/messages/{found['message_id']}"
        elif action == "discard":
            done = await hub.db.run(inspect.discard, delivery_id, by=by)
            target = "/console/dead-letters"
        else:
            raise Refused(404, "not_found")
        if not done:
            raise Refused(404, "no_dead_letter", id=delivery_id)
        return see_other(target)

    # -- routes and audit ----------------------------------------------------------------

    @router.get("/routes")
    async def routes(request: Request) -> Response:
        who = await signed_in(request)
        since = datetime.now(UTC) - queries.HOUR
        traffic = await hub.db.read(queries.routes, hub.config, since)
        return render(
            request,
            "routes.html",
            {"rules": hub.config.routes, "traffic": traffic},
            who=who,
        )

    @router.get("/audit")
    async def audit_trail(request: Request) -> Response:
        who = await signed_in(request)
        q = request.query_params
        cursor = q.get("cursor", "")
        items, next_cursor = await hub.db.read(
            audit.entries,
            actor=q.get("actor") or None,
            action=q.get("action") or None,
            # People's actions unless the hub's own are asked for (they are many).
            exclude_actor=None if q.get("actor") else audit.HUB,
            limit=100,
            before=_cursor(cursor),
        )
        if not who[0].may("operator"):  # dead letters' reasons quote destinations
            items = [{**e, "detail": masked_strings(e["detail"])} for e in items]
        return render(
            request,
            "audit.html",
            {"items": items, "next_cursor": next_cursor, "actor": q.get("actor", "")},
            who=who,
        )

    app.include_router(router)
    app.mount("/console/static", StaticFiles(directory=str(HERE / "static")), name="console")
