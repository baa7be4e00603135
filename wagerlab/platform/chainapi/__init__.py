"""The blockchain interaction service: relays bettors' transactions and sends the platform's own."""

from wagerlab.platform.chainapi.routes import OPERATOR_FUNCTIONS, ChainapiContext, Signer, routes

__all__ = ["OPERATOR_FUNCTIONS", "ChainapiContext", "Signer", "routes"]
