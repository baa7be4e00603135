"""Counters of one api process: odds hits and misses, DB queries, age and staleness of reads."""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

AGE_BUCKETS_MS = (1, 5, 10, 50, 100, 500, 1_000, 5_000, 10_000, 30_000, 60_000)
"""Upper bounds of the age and staleness histograms in milliseconds; larger values go to `inf`."""


@dataclass
class Histogram:
    """Counts of values per bucket of `AGE_BUCKETS_MS`, plus the maximum seen."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(AGE_BUCKETS_MS) + 1))
    max: int = 0

    def add(self, value_ms: int) -> None:
        self.counts[bisect.bisect_left(AGE_BUCKETS_MS, value_ms)] += 1
        self.max = max(self.max, value_ms)

    def to_json(self) -> dict[str, Any]:
        labels = [f"le_{bound}" for bound in AGE_BUCKETS_MS] + ["inf"]
        return {"max_ms": self.max, "buckets": dict(zip(labels, self.counts, strict=True))}


@dataclass
class CacheStats:
    """Counters the runner and the load tests compare with their own counts of requests.

    `hits`, `misses` and `db_reads` count odds lookups only; token lookups are counted
    apart so that they do not hide the odds numbers. `odds_age` is the time since each
    served odds value was read from the database. `odds_staleness` is, for a read that
    served odds already replaced by a newer version, the time since the replacement.
    """

    strategy: str = "ttl"
    hits: int = 0
    misses: int = 0
    db_reads: int = 0
    local_hits: int = 0
    coalesced: int = 0
    early_recomputes: int = 0
    stale_reads: int = 0
    invalidations_received: int = 0
    subscription_losses: int = 0
    token_hits: int = 0
    token_misses: int = 0
    odds_fallbacks: int = 0
    """Odds reads served from the database because Redis was unreachable."""
    token_fallbacks: int = 0
    """Token checks and stores done without Redis, from this process's memory."""
    replayed_invalidations: int = 0
    replayed_tokens: int = 0
    """Odds changes and tokens written to Redis after it was unreachable."""
    odds_age: Histogram = field(default_factory=Histogram)
    odds_staleness: Histogram = field(default_factory=Histogram)
    requests: Counter[str] = field(default_factory=Counter)

    @property
    def odds_reads(self) -> int:
        return self.hits + self.misses

    def to_json(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "hits": self.hits,
            "misses": self.misses,
            "db_reads": self.db_reads,
            "odds_reads": self.odds_reads,
            "local_hits": self.local_hits,
            "coalesced": self.coalesced,
            "early_recomputes": self.early_recomputes,
            "stale_reads": self.stale_reads,
            "invalidations_received": self.invalidations_received,
            "subscription_losses": self.subscription_losses,
            "max_age_ms": self.odds_age.max,
            "max_staleness_ms": self.odds_staleness.max,
            "odds_age": self.odds_age.to_json(),
            "odds_staleness": self.odds_staleness.to_json(),
            "token_hits": self.token_hits,
            "token_misses": self.token_misses,
            "odds_fallbacks": self.odds_fallbacks,
            "token_fallbacks": self.token_fallbacks,
            "replayed_invalidations": self.replayed_invalidations,
            "replayed_tokens": self.replayed_tokens,
            "requests": dict(sorted(self.requests.items())),
        }
