"""The organisation directory: which system receives what is addressed to an organisation.

edXML packages name their recipients by organisation code (`000.00.12.H29`).
The directory maps a code to the system that takes that organisation's
documents, from three sources, the first that knows a code winning:

1. entries made through the API (`PUT /api/v1/directory/{organ_id}`), kept in
   the `directory` table, for organisations served by another organisation's
   system (a district's wards on the district's e-office, say);
2. the config: a system of kind `edxml` serves the organisation its id begins
   with (`000.00.12.H29:qlvb` serves `000.00.12.H29`);
3. the national axis: when a system of kind `national_axis` is configured, every
   organisation outside the city (a code not ending in the city's level-1 code,
   the last group of the axis system's `options.system_id`) is reached through it.

A code none of them knows is an unknown recipient: refused for that recipient,
the others still receive the package (hub/routing/rules.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa

from hub import audit
from hub.config import HubConfig
from hub.envelope import nfc
from hub.store.models import directory, utcnow

DOCUMENT_KIND = "edxml"
AXIS_KIND = "national_axis"


@dataclass(frozen=True)
class Agency:
    """One directory entry."""

    organ_id: str
    name: str
    system_id: str
    source: str  # api | config

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class Directory:
    """Organisation code -> receiving system, for one config and the API's entries."""

    def __init__(self, config: HubConfig, entries: Iterable[Agency] = ()) -> None:
        self._config = config
        self._configured = {
            s.organ: Agency(s.organ, s.name, s.id, "config")
            for s in config.systems.values()
            if s.kind == DOCUMENT_KIND
        }
        self._entries = {a.organ_id: a for a in entries}
        axis = [s for s in config.systems.values() if s.kind == AXIS_KIND]
        self.axis = axis[0].id if axis else None
        city = str(axis[0].options.get("system_id", "")) if axis else ""
        self.city = city.rpartition(".")[2] or None  # "000.00.00.H29" -> "H29"

    def with_entries(self, entries: Iterable[Agency]) -> Directory:
        return Directory(self._config, entries)

    def system_for(self, organ_id: str) -> str | None:
        """The system that receives for `organ_id`, None when the organisation is unknown."""
        found = self._entries.get(organ_id) or self._configured.get(organ_id)
        if found is not None:
            return found.system_id
        if self.axis and self.city and organ_id.rpartition(".")[2] != self.city:
            return self.axis
        return None

    def sends_for(self, system_id: str, organ_id: str) -> bool:
        """True when `system_id` may send documents as `organ_id`: its own organisation,
        or one the directory routes to it (the axis speaks for those outside the city)."""
        return organ_id == system_id.partition(":")[0] or self.system_for(organ_id) == system_id

    def listed(self, organ_id: str) -> bool:
        """True when the API made an entry for `organ_id` (it overrides the config)."""
        return organ_id in self._entries

    def agencies(self) -> list[Agency]:
        """Every organisation known by name (the API's entries over the config's)."""
        merged = {**self._configured, **self._entries}
        return [merged[k] for k in sorted(merged)]


def load_entries(engine: sa.Engine) -> list[Agency]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(directory).order_by(directory.c.organ_id))
        return [Agency(r.organ_id, r.name, r.system_id, "api") for r in rows]


def save_entry(engine: sa.Engine, agency: Agency, by: str) -> None:
    row: Mapping[str, Any] = {
        "organ_id": agency.organ_id,
        "name": nfc(agency.name),
        "system_id": agency.system_id,
        "updated_at": utcnow(),
        "updated_by": by,
    }
    with engine.begin() as conn:
        updated = conn.execute(
            directory.update().where(directory.c.organ_id == agency.organ_id).values(**row)
        )
        if not updated.rowcount:
            conn.execute(directory.insert().values(**row))
        audit.append(
            conn,
            by,
            "directory.put",
            agency.organ_id,
            {"name": agency.name, "system_id": agency.system_id},
        )


def delete_entry(engine: sa.Engine, organ_id: str, by: str) -> bool:
    with engine.begin() as conn:
        gone = conn.execute(directory.delete().where(directory.c.organ_id == organ_id))
        if gone.rowcount:
            audit.append(conn, by, "directory.delete", organ_id)
        return bool(gone.rowcount)
