"""Tables of the reporting consumer, on the store's metadata (migration 0007 creates them).

- `report_dossiers`: each dossier as last seen, one row per (source system, dossier
  code), at the highest `sequence` applied; an event with an older or equal
  sequence changes nothing. `closed_at` is when it was cancelled or rejected.
- `reports_sent`: every version of every report published, with its figures;
  `report_id` is indicator set, period and agency, and (report_id, version) is unique.
"""

from __future__ import annotations

import sqlalchemy as sa

from hub.store.models import UTCDateTime, metadata

AGENCY = 100
SOURCE = 128
DOSSIER = 100
REPORT_ID = 300

report_dossiers = sa.Table(
    "report_dossiers",
    metadata,
    sa.Column("source", sa.String(SOURCE), primary_key=True),
    sa.Column("dossier_code", sa.String(DOSSIER), primary_key=True),
    sa.Column("agency", sa.String(AGENCY), nullable=False),
    sa.Column("agency_name", sa.Text, nullable=True),
    sa.Column("procedure_code", sa.String(100), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("appointment_at", UTCDateTime, nullable=False),
    sa.Column("completed_at", UTCDateTime, nullable=True),
    sa.Column("closed_at", UTCDateTime, nullable=True),
    sa.Column("sequence", sa.Integer, nullable=False),
    sa.Column("message_id", sa.String(128), nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index(None, "agency", "received_at"),
)

reports_sent = sa.Table(
    "reports_sent",
    metadata,
    sa.Column("report_id", sa.String(REPORT_ID), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("indicator_set", sa.String(100), nullable=False),
    sa.Column("period", sa.String(20), nullable=False),
    sa.Column("agency", sa.String(AGENCY), nullable=False),
    sa.Column("indicators", sa.Text, nullable=False),
    sa.Column("computed_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime, nullable=False),
    sa.Column("message_id", sa.String(128), nullable=False),
    sa.Index(None, "period", "agency"),
)

TABLES = (report_dossiers, reports_sent)
