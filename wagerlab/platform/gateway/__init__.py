"""The gateway: the one HTTP entry point in front of the api and chainapi.

It proxies by path, applies per-IP and per-account rate limits, blocks flooding IPs for a
while, locks accounts after repeated failed logins, writes every request to the forensic
log, and queues bet and claim submissions that failed because chainapi was down.
"""

from wagerlab.platform.gateway.app import build_gateway_app, run_gateway

__all__ = ["build_gateway_app", "run_gateway"]
