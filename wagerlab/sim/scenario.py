"""Scenario files: TOML, validated whole before anything starts.

The format is documented in docs/SCENARIOS.md. Every problem is reported as one
`ScenarioError` naming the file, the key and what was expected.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wagerlab.odds import MAX_DB_AMOUNT, ODDS_SCALE, decimal_odds_to_fixed

VOID_RESULT = "void"
MAX_OUTCOMES = 8


MAX_SHOWN_VALUE = 120
"""Longest rendering of an offending value in an error message, so the message stays one readable line."""
SCENARIO_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
"""A scenario name becomes part of the default output folder, so it may not contain a path."""
MAX_MARKET_NAME = 200
MAX_OUTCOME_NAME = 100


class ScenarioError(Exception):
    """A scenario file is missing, malformed or contains an invalid value."""

    def __init__(self, path: Path | str, key: str, expected: str, got: object = None, *, show_got: bool = True):
        self.path = str(path)
        self.key = key
        self.expected = expected
        message = f"{self.path}: key {key!r}: expected {expected}"
        if show_got:
            shown = repr(got)
            message += f", got {shown if len(shown) <= MAX_SHOWN_VALUE else shown[:MAX_SHOWN_VALUE] + '...'}"
        super().__init__(message)

    @classmethod
    def unreadable(cls, path: Path | str, problem: str) -> ScenarioError:
        """Build the error for a file that cannot be read or parsed at all."""
        error = cls(path, "", problem, show_got=False)
        error.args = (f"{path}: {problem}",)
        return error


@dataclass(frozen=True)
class MarketSpec:
    market_id: int
    name: str
    outcomes: tuple[str, ...]
    odds: tuple[int, ...]
    liability_cap: int
    result: int | str
    """An outcome index, `"random"` (drawn from the seed) or `"void"`."""


@dataclass(frozen=True)
class BettorSpec:
    count: int
    faucet: int
    deposit: int
    bets_per_bettor: int
    stake_min: int
    stake_max: int
    odds_reads_per_bet: int
    concurrency: int


@dataclass(frozen=True)
class OddsFeedSpec:
    moves: int
    max_change_bps: int
    """Largest change of one odds value in one move, in basis points."""


@dataclass(frozen=True)
class OracleSpec:
    dissent: bool
    """When true, one reporter votes for a wrong outcome on every market (a dispute)."""


@dataclass(frozen=True)
class PlatformSpec:
    confirmations: int = 0
    """Blocks a log must be buried under before the monitors apply it."""
    cache_strategy: str = "ttl-broadcast"
    """How the api caches odds (see `wagerlab.platform.cache`); `wagerlab run --strategy` sets it."""
    reconcile: bool = False
    """When true, the runner reconciles the database with the chain before checking invariants."""


@dataclass(frozen=True)
class FaultSpec:
    kind: str
    at: str
    """Phase after which the fault is injected."""
    options: dict[str, int] = field(default_factory=dict)
    """The kind's integer parameters (depth, seconds, percentages); see `wagerlab.sim.faults.FAULT_OPTIONS`."""


@dataclass(frozen=True)
class GatewaySpec:
    trusted_proxies: tuple[str, ...] = ()
    limits: dict[str, int] = field(default_factory=dict)
    """Overrides of `wagerlab.platform.gateway.limits.GatewayLimits` by field name."""


@dataclass(frozen=True)
class AttackSpec:
    kind: str
    at: str
    """Phase after which the attack runs."""
    options: dict[str, Any] = field(default_factory=dict)
    """The attack's own keys, checked by its actor in `wagerlab.sim.attacks`."""


@dataclass(frozen=True)
class Scenario:
    path: str
    name: str
    description: str
    seed: int
    house_funding: int
    markets: tuple[MarketSpec, ...]
    bettors: BettorSpec
    odds_feed: OddsFeedSpec
    oracle: OracleSpec
    faults: tuple[FaultSpec, ...] = field(default=())
    gateway: GatewaySpec = field(default_factory=GatewaySpec)
    attacks: tuple[AttackSpec, ...] = field(default=())
    platform: PlatformSpec = field(default=PlatformSpec())


