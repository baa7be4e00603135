// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// A small contract for the chain node's tests: events with indexed topics, a custom
/// error, an `Error(string)` revert, storage writes and the block timestamp.
contract Probe {
    error ProbeRejected(uint256 value, address caller);

    event Stored(uint256 indexed key, address indexed sender, uint256 value);
    event Pinged(bytes32 indexed tag);

    mapping(uint256 => uint256) public values;
    uint256 public total;

    function store(uint256 key, uint256 value) external {
        values[key] = value;
        total += value;
        emit Stored(key, msg.sender, value);
    }

    function ping(bytes32 tag) external {
        emit Pinged(tag);
    }

    function rejectCustom(uint256 value) external view returns (uint256) {
        revert ProbeRejected(value, msg.sender);
    }

    function rejectString() external pure {
        require(false, "probe rejected");
    }

    function storeThenReject(uint256 value) external {
        total += value;
        revert ProbeRejected(value, msg.sender);
    }

    function currentTime() external view returns (uint256) {
        return block.timestamp;
    }
}
