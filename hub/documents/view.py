"""Read side: one document with its recipients and history, and the flagged events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from hub.documents.states import BY_CODE, labels
from hub.documents.tables import document_events, document_recipients, documents


def document_view(engine: sa.Engine, document_id: str) -> dict[str, Any] | None:
    """A document, each recipient's state and history, and its flags; JSON-ready.

    Returns None when the hub has neither the document nor any event naming it. A
    document known only from flagged events (a revoke of one never seen) has
    `"known": false` and no recipients.
    """
    with engine.connect() as conn:
        doc = conn.execute(
            sa.select(documents).where(documents.c.document_id == document_id)
        ).first()
        recipients = conn.execute(
            sa.select(document_recipients)
            .where(document_recipients.c.document_id == document_id)
            .order_by(document_recipients.c.position)
        ).all()
        events = conn.execute(
            sa.select(document_events)
            .where(document_events.c.document_id == document_id)
            .order_by(document_events.c.id)
        ).all()
    if doc is None and not events:
        return None
    history = [_event(e._mapping) for e in events]
    view: dict[str, Any] = {"document_id": document_id, "known": doc is not None}
    if doc is not None:
        view |= {
            "sender": doc.sender,
            "subject": doc.subject,
            "code": {"number": doc.code_number, "notation": doc.code_notation},
            "action": doc.action,
            "state": doc.state,
            "flagged": doc.flagged,
            "first_message_id": doc.first_message_id,
            "last_message_id": doc.last_message_id,
            "created_at": _iso(doc.created_at),
            "updated_at": _iso(doc.updated_at),
        }
    view["recipients"] = [
        {
            "organ_id": r.organ_id,
            **labels(r.state),
            "pending": r.pending,
            "flagged": r.flagged,
            "updated_at": _iso(r.updated_at),
            "history": [h for h in history if h["organ_id"] == r.organ_id],
        }
        for r in recipients
    ]
    view["history"] = history
    view["flags"] = [h for h in history if h["flag"] is not None]
    return view


def flagged(engine: sa.Engine, limit: int = 100) -> list[dict[str, Any]]:
    """The latest events recorded but not applied, newest first, for operators."""
    q = (
        sa.select(document_events)
        .where(document_events.c.applied.is_(False))
        .order_by(document_events.c.id.desc())
        .limit(limit)
    )
    with engine.connect() as conn:
        return [_event(e._mapping) for e in conn.execute(q)]


def _event(e: Any) -> dict[str, Any]:
    code = e["code"]
    meaning = BY_CODE.get(code) if code else None
    return {
        "id": e["id"],
        "document_id": e["document_id"],
        "organ_id": e["organ_id"],
        "message_id": e["message_id"],
        "kind": e["kind"],
        "code": code,
        "label": None if meaning is None else {"en": meaning.en, "vi": meaning.vi},
        "from": e["from_organ"],
        "reported_at": e["reported_at"],
        "at": _iso(e["at"]),
        "applied": e["applied"],
        "flag": e["flag"],
        "note": e["note"],
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
