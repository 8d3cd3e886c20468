"""The rows one `apply` call reads, changes in memory, then writes in a few statements."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from hub.documents.tables import document_events, document_recipients, documents
from hub.store.models import utcnow

CHUNK = 500  # ids per IN (...) list
LOCK_SPACE = 7243902  # first key of the two-key advisory locks of document ids


@dataclass(frozen=True)
class Flag:
    """An event recorded but not applied, and why."""

    message_id: str
    document_id: str | None
    organ_id: str | None
    reason: str


class Batch:
    """Documents and recipients of one batch, their changes, and the history to write."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.docs: dict[str, dict[str, Any]] = {}
        self.recipients: dict[tuple[str, str], dict[str, Any]] = {}
        self.organs: dict[str, list[str]] = {}  # document -> recipient organs, in order
        self.new_docs: set[str] = set()
        self.dirty_docs: set[str] = set()
        self.new_recipients: set[tuple[str, str]] = set()
        self.dirty_recipients: set[tuple[str, str]] = set()
        self.events: list[dict[str, Any]] = []
        self.flags: list[Flag] = []

    @classmethod
    def load(cls, conn: sa.Connection, ids: Sequence[str]) -> Batch:
        """Lock (PostgreSQL) and read the documents named by `ids` with their recipients."""
        batch = cls(utcnow())
        if conn.dialect.name == "postgresql" and ids:
            # Per-document locks, taken in one order, so two batches touching the
            # same document (even one not stored yet) apply one after the other.
            keys = sorted({zlib.crc32(i.encode()) - 2**31 for i in ids})
            conn.execute(
                sa.text(
                    "SELECT count(pg_advisory_xact_lock(:space, k))"
                    " FROM (SELECT unnest(CAST(:keys AS integer[])) AS k ORDER BY 1) s"
                ),
                {"space": LOCK_SPACE, "keys": keys},
            )
        for chunk in _chunks(ids):
            for row in conn.execute(sa.select(documents).where(documents.c.document_id.in_(chunk))):
                batch.docs[row.document_id] = dict(row._mapping)
                batch.organs[row.document_id] = []
            q = (
                sa.select(document_recipients)
                .where(document_recipients.c.document_id.in_(chunk))
                .order_by(document_recipients.c.document_id, document_recipients.c.position)
            )
            for row in conn.execute(q):
                batch.recipients[(row.document_id, row.organ_id)] = dict(row._mapping)
                batch.organs[row.document_id].append(row.organ_id)
        return batch

    def create_doc(self, doc_id: str, values: dict[str, Any]) -> dict[str, Any]:
        row = {
            "document_id": doc_id,
            "created_at": self.now,
            "updated_at": self.now,
            "flagged": False,
            **values,
        }
        self.docs[doc_id] = row
        self.organs[doc_id] = []
        self.new_docs.add(doc_id)
        return row

    def set_doc(self, doc_id: str, **values: Any) -> None:
        self.docs[doc_id].update(values, updated_at=self.now)
        self.dirty_docs.add(doc_id)

    def add_recipient(self, doc_id: str, organ: str) -> None:
        key = (doc_id, organ)
        self.recipients[key] = {
            "document_id": doc_id,
            "organ_id": organ,
            "position": len(self.organs[doc_id]),
            "state": "sent",
            "code": None,
            "progress": None,
            "pending": None,
            "updated_at": self.now,
            "flagged": False,
        }
        self.organs[doc_id].append(organ)
        self.new_recipients.add(key)

    def set_recipient(self, doc_id: str, organ: str, **values: Any) -> None:
        self.recipients[(doc_id, organ)].update(values, updated_at=self.now)
        self.dirty_recipients.add((doc_id, organ))

    def event(
        self,
        message_id: str,
        doc_id: str | None,
        organ: str | None,
        kind: str,
        *,
        code: str | None = None,
        from_organ: str | None = None,
        reported_at: str | None = None,
        flag: str | None = None,
        note: str | None = None,
    ) -> None:
        """Add a history entry; with `flag` it is not applied and marks what it concerns."""
        self.events.append(
            {
                "document_id": doc_id,
                "organ_id": organ,
                "message_id": message_id,
                "kind": kind,
                "code": code,
                "from_organ": from_organ,
                "reported_at": reported_at,
                "at": self.now,
                "applied": flag is None,
                "flag": flag,
                "note": note,
            }
        )
        if flag is None:
            return
        self.flags.append(Flag(message_id, doc_id, organ, flag))
        if doc_id in self.docs:
            self.set_doc(doc_id, flagged=True)
        if doc_id is not None and organ is not None and (doc_id, organ) in self.recipients:
            self.set_recipient(doc_id, organ, flagged=True)

    def save(self, conn: sa.Connection) -> None:
        """Write what changed: inserts, then updates, then the history."""
        if self.new_docs:
            conn.execute(documents.insert(), [self.docs[i] for i in self._in_order(self.new_docs)])
        if self.new_recipients:
            rows = [self.recipients[k] for k in sorted(self.new_recipients)]
            conn.execute(document_recipients.insert(), rows)
        changed = sorted(self.dirty_docs - self.new_docs)
        if changed:
            conn.execute(
                documents.update()
                .where(documents.c.document_id == sa.bindparam("b_id"))
                .values({c: sa.bindparam(f"b_{c}") for c in _DOC_CHANGES}),
                [_bound(self.docs[i], "document_id", _DOC_CHANGES) for i in changed],
            )
        changed_r = sorted(self.dirty_recipients - self.new_recipients)
        if changed_r:
            r = document_recipients.c
            conn.execute(
                document_recipients.update()
                .where(r.document_id == sa.bindparam("b_id"), r.organ_id == sa.bindparam("b_org"))
                .values({c: sa.bindparam(f"b_{c}") for c in _RECIPIENT_CHANGES}),
                [
                    {**_bound(self.recipients[k], "document_id", _RECIPIENT_CHANGES), "b_org": k[1]}
                    for k in changed_r
                ],
            )
        if self.events:
            conn.execute(document_events.insert(), self.events)

    def _in_order(self, ids: Iterable[str]) -> list[str]:
        wanted = set(ids)
        return [i for i in self.docs if i in wanted]


_DOC_CHANGES = ("action", "state", "last_message_id", "updated_at", "flagged")
_RECIPIENT_CHANGES = ("state", "code", "progress", "pending", "updated_at", "flagged")


def _bound(row: dict[str, Any], key: str, names: Sequence[str]) -> dict[str, Any]:
    return {"b_id": row[key], **{f"b_{c}": row[c] for c in names}}


def _chunks(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]
