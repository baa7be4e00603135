"""wagerlab: run a whole Ethereum sports-betting platform on one machine."""

__version__ = "0.1.0"
