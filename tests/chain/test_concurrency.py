"""Several client threads sending transactions at once."""

from __future__ import annotations

import threading

from web3 import HTTPProvider, Web3
from chain_helpers import RunningNode

from wagerlab.chain.accounts import dev_account

SENDERS = (2, 3, 4)
PER_SENDER = 10


def send_signed(url: str, sender_index: int, hashes: list[bytes], errors: list[BaseException]) -> None:
    w3 = Web3(HTTPProvider(url))
    sender = dev_account(sender_index)
    try:
        start = w3.eth.get_transaction_count(sender.address, "pending")
        for offset in range(PER_SENDER):
            tx = {
                "to": dev_account(10).address,
                "value": 1,
                "gas": 21_000,
                "maxFeePerGas": 2 * 10**9,
                "maxPriorityFeePerGas": 10**9,
                "nonce": start + offset,
                "chainId": w3.eth.chain_id,
            }
            hashes.append(w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction))
    except BaseException as err:  # collected and re-raised by the test thread
        errors.append(err)


def send_unsigned(url: str, hashes: list[bytes], errors: list[BaseException]) -> None:
    w3 = Web3(HTTPProvider(url))
    try:
        for _ in range(PER_SENDER):
            tx = {"from": dev_account(6).address, "to": dev_account(10).address, "value": 1, "gas": 21_000}
            hashes.append(w3.eth.send_transaction(tx))
    except BaseException as err:
        errors.append(err)


def test_concurrent_senders_all_mined(running: RunningNode, w3: Web3) -> None:
    everyone = [dev_account(i).address for i in (*SENDERS, 6)]
    nonces_before = {address: w3.eth.get_transaction_count(address) for address in everyone}
    balance_before = w3.eth.get_balance(dev_account(10).address)
    first_block = w3.eth.block_number + 1
    hashes: list[bytes] = []
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=send_signed, args=(running.http_url, index, hashes, errors)) for index in SENDERS
    ]
    threads.append(threading.Thread(target=send_unsigned, args=(running.http_url, hashes, errors)))

    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    total = PER_SENDER * len(threads)
    assert len(hashes) == total
    receipts = [w3.eth.get_transaction_receipt(tx_hash) for tx_hash in hashes]
    assert all(receipt["status"] == 1 for receipt in receipts)
    # One transaction per block, each in a block of its own.
    assert sorted(receipt["blockNumber"] for receipt in receipts) == list(range(first_block, first_block + total))
    for address in everyone:
        assert w3.eth.get_transaction_count(address) == nonces_before[address] + PER_SENDER
    assert w3.eth.get_balance(dev_account(10).address) == balance_before + total
