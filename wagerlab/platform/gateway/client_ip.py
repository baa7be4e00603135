"""The client address of a request, taking `X-Forwarded-For` only from trusted proxies."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable

logger = logging.getLogger(__name__)

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxyError(ValueError):
    """A `trusted_proxies` entry of the platform config is not an address or a CIDR network."""


def parse_trusted_proxies(entries: Iterable[str]) -> tuple[IpNetwork, ...]:
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as err:
            raise TrustedProxyError(
                f"trusted proxy {entry!r} is not an IP address or CIDR network such as '10.0.0.0/8'"
            ) from err
    return tuple(networks)


def _is_trusted(address: str, trusted: tuple[IpNetwork, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_ip(peer: str, forwarded_for: str | None, trusted: tuple[IpNetwork, ...]) -> str:
    """Return the address the request came from.

    The TCP peer is the client unless it is a trusted proxy. Then the header is read from
    the right, skipping trusted proxies, and the first other entry is the client, because
    only the entries appended by trusted proxies can be believed. An entry that is not an
    IP address ends the walk and the last trusted hop is used instead.
    """
    if not forwarded_for or not _is_trusted(peer, trusted):
        return peer

    hop = peer
    for entry in reversed([part.strip() for part in forwarded_for.split(",")]):
        try:
            ipaddress.ip_address(entry)
        except ValueError:
            logger.info("X-Forwarded-For entry %r from %s is not an IP address; using %s", entry[:64], peer, hop)
            return hop
        if not _is_trusted(entry, trusted):
            return entry
        hop = entry
    return hop
