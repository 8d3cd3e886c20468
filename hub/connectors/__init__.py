"""Connectors: one module per system kind, registered by name.

`CONNECTORS` maps a kind to a factory taking the blob store (where document
attachments live); `connector_for_system` picks the one a system needs: a
document-management system (`edxml`) with an endpoint is pushed to over SOAP,
one without an endpoint pulls from the local document axis API.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

from hub.config import System
from hub.connectors.base import Connector
from hub.connectors.edxml.blobs import BlobStore
from hub.connectors.eoffice import EofficeConnector
from hub.connectors.government_office import GovernmentOfficeConnector
from hub.connectors.http import HttpConnector
from hub.connectors.national_axis import NationalAxisConnector
from hub.connectors.national_portal import NationalPortalConnector
from hub.connectors.procedures import ProceduresConnector
from hub.connectors.pull import PullConnector
from hub.connectors.reporting_system import ReportingSystemConnector

Factory = Callable[[BlobStore], Connector]


def _task_platform(blobs: BlobStore) -> Connector:
    # hub.tasks imports hub.connectors.base: imported late, so either may load first.
    from hub.tasks.connector import TaskPlatformConnector

    return TaskPlatformConnector(blobs)


def _reporting(blobs: BlobStore) -> Connector:
    from hub.reports.connector import ReportingConnector  # late, as for the task platform

    return ReportingConnector(blobs)


CONNECTORS: dict[str, Factory] = {
    "task_platform": _task_platform,
    "reporting": _reporting,
    HttpConnector.kind: lambda _blobs: HttpConnector(),
    EofficeConnector.kind: EofficeConnector,
    NationalAxisConnector.kind: NationalAxisConnector,
    GovernmentOfficeConnector.kind: GovernmentOfficeConnector,
    ProceduresConnector.kind: ProceduresConnector,
    NationalPortalConnector.kind: NationalPortalConnector,
    ReportingSystemConnector.kind: ReportingSystemConnector,
}


def connector_for(kind: str) -> Factory:
    """The connector factory for a kind. Raises KeyError naming the closest known kind."""
    try:
        return CONNECTORS[kind]
    except KeyError:
        close = difflib.get_close_matches(kind, CONNECTORS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known: {sorted(CONNECTORS)}"
        raise KeyError(f"no connector {kind!r}{hint}") from None


def pulls(system: System) -> bool:
    """True for a document system without an endpoint: it fetches what waits for it."""
    return system.kind == EofficeConnector.kind and not system.endpoint


def connector_key(system: System) -> str:
    """Which shared connector instance serves `system` (one per kind, pull apart)."""
    return PullConnector.kind if pulls(system) else system.kind


def connector_for_system(system: System, blobs: BlobStore) -> Connector:
    if pulls(system):
        return PullConnector()
    return connector_for(system.kind)(blobs)