PHASES = ("setup", "onboarding", "betting", "settlement", "claims")
MID_PHASES = ("mid-onboarding", "mid-betting", "mid-claims")
"""Fault times halfway through a phase, while actors and monitors are busy."""


class _Reader:
    """Typed access to one TOML table that reports errors with the full key path."""

    def __init__(self, path: Path, table: dict[str, Any], prefix: str, allowed: set[str]):
        self.path = path
        self.table = table
        self.prefix = prefix
        unknown = sorted(set(table) - allowed)
        if unknown:
            raise ScenarioError(path, self.key(unknown[0]), f"one of {sorted(allowed)}", show_got=False)

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def integer(self, name: str, *, default: int | None = None, minimum: int = 0, maximum: int = MAX_DB_AMOUNT) -> int:
        value = self.table.get(name, default)
        if value is None:
            raise ScenarioError(self.path, self.key(name), "an integer (the key is required)", show_got=False)
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise ScenarioError(self.path, self.key(name), f"an integer from {minimum} to {maximum}", value)
        return value

    def text(self, name: str, *, default: str | None = None, max_length: int = 1_000) -> str:
        value = self.table.get(name, default)
        if not isinstance(value, str) or not value.strip() or len(value) > max_length:
            raise ScenarioError(self.path, self.key(name), f"a non-empty string of at most {max_length} characters", value)
        return value

    def boolean(self, name: str, *, default: bool) -> bool:
        value = self.table.get(name, default)
        if not isinstance(value, bool):
            raise ScenarioError(self.path, self.key(name), "true or false", value)
        return value

    def table_of(self, name: str, allowed: set[str]) -> _Reader:
        value = self.table.get(name, {})
        if not isinstance(value, dict):
            raise ScenarioError(self.path, self.key(name), "a table", value)
        return _Reader(self.path, value, f"{self.key(name)}.", allowed)

    def array_of_tables(self, name: str) -> list[dict[str, Any]]:
        value = self.table.get(name, [])
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise ScenarioError(self.path, self.key(name), "an array of tables ([[" + name + "]])", value)
        return value


