"""Personal data hidden from viewers: what the console and the API show a viewer role.

A dossier's applicant goes through the procedures connector's own masking (the
same a log line gets); elsewhere, fields whose names say they carry a person's
identity, contact or birth date are masked wherever they sit in the payload.
Operators and admins see the payload whole (they repair deliveries with it).
"""

from __future__ import annotations

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
