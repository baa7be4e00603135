// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice The part of a sportsbook this attacker calls.
interface IClaimable {
    function claim(uint256 betId) external;
}

/// @title ClaimReentrancyAttacker
/// @notice A bettor contract used only by the reentrancy attack scenario. `attack` claims a
/// bet and then claims it again: from inside the payout callback when the book calls one
/// (re-entering `claim`), or right after the first claim when it does not.
contract ClaimReentrancyAttacker {
    address private immutable _owner;
    IClaimable private _book;
    uint256 private _reentriesLeft;
    uint256 public payoutsReceived;

    error ClaimReentrancyAttackerUnauthorized(address caller);

    constructor() {
        _owner = msg.sender;
    }

    /// @notice Claims `betId` on `book` and then `reentries` more times.
    function attack(address book, uint256 betId, uint256 reentries) external {
        if (msg.sender != _owner) revert ClaimReentrancyAttackerUnauthorized(msg.sender);
        _book = IClaimable(book);
        _reentriesLeft = reentries;
        _book.claim(betId);
        // A book without a payout callback gets the second claim here instead.
        if (_reentriesLeft == reentries && reentries > 0) {
            _reentriesLeft -= 1;
            _book.claim(betId);
        }
    }

    /// @notice Called by a book that notifies its contract bettors; re-enters `claim`.
    function onPayout(uint256 betId, uint256 payout) external {
        payoutsReceived += payout;
        if (_reentriesLeft > 0) {
            _reentriesLeft -= 1;
            _book.claim(betId);
        }
    }
}
