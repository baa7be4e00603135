"""The per-transaction rules of the contract monitor, with the state they learn."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from wagerlab.platform.db import AlertSeverity


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: AlertSeverity
    detail: str


@dataclass
class GasBaseline:
    """Mean gas used per (contract, selector), learned from successful calls."""

    warmup_calls: int
    factor_percent: int
    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    means: dict[tuple[str, str], float] = field(default_factory=dict)

    def check(self, key: tuple[str, str], gas_used: int) -> bool:
        """Return whether `gas_used` is far above the learned mean; learn it when it is not."""
        count, mean = self.counts.get(key, 0), self.means.get(key, 0.0)
        if count >= self.warmup_calls and gas_used * 100 > mean * self.factor_percent:
            return True
        self.counts[key] = count + 1
        self.means[key] = mean + (gas_used - mean) / (count + 1)
        return False


@dataclass
class RevertBurst:
    """Reverted transactions to the platform within the last `window_blocks` blocks."""

    threshold: int
    window_blocks: int
    blocks: deque[int] = field(default_factory=deque)
    alerted_until: int = -1

    def add(self, block_number: int) -> int | None:
        """Record a revert; return the count in the window when it reaches the threshold (once per window)."""
        self.blocks.append(block_number)
        while self.blocks and self.blocks[0] <= block_number - self.window_blocks:
            self.blocks.popleft()
        if len(self.blocks) >= self.threshold and block_number > self.alerted_until:
            self.alerted_until = block_number + self.window_blocks
            return len(self.blocks)
        return None
