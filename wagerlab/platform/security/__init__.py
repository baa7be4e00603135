"""Security monitoring of the platform's contracts: every transaction to them, checked by rules."""

from wagerlab.platform.security.contract_monitor import ContractMonitor, MonitorSettings

__all__ = ["ContractMonitor", "MonitorSettings"]
