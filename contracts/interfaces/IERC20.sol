// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice The ERC-20 functions the Sportsbook calls on its token.
interface IERC20 {
    function transfer(address to, uint256 value) external returns (bool);

    function transferFrom(address from, address to, uint256 value) external returns (bool);
}