def load_scenario(path: Path | str) -> Scenario:
    """Read and validate a scenario file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ScenarioError.unreadable(path, "file not found; pass a scenario file such as scenarios/smoke.toml") from err
    except IsADirectoryError as err:
        raise ScenarioError.unreadable(path, "is a directory; pass a scenario file such as scenarios/smoke.toml") from err
    except OSError as err:
        raise ScenarioError.unreadable(path, f"cannot be read: {err.strerror}") from err
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ScenarioError.unreadable(path, f"not valid TOML: {err}") from err

    root = _Reader(path, data, "", {"scenario", "house", "markets", "gateway", "attacks", "bettors", "odds_feed", "oracle", "faults", "platform"})
    meta = root.table_of("scenario", {"name", "description", "seed"})
    house = root.table_of("house", {"funding"})
    markets = _load_markets(path, root.array_of_tables("markets"))
    return Scenario(
        path=str(path),
        name=_scenario_name(meta),
        description=meta.text("description", default="(no description)"),
        seed=meta.integer("seed", default=1),
        house_funding=house.integer("funding", minimum=1),
        markets=markets,
        bettors=_load_bettors(root.table_of("bettors", set(BettorSpec.__dataclass_fields__))),
        odds_feed=_load_odds_feed(root.table_of("odds_feed", {"moves", "max_change_bps"})),
        oracle=OracleSpec(dissent=root.table_of("oracle", {"dissent"}).boolean("dissent", default=False)),
        faults=_load_faults(path, root.array_of_tables("faults")),
        gateway=_load_gateway(path, data.get("gateway", {})),
        attacks=_load_attacks(path, root.array_of_tables("attacks")),
        platform=_load_platform(root.table_of("platform", {"confirmations", "reconcile"})),
    )


def _load_platform(reader: _Reader) -> PlatformSpec:
    return PlatformSpec(
        confirmations=reader.integer("confirmations", default=0, maximum=64),
        reconcile=reader.boolean("reconcile", default=False),
    )


def _load_markets(path: Path, tables: list[dict[str, Any]]) -> tuple[MarketSpec, ...]:
    if not tables:
        raise ScenarioError(path, "markets", "at least one [[markets]] table", show_got=False)
    markets: list[MarketSpec] = []
    seen: set[int] = set()
    for index, table in enumerate(tables):
        reader = _Reader(path, table, f"markets[{index}].", {"market_id", "name", "outcomes", "odds", "liability_cap", "result"})
        market_id = reader.integer("market_id", minimum=1)
        if market_id in seen:
            raise ScenarioError(path, reader.key("market_id"), "a market id not used by an earlier market", market_id)
        seen.add(market_id)
        outcomes = _string_list(reader, "outcomes")
        odds = _odds_list(reader, "odds", len(outcomes))
        markets.append(
            MarketSpec(
                market_id=market_id,
                name=reader.text("name", max_length=MAX_MARKET_NAME),
                outcomes=outcomes,
                odds=odds,
                liability_cap=reader.integer("liability_cap", minimum=1),
                result=_result(reader, len(outcomes)),
            )
        )
    return tuple(markets)


def _scenario_name(meta: _Reader) -> str:
    name = meta.text("name")
    if not SCENARIO_NAME.fullmatch(name):
        raise ScenarioError(meta.path, meta.key("name"), "1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit", name)
    return name


def _string_list(reader: _Reader, name: str) -> tuple[str, ...]:
    value = reader.table.get(name)
    valid = isinstance(value, list) and all(
        isinstance(item, str) and item.strip() and len(item) <= MAX_OUTCOME_NAME for item in value
    )
    if not valid or not 2 <= len(value) <= MAX_OUTCOMES:
        expected = f"a list of 2 to {MAX_OUTCOMES} outcome names of at most {MAX_OUTCOME_NAME} characters"
        raise ScenarioError(reader.path, reader.key(name), expected, value)
    return tuple(value)


def _odds_list(reader: _Reader, name: str, count: int) -> tuple[int, ...]:
    value = reader.table.get(name)
    expected = f"a list of {count} decimal odds strings greater than 1, like \"2.5\""
    if not isinstance(value, list) or len(value) != count or not all(isinstance(item, str) for item in value):
        raise ScenarioError(reader.path, reader.key(name), expected, value)
    try:
        odds = tuple(decimal_odds_to_fixed(item) for item in value)
    except ValueError as err:
        raise ScenarioError(reader.path, reader.key(name), expected, value) from err
    if any(not ODDS_SCALE < item <= MAX_DB_AMOUNT for item in odds):
        raise ScenarioError(reader.path, reader.key(name), expected + f" and at most {MAX_DB_AMOUNT // ODDS_SCALE}", value)
    return odds


def _result(reader: _Reader, outcome_count: int) -> int | str:
    value = reader.table.get("result", "random")
    if value in ("random", VOID_RESULT):
        return value
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < outcome_count:
        raise ScenarioError(
            reader.path, reader.key("result"), f"\"random\", \"void\" or an outcome index from 0 to {outcome_count - 1}", value
        )
    return value


def _load_bettors(reader: _Reader) -> BettorSpec:
    spec = BettorSpec(
        count=reader.integer("count", minimum=1, maximum=100_000),
        faucet=reader.integer("faucet", minimum=1, maximum=10_000_000_000),
        deposit=reader.integer("deposit", minimum=1),
        bets_per_bettor=reader.integer("bets_per_bettor", minimum=0, maximum=10_000),
        stake_min=reader.integer("stake_min", minimum=1),
        stake_max=reader.integer("stake_max", minimum=1),
        odds_reads_per_bet=reader.integer("odds_reads_per_bet", default=1, maximum=10_000),
        concurrency=reader.integer("concurrency", default=16, minimum=1, maximum=1_000),
    )
    if spec.deposit > spec.faucet:
        raise ScenarioError(reader.path, reader.key("deposit"), f"at most bettors.faucet ({spec.faucet})", spec.deposit)
    if spec.stake_max < spec.stake_min:
        raise ScenarioError(reader.path, reader.key("stake_max"), f"at least bettors.stake_min ({spec.stake_min})", spec.stake_max)
    if spec.stake_max * spec.bets_per_bettor > spec.deposit:
        raise ScenarioError(
            reader.path,
            reader.key("stake_max"),
            f"stake_max * bets_per_bettor at most the deposit ({spec.deposit}) so every bet is covered",
            spec.stake_max,
        )
    return spec


def _load_odds_feed(reader: _Reader) -> OddsFeedSpec:
    return OddsFeedSpec(
        moves=reader.integer("moves", default=0, maximum=100_000),
        max_change_bps=reader.integer("max_change_bps", default=1_000, minimum=1, maximum=5_000),
    )


def fault_kinds() -> list[str]:
    """Return the fault kinds a scenario may name, from the injectors' registry."""
    from wagerlab.sim.faults import INJECTORS

    return sorted(INJECTORS)


