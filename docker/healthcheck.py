#!/opt/hub/bin/python
"""Container health check: exit 0 when the hub answers 200 at a URL, 1 otherwise.

The URL is the first argument, by default the API's liveness endpoint,
http://127.0.0.1:$HUB_PORT/healthz. A worker has no API: its compose service passes the
URL of the metrics it serves on HUB_METRICS_PORT. Standard library only, because the image
has no curl.
"""

from __future__ import annotations

import os
import sys
import urllib.request


def main(argv: list[str]) -> int:
    """Fetch the URL once; print why it failed to stderr (docker inspect shows it)."""
    port = os.environ.get("HUB_PORT", "8000")
    url = argv[1] if len(argv) > 1 else f"http://127.0.0.1:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            if response.status == 200:
                return 0
            print(f"{url}: HTTP {response.status}", file=sys.stderr)
    except OSError as exc:  # URLError, HTTPError, timeouts and refused connections
        print(f"{url}: {exc}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
