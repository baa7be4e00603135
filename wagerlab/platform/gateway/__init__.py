"""The gateway: the one HTTP entry point in front of the api and chainapi.

It proxies by path and applies per-IP and per-account rate limits. It blocks flooding IPs
for a while and locks accounts after repeated failed logins. It writes every request to
the forensic log, and it queues bet and claim submissions that failed because chainapi
was down.
"""

from wagerlab.platform.gateway.app import build_gateway_app, run_gateway

__all__ = ["build_gateway_app", "run_gateway"]
