// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice The Sportsbook functions the ResultOracle calls once a result reaches quorum.
interface ISettlement {
    function settleMarket(uint256 marketId, uint8 winningOutcome) external;

    function voidMarket(uint256 marketId) external;
}
