"""The contract monitor: reads every new block over JSON-RPC and checks each platform transaction.

Rules and severities:

- `unexpected_selector` (warning): calldata whose 4-byte selector is no function of the contract;
- `gas_anomaly` (warning): gas used above `gas_factor_percent` of the mean learned for that
  function, after `gas_warmup_calls` successful calls;
- `unknown_caller` (info): a Sportsbook or ResultOracle call from an address that is neither a
  platform role nor a registered user;
- `revert_burst` (warning): `revert_burst` reverted platform transactions within
  `revert_window_blocks` blocks;
- `oracle_dispute` (warning): a reporter voted differently from the first vote on a market;
- `premature_result` (warning): a result was submitted for a market still open for betting;
- `drain_pattern` (critical): one transaction claimed the same bet twice on one book, or
  claimed more than one bet through a contract (a re-entered `claim`).

A critical finding pauses the Sportsbook, and every other watched contract with `pause()`,
through the guardian when `auto_pause` is 1.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_utils import to_checksum_address
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from web3 import HTTPProvider, Web3
from web3.exceptions import Web3Exception
from web3.logs import DISCARD as _DISCARD

from wagerlab.chain.accounts import dev_roles
from wagerlab.chain.compiler import load_artifacts
from wagerlab.chain.contracts import contract, transact
from wagerlab.platform.config import PlatformConfig
from wagerlab.platform.db import AlertSeverity, User
from wagerlab.platform.security.rules import Finding, GasBaseline, RevertBurst

logger = logging.getLogger(__name__)

AlertSink = Callable[[str, AlertSeverity, str], Awaitable[None]]
PAUSE_GAS = 200_000
BET_CLAIMED_TOPIC = Web3.keccak(text="BetClaimed(uint256,address,uint256)")
MARKET_OPEN = 1


@dataclass(frozen=True)
class MonitorSettings:
    poll_ms: int = 500
    gas_warmup_calls: int = 20
    gas_factor_percent: int = 300
    revert_burst: int = 5
    revert_window_blocks: int = 20
    auto_pause: bool = True


class ContractMonitor:
    """Follows the chain from the deployment's start block and raises alerts through `alert`."""

    def __init__(self, config: PlatformConfig, engine: Engine, alert: AlertSink, settings: MonitorSettings) -> None:
        self.config = config
        self.engine = engine
        self.alert = alert
        self.settings = settings
        self.w3 = Web3(HTTPProvider(config.rpc_url, request_kwargs={"timeout": 30}))
        deployment = config.deployment
        names = {"Sportsbook": deployment.sportsbook, "ResultOracle": deployment.oracle, "WagerToken": deployment.token}
        self.contracts = {to_checksum_address(address): name for name, address in names.items()}
        self.selectors = {name: self._selectors(name) for name in names}
        self.pausable: set[str] = {to_checksum_address(deployment.sportsbook)}
        self.sportsbook = contract(self.w3, "Sportsbook", deployment.sportsbook)
        self.oracle = contract(self.w3, "ResultOracle", deployment.oracle)
        roles = dev_roles()
        self.known_callers = {account.address for account in (roles.operator, roles.odds_signer, roles.guardian, roles.funder, *roles.reporters)}
        self.gas = GasBaseline(settings.gas_warmup_calls, settings.gas_factor_percent)
        self.reverts = RevertBurst(settings.revert_burst, settings.revert_window_blocks)
        self.next_block = deployment.start_block
        self.paused_by_monitor = False

    def watch(self, address: str, name: str) -> None:
        """Check transactions to another deployed contract too; `name` is its compiled contract name."""
        artifacts = load_artifacts()
        if name not in artifacts:
            raise ValueError(f"unknown contract {name!r}: expected one of {sorted(artifacts)}")
        address = to_checksum_address(address)
        self.contracts[address] = name
        self.selectors[name] = self._selectors(name)
        if any(item.get("name") == "pause" for item in artifacts[name].abi):
            self.pausable.add(address)
        logger.info("contract monitor now watches %s at %s", name, address)

    @staticmethod
    def _selectors(name: str) -> set[str]:
        abi = load_artifacts()[name].abi
        return {Web3.keccak(text=f"{item['name']}({','.join(_type(i) for i in item['inputs'])})")[:4].hex().removeprefix("0x")
                for item in abi if item.get("type") == "function"}

    async def run(self) -> None:
        """Check new blocks until cancelled; an RPC failure is logged and retried at the next poll."""
        logger.info("contract monitor started at block %d", self.next_block)
        while True:
            try:
                findings = await asyncio.to_thread(self.poll)
            except (Web3Exception, OSError, ValueError) as err:
                logger.error("contract monitor poll at block %d failed: %r", self.next_block, err)
                findings = []
            for finding in findings:
                await self.alert(finding.rule, finding.severity, finding.detail)
                if finding.severity == AlertSeverity.CRITICAL and self.settings.auto_pause:
                    await asyncio.to_thread(self.pause, finding)
            await asyncio.sleep(self.settings.poll_ms / 1000)

    def poll(self) -> list[Finding]:
        """Check every block from `next_block` to the head; return what the rules found."""
        findings: list[Finding] = []
        head = self.w3.eth.block_number
        while self.next_block <= head:
            block = self.w3.eth.get_block(self.next_block, full_transactions=True)
            for tx in block["transactions"]:
                findings += self.check_transaction(tx, block["number"])
            self.next_block += 1
        return findings

    def check_transaction(self, tx: Any, block_number: int) -> list[Finding]:
        receipt = self.w3.eth.get_transaction_receipt(tx["hash"])
        platform_logs = [log for log in receipt["logs"] if to_checksum_address(log["address"]) in self.contracts]
        target = to_checksum_address(tx["to"]) if tx["to"] else None
        name = self.contracts.get(target) if target else None
        if name is None and not platform_logs:
            return []

        findings: list[Finding] = []
        tx_hash = tx["hash"].hex()
        if name is not None:
            findings += self._check_call(name, tx, receipt, tx_hash)
        if receipt["status"] == 0:
            count = self.reverts.add(block_number)
            if count is not None:
                detail = f"{count} reverted platform transactions within {self.settings.revert_window_blocks} blocks, the last {tx_hash}"
                findings.append(Finding("revert_burst", AlertSeverity.WARNING, detail))
        findings += self._check_logs(platform_logs, target, tx_hash)
        return findings

    def _check_call(self, name: str, tx: Any, receipt: Any, tx_hash: str) -> list[Finding]:
        findings = []
        data = bytes(tx["input"])
        selector = data[:4].hex()
        if selector not in self.selectors[name]:
            findings.append(Finding("unexpected_selector", AlertSeverity.WARNING, f"{name} called with selector 0x{selector} by {tx['from']} in {tx_hash}"))
        elif receipt["status"] == 1 and self.gas.check((name, selector), receipt["gasUsed"]):
            mean = self.gas.means[(name, selector)]
            detail = f"{name} 0x{selector} used {receipt['gasUsed']} gas in {tx_hash}, mean {mean:.0f}"
            findings.append(Finding("gas_anomaly", AlertSeverity.WARNING, detail))
        if name != "WagerToken" and not self._is_known(tx["from"]):
            findings.append(Finding("unknown_caller", AlertSeverity.INFO, f"{name} called by unregistered {tx['from']} in {tx_hash}"))
        return findings

    def _is_known(self, address: str) -> bool:
        if address in self.known_callers:
            return True
        with Session(self.engine) as session:
            registered = session.exec(select(User.id).where(User.address == address)).first() is not None
        if registered:
            self.known_callers.add(address)
        return registered

    def _check_logs(self, logs: list[Any], target: str | None, tx_hash: str) -> list[Finding]:
        findings: list[Finding] = []
        claims: dict[str, Counter[int]] = {}
        for log in logs:
            address = to_checksum_address(log["address"])
            if log["topics"] and bytes(log["topics"][0]) == BET_CLAIMED_TOPIC:
                claims.setdefault(address, Counter())[int.from_bytes(bytes(log["topics"][1]), "big")] += 1
            elif address == self.oracle.address:
                findings += self._check_oracle_log(log, tx_hash)
        for address, counts in claims.items():
            drain = drain_finding(counts, target, address, tx_hash)
            if drain is not None:
                findings.append(drain)
        return findings

    def _check_oracle_log(self, log: Any, tx_hash: str) -> list[Finding]:
        findings = []
        for event in self.oracle.events.ResultDisputed().process_receipt({"logs": [log]}, errors=_DISCARD):
            args = event["args"]
            detail = f"reporter {args['reporter']} voted {args['outcome']} on market {args['marketId']}, the first vote was {args['firstOutcome']}"
            findings.append(Finding("oracle_dispute", AlertSeverity.WARNING, detail))
        for event in self.oracle.events.ResultSubmitted().process_receipt({"logs": [log]}, errors=_DISCARD):
            args = event["args"]
            status = self.sportsbook.functions.getMarket(args["marketId"]).call()[0]
            if status == MARKET_OPEN:
                detail = f"reporter {args['reporter']} submitted outcome {args['outcome']} for market {args['marketId']} while it is open, in {tx_hash}"
                findings.append(Finding("premature_result", AlertSeverity.WARNING, detail))
        return findings

    def pause(self, finding: Finding) -> None:
        """Pause every watched contract that has `pause()` with the guardian key, unless paused already."""
        guardian = Account.from_key(self.config.guardian_key)
        for address in sorted(self.pausable):
            target = contract(self.w3, self.contracts[address], address)
            if target.functions.paused().call():
                continue
            receipt = transact(self.w3, guardian, target.functions.pause(), gas=PAUSE_GAS)
            self.paused_by_monitor = True
            logger.critical(
                "paused %s at %s after %s (tx %s, status %s)",
                self.contracts[address], address, finding.rule, receipt["transactionHash"].hex(), receipt["status"],
            )


def drain_finding(claims: Counter[int], target: str | None, sportsbook: str, tx_hash: str) -> Finding | None:
    """Return a critical finding when one transaction claimed a bet twice, or several bets through a contract."""
    repeated = [bet_id for bet_id, count in claims.items() if count > 1]
    via_contract = target != sportsbook and sum(claims.values()) > 1
    if not repeated and not via_contract:
        return None
    detail = f"transaction {tx_hash} to {target} claimed bets {dict(claims)}: a re-entered claim draining the Sportsbook"
    return Finding("drain_pattern", AlertSeverity.CRITICAL, detail)


def _type(item: dict[str, Any]) -> str:
    """Return the canonical ABI type of an input, expanding tuples."""
    if item["type"].startswith("tuple"):
        return "(" + ",".join(_type(component) for component in item["components"]) + ")" + item["type"][len("tuple"):]
    return item["type"]

