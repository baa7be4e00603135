// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice A test token that calls back into a target during `transfer` and `transferFrom`,
/// to check the Sportsbook's reentrancy guard. It re-raises the callback's revert data.
contract ReentrantToken {
    mapping(address account => uint256) public balanceOf;
    address private _target;
    bytes private _callback;

    function mint(address to, uint256 amount) external {
        balanceOf[to] += amount;
    }

    /// @notice Makes every later transfer call `target` with `callback` first.
    function arm(address target, bytes calldata callback) external {
        _target = target;
        _callback = callback;
    }

    function approve(address, uint256) external pure returns (bool) {
        return true;
    }

    function transfer(address to, uint256 value) external returns (bool) {
        _reenter();
        balanceOf[msg.sender] -= value;
        balanceOf[to] += value;
        return true;
    }

    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        _reenter();
        balanceOf[from] -= value;
        balanceOf[to] += value;
        return true;
    }

    function _reenter() private {
        if (_target == address(0)) {
            return;
        }
        (bool ok, bytes memory data) = _target.call(_callback);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(data, 32), mload(data))
            }
        }
    }
}
