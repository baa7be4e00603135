"""The gateway: routing, rate limits, X-Forwarded-For, the forensic log and the retry queue."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from eth_account import Account
from gateway_fixtures import ADMIN, PASSWORD, StandInApi, make_gateway

from wagerlab.platform.gateway.forensics import ForensicLog, ForensicLogError, ForensicQuery, read_entries, verify_chain
from wagerlab.platform.gateway.limits import GatewayLimits, LimitsError

pytestmark = pytest.mark.anyio


def signed_transaction(nonce: int = 0) -> str:
    tx = {"to": "0x5B5B5b5B5b5B5B5b5B5B5b5b5B5B5B5b5B5B5b5b", "value": 0, "gas": 100_000, "gasPrice": 1, "nonce": nonce, "chainId": 1}
    return "0x" + bytes(Account.from_key("0x" + "11" * 32).sign_transaction(tx).raw_transaction).hex()


async def test_gateway_routes_api_paths(tmp_path: Path) -> None:
    harness = make_gateway(tmp_path)
    async with harness.client() as client:
        markets = await client.get("/api/markets")
        unknown = await client.get("/nowhere")
        health = await client.get("/gateway/health")

    assert markets.status_code == 200
    assert markets.json() == []
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "not_found"
    assert health.json() == {"status": "ok"}


async def test_gateway_chainapi_paths_need_admin(tmp_path: Path) -> None:
    harness = make_gateway(tmp_path)
    async with harness.client() as client:
        response = await client.post("/transactions", json={"kind": "operator", "function": "pause", "args": []})

    assert response.status_code == 401
    assert "admin token" in response.json()["detail"]


async def test_gateway_ip_limit_rejects_over_limit(tmp_path: Path) -> None:
    harness = make_gateway(tmp_path, security={"ip_requests": 3, "ip_block_requests": 100})
    async with harness.client("203.0.113.1") as flooder, harness.client("203.0.113.2") as neighbour:
        statuses = [(await flooder.get("/api/markets")).status_code for _ in range(5)]
        limited = await flooder.get("/api/markets")
        other = await neighbour.get("/api/markets")

    assert statuses == [200, 200, 200, 429, 429]
    assert limited.json()["error"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1
    assert other.status_code == 200
    assert harness.alerts("ip_flood") == []


async def test_gateway_flood_blocks_ip_until_expiry(tmp_path: Path) -> None:
    harness = make_gateway(tmp_path, security={"ip_requests": 2, "ip_block_requests": 4, "ip_block_seconds": 1, "window_seconds": 1})
    async with harness.client("203.0.113.9") as flooder:
        for _ in range(4):
            await flooder.get("/api/markets")
        blocked = await flooder.get("/api/markets")
        await asyncio.sleep(2.1)
        after_expiry = await flooder.get("/api/markets")

    assert blocked.status_code == 403
    assert blocked.json()["error"] == "ip_blocked"
    assert after_expiry.status_code == 200
    alerts = harness.alerts("ip_flood")
    assert len(alerts) == 1
    assert "203.0.113.9" in alerts[0].detail


async def test_gateway_admin_unblocks_ip(tmp_path: Path) -> None:
    harness = make_gateway(tmp_path, security={"ip_requests": 1, "ip_block_requests": 2, "ip_block_seconds": 600})
    async with harness.client("203.0.113.9") as flooder, harness.client("192.0.2.1") as admin:
        for _ in range(3):
            await flooder.get("/api/markets")
        assert (await flooder.get("/api/markets")).status_code == 403
        unblocked = await admin.delete("/gateway/admin/blocks/203.0.113.9", headers=ADMIN)
        after = await flooder.get("/api/markets")

    assert unblocked.json() == {"ip": "203.0.113.9", "was_blocked": True}
    assert after.status_code == 200


async def test_gateway_ignores_xff_from_untrusted_peer(tmp_path: Path) -> None:
    harness = make_gateway(tmp_path, security={"ip_requests": 2, "ip_block_requests": 100})
    async with harness.client("203.0.113.5") as spoofer:
        statuses = [
            (await spoofer.get("/api/markets", headers={"X-Forwarded-For": f"10.9.0.{index}"})).status_code for index in range(4)
        ]

    assert statuses == [200, 200, 429, 429]
    assert {entry["ip"] for entry in read_entries(harness.log_path)} == {"203.0.113.5"}
    assert harness.upstream.seen_forwarded_for == ["203.0.113.5", "203.0.113.5"]


async def test_gateway_honours_xff_from_trusted_proxy(tmp_path: Path) -> None:
    harness = make_gateway(tmp_path, trusted_proxies=["10.0.0.0/8"], security={"ip_requests": 2, "ip_block_requests": 100})
    async with harness.client("10.0.0.2") as proxy:
        statuses = [
            (await proxy.get("/api/markets", headers={"X-Forwarded-For": f"198.51.100.{index}, 10.0.0.3"})).status_code
            for index in range(4)
        ]

    assert statuses == [200, 200, 200, 200]
    assert [entry["ip"] for entry in read_entries(harness.log_path)] == [f"198.51.100.{index}" for index in range(4)]


async def test_gateway_account_limit_counts_per_token(tmp_path: Path) -> None:
    harness = make_gateway(tmp_path, security={"account_requests": 2})
    async with harness.client() as client:
        token = (await client.post("/api/login", json={"username": "alice", "password": PASSWORD})).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        statuses = [(await client.get("/api/markets", headers=headers)).status_code for _ in range(3)]
        anonymous = await client.get("/api/markets")

    assert statuses == [200, 200, 429]
    assert anonymous.status_code == 200
    assert len(harness.alerts("account_rate_limited")) == 1


async def test_forensic_log_redacts_and_filters(tmp_path: Path) -> None:
    harness = make_gateway(tmp_path)
    async with harness.client("203.0.113.1") as first, harness.client("203.0.113.2") as second:
        await first.post("/api/login", json={"username": "alice", "password": PASSWORD})
        await second.post("/api/login", json={"username": "bob", "password": "wrong password"})
        await second.get("/api/markets?page=2", headers={"Authorization": "Bearer secret-token"})

    text = harness.log_path.read_text()
    assert PASSWORD not in text
    assert "wrong password" not in text
    assert "secret-token" not in text
    log = ForensicLog(harness.log_path)
    by_bob_ip = log.query(ForensicQuery(ip="203.0.113.2"))
    assert [entry["path"] for entry in by_bob_ip] == ["/api/login", "/api/markets"]
    assert by_bob_ip[0]["body"] == {"username": "bob", "password": "[redacted]"}
    assert by_bob_ip[0]["outcome"] == "login_failed"
    assert by_bob_ip[1]["query"] == {"page": "2"}
    assert by_bob_ip[1]["headers"]["authorization"].startswith("sha256:")
    assert [entry["ip"] for entry in log.query(ForensicQuery(account="alice"))] == ["203.0.113.1"]
    assert log.query(ForensicQuery(since=by_bob_ip[1]["at"])) == [by_bob_ip[1]]
    assert verify_chain(harness.log_path) == 3


def test_forensic_log_detects_edits(tmp_path: Path) -> None:
    path = tmp_path / "forensics.jsonl"
    log = ForensicLog(path)
    for index in range(3):
        log.append({"ip": "192.0.2.1", "path": f"/api/{index}", "account": None})
    lines = path.read_text().splitlines()

    edited = json.loads(lines[1])
    edited["ip"] = "192.0.2.99"
    path.write_text("\n".join([lines[0], json.dumps(edited), lines[2]]) + "\n")
    with pytest.raises(ForensicLogError, match="entry 2 does not match its hash"):
        verify_chain(path)

    path.write_text("\n".join([lines[0], lines[2]]) + "\n")
    with pytest.raises(ForensicLogError, match="entry 2 does not follow entry 1"):
        verify_chain(path)


def test_forensic_log_continues_chain_after_restart(tmp_path: Path) -> None:
    path = tmp_path / "forensics.jsonl"
    ForensicLog(path).append({"ip": "192.0.2.1"})
    ForensicLog(path).append({"ip": "192.0.2.2"})

    assert verify_chain(path) == 2


async def test_gateway_queues_bet_while_chainapi_down(tmp_path: Path) -> None:
    upstream = StandInApi(down=True)
    harness = make_gateway(tmp_path, upstream=upstream, security={"retry_base_delay_ms": 20, "retry_max_delay_ms": 50, "retry_inline_wait_ms": 1})
    raw = signed_transaction()
    async with harness.client() as client:
        first = await client.post("/api/bets", json={"raw_transaction": raw})
        second = await client.post("/api/bets", json={"raw_transaction": raw})
        await asyncio.sleep(0.2)
        upstream.down = False
        job = harness.app.state.gateway.retries.jobs[first.json()["idempotency_key"]]
        await asyncio.wait_for(job.done.wait(), timeout=10)
        status = await client.get(first.json()["retry_url"], headers=ADMIN)
        again = await client.post("/api/bets", json={"raw_transaction": raw})

    assert first.status_code == 202
    assert first.json()["status"] == "queued"
    assert second.json()["idempotency_key"] == first.json()["idempotency_key"]
    assert status.json()["status"] == "sent"
    assert status.json()["response"]["tx_hash"] == first.json()["tx_hash"]
    assert status.json()["attempts"] >= 2
    assert upstream.bets == [first.json()["tx_hash"]]
    assert again.json()["tx_id"] == "1"


async def test_gateway_gives_up_after_retry_attempts(tmp_path: Path) -> None:
    upstream = StandInApi(down=True)
    harness = make_gateway(tmp_path, upstream=upstream, security={"retry_attempts": 2, "retry_base_delay_ms": 10, "retry_inline_wait_ms": 1})
    async with harness.client() as client:
        queued = (await client.post("/api/bets", json={"raw_transaction": signed_transaction(1)})).json()
        job = harness.app.state.gateway.retries.jobs[queued["idempotency_key"]]
        await asyncio.wait_for(job.done.wait(), timeout=10)

    assert job.status.value == "failed"
    assert job.attempts == 2
    assert upstream.bets == []


async def test_gateway_answers_after_quick_retry(tmp_path: Path) -> None:
    upstream = StandInApi(fail_next=1)
    harness = make_gateway(tmp_path, upstream=upstream, security={"retry_base_delay_ms": 10, "retry_inline_wait_ms": 30_000})
    async with harness.client() as client:
        response = await client.post("/api/bets", json={"raw_transaction": signed_transaction(2)})

    assert response.status_code == 202
    assert response.json()["tx_id"] == "1"
    assert [entry["outcome"] for entry in read_entries(harness.log_path)] == ["retried"]


async def test_gateway_does_not_queue_body_without_transaction(tmp_path: Path) -> None:
    harness = make_gateway(tmp_path, upstream=StandInApi(down=True))
    async with harness.client() as client:
        response = await client.post("/api/bets", json={"raw_transaction": "not hex"})

    assert response.status_code == 503
    assert harness.app.state.gateway.retries.jobs == {}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"ip_requestz": 5}, "unknown security limits"),
        ({"ip_requests": 0}, "must be a positive integer"),
        ({"ip_requests": True}, "must be a positive integer"),
        ({"ip_requests": 10, "ip_block_requests": 5}, "must be at least ip_requests"),
    ],
)
def test_limits_reject_invalid_overrides(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(LimitsError, match=message):
        GatewayLimits.from_overrides(overrides)
