"""Per-recipient document state from document and status events, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import json
import unicodedata
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from hub.connectors.edxml import SENT, STATUS, FileBlobStore, event_data, parse
from hub.connectors.edxml.events import validator
from hub.documents import STATES, Flag, apply, document_view, flagged, move
from hub.documents.tables import document_events, document_recipients, documents
from hub.store.db import Database
from hub.store.models import metadata

SAMPLES = Path("/work/shared/reference/edxml/vpcp-sdk-samples")
SENDER = "000.00.00.H29"
A, B, C = "000.00.01.H29", "000.00.02.H29", "000.00.03.H29"
DOC = "000.00.00.H29,2026/11/23,12/UBND-VP"
_ids = itertools.count(1)


# Events -----------------------------------------------------------------------------


def event(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """A CloudEvent dict whose data passes the event type's JSON Schema."""
    assert validator(kind).errors(data, "/data") == []
    return {"specversion": "1.0", "id": f"e{next(_ids)}", "type": kind, "data": data}


def sent(
    doc_id: str = DOC,
    recipients: tuple[str, ...] = (A, B, C),
    *,
    action: str = "new",
    sender: str = SENDER,
    earlier: str | None = None,
    receivers: tuple[tuple[str, int], ...] = (),
) -> dict[str, Any]:
    doc_type = ["new", "revoke", "update", "replace"].index(action)
    business: dict[str, Any] = {"action": action, "doc_type": doc_type}
    if earlier:
        business["document_id"] = earlier
    if receivers:
        business["document_info"] = {
            "receivers": [{"organ_id": o, "receiver_type": t} for o, t in receivers]
        }
    data = {
        "action": action,
        "document_id": doc_id,
        "sender": {"organ_id": sender, "name": "Ủy ban nhân dân Thành phố Hồ Chí Minh"},
        "recipients": [{"organ_id": r} for r in recipients],
        "metadata": {
            "code": {"number": "12", "notation": "UBND-VP"},
            "subject": "V/v chuyển đổi số",
        },
        "business": business,
    }
    return event(SENT, data)


def status(code: str, organ: str, doc_id: str = DOC, *, to: str = SENDER) -> dict[str, Any]:
    data = {
        "status_code": code,
        "from": {"organ_id": organ},
        "response_for": {"document_id": doc_id, "organ_id": to},
        "timestamp": {"iso": "2026-11-23T09:00:00", "text": "2026/11/23 09:00:00"},
    }
    return event(STATUS, data)


# Fixtures ---------------------------------------------------------------------------


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    db = Database(database_url.replace("postgresql://", "postgresql+psycopg://"))
    db.upgrade()
    try:
        yield db
    finally:
        db.close()


def run(db: Database, *events: dict[str, Any]) -> list[Flag]:
    """Apply events as one batch, in the transaction that would store them."""
    with db.engine.begin() as conn:
        return apply(conn, [(e["id"], e) for e in events])


def states(db: Database, doc_id: str = DOC) -> dict[str, str]:
    view = document_view(db.engine, doc_id)
    assert view is not None
    return {r["organ_id"]: r["state"] for r in view["recipients"]}


def recipient(db: Database, organ: str, doc_id: str = DOC) -> dict[str, Any]:
    view = document_view(db.engine, doc_id)
    assert view is not None
    return next(r for r in view["recipients"] if r["organ_id"] == organ)


# Tests ------------------------------------------------------------------------------


def test_migration_creates_the_tables_as_declared(db: Database) -> None:
    assert {documents.name, document_recipients.name, document_events.name} <= set(metadata.tables)
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert [d for d in diff if "document" in str(d)] == []


