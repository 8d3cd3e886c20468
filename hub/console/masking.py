"""Personal data hidden from viewers: what the console and the API show a viewer role.

A dossier's applicant goes through the procedures connector's own masking (the
same a log line gets); elsewhere, fields whose names say they carry a person's
identity, contact or birth date are masked wherever they sit in the payload.
Operators and admins see the payload whole (they repair deliveries with it).

Free text written by others (a destination's error body kept as a delivery's
last error, a trace's detail, the audit trail's dead letters) is masked for
viewers too (`masked_text`): a JSON object inside it by the field names above,
and anywhere in it what has the shape of an identity or phone number (9 to 12
digits) or of an e-mail address. A name or address in running prose has no
shape to find; viewers are told the text is masked, and the operator role sees it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from hub.connectors.procedures_codec import mask, mask_email, mask_name, masked_applicant

PERSONAL = {
    "id_number": lambda v: mask(v, keep_start=4, keep_end=2),
    "cccd": lambda v: mask(v, keep_start=4, keep_end=2),
    "cmnd": lambda v: mask(v, keep_start=4, keep_end=2),
    "so_dinh_danh": lambda v: mask(v, keep_start=4, keep_end=2),
    "phone": mask,
    "so_dien_thoai": mask,
    "email": mask_email,
    "address": lambda v: "***",
    "dia_chi": lambda v: "***",
    "birth_date": lambda v: mask(v, keep_start=0, keep_end=4),
    "ngay_sinh": lambda v: mask(v, keep_start=0, keep_end=4),
    "full_name": mask_name,
    "ho_ten": mask_name,
}


def masked(value: Any) -> Any:
    """`value` (an envelope or any part of it) with personal data masked."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key == "applicant" and isinstance(item, dict):
                out[key] = masked_applicant(item)
            elif key.lower() in PERSONAL and isinstance(item, str):
                out[key] = PERSONAL[key.lower()](item)
            else:
                out[key] = masked(item)
        return out
    if isinstance(value, list):
        return [masked(v) for v in value]
    return value


# 9 digits (CMND), 10 (a phone number), 12 (CCCD), with no digit either side.
NUMBER = re.compile(r"(?<!\d)(?:\+84)?\d{9,12}(?!\d)")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
JSON = json.JSONDecoder()
ERROR_FIELDS = {"last_error", "reason", "detail"}  # free text in the store's answers


def masked_text(text: str) -> str:
    """Free text (an error body, a trace detail) with personal data masked."""
    start = text.find("{")
    if start >= 0:
        try:
            body, end = JSON.raw_decode(text, start)
        except ValueError:
            pass
        else:
            shown = json.dumps(masked(body), ensure_ascii=False, separators=(",", ":"))
            text = text[:start] + shown + text[end:]
    text = NUMBER.sub(lambda m: mask(m.group(), keep_start=4, keep_end=2), text)
    return EMAIL.sub(lambda m: mask_email(m.group()), text)


def masked_errors(value: Any) -> Any:
    """`value` (an answer of the store) with its free-text fields through `masked_text`."""
    if isinstance(value, dict):
        return {
            k: masked_text(v) if k in ERROR_FIELDS and isinstance(v, str) else masked_errors(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [masked_errors(v) for v in value]
    return value


def masked_strings(value: Any) -> Any:
    """Every string in `value` through `masked_text` (an audit entry's detail)."""
    if isinstance(value, str):
        return masked_text(value)
    if isinstance(value, dict):
        return {k: masked_strings(v) for k, v in masked(value).items()}
    if isinstance(value, list):
        return [masked_strings(v) for v in value]
    return value
