"""Connectors: one module per system kind, registered by name."""

from __future__ import annotations

import difflib

from hub.connectors.base import Connector
from hub.connectors.http import HttpConnector

CONNECTORS: dict[str, type[Connector]] = {
    HttpConnector.kind: HttpConnector,
}


def connector_for(kind: str) -> type[Connector]:
    """The connector class for a kind. Raises KeyError naming the closest known kind."""
    try:
        return CONNECTORS[kind]
    except KeyError:
        close = difflib.get_close_matches(kind, CONNECTORS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known: {sorted(CONNECTORS)}"
        raise KeyError(f"no connector {kind!r}{hint}") from None
