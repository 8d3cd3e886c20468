"""Per-recipient state of documents, from the document and status events the hub stores.

`apply` runs inside the transaction that stores the messages. What a package acts
on, in the order tried:

- a `new` package: its own DocumentId.
- revoke and update: the first DocumentId the hub knows among Bussiness/DocumentId,
  ResponseFor/DocumentId and the package's own DocumentId (the VPCP samples reuse
  the original DocumentId); if none is known, the first of them, flagged.
- replace: each ReplacementInfo/DocumentId (for its OrganIds), else as revoke.
- a status: ResponseFor/DocumentId, for the organ in From.

An update or replacement is itself a document its recipients answer, so its own
DocumentId is tracked too. Nothing is dropped: an event that cannot be applied is
written to the history with the reason in `flag` (see hub/documents/states.py for
the moves allowed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from hub.connectors.edxml.events import SENT, STATUS
from hub.documents.batch import Batch, Flag
from hub.documents.states import (
    BY_CODE,
    CLOSED,
    DOCUMENT_STATE,
    PROGRESS_CODES,
    STATES,
    TRANSITIONS,
    state_of,
)
from hub.documents.tables import DOCUMENT_ID_LENGTH
from hub.envelope import nfc

__all__ = ["Flag", "apply", "move"]

# Records a status in the history: (document, recipient, flag, note).
Record = Callable[[str | None, str | None, str | None, str | None], None]


def apply(conn: sa.Connection, items: Sequence[tuple[str, dict[str, Any]]]) -> list[Flag]:
    """Apply document and status events to the tracked documents, in order.

    Args:
        conn: the connection of the transaction that stores the messages.
        items: (message id, CloudEvent dict); other event types are ignored.

    Returns the flags recorded (events kept in the history but not applied).
    """
    todo = [
        (mid, str(ev["type"]), nfc(ev.get("data") or {}))
        for mid, ev in items
        if ev.get("type") in (SENT, STATUS)
    ]
    if not todo:
        return []
    ids = sorted({i for _, kind, data in todo for i in _named(kind, data) if _fits(i)})
    batch = Batch.load(conn, ids)
    for mid, kind, data in todo:
        if kind == SENT:
            _sent(batch, mid, data)
        else:
            _status(batch, mid, data)
    batch.save(conn)
    return batch.flags


def _fits(doc_id: str) -> bool:
    return 0 < len(doc_id) <= DOCUMENT_ID_LENGTH


def _named(kind: str, data: dict[str, Any]) -> list[str]:
    """Every DocumentId an event may act on."""
    if kind == STATUS:
        return [str((data.get("response_for") or {}).get("document_id") or "")]
    business = data.get("business") or {}
    return [
        str(i or "")
        for i in (
            data.get("document_id"),
            business.get("document_id"),
            *(r.get("document_id") for r in (data.get("metadata") or {}).get("response_for", ())),
            *(r.get("document_id") for r in business.get("replacements", ())),
        )
    ]


# Document packages -----------------------------------------------------------------


def _sent(b: Batch, mid: str, data: dict[str, Any]) -> None:
    action = str(data.get("action") or "new")
    doc_id = str(data.get("document_id") or "")
    sender = str((data.get("sender") or {}).get("organ_id") or "")
    if not _fits(doc_id):
        b.event(mid, None, None, "sent", from_organ=sender, flag=_bad_id(doc_id))
        return
    if action not in DOCUMENT_STATE or not sender:
        flag = f"action {action!r} from sender {sender!r} is not understood"
        b.event(mid, doc_id, None, "sent", from_organ=sender or None, flag=flag)
        return
    if action == "new":
        _track(b, mid, data, action)
        return
    targets = _targets(b, data, action)
    unknown = {t for t in targets if t not in b.docs}
    if action != "revoke":
        _track(b, mid, data, action)
    if not targets:
        b.event(mid, doc_id, None, action, from_organ=sender, flag=f"{action} names no document")
    for target, scope in targets.items():
        if target in unknown:
            b.event(
                mid,
                target,
                None,
                action,
                from_organ=sender,
                flag=f"{action} of a document the hub never saw (it may have travelled another"
                " way); forwarded",
            )
        else:
            _act_on(b, mid, data, action, target, scope)


def _bad_id(doc_id: str) -> str:
    if not doc_id:
        return "the package names no DocumentId"
    return f"DocumentId longer than {DOCUMENT_ID_LENGTH} characters: {doc_id[:80]}..."


def _track(b: Batch, mid: str, data: dict[str, Any], action: str) -> None:
    """Create the package's own document, or add the recipients it did not have yet."""
    doc_id, sender = data["document_id"], data["sender"]["organ_id"]
    doc = b.docs.get(doc_id)
    if doc is None:
        meta = data.get("metadata") or {}
        code = meta.get("code") or {}
        b.create_doc(
            doc_id,
            {
                "sender": sender,
                "subject": meta.get("subject"),
                "code_number": code.get("number"),
                "code_notation": code.get("notation"),
                "action": action,
                "state": "active",
                "first_message_id": mid,
                "last_message_id": mid,
            },
        )
    elif doc["sender"] != sender:
        flag = f"DocumentId already tracked as sent by {doc['sender']}"
        b.event(mid, doc_id, None, "sent", from_organ=sender, flag=flag)
        return
    else:
        b.set_doc(doc_id, action=action, last_message_id=mid)
    for organ in dict.fromkeys(r["organ_id"] for r in data.get("recipients", ())):
        if (doc_id, organ) not in b.recipients:
            b.add_recipient(doc_id, organ)
            b.event(mid, doc_id, organ, "sent", from_organ=sender)
        elif action == "new":
            flag = "sent again to a recipient already tracked; its state is kept"
            b.event(mid, doc_id, organ, "sent", from_organ=sender, flag=flag)


