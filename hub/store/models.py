"""Tables of the store, as SQLAlchemy Core metadata (Alembic migrations follow it).

- `messages`: every accepted message with its envelope; `status` is the message's
  state (accepted, routed, delivered, partially_delivered, unroutable, dead).
  `enqueued_at` and its twin on `deliveries` make the tables their own outbox:
  a row is committed first, published, then marked enqueued.
- `deliveries`: one row per (message, destination); the dead-letter store is the
  set of deliveries whose status is `dead`, with their history in `hops`.
- `hops`: the trace, one row per stage a message passed, with its time.
- `inbox`: ids a consumer has applied, for exactly-once application.
- `outbox`: messages a state change must publish, committed with the change.
- `cursors`: how far each poller of an external system has got, restart-safe.
- `leases`: which process runs each once-per-fleet job (a poller, the sweep), until when.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every database (SQLite keeps naive UTC text)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


messages = sa.Table(
    "messages",
    metadata,
    sa.Column("seq", BigId, primary_key=True, autoincrement=True),
    # The hub's key of the message (deliveries, hops, DocId): the event's id, or,
    # when another source already holds that id, `<id>@<hash of source and id>`
    # (hub/store/messages.py, `derived_key`). An event is its (source, event_id).
    sa.Column("id", sa.String(128), nullable=False, unique=True),
    # The event's own id; NULL on rows stored before 0013, whose id is the event's.
    sa.Column("event_id", sa.String(128), nullable=True, index=True),
    sa.Column("type", sa.String(128), nullable=False, index=True),
    sa.Column("source", sa.String(128), nullable=False, index=True),
    sa.Column("correlationid", sa.String(128), nullable=True, index=True),
    sa.Column("status", sa.String(24), nullable=False, index=True),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("envelope", sa.Text, nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False, index=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # Set once the broker confirmed the message to the router's queue; a message
    # left `accepted` without it (a crash between commit and confirm) is swept.
    sa.Column("enqueued_at", UTCDateTime, nullable=True),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("message_id", sa.String(128), sa.ForeignKey("messages.id"), nullable=False),
    sa.Column("destination", sa.String(128), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", UTCDateTime, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("delivered_at", UTCDateTime, nullable=True),
    # Set once the job of a `pending` delivery is confirmed in its queue.
    sa.Column("enqueued_at", UTCDateTime, nullable=True),
    # For a destination that takes one key's messages in order (`ordered_by`):
    # the key; a delivery waits while an earlier one of its key is not final.
    sa.Column("order_key", sa.String(300), nullable=True),
    # The routing rules that chose this destination, comma-separated (the console's
    # traffic per route).
    sa.Column("route", sa.String(300), nullable=True),
    sa.UniqueConstraint("message_id", "destination"),
    sa.Index(None, "status", "next_attempt_at"),
    sa.Index(None, "destination", "status"),
    sa.Index(None, "destination", "order_key", "id"),
    sa.Index(None, "destination", "delivered_at"),
)

hops = sa.Table(
    "hops",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("message_id", sa.String(128), nullable=False, index=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("stage", sa.String(32), nullable=False),
    sa.Column("destination", sa.String(128), nullable=True),
    sa.Column("detail", sa.Text, nullable=True),
)
FAILED_STAGES = ("attempt_failed", "dead_lettered")
# Failures by destination and time (the console's error counts and last error),
# partial so that the hops of messages that go well cost no index entry.
sa.Index(
    "ix_hops_failures",
    hops.c.destination,
    hops.c.at,
    postgresql_where=hops.c.stage.in_(FAILED_STAGES),
    sqlite_where=hops.c.stage.in_(FAILED_STAGES),
)

inbox = sa.Table(
    "inbox",
    metadata,
    sa.Column("consumer", sa.String(64), primary_key=True),
    sa.Column("message_id", sa.String(128), primary_key=True),
    sa.Column("processed_at", UTCDateTime, nullable=False),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("queue", sa.String(200), nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("headers", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("published_at", UTCDateTime, nullable=True, index=True),
)

# Where a poller of an external system has got to (e.g. `national_axis:<system id>`);
# `value` is the poller's own text (JSON), see hub/store/cursors.py.
cursors = sa.Table(
    "cursors",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# The organisation directory's entries made through the API (hub/directory.py);
# the config's document systems and the national axis add theirs at start.
directory = sa.Table(
    "directory",
    metadata,
    sa.Column("organ_id", sa.String(100), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("system_id", sa.String(200), nullable=False),
    sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
    sa.Column("updated_by", sa.String(200), nullable=False),
)

# Destinations an operator paused (a system under maintenance): their workers
# take no new job until resumed; the jobs wait in the queue and the store.
pauses = sa.Table(
    "pauses",
    metadata,
    sa.Column("destination", sa.String(128), primary_key=True),
    sa.Column("paused_at", UTCDateTime(timezone=True), nullable=False),
    sa.Column("paused_by", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
)

# The audit trail: what operators (and, from issue 8, the hub itself) did, appended
# only, each entry carrying the hash of the one before (hub/audit.py).
audit = sa.Table(
    "audit",
    metadata,
    sa.Column("seq", BigId, primary_key=True, autoincrement=False),
    sa.Column("at", UTCDateTime(timezone=True), nullable=False, index=True),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.String(300), nullable=True),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)
# Failed sign-ins of a name in a window (throttling); people's entries among the
# hub's many (the console's default page).
sa.Index("ix_audit_actor_at", audit.c.actor, audit.c.at)
sa.Index(
    "ix_audit_people",
    audit.c.seq,
    postgresql_where=audit.c.actor != "hub",
    sqlite_where=audit.c.actor != "hub",
)

# Console sign-ins: the cookie carries a random token, the store its SHA-256 only.
console_sessions = sa.Table(
    "console_sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("operator", sa.String(200), nullable=False),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
    sa.Column("expires_at", UTCDateTime(timezone=True), nullable=False, index=True),
)

# Console sign-in attempts, claimed before the password is checked (hub/console/
# sessions.py): an attempt counts as failed until its password proved right, so
# parallel guesses are counted as they start, not as they end.
sign_in_attempts = sa.Table(
    "sign_in_attempts",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("at", UTCDateTime(timezone=True), nullable=False),
    sa.Column("succeeded", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Index("ix_sign_in_attempts_name_at", "name", "at"),
)

# API keys the hub issued (`hub systems rotate-key`): a salted SHA-256 of the secret
# only (hub/keys.py); a system has at most two not retired.
system_keys = sa.Table(
    "system_keys",
    metadata,
    sa.Column("key_id", sa.String(16), primary_key=True),
    sa.Column("system_id", sa.String(128), nullable=False, index=True),
    sa.Column("salt", sa.String(32), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("retired_at", UTCDateTime(timezone=True), nullable=True),
    sa.Column("retired_by", sa.String(200), nullable=True),
)

# Jobs that run once across the processes sharing the store (hub/leases.py): the
# process holding a job's lease runs it until `expires_at`, renewing it; `term`
# counts the holders, a fencing token.
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("term", sa.Integer, nullable=False),
    sa.Column("acquired_at", UTCDateTime(timezone=True), nullable=False),
    sa.Column("expires_at", UTCDateTime(timezone=True), nullable=False),
)
