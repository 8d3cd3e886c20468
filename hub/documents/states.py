"""A recipient's states and the moves between them, as data (StatusCode, QCVN 102:2016).

Progress codes only move forward: sent -> 01 arrived -> 02 refused | 03 accepted
-> 04 assigned -> 05 processing -> 06 completed. Skipping ahead is allowed (many
e-offices never send 01 or 04); going back, or anything after 02 or 06, is not.
A repeat of the current code is recorded and changes nothing.

13 (take-back request) comes from the original sender; the recipient answers 15
(agreed: the document is withdrawn for it) or 16 (refused: it keeps working from
where it was). 15 and 16 also answer an update, and 02 and 03 a revocation.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class State:
    """A recipient's state: readable name, StatusCode (None when no code names it), labels."""

    name: str
    code: str | None
    en: str
    vi: str


def _state(name: str, code: str | None, en: str, vi: str) -> State:
    return State(name, code, en, unicodedata.normalize("NFC", vi))


STATES = {
    s.name: s
    for s in (
        _state("sent", None, "sent", "Đã gửi"),
        _state("arrived", "01", "arrived", "Đã đến"),
        _state("refused", "02", "refused", "Từ chối tiếp nhận"),
        _state("accepted", "03", "accepted", "Đã tiếp nhận"),
        _state("assigned", "04", "assigned", "Phân công"),
        _state("processing", "05", "processing", "Đang xử lý"),
        _state("completed", "06", "completed", "Hoàn thành"),
        _state("take_back_requested", "13", "take-back requested", "Đề nghị lấy lại"),
        _state("take_back_agreed", "15", "take-back agreed", "Đồng ý"),
        _state("take_back_refused", "16", "take-back refused", "Từ chối"),
        _state("revoked", None, "revoked", "Đã thu hồi"),
        _state("removed", None, "removed from the recipients", "Đã bỏ khỏi nơi nhận"),
    )
}
BY_CODE = {s.code: s for s in STATES.values() if s.code is not None}

PROGRESS_CODES = frozenset({"01", "02", "03", "04", "05", "06"})

# Last progress code reached (None: sent) -> progress codes that may follow it.
TRANSITIONS: dict[str | None, frozenset[str]] = {
    None: frozenset({"01", "02", "03", "04", "05", "06"}),
    "01": frozenset({"02", "03", "04", "05", "06"}),
    "02": frozenset(),
    "03": frozenset({"04", "05", "06"}),
    "04": frozenset({"05", "06"}),
    "05": frozenset({"06"}),
    "06": frozenset(),
}

# States in which a recipient no longer handles the document.
CLOSED = frozenset({"refused", "take_back_agreed", "revoked", "removed"})

# Document state after a package of each action acts on it.
DOCUMENT_STATE = {"new": "active", "revoke": "revoked", "update": "updated", "replace": "replaced"}


def state_of(code: str | None) -> State:
    """The progress state a code (None: sent) names."""
    return STATES["sent"] if code is None else BY_CODE[code]


def labels(name: str) -> dict[str, str | None]:
    """`{"state", "code", "en", "vi"}` of a state name (unknown names keep their text)."""
    s = STATES.get(name, State(name, None, name, name))
    return {"state": s.name, "code": s.code, "en": s.en, "vi": s.vi}