def test_a_recipient_goes_through_every_status_the_others_stay_sent(db: Database) -> None:
    assert run(db, sent()) == []
    for code in ("01", "03", "04", "05", "06"):
        assert run(db, status(code, A)) == []

    assert states(db) == {A: "completed", B: "sent", C: "sent"}
    a = recipient(db, A)
    assert (a["code"], a["en"], a["flagged"]) == ("06", "completed", False)
    assert [(h["kind"], h["code"]) for h in a["history"]] == [
        ("sent", None),
        ("status", "01"),
        ("status", "03"),
        ("status", "04"),
        ("status", "05"),
        ("status", "06"),
    ]
    assert all(h["applied"] for h in a["history"])
    view = document_view(db.engine, DOC)
    assert view is not None
    assert view["state"] == "active"
    assert view["subject"] == "V/v chuyển đổi số"
    assert view["code"] == {"number": "12", "notation": "UBND-VP"}
    assert view["flags"] == [] and view["flagged"] is False
    assert len(view["history"]) == 3 + 5
    assert json.loads(json.dumps(view)) == view  # JSON-ready, dates in ISO 8601
    assert datetime.fromisoformat(view["created_at"]).tzinfo is not None


def test_going_back_is_recorded_flagged_and_not_applied(db: Database) -> None:
    run(db, sent(), status("06", A))
    flags = run(db, status("03", A))
    assert [f.reason for f in flags] == ["cannot go from completed (06) to accepted (03)"]
    assert recipient(db, A)["state"] == "completed"
    assert recipient(db, A)["flagged"] is True
    view = document_view(db.engine, DOC)
    assert view is not None and view["flagged"] is True
    last = view["history"][-1]
    assert (last["code"], last["applied"], last["flag"]) == ("03", False, flags[0].reason)


def test_skipping_ahead_is_allowed_but_nothing_follows_a_refusal(db: Database) -> None:
    run(db, sent())
    assert run(db, status("03", A), status("06", A)) == []
    flags = run(db, status("02", B), status("01", B))
    assert [f.reason for f in flags] == ["refused (02) is final for this recipient"]
    assert states(db) == {A: "completed", B: "refused", C: "sent"}


def test_a_status_from_an_organ_that_is_not_a_recipient_is_flagged(db: Database) -> None:
    run(db, sent())
    flags = run(db, status("01", "000.00.99.H29"))
    assert flags == [
        Flag(flags[0].message_id, DOC, None, "000.00.99.H29 is not a recipient of this document")
    ]
    assert states(db) == {A: "sent", B: "sent", C: "sent"}


def test_a_status_for_a_document_never_seen_is_recorded_flagged(db: Database) -> None:
    flags = run(db, status("01", A, "000.00.00.G22,2026/01/01,1/VPCP"))
    assert [f.reason for f in flags] == ["status for a document the hub never saw"]
    view = document_view(db.engine, "000.00.00.G22,2026/01/01,1/VPCP")
    assert view is not None and view["known"] is False and view["recipients"] == []
    assert document_view(db.engine, "nothing") is None


def test_take_back_13_then_15_withdraws_it_for_that_recipient(db: Database) -> None:
    run(db, sent(), status("03", A), status("03", B))
    assert run(db, status("13", SENDER, to=A)) == []  # names A only
    assert states(db) == {A: "take_back_requested", B: "accepted", C: "sent"}
    flags = run(db, status("05", A))
    assert [f.reason for f in flags] == ["a take-back request (13) awaits its answer (15 or 16)"]
    assert run(db, status("15", A)) == []
    a = recipient(db, A)
    assert (a["state"], a["code"], a["en"], a["vi"]) == (
        "take_back_agreed",
        "15",
        "take-back agreed",
        "Đồng ý",
    )
    assert [f.reason for f in run(db, status("05", A))] == [
        "take_back_agreed (15) is final for this recipient"
    ]


def test_take_back_of_the_whole_document_then_16_lets_work_go_on(db: Database) -> None:
    run(db, sent(), status("03", A), status("02", C))
    assert run(db, status("13", SENDER, to="000.00.00.G01")) == []  # not a recipient: all
    assert states(db) == {A: "take_back_requested", B: "take_back_requested", C: "refused"}
    assert run(db, status("16", A), status("05", A)) == []
    assert recipient(db, A)["state"] == "processing"
    flags = run(db, status("13", A))
    assert [f.reason for f in flags] == [
        f"only the original sender {SENDER} may ask to take it back"
    ]


