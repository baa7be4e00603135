"""Split the cost of one JSON-RPC request over HTTP between the client and the chain node,
for httpx and for the standard library's `http.client`.

The method is `eth_chainId`, which costs py-evm nothing, so the numbers are transport
cost. Per request the script reports wall time, the CPU time of this process (the client,
including its system calls) and the CPU time of the node process, read from
/proc/PID/stat. Linux only.

Usage: .venv/bin/python bench/bench_http_clients.py [--count 3000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from bench_node import JSON, check_reply, request, start_node


def process_cpu_seconds(pid: int) -> float:
    """Return the user plus system CPU time of process `pid`, in seconds."""
    # Fields after the parenthesized command name; utime and stime are the 12th and 13th.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def httpx_sender(url: str, body: str) -> Callable[[int], None]:
    client = httpx.Client(headers=JSON)

    def send(count: int) -> None:
        for _ in range(count):
            check_reply(client.post(url, content=body).content)

    return send


def http_client_sender(url: str, body: str) -> Callable[[int], None]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port)

    def send(count: int) -> None:
        # The server may have closed the idle keep-alive connection since the last round.
        connection.close()
        for _ in range(count):
            connection.request("POST", "/", body, JSON)
            check_reply(connection.getresponse().read())

    return send


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3000, help="requests per client and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the clients take turns in each")
    args = parser.parse_args()
    if args.count < 1 or args.rounds < 1:
        parser.error(f"--count and --rounds must be at least 1, got {args.count} and {args.rounds}")

    with tempfile.TemporaryDirectory() as folder:
        process = start_node(Path(folder) / "ready.json")
        try:
            url = json.loads((Path(folder) / "ready.json").read_text())["http"]
            body = request("eth_chainId", [], 1)
            senders = {"httpx": httpx_sender(url, body), "http.client": http_client_sender(url, body)}
            samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in senders}
            for _ in range(args.rounds):
                for name, send in senders.items():
                    samples[name].append(measure(send, args.count, process.pid))
        finally:
            process.terminate()
            process.wait(timeout=10)

    print(f"{args.count} eth_chainId requests per client and round, {args.rounds} rounds, median µs per request")
    print(f"{'client':<12} {'wall':>8} {'client CPU':>11} {'node CPU':>9}")
    for name, rows in samples.items():
        wall, client_cpu, node_cpu = (statistics.median(column) for column in zip(*rows))
        print(f"{name:<12} {wall:>8.1f} {client_cpu:>11.1f} {node_cpu:>9.1f}")


def measure(send: Callable[[int], None], count: int, node_pid: int) -> tuple[float, float, float]:
    """Return wall, client CPU and node CPU microseconds per request for `count` requests."""
    node_started = process_cpu_seconds(node_pid)
    wall_started, cpu_started = time.perf_counter(), time.process_time()
    send(count)
    wall = time.perf_counter() - wall_started
    client_cpu = time.process_time() - cpu_started
    node_cpu = process_cpu_seconds(node_pid) - node_started
    return wall / count * 1e6, client_cpu / count * 1e6, node_cpu / count * 1e6


if __name__ == "__main__":
    main()
