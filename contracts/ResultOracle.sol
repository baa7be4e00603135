// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ISettlement} from "./interfaces/ISettlement.sol";

/// @title ResultOracle
/// @notice Collects result votes from reporters and settles (or voids) a Sportsbook market
/// once one outcome reaches `quorum` votes.
contract ResultOracle {
    /// @notice The outcome value that votes to void a market.
    uint8 public constant VOID_OUTCOME = 255;

    /// @notice The Sportsbook this oracle settles.
    ISettlement public immutable sportsbook;

    /// @notice The account that manages reporters and the quorum.
    address public immutable owner;

    uint8 private _quorum;
    uint256 private _reporterCount;
    mapping(address reporter => bool) private _isReporter;
    mapping(uint256 marketId => mapping(uint8 outcome => uint256)) private _votes;
    mapping(uint256 marketId => mapping(address reporter => uint16)) private _reports;
    mapping(uint256 marketId => uint16) private _firstReport;
    mapping(uint256 marketId => uint16) private _finalReport;

    event ResultSubmitted(uint256 indexed marketId, address indexed reporter, uint8 outcome, uint256 votes);
    event ResultDisputed(uint256 indexed marketId, address indexed reporter, uint8 outcome, uint8 firstOutcome);
    event ResultFinalized(uint256 indexed marketId, uint8 outcome);
    event ReporterAdded(address reporter);
    event ReporterRemoved(address reporter);
    event QuorumChanged(uint8 quorum);

    error ResultOracleUnauthorized(address caller);
    error ResultOracleAlreadyReported(uint256 marketId, address reporter);
    error ResultOracleAlreadyFinalized(uint256 marketId, uint8 outcome);
    error ResultOracleInvalidQuorum(uint8 quorum, uint256 reporterCount);

    modifier onlyOwner() {
        if (msg.sender != owner) {
            revert ResultOracleUnauthorized(msg.sender);
        }
        _;
    }

    /// @param sportsbook_ The Sportsbook whose markets this oracle settles.
    /// @param quorum_ The number of equal votes that finalizes a result.
    /// @param reporters_ The initial reporters; duplicates count once.
    /// Requirements:
    /// - `quorum_` is between 1 and the number of distinct reporters.
    constructor(address sportsbook_, uint8 quorum_, address[] memory reporters_) {
        sportsbook = ISettlement(sportsbook_);
        owner = msg.sender;
        for (uint256 i = 0; i < reporters_.length; ++i) {
            _addReporter(reporters_[i]);
        }
        _setQuorum(quorum_);
    }

    /// @notice Records the caller's vote that market `marketId` ended with `outcome`
    /// (`VOID_OUTCOME` to void it). The vote that brings an outcome to `quorum` settles or
    /// voids the market on the Sportsbook, and reverts with the Sportsbook's error when the
    /// Sportsbook rejects that, e.g. while betting is still open.
    /// Requirements:
    /// - the caller is a reporter and has not voted on this market.
    /// - the market's result is not finalized.
    function submitResult(uint256 marketId, uint8 outcome) external {
        if (!_isReporter[msg.sender]) {
            revert ResultOracleUnauthorized(msg.sender);
        }
        uint16 finalReport = _finalReport[marketId];
        if (finalReport != 0) {
            revert ResultOracleAlreadyFinalized(marketId, uint8(finalReport - 1));
        }
        if (_reports[marketId][msg.sender] != 0) {
            revert ResultOracleAlreadyReported(marketId, msg.sender);
        }

        uint16 report = uint16(outcome) + 1;
        _reports[marketId][msg.sender] = report;
        uint256 voteCount = ++_votes[marketId][outcome];
        emit ResultSubmitted(marketId, msg.sender, outcome, voteCount);

        uint16 firstReport = _firstReport[marketId];
        if (firstReport == 0) {
            _firstReport[marketId] = report;
        } else if (firstReport != report) {
            emit ResultDisputed(marketId, msg.sender, outcome, uint8(firstReport - 1));
        }

        if (voteCount >= _quorum) {
            _finalize(marketId, outcome, report);
        }
    }

    /// @notice Adds `reporter`; adding a current reporter changes nothing.
    /// Requirements:
    /// - the caller is the owner.
    function addReporter(address reporter) external onlyOwner {
        _addReporter(reporter);
    }

    /// @notice Removes `reporter`. Votes it already cast still count.
    /// Requirements:
    /// - the caller is the owner.
    /// - the quorum stays at most the number of reporters.
    function removeReporter(address reporter) external onlyOwner {
        if (!_isReporter[reporter]) {
            return;
        }
        if (_quorum > _reporterCount - 1) {
            revert ResultOracleInvalidQuorum(_quorum, _reporterCount - 1);
        }
        _isReporter[reporter] = false;
        _reporterCount -= 1;
        emit ReporterRemoved(reporter);
    }

    /// @notice Sets the number of equal votes that finalizes a result.
    /// Requirements:
    /// - the caller is the owner.
    /// - `newQuorum` is between 1 and the number of reporters.
    function setQuorum(uint8 newQuorum) external onlyOwner {
        _setQuorum(newQuorum);
    }

    function quorum() external view returns (uint8) {
        return _quorum;
    }

    function reporterCount() external view returns (uint256) {
        return _reporterCount;
    }

    function isReporter(address account) external view returns (bool) {
        return _isReporter[account];
    }

    function votes(uint256 marketId, uint8 outcome) external view returns (uint256) {
        return _votes[marketId][outcome];
    }

    function finalized(uint256 marketId) external view returns (bool) {
        return _finalReport[marketId] != 0;
    }

    /// @notice The finalized outcome of market `marketId`, valid only when `finalized` is true.
    function finalOutcome(uint256 marketId) external view returns (uint8) {
        uint16 report = _finalReport[marketId];
        return report == 0 ? 0 : uint8(report - 1);
    }

    /// @notice The vote of `reporter` on market `marketId`: 0 when it has not voted, otherwise
    /// the outcome plus one (so 256 is a vote to void).
    function reportOf(uint256 marketId, address reporter) external view returns (uint16) {
        return _reports[marketId][reporter];
    }

    function _finalize(uint256 marketId, uint8 outcome, uint16 report) private {
        _finalReport[marketId] = report;
        emit ResultFinalized(marketId, outcome);

        if (outcome == VOID_OUTCOME) {
            sportsbook.voidMarket(marketId);
        } else {
            sportsbook.settleMarket(marketId, outcome);
        }
    }

    function _addReporter(address reporter) private {
        if (_isReporter[reporter]) {
            return;
        }
        _isReporter[reporter] = true;
        _reporterCount += 1;
        emit ReporterAdded(reporter);
    }

    function _setQuorum(uint8 newQuorum) private {
        if (newQuorum == 0 || newQuorum > _reporterCount) {
            revert ResultOracleInvalidQuorum(newQuorum, _reporterCount);
        }
        _quorum = newQuorum;
        emit QuorumChanged(newQuorum);
    }
}
