"""How long, how hard and how strictly `make soak` runs: the SOAK_* variables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shared_domain.config import read_float, read_int


@dataclass(frozen=True)
class SoakSettings:
    """The load, its length, and the limits the run is judged by."""

    minutes: int = 30
    rate: float = 50.0  # single sends a second, over all clients
    streams: int = 20  # live streams, spread over the clients
    warmup_minutes: int = 5  # samples before this are printed, not judged (at most a quarter of the run)
    growth_limit: float = 10.0  # percent per hour a process's RSS, descriptors or threads may grow by
    lag_limit_s: float = 10.0  # seconds of sending a group may fall behind, if its lag keeps rising
    drain_s: float = 120.0  # how long the messages of the last minutes have, after the sending stops

    @property
    def warmup(self) -> int:
        """The minutes not judged: SOAK_WARMUP_MINUTES, but at most a quarter of the run, and at least one."""
        return max(1, min(self.warmup_minutes, self.minutes // 4))

    @property
    def lag_limit(self) -> float:
        """The records a group may fall behind by, if its lag keeps rising."""
        return self.rate * self.lag_limit_s


def read_soak_settings(env: Mapping[str, str]) -> SoakSettings:
    """Read the SOAK_* variables; ConfigError names the first bad one."""
    defaults = SoakSettings()
    return SoakSettings(
        minutes=read_int(env, "SOAK_MINUTES", defaults.minutes, minimum=1),
        rate=read_float(env, "SOAK_RATE", defaults.rate, minimum=0.1),
        streams=read_int(env, "SOAK_STREAMS", defaults.streams, minimum=1),
        warmup_minutes=read_int(env, "SOAK_WARMUP_MINUTES", defaults.warmup_minutes, minimum=1),
        growth_limit=read_float(env, "SOAK_GROWTH_LIMIT", defaults.growth_limit),
        lag_limit_s=read_float(env, "SOAK_LAG_LIMIT_S", defaults.lag_limit_s),
        drain_s=read_float(env, "SOAK_DRAIN_S", defaults.drain_s, minimum=1),
    )
