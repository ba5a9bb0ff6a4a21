"""Usage plans: a steady rate with room for a burst, and a daily quota."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    """A usage plan: a steady rate with room for a burst, and a daily quota."""

    name: str
    rate: float  # requests per second, sustained
    burst: int  # requests allowed at once
    quota: int  # requests per day

    @property
    def rate_window_seconds(self) -> int:
        return max(1, math.ceil(self.burst / self.rate))


PLANS = {
    "free": Plan("free", rate=2, burst=10, quota=1_000),
    "standard": Plan("standard", rate=20, burst=50, quota=100_000),
    "partner": Plan("partner", rate=200, burst=400, quota=5_000_000),
}