def _targets(b: Batch, data: dict[str, Any], action: str) -> dict[str, set[str] | None]:
    """The earlier documents a revoke, update or replace acts on, each with its organs."""
    business = data.get("business") or {}
    if action == "replace":
        out: dict[str, set[str] | None] = {}
        for r in business.get("replacements", ()):
            doc_id, organs = r.get("document_id") or "", set(r.get("organ_ids") or ())
            if not _fits(doc_id):
                continue
            earlier = out.get(doc_id, set())
            out[doc_id] = None if earlier is None or not organs else earlier | organs
        if out:
            return out
    candidates = [
        business.get("document_id"),
        *(r.get("document_id") for r in (data.get("metadata") or {}).get("response_for", ())),
        None if action == "replace" else data["document_id"],
    ]
    named = [c for c in dict.fromkeys(candidates) if c and _fits(c)]
    if not named:
        return {}
    known = next((c for c in named if c in b.docs), named[0])
    if action == "revoke":
        return {known: {r["organ_id"] for r in data.get("recipients", ())}}
    return {known: None}


def _act_on(
    b: Batch, mid: str, data: dict[str, Any], action: str, doc_id: str, scope: set[str] | None
) -> None:
    """Revoke, update or replace a known document for the recipients in `scope`."""
    sender = data["sender"]["organ_id"]
    doc = b.docs[doc_id]
    if doc["sender"] != sender:
        flag = f"only the original sender {doc['sender']} may {action} this document"
        b.event(mid, doc_id, None, action, from_organ=sender, flag=flag)
        return
    b.set_doc(doc_id, action=action, state=DOCUMENT_STATE[action], last_message_id=mid)
    organs = [o for o in b.organs[doc_id] if b.recipients[(doc_id, o)]["state"] not in CLOSED]
    if scope and any(o in scope for o in organs):
        organs = [o for o in organs if o in scope]
    for organ in organs:
        if action == "revoke":
            b.set_recipient(doc_id, organ, state="revoked", code=None, pending="revoke")
        elif action == "update":
            b.set_recipient(doc_id, organ, pending="update")
        b.event(mid, doc_id, organ, action, from_organ=sender)
    if not organs:
        b.event(mid, doc_id, None, action, from_organ=sender, note="no recipient still open")
    if action == "update":
        _change_receivers(b, mid, data, doc_id)


def _change_receivers(b: Batch, mid: str, data: dict[str, Any], doc_id: str) -> None:
    """Apply BussinessDocumentInfo/ReceiverList of an update: recipients added or removed."""
    sender = data["sender"]["organ_id"]
    info = (data.get("business") or {}).get("document_info") or {}
    for r in info.get("receivers", ()):
        organ, known = r["organ_id"], (doc_id, r["organ_id"]) in b.recipients
        if r["receiver_type"] == 1 and not known:
            b.add_recipient(doc_id, organ)
            b.event(mid, doc_id, organ, "update", from_organ=sender, note="added by the update")
        elif r["receiver_type"] == 1 and b.recipients[(doc_id, organ)]["state"] == "removed":
            back = state_of(b.recipients[(doc_id, organ)]["progress"])
            b.set_recipient(doc_id, organ, state=back.name, code=back.code)
            b.event(
                mid, doc_id, organ, "update", from_organ=sender, note="added back by the update"
            )
        elif r["receiver_type"] == 0 and known:
            b.set_recipient(doc_id, organ, state="removed", code=None, pending=None)
            b.event(mid, doc_id, organ, "update", from_organ=sender, note="removed by the update")
        elif r["receiver_type"] == 0:
            flag = "the update removes an organ that is not a recipient"
            b.event(mid, doc_id, organ, "update", from_organ=sender, flag=flag)


