"""What outside systems rely on stays as published in contracts/."""

from __future__ import annotations

import yaml

from hub.api.openapi import document
from tests.conftest import REPO


def test_openapi_matches_the_published_contract() -> None:
    published = yaml.safe_load((REPO / "contracts" / "openapi.yaml").read_text("utf-8"))
    assert document() == published, (
        "the API changed: review it, then run `python -m hub.api.openapi > contracts/openapi.yaml`"
    )
