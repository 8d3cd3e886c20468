"""Document tracking: each recipient's state of each document, from edXML statuses.

    flags = apply(conn, [(message_id, cloud_event), ...])   # in the storing transaction
    view = document_view(engine, document_id)               # GET /api/v1/documents/{id}
    rows = flagged(engine, limit=100)                       # for operators

Tables in hub/documents/tables.py (migration 0003), the moves allowed in
hub/documents/states.py, the rules in hub/documents/tracking.py.
"""

from hub.documents.batch import Flag
from hub.documents.states import STATES, TRANSITIONS, State
from hub.documents.tables import document_events, document_recipients, documents
from hub.documents.tracking import apply, move
from hub.documents.view import document_view, flagged

__all__ = [
    "STATES",
    "TRANSITIONS",
    "Flag",
    "State",
    "apply",
    "document_events",
    "document_recipients",
    "document_view",
    "documents",
    "flagged",
    "move",
]
