// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "./interfaces/IERC20.sol";
import {ISettlement} from "./interfaces/ISettlement.sol";

/// @title Sportsbook
/// @notice Holds bettors' token deposits, accepts bets at odds signed off-chain by the odds
/// signer (EIP-712 quotes), escrows stakes together with a house reserve that covers the
/// worst case of each market, and pays winners after the ResultOracle settles the market.
contract Sportsbook is ISettlement {
    /// @notice Decimal odds are integers scaled by this factor: 2_500_000 means 2.5.
    uint256 public constant ODDS_SCALE = 1_000_000;

    /// @notice The most outcomes one market may have.
    uint8 public constant MAX_OUTCOMES = 8;

    bytes32 private constant _DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant _QUOTE_TYPEHASH = keccak256(
        "Quote(address bettor,uint256 marketId,uint8 outcome,uint256 odds,uint256 maxStake,uint64 expiry,uint256 nonce)"
    );

    /// @dev Half the order of secp256k1. Signatures with a larger `s` are the malleable twin
    /// of a valid signature and are rejected.
    uint256 private constant _HALF_CURVE_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    enum MarketStatus {
        None,
        Open,
        Closed,
        Settled,
        Voided
    }

    /// @notice A price offer signed by the odds signer for one bettor, valid until `expiry`
    /// (inclusive, in block timestamp seconds) and usable once (`nonce`).
    struct Quote {
        address bettor;
        uint256 marketId;
        uint8 outcome;
        uint256 odds;
        uint256 maxStake;
        uint64 expiry;
        uint256 nonce;
    }

    struct Market {
        MarketStatus status;
        uint8 outcomeCount;
        uint8 winningOutcome;
        uint64 closesAt;
        uint256 liabilityCap;
        uint256 totalStake;
        uint256 reserve;
        uint256[MAX_OUTCOMES] payoutSum;
    }

    struct Bet {
        address bettor;
        uint8 outcome;
        bool claimed;
        uint256 marketId;
        uint256 stake;
        uint256 odds;
        uint256 payout;
    }

    IERC20 private immutable _token;
    address private immutable _operator;
    address private immutable _oddsSigner;
    address private immutable _guardian;
    uint256 private immutable _cachedChainId;
    bytes32 private immutable _cachedDomainSeparator;

    address private _oracle;
    bool private _paused;
    bool private transient _entered;
    uint256 private _houseBalance;
    uint256 private _nextBetId = 1;
    mapping(address account => uint256) private _balances;
    mapping(uint256 nonce => bool) private _usedNonces;
    mapping(uint256 marketId => Market) private _markets;
    mapping(uint256 betId => Bet) private _bets;

    event OracleChanged(address indexed previousOracle, address indexed newOracle);
    event MarketCreated(uint256 indexed marketId, uint8 outcomeCount, uint64 closesAt, uint256 liabilityCap);
    event MarketClosed(uint256 indexed marketId, uint64 closedAt);
    event HouseFunded(address indexed from, uint256 amount);
    event HouseWithdrawn(address indexed to, uint256 amount);
    event Deposited(address indexed account, uint256 amount);
    event Withdrawn(address indexed account, uint256 amount);
    event BetPlaced(
        uint256 indexed betId,
        address indexed bettor,
        uint256 indexed marketId,
        uint8 outcome,
        uint256 stake,
        uint256 odds,
        uint256 payout,
        uint256 nonce
    );
    event MarketSettled(uint256 indexed marketId, uint8 winningOutcome, uint256 totalPayout);
    event MarketVoided(uint256 indexed marketId);
    event BetClaimed(uint256 indexed betId, address indexed bettor, uint256 payout);
    event BetRefunded(uint256 indexed betId, address indexed bettor, uint256 stake);
    event Paused(address account);
    event Unpaused(address account);

    error SportsbookUnauthorized(address caller, address expected);
    error SportsbookEnforcedPause();
    error SportsbookExpectedPause();
    error SportsbookZeroAmount();
    error SportsbookTransferFailed(address token);
    error SportsbookMarketExists(uint256 marketId);
    error SportsbookMarketNotFound(uint256 marketId);
    error SportsbookInvalidOutcomeCount(uint8 outcomeCount);
    error SportsbookInvalidClosingTime(uint64 closesAt, uint256 now);
    error SportsbookMarketNotOpen(uint256 marketId, MarketStatus status);
    error SportsbookBettingClosed(uint256 marketId, uint64 closesAt, uint256 now);
    error SportsbookMarketNotClosed(uint256 marketId, MarketStatus status);
    error SportsbookInvalidOutcome(uint256 marketId, uint8 outcome, uint8 outcomeCount);
    error SportsbookInvalidOdds(uint256 odds);
    error SportsbookQuoteExpired(uint64 expiry, uint256 now);
    error SportsbookQuoteNonceUsed(uint256 nonce);
    error SportsbookInvalidSignature(address recovered, address expected);
    error SportsbookWrongBettor(address bettor, address caller);
    error SportsbookStakeAboveQuote(uint256 stake, uint256 maxStake);
    error SportsbookInsufficientBalance(address account, uint256 balance, uint256 needed);
    error SportsbookInsufficientHouseBalance(uint256 balance, uint256 needed);
    error SportsbookLiabilityCapExceeded(uint256 marketId, uint256 reserve, uint256 cap);
    error SportsbookBetNotFound(uint256 betId);
    error SportsbookAlreadyClaimed(uint256 betId);
    error SportsbookNotWinningBet(uint256 betId, uint8 outcome, uint8 winningOutcome);
    error SportsbookMarketNotFinal(uint256 marketId, MarketStatus status);
    error SportsbookReentrantCall();

    modifier onlyFrom(address expected) {
        if (msg.sender != expected) {
            revert SportsbookUnauthorized(msg.sender, expected);
        }
        _;
    }

    modifier whenNotPaused() {
        if (_paused) {
            revert SportsbookEnforcedPause();
        }
        _;
    }

    modifier nonReentrant() {
        if (_entered) {
            revert SportsbookReentrantCall();
        }
        _entered = true;
        _;
        _entered = false;
    }

    /// @param token_ The ERC-20 token of deposits, stakes and payouts.
    /// @param oddsSigner_ The key that signs quotes.
    /// @param guardian_ The key that may pause and unpause.
    constructor(address token_, address oddsSigner_, address guardian_) {
        _token = IERC20(token_);
        _operator = msg.sender;
        _oddsSigner = oddsSigner_;
        _guardian = guardian_;
        _cachedChainId = block.chainid;
        _cachedDomainSeparator = _buildDomainSeparator();
    }

    // ---------------------------------------------------------------- operator

    /// @notice Names the ResultOracle allowed to settle and void markets.
    /// Requirements:
    /// - the caller is the operator.
    function setOracle(address newOracle) external onlyFrom(_operator) {
        address previous = _oracle;
        _oracle = newOracle;
        emit OracleChanged(previous, newOracle);
    }

    /// @notice Opens market `marketId` for betting until `closesAt`.
    /// Requirements:
    /// - the caller is the operator.
    /// - no market `marketId` exists yet.
    /// - `outcomeCount` is between 2 and `MAX_OUTCOMES`.
    /// - `closesAt` lies in the future.
    function createMarket(uint256 marketId, uint8 outcomeCount, uint64 closesAt, uint256 liabilityCap)
        external
        onlyFrom(_operator)
    {
        Market storage market = _markets[marketId];
        if (market.status != MarketStatus.None) {
            revert SportsbookMarketExists(marketId);
        }
        if (outcomeCount < 2 || outcomeCount > MAX_OUTCOMES) {
            revert SportsbookInvalidOutcomeCount(outcomeCount);
        }
        if (closesAt <= block.timestamp) {
            revert SportsbookInvalidClosingTime(closesAt, block.timestamp);
        }

        market.status = MarketStatus.Open;
        market.outcomeCount = outcomeCount;
        market.closesAt = closesAt;
        market.liabilityCap = liabilityCap;
        emit MarketCreated(marketId, outcomeCount, closesAt, liabilityCap);
    }

    /// @notice Stops betting on an open market before its closing time, e.g. when a bout starts.
    /// Requirements:
    /// - the caller is the operator.
    /// - the market exists and is open.
    function closeMarket(uint256 marketId) external onlyFrom(_operator) {
        Market storage market = _existingMarket(marketId);
        if (market.status != MarketStatus.Open) {
            revert SportsbookMarketNotOpen(marketId, market.status);
        }

        market.status = MarketStatus.Closed;
        emit MarketClosed(marketId, uint64(block.timestamp));
    }

    /// @notice Moves `amount` tokens from the operator into the house balance, which backs
    /// market reserves.
    /// Requirements:
    /// - the caller is the operator and has approved this contract for `amount`.
    /// - `amount` is not zero.
    function fundHouse(uint256 amount) external onlyFrom(_operator) nonReentrant {
        _requireNonZero(amount);

        _houseBalance += amount;
        emit HouseFunded(msg.sender, amount);

        _pullTokens(msg.sender, amount);
    }

    /// @notice Moves `amount` of the free house balance (not held as any market's reserve)
    /// to the operator.
    /// Requirements:
    /// - the caller is the operator.
    /// - `amount` is not zero and at most `houseBalance()`.
    function withdrawHouse(uint256 amount) external onlyFrom(_operator) nonReentrant {
        _requireNonZero(amount);
        uint256 balance = _houseBalance;
        if (amount > balance) {
            revert SportsbookInsufficientHouseBalance(balance, amount);
        }

        _houseBalance = balance - amount;
        emit HouseWithdrawn(msg.sender, amount);

        _pushTokens(msg.sender, amount);
    }

    // ---------------------------------------------------------------- guardian

    /// @notice Stops `deposit`, `withdraw`, `placeBet` and `claim`.
    /// Requirements:
    /// - the caller is the guardian and the contract is not paused.
    function pause() external onlyFrom(_guardian) whenNotPaused {
        _paused = true;
        emit Paused(msg.sender);
    }

    /// @notice Restarts what `pause` stopped.
    /// Requirements:
    /// - the caller is the guardian and the contract is paused.
    function unpause() external onlyFrom(_guardian) {
        if (!_paused) {
            revert SportsbookExpectedPause();
        }
        _paused = false;
        emit Unpaused(msg.sender);
    }

    // ---------------------------------------------------------------- bettors

    /// @notice Moves `amount` tokens from the caller into the caller's book balance.
    /// Requirements:
    /// - the contract is not paused and `amount` is not zero.
    /// - the caller has approved this contract for `amount`.
    function deposit(uint256 amount) external whenNotPaused nonReentrant {
        _requireNonZero(amount);

        _balances[msg.sender] += amount;
        emit Deposited(msg.sender, amount);

        _pullTokens(msg.sender, amount);
    }

    /// @notice Moves `amount` from the caller's book balance to the caller's token account.
    /// Requirements:
    /// - the contract is not paused and `amount` is not zero.
    /// - the caller's book balance is at least `amount`.
    function withdraw(uint256 amount) external whenNotPaused nonReentrant {
        _requireNonZero(amount);
        _debit(msg.sender, amount);
        emit Withdrawn(msg.sender, amount);

        _pushTokens(msg.sender, amount);
    }

    /// @notice Places a bet of `stake` at the quoted odds, moving the stake from the caller's
    /// book balance into the market's escrow and the extra reserve it needs from the house.
    /// Requirements:
    /// - the contract is not paused and `stake` is not zero.
    /// - the caller is `quote.bettor`, the quote has not expired, its nonce is unused and
    ///   `signature` is the odds signer's EIP-712 signature of it.
    /// - the market is open for betting and `quote.outcome` is one of its outcomes.
    /// - `quote.odds` is greater than `ODDS_SCALE` and `stake` is at most `quote.maxStake`.
    /// - the caller's book balance covers `stake`.
    /// - the market's reserve stays within its liability cap and the house balance covers
    ///   the reserve increase.
    /// @return betId The id of the new bet.
    function placeBet(Quote calldata quote, uint256 stake, bytes calldata signature)
        external
        whenNotPaused
        nonReentrant
        returns (uint256 betId)
    {
        _requireNonZero(stake);
        _checkQuote(quote, signature);
        Market storage market = _openMarket(quote.marketId);
        _checkBetTerms(market, quote, stake);
        uint256 payout = (stake * quote.odds) / ODDS_SCALE;

        _usedNonces[quote.nonce] = true;
        _debit(msg.sender, stake);
        _escrow(market, quote.marketId, quote.outcome, stake, payout);
        betId = _nextBetId++;
        _bets[betId] = Bet({
            bettor: msg.sender,
            outcome: quote.outcome,
            claimed: false,
            marketId: quote.marketId,
            stake: stake,
            odds: quote.odds,
            payout: payout
        });
        emit BetPlaced(betId, msg.sender, quote.marketId, quote.outcome, stake, quote.odds, payout, quote.nonce);
    }

    /// @notice Credits a winning bet's payout, or a voided bet's stake, to its bettor's book
    /// balance.
    /// Requirements:
    /// - the contract is not paused.
    /// - bet `betId` exists, the caller is its bettor and it has not been claimed.
    /// - its market is settled with the bet's outcome winning, or voided.
    function claim(uint256 betId) external whenNotPaused nonReentrant {
        Bet storage bet = _existingBet(betId);
        if (msg.sender != bet.bettor) {
            revert SportsbookUnauthorized(msg.sender, bet.bettor);
        }
        if (bet.claimed) {
            revert SportsbookAlreadyClaimed(betId);
        }
        Market storage market = _markets[bet.marketId];

        if (market.status == MarketStatus.Settled) {
            if (bet.outcome != market.winningOutcome) {
                revert SportsbookNotWinningBet(betId, bet.outcome, market.winningOutcome);
            }
            bet.claimed = true;
            _balances[msg.sender] += bet.payout;
            emit BetClaimed(betId, msg.sender, bet.payout);
        } else if (market.status == MarketStatus.Voided) {
            bet.claimed = true;
            _balances[msg.sender] += bet.stake;
            emit BetRefunded(betId, msg.sender, bet.stake);
        } else {
            revert SportsbookMarketNotFinal(bet.marketId, market.status);
        }
    }

    // ---------------------------------------------------------------- oracle

    /// @notice Settles a market: the winners' payouts stay escrowed until claimed and the rest
    /// of the stakes and the reserve returns to the house balance.
    /// Requirements:
    /// - the caller is the oracle.
    /// - the market is closed, or open with its closing time reached.
    /// - `winningOutcome` is one of the market's outcomes.
    function settleMarket(uint256 marketId, uint8 winningOutcome) external onlyFrom(_oracle) nonReentrant {
        Market storage market = _existingMarket(marketId);
        if (_isBettingOpen(market) || market.status > MarketStatus.Closed) {
            revert SportsbookMarketNotClosed(marketId, market.status);
        }
        if (winningOutcome >= market.outcomeCount) {
            revert SportsbookInvalidOutcome(marketId, winningOutcome, market.outcomeCount);
        }
        uint256 totalPayout = market.payoutSum[winningOutcome];

        market.status = MarketStatus.Settled;
        market.winningOutcome = winningOutcome;
        // Cannot underflow: the reserve covers max(payoutSum) - totalStake.
        _houseBalance += market.totalStake + market.reserve - totalPayout;
        emit MarketSettled(marketId, winningOutcome, totalPayout);
    }

    /// @notice Voids a market: its reserve returns to the house and every bet becomes
    /// refundable through `claim`.
    /// Requirements:
    /// - the caller is the oracle.
    /// - the market is open or closed.
    function voidMarket(uint256 marketId) external onlyFrom(_oracle) nonReentrant {
        Market storage market = _existingMarket(marketId);
        if (market.status != MarketStatus.Open && market.status != MarketStatus.Closed) {
            revert SportsbookMarketNotOpen(marketId, market.status);
        }

        market.status = MarketStatus.Voided;
        _houseBalance += market.reserve;
        emit MarketVoided(marketId);
    }

    // ---------------------------------------------------------------- views

    function token() external view returns (address) {
        return address(_token);
    }

    function operator() external view returns (address) {
        return _operator;
    }

    function oddsSigner() external view returns (address) {
        return _oddsSigner;
    }

    function oracle() external view returns (address) {
        return _oracle;
    }

    function guardian() external view returns (address) {
        return _guardian;
    }

    function paused() external view returns (bool) {
        return _paused;
    }

    /// @notice The book balance of `account`: deposits and credited payouts not yet staked or
    /// withdrawn.
    function balanceOf(address account) external view returns (uint256) {
        return _balances[account];
    }

    /// @notice The house funds not held as any market's reserve.
    function houseBalance() external view returns (uint256) {
        return _houseBalance;
    }

    function nextBetId() external view returns (uint256) {
        return _nextBetId;
    }

    function quoteNonceUsed(uint256 nonce) external view returns (bool) {
        return _usedNonces[nonce];
    }

    /// @notice The EIP-712 digest of `quote` that the odds signer signs.
    function hashQuote(Quote calldata quote) public view returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                _QUOTE_TYPEHASH,
                quote.bettor,
                quote.marketId,
                quote.outcome,
                quote.odds,
                quote.maxStake,
                quote.expiry,
                quote.nonce
            )
        );
        return keccak256(abi.encodePacked("\x19\x01", _domainSeparator(), structHash));
    }

    /// @notice The state of market `marketId`; status 0 (None) when it does not exist. After
    /// settlement or void, `totalStake` and `reserve` keep their last values as a record.
    function getMarket(uint256 marketId)
        external
        view
        returns (
            MarketStatus status,
            uint8 outcomeCount,
            uint64 closesAt,
            uint256 liabilityCap,
            uint8 winningOutcome,
            uint256 totalStake,
            uint256 reserve
        )
    {
        Market storage market = _markets[marketId];
        return (
            market.status,
            market.outcomeCount,
            market.closesAt,
            market.liabilityCap,
            market.winningOutcome,
            market.totalStake,
            market.reserve
        );
    }

    /// @notice The sum of the payouts of all bets on `outcome` of market `marketId`.
    function outcomePayout(uint256 marketId, uint8 outcome) external view returns (uint256) {
        Market storage market = _existingMarket(marketId);
        if (outcome >= market.outcomeCount) {
            revert SportsbookInvalidOutcome(marketId, outcome, market.outcomeCount);
        }
        return market.payoutSum[outcome];
    }

    /// @notice Bet `betId`; reverts with `SportsbookBetNotFound` when it does not exist.
    function getBet(uint256 betId)
        external
        view
        returns (
            address bettor,
            uint256 marketId,
            uint8 outcome,
            uint256 stake,
            uint256 odds,
            uint256 payout,
            bool claimed
        )
    {
        Bet storage bet = _existingBet(betId);
        return (bet.bettor, bet.marketId, bet.outcome, bet.stake, bet.odds, bet.payout, bet.claimed);
    }

    // ---------------------------------------------------------------- private

    function _checkQuote(Quote calldata quote, bytes calldata signature) private view {
        if (msg.sender != quote.bettor) {
            revert SportsbookWrongBettor(quote.bettor, msg.sender);
        }
        if (block.timestamp > quote.expiry) {
            revert SportsbookQuoteExpired(quote.expiry, block.timestamp);
        }
        if (_usedNonces[quote.nonce]) {
            revert SportsbookQuoteNonceUsed(quote.nonce);
        }
        address recovered = _recoverSigner(hashQuote(quote), signature);
        if (recovered == address(0) || recovered != _oddsSigner) {
            revert SportsbookInvalidSignature(recovered, _oddsSigner);
        }
    }

    function _checkBetTerms(Market storage market, Quote calldata quote, uint256 stake) private view {
        if (quote.outcome >= market.outcomeCount) {
            revert SportsbookInvalidOutcome(quote.marketId, quote.outcome, market.outcomeCount);
        }
        if (quote.odds <= ODDS_SCALE) {
            revert SportsbookInvalidOdds(quote.odds);
        }
        if (stake > quote.maxStake) {
            revert SportsbookStakeAboveQuote(stake, quote.maxStake);
        }
    }

    /// @dev Adds a bet to the market's totals and moves the change of the market's reserve
    /// between the house balance and the market. Every check runs before the first write.
    function _escrow(Market storage market, uint256 marketId, uint8 outcome, uint256 stake, uint256 payout)
        private
    {
        uint256 totalStake = market.totalStake + stake;
        uint256 maxPayout = 0;
        for (uint8 o = 0; o < market.outcomeCount; ++o) {
            uint256 sum = market.payoutSum[o];
            if (o == outcome) {
                sum += payout;
            }
            if (sum > maxPayout) {
                maxPayout = sum;
            }
        }
        uint256 reserve = maxPayout > totalStake ? maxPayout - totalStake : 0;
        if (reserve > market.liabilityCap) {
            revert SportsbookLiabilityCapExceeded(marketId, reserve, market.liabilityCap);
        }
        uint256 previousReserve = market.reserve;
        uint256 house = _houseBalance;
        if (reserve > previousReserve && reserve - previousReserve > house) {
            revert SportsbookInsufficientHouseBalance(house, reserve - previousReserve);
        }

        _houseBalance = house + previousReserve - reserve;
        market.totalStake = totalStake;
        market.payoutSum[outcome] += payout;
        market.reserve = reserve;
    }

    function _debit(address account, uint256 amount) private {
        uint256 balance = _balances[account];
        if (balance < amount) {
            revert SportsbookInsufficientBalance(account, balance, amount);
        }
        unchecked {
            _balances[account] = balance - amount;
        }
    }

    function _pullTokens(address from, uint256 amount) private {
        if (!_token.transferFrom(from, address(this), amount)) {
            revert SportsbookTransferFailed(address(_token));
        }
    }

    function _pushTokens(address to, uint256 amount) private {
        if (!_token.transfer(to, amount)) {
            revert SportsbookTransferFailed(address(_token));
        }
    }

    function _openMarket(uint256 marketId) private view returns (Market storage market) {
        market = _existingMarket(marketId);
        if (market.status != MarketStatus.Open) {
            revert SportsbookMarketNotOpen(marketId, market.status);
        }
        if (block.timestamp >= market.closesAt) {
            revert SportsbookBettingClosed(marketId, market.closesAt, block.timestamp);
        }
    }

    function _existingMarket(uint256 marketId) private view returns (Market storage market) {
        market = _markets[marketId];
        if (market.status == MarketStatus.None) {
            revert SportsbookMarketNotFound(marketId);
        }
    }

    function _existingBet(uint256 betId) private view returns (Bet storage bet) {
        bet = _bets[betId];
        if (bet.bettor == address(0)) {
            revert SportsbookBetNotFound(betId);
        }
    }

    function _isBettingOpen(Market storage market) private view returns (bool) {
        return market.status == MarketStatus.Open && block.timestamp < market.closesAt;
    }

    function _requireNonZero(uint256 amount) private pure {
        if (amount == 0) {
            revert SportsbookZeroAmount();
        }
    }

    /// @dev Returns the signer of `digest`, or the zero address when the signature is not 65
    /// bytes, has a high `s` or has a `v` other than 27 or 28.
    function _recoverSigner(bytes32 digest, bytes calldata signature) private pure returns (address) {
        if (signature.length != 65) {
            return address(0);
        }
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly ("memory-safe") {
            r := calldataload(signature.offset)
            s := calldataload(add(signature.offset, 32))
            v := byte(0, calldataload(add(signature.offset, 64)))
        }
        if (uint256(s) > _HALF_CURVE_ORDER || (v != 27 && v != 28)) {
            return address(0);
        }
        return ecrecover(digest, v, r, s);
    }

    function _domainSeparator() private view returns (bytes32) {
        if (block.chainid == _cachedChainId) {
            return _cachedDomainSeparator;
        }
        return _buildDomainSeparator();
    }

    function _buildDomainSeparator() private view returns (bytes32) {
        return keccak256(
            abi.encode(_DOMAIN_TYPEHASH, keccak256("Sportsbook"), keccak256("1"), block.chainid, address(this))
        );
    }
}
