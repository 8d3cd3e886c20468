"""What the store's English notes mean, in the reader's language.

Trace hops, delivery errors and dead letters' reasons are written by the hub in
English for logs and the API (`gave up after 4 tries: ...: cannot connect: [Errno
111] ...`). The console shows an operator what they mean in their language, and
keeps the raw note one click away (`raw`, shown in a <details> element). A note
no pattern knows is shown as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

Translate = Callable[..., str]

SYSTEM_PREFIX = re.compile(r"^(?:[\w.-]+:[\w.-]+: )+")  # `000.00.12.H29:qlvb: ` and the like
GAVE_UP = re.compile(r"^gave up after (\d+) tries: (.*)$", re.S)
TRY_FAILED = re.compile(r"^try (\d+) failed: (.*); next try in ([\d.]+) s$", re.S)
BY_OPERATOR = re.compile(r"^by ((?:operator|console|hub)[:\w.@-]*)$")
BY_ROUTES = re.compile(r"^by ([\w.,\s-]+)$")
HTTP = re.compile(r"\bHTTP (\d{3})\b")
TIMEOUT = re.compile(r"timed out after ([\d.]+) s")
NOT_RECEIVING = re.compile(r"^system (\S+) may not receive (\S+)$")
NOT_CONFIGURED = re.compile(r"^'?(.+?)'? is not a configured system$")
NO_ORGAN_SYSTEM = re.compile(r"^no system of organisation (\S+) may receive (\S+)$")
UNKNOWN_ORGAN = re.compile(r"^unknown recipient: no system receives for organisation '?(.+?)'?$")
UNROUTABLE = re.compile(
    r"^(no route matches|no destination can receive it): type (\S+) from (\S+)$"
)


@dataclass(frozen=True)
class Explained:
    text: str  # what the reader reads
    raw: str | None  # the hub's own note, when `text` is not it


def cause(_: Translate, text: str) -> str:
    """Why a try failed, in a few words: an HTTP answer, a refused connection, a timeout."""
    bare = SYSTEM_PREFIX.sub("", text)
    if m := HTTP.search(bare):
        code = int(m.group(1))
        kind = "429" if code == 429 else "5xx" if code >= 500 else "4xx"
        return _(f"cause.http_{kind}", code=code)
    if "Errno 111" in bare or "Connection refused" in bare or "Connect call failed" in bare:
        return _("cause.connection_refused")
    if m := TIMEOUT.search(bare):
        return _("cause.timeout", seconds=_number(_, m.group(1)))
    if "cannot connect" in bare or "Errno" in bare:
        return _("cause.cannot_connect")
    if "has no endpoint" in bare:
        return _("cause.no_endpoint")
    return _("cause.other")


def explain(_: Translate, note: str | None) -> Explained:
    """A hop's detail or a delivery's error as the reader should read it."""
    if not note:
        return Explained("", None)
    # Who acted, which route: said whole in the reader's words, nothing more to see.
    if m := BY_OPERATOR.match(note):
        return Explained(_("detail.by", who=m.group(1)), None)
    if m := BY_ROUTES.match(note):
        return Explained(_("detail.by_routes", routes=m.group(1)), None)
    text = _meaning(_, note)
    return Explained(note, None) if text is None else Explained(text, note)


def _meaning(_: Translate, note: str) -> str | None:
    if m := GAVE_UP.match(note):
        return _("detail.gave_up", n=m.group(1), cause=cause(_, m.group(2)))
    if m := TRY_FAILED.match(note):
        delay = _number(_, m.group(3))
        return _("detail.try_failed", n=m.group(1), cause=cause(_, m.group(2)), delay=delay)
    if m := NOT_RECEIVING.match(note):
        return _("detail.may_not_receive", system=m.group(1), type=m.group(2))
    if m := NOT_CONFIGURED.match(note):
        return _("detail.not_configured", system=m.group(1))
    if m := NO_ORGAN_SYSTEM.match(note):
        return _("detail.no_organ_system", organ=m.group(1), type=m.group(2))
    if m := UNKNOWN_ORGAN.match(note):
        return _("detail.unknown_organ", organ=m.group(1))
    if m := UNROUTABLE.match(note):
        key = "detail.no_route" if m.group(1) == "no route matches" else "detail.no_receiver"
        return _(key, type=m.group(2), source=m.group(3))
    if SYSTEM_PREFIX.match(note) or HTTP.search(note):  # a dead letter's reason: the cause
        return cause(_, note)
    return None


def _number(_: Translate, text: str) -> str:
    """A decimal number written by the hub (`0.5`) with the reader's decimal mark."""
    return text.replace(".", _("number.decimal_mark"))


def label(_: Translate, prefix: str, key: str) -> str:
    """`_(prefix + key)` when the tables have it, else the key as it is (a new stage)."""
    text = _(prefix + key)
    return key if text == prefix + key else text