def test_15_or_16_without_a_take_back_request_is_flagged(db: Database) -> None:
    run(db, sent(), status("01", B))
    flags = run(db, status("16", B))
    assert [f.reason for f in flags] == ["status 16 answers no take-back request (13) or update"]
    assert recipient(db, B)["state"] == "arrived"


def test_revoke_of_a_known_document(db: Database) -> None:
    run(db, sent(), status("05", A))
    revoke = sent(f"{DOC}-TH", action="revoke", earlier=DOC)
    assert run(db, revoke) == []
    view = document_view(db.engine, DOC)
    assert view is not None
    assert (view["state"], view["action"], view["last_message_id"]) == (
        "revoked",
        "revoke",
        revoke["id"],
    )
    assert states(db) == {A: "revoked", B: "revoked", C: "revoked"}
    assert document_view(db.engine, f"{DOC}-TH") is None  # a revocation is not a document
    # 03 accepts the revocation, 02 refuses it; anything else is out of place.
    assert run(db, status("03", A)) == []
    assert recipient(db, A)["history"][-1]["note"] == "accepts the revocation"
    assert [f.reason for f in run(db, status("06", B))] == [
        "the document was revoked for this recipient"
    ]


def test_update_of_a_document_never_seen_is_recorded_and_flagged(db: Database) -> None:
    earlier = "000.00.00.H29,2026/10/01,7/UBND-VP"
    update = sent(f"{DOC}-CN", (A, B), action="update", earlier=earlier)
    flags = run(db, update)
    assert flags == [
        Flag(
            update["id"],
            earlier,
            None,
            "update of a document the hub never saw (it may have travelled another way); forwarded",
        )
    ]
    view = document_view(db.engine, earlier)
    assert view is not None and view["known"] is False
    assert [(h["kind"], h["applied"]) for h in view["history"]] == [("update", False)]
    # The update itself is tracked: its recipients answer it.
    assert states(db, f"{DOC}-CN") == {A: "sent", B: "sent"}
    assert flagged(db.engine, 10)[0]["document_id"] == earlier


def test_update_of_a_known_document_changes_its_recipients(db: Database) -> None:
    run(db, sent(), status("03", A))
    update = sent(DOC, (A, B), action="update", receivers=((C, 0), ("000.00.04.H29", 1)))
    assert run(db, update) == []
    assert states(db) == {A: "accepted", B: "sent", C: "removed", "000.00.04.H29": "sent"}
    assert run(db, status("15", A)) == []  # agrees to the update
    assert recipient(db, A)["history"][-1]["note"] == "agrees to the update"
    assert document_view(db.engine, DOC)["state"] == "updated"  # type: ignore[index]
    assert run(db, sent(DOC, (A,), action="update", receivers=((C, 1),))) == []
    assert recipient(db, C)["state"] == "sent"


def test_apply_commits_or_rolls_back_with_the_callers_transaction(db: Database) -> None:
    with pytest.raises(RuntimeError), db.engine.begin() as conn:
        apply(conn, [("m1", sent())])
        raise RuntimeError("the messages were not stored")
    assert document_view(db.engine, DOC) is None


def test_two_statuses_of_one_recipient_in_one_batch_apply_in_order(db: Database) -> None:
    run(db, sent())
    assert run(db, status("01", A), status("03", A), status("05", B)) == []
    assert states(db) == {A: "accepted", B: "processing", C: "sent"}
    flags = run(db, status("06", C), status("04", C))
    assert [f.reason for f in flags] == ["cannot go from completed (06) to assigned (04)"]
    assert [h["code"] for h in recipient(db, C)["history"]] == [None, "06", "04"]


def test_a_new_document_and_its_statuses_in_the_same_batch(db: Database) -> None:
    assert run(db, sent(), status("01", A), status("13", SENDER, to=B), status("15", B)) == []
    assert states(db) == {A: "arrived", B: "take_back_agreed", C: "sent"}


