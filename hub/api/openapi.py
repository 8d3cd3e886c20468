"""Write the API's OpenAPI document (contracts/openapi.yaml is this output, checked by a test)."""

from __future__ import annotations

from typing import Any

import yaml

from hub.api.app import create_app
from hub.config import load_config
from hub.settings import DEMO_CONFIG, Settings


def document() -> dict[str, Any]:
    """The OpenAPI document of the hub's API (independent of the config in use)."""
    settings = Settings(config=DEMO_CONFIG, database_url="sqlite:///:memory:")
    from hub.runtime import Hub

    app = create_app(Hub(settings, load_config(DEMO_CONFIG)))
    return app.openapi()


def render() -> str:
    return yaml.safe_dump(document(), sort_keys=False, allow_unicode=True)


if __name__ == "__main__":
    print(render(), end="")