def _load_faults(path: Path, tables: list[dict[str, Any]]) -> tuple[FaultSpec, ...]:
    from wagerlab.sim.faults import FAULT_OPTIONS

    faults = []
    for index, table in enumerate(tables):
        kind = table.get("kind")
        if kind not in fault_kinds():
            raise ScenarioError(path, f"faults[{index}].kind", f"one of {fault_kinds()}", kind)
        ranges = FAULT_OPTIONS.get(kind, {})
        reader = _Reader(path, table, f"faults[{index}].", {"kind", "at", *ranges})
        at = reader.text("at", default="claims")
        if at not in PHASES + MID_PHASES:
            raise ScenarioError(path, reader.key("at"), f"one of {list(PHASES + MID_PHASES)}", at)
        options = {
            name: reader.integer(name, default=option.default, minimum=option.minimum, maximum=option.maximum)
            for name, option in ranges.items()
        }
        faults.append(FaultSpec(kind=kind, at=at, options=options))
    return tuple(faults)


def _load_gateway(path: Path, table: Any) -> GatewaySpec:
    from wagerlab.platform.gateway.client_ip import (
        TrustedProxyError,
        parse_trusted_proxies,
    )
    from wagerlab.platform.gateway.limits import GatewayLimits, LimitsError

    if not isinstance(table, dict):
        raise ScenarioError(path, "gateway", "a table", table)
    limits = {name: value for name, value in table.items() if name != "trusted_proxies"}
    proxies = table.get("trusted_proxies", [])
    if not isinstance(proxies, list) or not all(isinstance(item, str) for item in proxies):
        raise ScenarioError(path, "gateway.trusted_proxies", "a list of IP addresses or CIDR networks", proxies)
    try:
        parse_trusted_proxies(proxies)
        GatewayLimits.from_overrides(limits)
    except (TrustedProxyError, LimitsError) as err:
        raise ScenarioError(path, "gateway", str(err), show_got=False) from err
    return GatewaySpec(trusted_proxies=tuple(proxies), limits=limits)


def _load_attacks(path: Path, tables: list[dict[str, Any]]) -> tuple[AttackSpec, ...]:
    from wagerlab.sim.attacks import ATTACKS, AttackOptionsError

    attacks = []
    for index, table in enumerate(tables):
        prefix = f"attacks[{index}]."
        kind, at = table.get("kind"), table.get("at", "betting")
        if kind not in ATTACKS:
            raise ScenarioError(path, prefix + "kind", f"one of {sorted(ATTACKS)}", kind)
        if at not in PHASES:
            raise ScenarioError(path, prefix + "at", f"one of {list(PHASES)}", at)
        options = {name: value for name, value in table.items() if name not in ("kind", "at")}
        try:
            ATTACKS[kind].check_options(options)
        except AttackOptionsError as err:
            raise ScenarioError(path, prefix + err.key, err.expected, err.got) from err
        attacks.append(AttackSpec(kind=kind, at=at, options=options))
    return tuple(attacks)
