"""Per-client token buckets, in memory, per serve process.

Each gunicorn worker keeps its own buckets, so with W workers a client gets at most W times
the configured rate (connections are spread over workers); that is enough to stop a
flood from one viewer without a shared store the database-down case would break.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable


class RateLimiter:
    """`rate` tokens per `per` seconds, at most `burst` at once, for each key.

    A `rate` of 0 disables the limit. Memory is bounded: past `max_keys` clients the least
    recently seen bucket is dropped (it would be full again by then anyway, mostly).
    """

    def __init__(self, rate: float, per: float, burst: int, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate_per_s = rate / per if rate > 0 else 0.0
        self.burst = max(1, burst)
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Take one token for `key`: 0.0 if allowed, else the seconds until one is free."""
        if self.rate_per_s <= 0:
            return 0.0
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate_per_s)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate_per_s
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return wait