# Status packages -------------------------------------------------------------------


def _status(b: Batch, mid: str, data: dict[str, Any]) -> None:
    code = str(data.get("status_code") or "")
    organ = str((data.get("from") or {}).get("organ_id") or "")
    answered = data.get("response_for") or {}
    doc_id = str(answered.get("document_id") or "")
    reported = (data.get("timestamp") or {}).get("iso")

    def record(doc: str | None, to: str | None, flag: str | None, note: str | None) -> None:
        b.event(
            mid,
            doc,
            to,
            "status",
            code=code,
            from_organ=organ,
            reported_at=reported,
            flag=flag,
            note=note,
        )

    if not _fits(doc_id):
        record(None, None, _bad_id(doc_id) if doc_id else "the status names no document", None)
    elif doc_id not in b.docs:
        record(doc_id, None, "status for a document the hub never saw", None)
    elif code == "13":
        _take_back(b, doc_id, organ, answered.get("organ_id"), record)
    elif (doc_id, organ) not in b.recipients:
        record(doc_id, None, f"{organ} is not a recipient of this document", None)
    else:
        flag, note, change = move(b.recipients[(doc_id, organ)], code)
        if change:
            b.set_recipient(doc_id, organ, **change)
        record(doc_id, organ, flag, note)


def _take_back(b: Batch, doc_id: str, organ: str, named: Any, record: Record) -> None:
    """Status 13: the original sender asks the named recipient (else all) to give it back."""
    sender = b.docs[doc_id]["sender"]
    if organ != sender:
        record(doc_id, None, f"only the original sender {sender} may ask to take it back", None)
        return
    if named in b.organs[doc_id]:
        targets = [named]
    else:  # a take-back of the whole document leaves alone who no longer has it
        organs = b.organs[doc_id]
        targets = [o for o in organs if b.recipients[(doc_id, o)]["state"] not in CLOSED]
        if not targets:
            record(doc_id, None, "no recipient still holds the document", None)
    for to in targets:
        rec = b.recipients[(doc_id, to)]
        if rec["state"] in CLOSED:
            record(doc_id, to, f"cannot take back from a recipient {rec['state']}", None)
        elif rec["pending"] == "take_back":
            record(doc_id, to, None, "take-back already requested")
        else:
            b.set_recipient(doc_id, to, state="take_back_requested", code="13", pending="take_back")
            record(doc_id, to, None, None)


def move(rec: dict[str, Any], code: str) -> tuple[str | None, str | None, dict[str, Any]]:
    """What a status `code` from a recipient does: (flag, note, column changes).

    A flag means the status is recorded but not applied (changes are then empty).
    """
    state, progress, pending = rec["state"], rec["progress"], rec["pending"]
    if code in ("15", "16"):
        agreed = code == "15"
        if pending == "take_back":
            name = "take_back_agreed" if agreed else "take_back_refused"
            return None, None, {"state": name, "code": code, "pending": None}
        if pending == "update":
            note = "agrees to the update" if agreed else "refuses the update"
            return None, note, {"pending": None}
        return f"status {code} answers no take-back request (13) or update", None, {}
    if code not in PROGRESS_CODES:
        return f"status code {code!r} has no published meaning", None, {}
    if state == "revoked":
        if pending == "revoke" and code in ("02", "03"):
            note = "accepts the revocation" if code == "03" else "refuses the revocation"
            return None, note, {"pending": None}
        return "the document was revoked for this recipient", None, {}
    if state in CLOSED:
        return f"{_name(state)} is final for this recipient", None, {}
    if pending == "take_back":
        return "a take-back request (13) awaits its answer (15 or 16)", None, {}
    if code == progress:
        return None, "repeated status: state unchanged", {"state": BY_CODE[code].name, "code": code}
    if code not in TRANSITIONS[progress]:
        was = state_of(progress)
        return f"cannot go from {_name(was.name)} to {_name(BY_CODE[code].name)}", None, {}
    return None, None, {"state": BY_CODE[code].name, "code": code, "progress": code}


def _name(state: str) -> str:
    s = STATES[state]
    return s.name if s.code is None else f"{s.name} ({s.code})"