def test_labels_are_vietnamese_in_nfc(db: Database) -> None:
    run(db, sent(), status("05", A))
    view = document_view(db.engine, DOC)
    assert view is not None
    assert recipient(db, A)["vi"] == "Đang xử lý"
    texts = [s.vi for s in STATES.values()] + [r["vi"] for r in view["recipients"]]
    texts += [h["label"]["vi"] for h in view["history"] if h["label"]]
    assert all(unicodedata.is_normalized("NFC", t) for t in texts)
    decomposed = unicodedata.normalize("NFD", "V/v chuyển đổi số")
    other = sent("nfd-doc")
    other["data"]["metadata"]["subject"] = decomposed
    run(db, other)
    assert document_view(db.engine, "nfd-doc")["subject"] == "V/v chuyển đổi số"  # type: ignore[index]


def test_flagged_lists_the_latest_first(db: Database) -> None:
    run(db, sent(), status("16", A))
    run(db, status("01", "000.00.99.H29"))
    rows = flagged(db.engine, 10)
    assert [(r["code"], r["from"]) for r in rows] == [("01", "000.00.99.H29"), ("16", A)]
    assert all(r["applied"] is False and r["flag"] for r in rows)
    assert len(flagged(db.engine, 1)) == 1


def test_other_event_types_are_ignored(db: Database) -> None:
    assert run(db, {"id": "x1", "type": "vn.lgsp.demo.note.v1", "data": {}}) == []
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(document_events)).scalar() == 0


@pytest.mark.parametrize(
    ("progress", "code", "allowed"),
    [
        (None, "01", True),
        (None, "03", True),
        ("01", "05", True),
        ("03", "06", True),
        ("05", "04", False),
        ("06", "05", False),
        ("03", "01", False),
    ],
)
def test_the_transition_table(progress: str | None, code: str, allowed: bool) -> None:
    state = (
        "sent" if progress is None else next(s.name for s in STATES.values() if s.code == progress)
    )
    rec = {"state": state, "progress": progress, "pending": None}
    flag, _, change = move(rec, code)
    assert (flag is None) is allowed
    assert bool(change) is allowed


def test_the_vpcp_samples(db: Database, tmp_path: Path) -> None:
    if not SAMPLES.is_dir():
        pytest.skip(f"{SAMPLES} is absent")
    blobs = FileBlobStore(tmp_path)

    def load(name: str) -> dict[str, Any]:
        kind, data = event_data(parse((SAMPLES / name).read_bytes(), blobs, max_bytes=10**8))
        return {"id": name, "type": kind, "data": data}

    # The replacement is tracked under its own DocumentId; the documents it replaces
    # (ReplacementInfo) were never seen here.
    flags = run(db, load("edoc_replacement.edxml"))
    assert {f.document_id for f in flags} == {"000.00.00.G22,2014/01/30,7806/VPCP-TTĐT"}
    doc = "000.00.00.G22,2015/09/30,7816/VPCP-TTĐT"
    h41 = "000.00.00.H41"
    names = ["status_inbox_01", "status_acceptance_03", "status_assignment_04"]
    names += ["status_processing_05", "status_finish_06"]
    assert run(db, *(load(f"{n}.edxml") for n in names)) == []
    assert states(db, doc) == {h41: "completed", "000.00.00.H14": "sent", "000.00.00.G17": "sent"}
    assert [f.reason for f in run(db, load("status_rejection_02.edxml"))] == [
        "cannot go from completed (06) to refused (02)"
    ]
    assert run(db, load("status_cancellation_13.edxml")) == []  # names H41 only
    assert run(db, load("status_change-acceptance_15.edxml")) == []
    assert recipient(db, h41, doc)["state"] == "take_back_agreed"
    assert len(run(db, load("status_change-rejection_16.edxml"))) == 1
    # The revocation reuses the DocumentId: it revokes the tracked document.
    assert run(db, load("edoc_revocation.edxml")) == []
    assert document_view(db.engine, doc)["state"] == "revoked"  # type: ignore[index]
