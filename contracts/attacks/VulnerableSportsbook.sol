// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "../interfaces/IERC20.sol";

/// @notice Implemented by a bettor contract that wants to hear about its payouts.
interface IPayoutReceiver {
    function onPayout(uint256 betId, uint256 payout) external;
}

/// @title VulnerableSportsbook
/// @notice DELIBERATELY VULNERABLE. Only the reentrancy attack scenario deploys it, to show
/// that the contract monitor detects a drain and the guardian pauses. It pays winning bets
/// in tokens and notifies a contract bettor before it marks the bet claimed, with no
/// reentrancy guard, so the bettor can re-enter `claim` and be paid again and again.
/// Never deploy it for anything else.
contract VulnerableSportsbook {
    struct Bet {
        address bettor;
        uint256 payout;
        bool claimed;
    }

    IERC20 private immutable _token;
    address private immutable _operator;
    address private immutable _guardian;
    bool private _paused;
    mapping(uint256 betId => Bet) private _bets;

    event WinningBetRecorded(uint256 indexed betId, address indexed bettor, uint256 payout);
    event BetClaimed(uint256 indexed betId, address indexed bettor, uint256 payout);
    event Paused(address account);

    error VulnerableSportsbookUnauthorized(address caller, address expected);
    error VulnerableSportsbookEnforcedPause();
    error VulnerableSportsbookAlreadyClaimed(uint256 betId);
    error VulnerableSportsbookTransferFailed();

    constructor(address token_, address guardian_) {
        _token = IERC20(token_);
        _operator = msg.sender;
        _guardian = guardian_;
    }

    /// @notice Records a settled winning bet. Requirements: the caller is the operator.
    function recordWinningBet(uint256 betId, address bettor, uint256 payout) external {
        if (msg.sender != _operator) revert VulnerableSportsbookUnauthorized(msg.sender, _operator);
        _bets[betId] = Bet(bettor, payout, false);
        emit WinningBetRecorded(betId, bettor, payout);
    }

    /// @notice Pays a winning bet. The flaw: the bettor is called and paid before `claimed` is set.
    function claim(uint256 betId) external {
        if (_paused) revert VulnerableSportsbookEnforcedPause();
        Bet storage bet = _bets[betId];
        if (msg.sender != bet.bettor) revert VulnerableSportsbookUnauthorized(msg.sender, bet.bettor);
        if (bet.claimed) revert VulnerableSportsbookAlreadyClaimed(betId);

        if (!_token.transfer(bet.bettor, bet.payout)) revert VulnerableSportsbookTransferFailed();
        emit BetClaimed(betId, bet.bettor, bet.payout);
        if (bet.bettor.code.length > 0) {
            IPayoutReceiver(bet.bettor).onPayout(betId, bet.payout);
        }
        bet.claimed = true;
    }

    /// @notice Stops `claim`. Requirements: the caller is the guardian.
    function pause() external {
        if (msg.sender != _guardian) revert VulnerableSportsbookUnauthorized(msg.sender, _guardian);
        _paused = true;
        emit Paused(msg.sender);
    }

    function paused() external view returns (bool) {
        return _paused;
    }

    function token() external view returns (address) {
        return address(_token);
    }
}
