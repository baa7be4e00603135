"""The ordered record of what the actors decided to do, and its digest.

Actors run concurrently, so the interleaving of their requests differs from run to run.
Each actor's own sequence of decisions depends only on the seed, so the digest hashes
each actor's sequence in actor order. Results that depend on timing (the odds a quote got,
the bet id the chain assigned) stay out of the trace.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from typing import Any


class Trace:
    def __init__(self) -> None:
        self._actions: dict[str, list[list[Any]]] = defaultdict(list)

    def record(self, actor: str, action: str, *params: Any) -> None:
        self._actions[actor].append([action, *params])

    def action_count(self) -> int:
        return sum(len(actions) for actions in self._actions.values())

    def ordered(self) -> list[tuple[str, list[list[Any]]]]:
        return sorted(self._actions.items())

    def digest(self) -> str:
        encoded = json.dumps(self.ordered(), separators=(",", ":"), sort_keys=True)
        return hashlib.sha256(encoded.encode()).hexdigest()
