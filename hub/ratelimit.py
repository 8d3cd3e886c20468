"""Per-system request limits: a token bucket per system in each API process.

A system's `rate_limit: {per_second: 50, burst: 100}` in the config lets it make
`burst` requests at once and `per_second` on average; beyond, the API answers 429
with `Retry-After` (seconds until a token is back) and takes nothing. The bucket
is per process: behind N API replicas a system gets up to N times its limit
(docs/SECURITY.md). Systems without `rate_limit` are not limited.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from typing import Any

from hub.config import System
from hub.errors import TooMany


class RateLimits:
    def __init__(self, systems: Mapping[str, System], clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._limits: dict[str, tuple[float, float]] = {}
        for system in systems.values():
            limit = system.options.get("rate_limit")
            if isinstance(limit, Mapping):
                rate = float(limit["per_second"])
                self._limits[system.id] = (rate, float(limit.get("burst", max(1.0, rate))))
        self._buckets: dict[str, tuple[float, float]] = {}  # id -> (tokens, at)

    def take(self, system_id: str) -> None:
        """Count one request of `system_id`; raises TooMany when its bucket is empty."""
        limit = self._limits.get(system_id)
        if limit is None:
            return
        rate, burst = limit
        with self._lock:
            now = self._clock()
            tokens, at = self._buckets.get(system_id, (burst, now))
            tokens = min(burst, tokens + (now - at) * rate)
            if tokens < 1.0:
                self._buckets[system_id] = (tokens, now)
                wait = max(1, math.ceil((1.0 - tokens) / rate))
                raise TooMany(
                    f"{system_id} is over its limit of {rate:g} requests per second"
                    f" (burst {burst:g}); try again in {wait} s",
                    retry_after=wait,
                )
            self._buckets[system_id] = (tokens - 1.0, now)
