"""The configuration every platform service reads from one JSON file (`--config`)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


class ConfigError(Exception):
    """A platform configuration file is missing, unreadable or incomplete."""


@dataclass(frozen=True)
class Deployment:
    """Addresses of the deployed contracts and the block the platform starts reading at."""

    chain_id: int
    token: str
    sportsbook: str
    oracle: str
    start_block: int


@dataclass(frozen=True)
class PlatformConfig:
    """Everything a platform service needs to find the chain, the database and its peers."""

    rpc_url: str
    ws_url: str
    db_url: str
    deployment: Deployment
    operator_key: str
    odds_signer_key: str
    guardian_key: str
    admin_token: str
    redis_url: str | None = None
    """None selects the embedded fakeredis."""
    host: str = "127.0.0.1"
    api_port: int = 8000
    chainapi_port: int = 8001
    monitors_port: int = 8002
    gateway_port: int = 8003
    trusted_proxies: list[str] = field(default_factory=list)
    """Addresses or CIDR networks whose `X-Forwarded-For` header the gateway believes."""
    security: dict[str, int] = field(default_factory=dict)
    """Overrides of the gateway's limits by name (see `wagerlab.platform.gateway.limits`)."""
    forensic_log_path: str | None = None
    """JSONL file of the gateway's forensic log; None keeps it next to a SQLite database."""
    odds_ttl_seconds: int = 30
    cache_strategy: str = "ttl-broadcast"
    """How the api caches odds: none, ttl, ttl-broadcast, xfetch, coalesce or two-tier."""
    stream_port: int = 8004
    quote_ttl_seconds: int = 120
    token_ttl_seconds: int = 3600
    confirmations: int = 0
    log_chunk_blocks: int = 2000
    reconcile_interval_seconds: float = 30.0
    """Seconds between the reconciliation rounds of the monitors process; 0 turns them off."""
    alert_webhook_url: str | None = None
    monitor_alert_after_seconds: float = 30.0
    """Seconds a monitor may stay unhealthy (backing off, connecting) before a `monitor_down` alert."""
    """URL that receives every alert as a JSON POST; None only stores and logs alerts."""
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    @property
    def chainapi_url(self) -> str:
        return f"http://{self.host}:{self.chainapi_port}"

    @property
    def gateway_url(self) -> str:
        return f"http://{self.host}:{self.gateway_port}"

    @property
    def stream_url(self) -> str:
        return f"ws://{self.host}:{self.stream_port}/stream"

    @property
    def monitors_url(self) -> str:
        return f"http://{self.host}:{self.monitors_port}"

    def dump(self, path: Path) -> None:
        """Write the configuration as JSON, readable only by its owner because it contains keys."""
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        path.chmod(0o600)

    @classmethod
    def load(cls, path: Path) -> PlatformConfig:
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError as err:
            raise ConfigError(f"platform config {str(path)!r} not found: pass the file `wagerlab run` wrote") from err
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ConfigError(f"platform config {str(path)!r} is not valid JSON: {err}") from err
        except OSError as err:
            raise ConfigError(f"platform config {str(path)!r} cannot be read: {err.strerror}") from err
        if not isinstance(data, dict) or not isinstance(data.get("deployment"), dict):
            raise ConfigError(f"platform config {str(path)!r} must be a JSON object with a deployment object, as `wagerlab run` writes")
        try:
            data["deployment"] = Deployment(**data["deployment"])
            return cls(**data)
        except (KeyError, TypeError) as err:
            raise ConfigError(f"platform config {str(path)!r} is incomplete or has unknown keys: {err}") from err
