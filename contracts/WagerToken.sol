// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title WagerToken
/// @notice The ERC-20 token (6 decimals) that bettors deposit into the Sportsbook. Anyone may
/// mint a limited amount through the faucet; the minter (the deployer) may mint any amount,
/// because the house needs more than one faucet call provides.
contract WagerToken {
    /// @notice The largest amount one `faucet` call mints: 10,000 tokens.
    uint256 public constant FAUCET_LIMIT = 10_000_000_000;

    string public constant name = "Wager Token";
    string public constant symbol = "WAGER";
    uint8 public constant decimals = 6;

    /// @notice The account allowed to call `mint`.
    address public immutable minter;

    uint256 private _totalSupply;
    mapping(address account => uint256) private _balances;
    mapping(address owner => mapping(address spender => uint256)) private _allowances;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    error ERC20InsufficientBalance(address sender, uint256 balance, uint256 needed);
    error ERC20InsufficientAllowance(address spender, uint256 allowance, uint256 needed);
    error ERC20InvalidReceiver(address receiver);
    error WagerTokenFaucetLimitExceeded(uint256 requested, uint256 limit);
    error WagerTokenUnauthorized(address caller);

    constructor() {
        minter = msg.sender;
    }

    function totalSupply() external view returns (uint256) {
        return _totalSupply;
    }

    function balanceOf(address account) external view returns (uint256) {
        return _balances[account];
    }

    function allowance(address owner, address spender) external view returns (uint256) {
        return _allowances[owner][spender];
    }

    /// @notice Moves `value` tokens from the caller to `to`.
    /// Requirements:
    /// - `to` is not the zero address.
    /// - the caller holds at least `value`.
    function transfer(address to, uint256 value) external returns (bool) {
        _transfer(msg.sender, to, value);
        return true;
    }

    /// @notice Lets `spender` move up to `value` of the caller's tokens. An allowance of
    /// `type(uint256).max` is never decreased by `transferFrom`.
    function approve(address spender, uint256 value) external returns (bool) {
        _allowances[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }

    /// @notice Moves `value` tokens from `from` to `to` using the caller's allowance.
    /// Requirements:
    /// - the caller's allowance from `from` is at least `value`.
    /// - `to` is not the zero address and `from` holds at least `value`.
    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        uint256 allowed = _allowances[from][msg.sender];
        if (allowed != type(uint256).max) {
            if (allowed < value) {
                revert ERC20InsufficientAllowance(msg.sender, allowed, value);
            }
            unchecked {
                _allowances[from][msg.sender] = allowed - value;
            }
        }
        _transfer(from, to, value);
        return true;
    }

    /// @notice Mints `amount` to the caller.
    /// Requirements:
    /// - `amount` is at most `FAUCET_LIMIT`.
    function faucet(uint256 amount) external {
        if (amount > FAUCET_LIMIT) {
            revert WagerTokenFaucetLimitExceeded(amount, FAUCET_LIMIT);
        }
        _mint(msg.sender, amount);
    }

    /// @notice Mints `amount` to `to` without a limit.
    /// Requirements:
    /// - the caller is the minter.
    /// - `to` is not the zero address.
    function mint(address to, uint256 amount) external {
        if (msg.sender != minter) {
            revert WagerTokenUnauthorized(msg.sender);
        }
        _mint(to, amount);
    }

    function _transfer(address from, address to, uint256 value) private {
        if (to == address(0)) {
            revert ERC20InvalidReceiver(to);
        }
        uint256 fromBalance = _balances[from];
        if (fromBalance < value) {
            revert ERC20InsufficientBalance(from, fromBalance, value);
        }
        unchecked {
            _balances[from] = fromBalance - value;
        }
        _balances[to] += value;
        emit Transfer(from, to, value);
    }

    function _mint(address to, uint256 amount) private {
        if (to == address(0)) {
            revert ERC20InvalidReceiver(to);
        }
        _totalSupply += amount;
        unchecked {
            // Cannot overflow: no balance exceeds the total supply, which was checked above.
            _balances[to] += amount;
        }
        emit Transfer(address(0), to, amount);
    }
}
