"""The platform config that `wagerlab run` and `wagerlab up` both build with `platform_config`."""

from __future__ import annotations

import pytest
from web3 import HTTPProvider, Web3

from wagerlab.chain.accounts import dev_key
from wagerlab.platform.config import Deployment, PlatformConfig
from wagerlab.sim.chainsetup import ChainEndpoint, platform_config

# No request reaches this URL: building a config does not call the node.
HTTP_URL = "http://127.0.0.1:9"
WS_URL = "ws://127.0.0.1:9"
DEPLOYMENT = Deployment(chain_id=31337, token="0x" + "11" * 20, sportsbook="0x" + "22" * 20, oracle="0x" + "33" * 20, start_block=4)


@pytest.fixture
def chain() -> ChainEndpoint:
    return ChainEndpoint(Web3(HTTPProvider(HTTP_URL)), HTTP_URL, WS_URL)


def test_platform_config_shared_fields(chain: ChainEndpoint) -> None:
    config = platform_config(chain, DEPLOYMENT, db_url="sqlite:///x.db", redis_url=None)

    assert (config.rpc_url, config.ws_url) == (HTTP_URL, WS_URL)
    assert config.deployment == DEPLOYMENT
    assert config.db_url == "sqlite:///x.db"
    assert config.redis_url is None
    assert config.operator_key == dev_key(1)
    assert config.odds_signer_key == dev_key(2)
    assert config.guardian_key == dev_key(3)
    assert len(config.admin_token) >= 32


def test_platform_config_fresh_ports_and_token(chain: ChainEndpoint) -> None:
    first = platform_config(chain, DEPLOYMENT, db_url="sqlite:///x.db", redis_url=None)
    second = platform_config(chain, DEPLOYMENT, db_url="sqlite:///x.db", redis_url=None)

    ports = [first.api_port, first.chainapi_port, first.monitors_port, first.stream_port]
    assert len(set(ports)) == len(ports)
    assert first.admin_token != second.admin_token


def test_platform_config_gateway_port_default(chain: ChainEndpoint) -> None:
    """Without `gateway_port` the field keeps PlatformConfig's default, as `wagerlab up` starts no gateway."""
    config = platform_config(chain, DEPLOYMENT, db_url="sqlite:///x.db", redis_url=None)

    assert config.gateway_port == PlatformConfig.__dataclass_fields__["gateway_port"].default


def test_platform_config_passes_settings(chain: ChainEndpoint) -> None:
    config = platform_config(
        chain,
        DEPLOYMENT,
        db_url="postgresql+psycopg://postgres@127.0.0.1:5432/wagerlab",
        redis_url="redis://127.0.0.1:6379/7",
        gateway_port=18003,
        cache_strategy="xfetch",
        odds_ttl_seconds=5,
        confirmations=2,
    )

    assert config.redis_url == "redis://127.0.0.1:6379/7"
    assert config.gateway_port == 18003
    assert config.cache_strategy == "xfetch"
    assert config.odds_ttl_seconds == 5
    assert config.confirmations == 2


def test_platform_config_unknown_setting(chain: ChainEndpoint) -> None:
    with pytest.raises(TypeError, match="cache_stratgy"):
        platform_config(chain, DEPLOYMENT, db_url="sqlite:///x.db", redis_url=None, cache_stratgy="ttl")


def test_platform_config_fixed_field_rejected(chain: ChainEndpoint) -> None:
    """The shared fields cannot be overridden through `settings`: Python rejects the repeated keyword."""
    with pytest.raises(TypeError, match="api_port"):
        platform_config(chain, DEPLOYMENT, db_url="sqlite:///x.db", redis_url=None, api_port=8000)
