"""The positional parameters of each JSON-RPC method the node serves.

anvil 1.7.1 rejects a request with more parameters than the method takes (-32602), and so
does the node, rather than ignore them. An ignored parameter would hide a client's
mistake, or a feature the node lacks, such as the state overrides of eth_call.
"""

from __future__ import annotations

from typing import Any, Final, Sequence

from wagerlab.chain.errors import InvalidParams

PARAMETERS: Final[dict[str, tuple[str, ...]]] = {
    "web3_clientVersion": (),
    "web3_sha3": ("data",),
    "net_version": (),
    "net_listening": (),
    "net_peerCount": (),
    "eth_chainId": (),
    "eth_syncing": (),
    "eth_blockNumber": (),
    "eth_accounts": (),
    "eth_coinbase": (),
    "eth_hashrate": (),
    "eth_gasPrice": (),
    "eth_maxPriorityFeePerGas": (),
    "eth_feeHistory": ("blockCount", "newestBlock", "rewardPercentiles"),
    "eth_getBalance": ("address", "block"),
    "eth_getTransactionCount": ("address", "block"),
    "eth_getCode": ("address", "block"),
    "eth_getStorageAt": ("address", "slot", "block"),
    "eth_call": ("transaction", "block"),
    "eth_estimateGas": ("transaction", "block"),
    "eth_sendTransaction": ("transaction",),
    "eth_sendRawTransaction": ("transaction",),
    "eth_getTransactionByHash": ("hash",),
    "eth_getTransactionReceipt": ("hash",),
    "eth_getBlockByNumber": ("block", "fullTransactions"),
    "eth_getBlockByHash": ("hash", "fullTransactions"),
    "eth_getLogs": ("filter",),
    "eth_getBlockTransactionCountByNumber": ("block",),
    "eth_getBlockTransactionCountByHash": ("hash",),
    "eth_getUncleCountByBlockNumber": ("block",),
    "eth_getUncleCountByBlockHash": ("hash",),
    "eth_getTransactionByBlockNumberAndIndex": ("block", "index"),
    "eth_getTransactionByBlockHashAndIndex": ("hash", "index"),
    "eth_getBlockReceipts": ("block",),
    "eth_newFilter": ("filter",),
    "eth_newBlockFilter": (),
    "eth_newPendingTransactionFilter": (),
    "eth_getFilterChanges": ("filterId",),
    "eth_getFilterLogs": ("filterId",),
    "eth_uninstallFilter": ("filterId",),
    "evm_mine": ("timestamp",),
    "evm_snapshot": (),
    "evm_revert": ("snapshotId",),
    "evm_increaseTime": ("seconds",),
    "evm_setNextBlockTimestamp": ("timestamp",),
    "evm_setAutomine": ("enabled",),
    "evm_setIntervalMining": ("seconds",),
    "anvil_mine": ("blocks", "interval"),
    "hardhat_mine": ("blocks", "interval"),
    "anvil_setBalance": ("address", "balance"),
    "hardhat_setBalance": ("address", "balance"),
    "anvil_reorg": ("depth", "txBlockPairs"),
    "anvil_impersonateAccount": ("address",),
    "hardhat_impersonateAccount": ("address",),
    "anvil_stopImpersonatingAccount": ("address",),
    "hardhat_stopImpersonatingAccount": ("address",),
    "anvil_autoImpersonateAccount": ("enabled",),
}


def check_param_count(method: str, params: Sequence[Any]) -> None:
    """Raise `InvalidParams` when `params` contains more values than `method` takes."""
    names = PARAMETERS[method]
    if len(params) <= len(names):
        return
    if names:
        takes = f"takes at most {len(names)} parameters ({', '.join(names)})"
    else:
        takes = "takes no parameters"
    extra = list(params[len(names):])
    raise InvalidParams(
        "params",
        f"{method} {takes} but got {len(params)}; remove the extra values {extra!r}",
    )
