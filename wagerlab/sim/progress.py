"""Live progress of a run on stderr: one bar per phase, fed from the actors' counters."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from wagerlab.sim.actors import World

REFRESH_SECONDS = 0.25


class ProgressView:
    def __init__(self, world: World, total_bets: int, *, enabled: bool):
        self.world = world
        self.enabled = enabled
        scenario = world.scenario
        self._progress = Progress(
            TextColumn("{task.description:<12}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            disable=not enabled,
        )
        self._tasks: dict[str, TaskID] = {}
        self._totals = {
            "setup": len(scenario.markets),
            "onboarding": scenario.bettors.count,
            "betting": total_bets,
            "settlement": len(scenario.markets),
            "claims": scenario.bettors.count,
        }
        self._current: str | None = None
        self._updater: asyncio.Task[None] | None = None

    def __enter__(self) -> ProgressView:
        self._progress.start()
        self._updater = asyncio.get_running_loop().create_task(self._update_forever())
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self._updater:
            self._updater.cancel()
        self._refresh(final=error is None)
        self._progress.stop()

    def phase(self, name: str) -> None:
        self._refresh(final=True)
        self._current = name
        self._tasks[name] = self._progress.add_task(name, total=self._totals[name])

    def _completed(self, name: str) -> int:
        counters = self.world.counters
        return {
            "setup": counters.markets_created,
            "onboarding": counters.deposits,
            "betting": counters.bets_placed,
            "settlement": counters.markets_settled,
            "claims": counters.claimers_done,
        }[name]

    def _refresh(self, *, final: bool = False) -> None:
        if self._current is None:
            return
        task = self._tasks[self._current]
        completed = self._totals[self._current] if final else self._completed(self._current)
        self._progress.update(task, completed=completed)

    async def _update_forever(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                self._refresh()
                await asyncio.sleep(REFRESH_SECONDS)
