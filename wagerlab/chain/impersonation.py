"""Impersonated transactions: mined as sent by an address whose private key the node lacks.

py-evm takes a transaction's sender from its signature. It recovers the sender again
whenever it decodes the transaction, which it does to read a block back, to import a
block, and to apply raw bytes (raw transactions in `anvil_reorg`, the replay of a
`--state` file). So an impersonated transaction must be a real, encodable transaction
whose sender follows from its own bytes. It carries a marker signature instead of an
ECDSA one:

- `s` is the constant `IMPERSONATION_S`, the ASCII text "wagerlab impersonated sender",
- `r` is the ASCII text "wagerlab" in the top bits, followed by the 20-byte sender,
- `y_parity` is 0 (typed transactions), or `v` is 35 + 2 * chain id (EIP-155 legacy).

The transaction classes below read the sender from such a signature and skip the
signature check for it. Every other transaction is recovered and checked as usual. The
classes reach py-evm through `ImpersonationPragueVM`, whose block class decodes stored
transactions with them, so the sender survives every read, import and replay. Because
`r` contains the sender, two senders never share a transaction hash. A real signature
matches the marker only if its `s` equals the fixed value, a chance of about 2**-255 (`s`
is uniform below half the secp256k1 group order).

The alternatives fail somewhere. py-evm's `SpoofTransaction` wraps an unsigned
transaction that cannot be encoded into a block and decoded again. A registry keyed by
transaction hash is lost when the process stops and would have to be saved beside the
`--state` file and kept in step with reverts and reorgs.

The classes accept a marker signature wherever they decode one. The node takes a marked
transaction into a new block only while its sender is impersonated (see `Node`), except
when it replays its own `--state` file.
"""

from __future__ import annotations

from typing import Any, Final

from eth.abc import SignedTransactionAPI, TransactionDecoderAPI, UnsignedTransactionAPI
from eth.vm.forks.berlin.constants import ACCESS_LIST_TRANSACTION_TYPE
from eth.vm.forks.berlin.transactions import AccessListTransaction
from eth.vm.forks.cancun.constants import BLOB_TX_TYPE
from eth.vm.forks.cancun.transactions import BlobPayloadDecoder
from eth.vm.forks.london.constants import DYNAMIC_FEE_TRANSACTION_TYPE
from eth.vm.forks.london.transactions import DynamicFeeTransaction
from eth.vm.forks.prague import PragueVM
from eth.vm.forks.prague.blocks import PragueBlock, PragueBlockHeader
from eth.vm.forks.prague.constants import SET_CODE_TRANSACTION_TYPE
from eth.vm.forks.prague.transactions import (
    PragueLegacyTransaction,
    PragueTransactionBuilder,
    PragueTypedTransaction,
    SetCodeTransaction,
)
from eth.vm.forks.shanghai.withdrawals import Withdrawal
import rlp
from rlp.sedes import CountableList

IMPERSONATION_S: Final = int.from_bytes(b"wagerlab impersonated sender", "big")
IMPERSONATION_S_BYTES: Final = IMPERSONATION_S.to_bytes(28, "big")
_R_PREFIX: Final = int.from_bytes(b"wagerlab", "big")
_ADDRESS_BITS: Final = 160


def marker_r(sender: bytes) -> int:
    """Return the `r` value of the marker signature for `sender`."""
    return (_R_PREFIX << _ADDRESS_BITS) | int.from_bytes(sender, "big")


def impersonated_sender(tx: Any) -> bytes | None:
    """Return the sender named by `tx`'s marker signature, or None for any other signature."""
    if tx.s != IMPERSONATION_S or tx.r >> _ADDRESS_BITS != _R_PREFIX:
        return None
    return (tx.r & ((1 << _ADDRESS_BITS) - 1)).to_bytes(20, "big")


class _MarkerSignature:
    """Mixin that takes the sender of a marked transaction from `r` and skips its ECDSA check."""

    def get_sender(self) -> bytes:
        sender = impersonated_sender(self)
        if sender is None:
            return super().get_sender()  # type: ignore[misc, no-any-return]
        return sender

    def check_signature_validity(self) -> None:
        if impersonated_sender(self) is None:
            super().check_signature_validity()  # type: ignore[misc]


class ImpersonationLegacyTransaction(_MarkerSignature, PragueLegacyTransaction):
    pass


class ImpersonationAccessListTransaction(_MarkerSignature, AccessListTransaction):
    pass


class ImpersonationDynamicFeeTransaction(_MarkerSignature, DynamicFeeTransaction):
    pass


class ImpersonationSetCodeTransaction(_MarkerSignature, SetCodeTransaction):
    pass


def _payload_decoder(sedes: type) -> type[TransactionDecoderAPI]:
    """Build the decoder of one typed-transaction payload type."""

    class PayloadDecoder(TransactionDecoderAPI):
        @classmethod
        def decode(cls, payload: bytes) -> SignedTransactionAPI:
            return rlp.decode(payload, sedes=sedes)  # type: ignore[no-any-return]

    return PayloadDecoder


_INNER_CLASSES: Final[dict[int, type]] = {
    ACCESS_LIST_TRANSACTION_TYPE: ImpersonationAccessListTransaction,
    DYNAMIC_FEE_TRANSACTION_TYPE: ImpersonationDynamicFeeTransaction,
    SET_CODE_TRANSACTION_TYPE: ImpersonationSetCodeTransaction,
}


class ImpersonationTypedTransaction(PragueTypedTransaction):
    # Blob transactions keep py-evm's class: eth_sendTransaction never creates them.
    decoders = {
        **{type_id: _payload_decoder(inner) for type_id, inner in _INNER_CLASSES.items()},
        BLOB_TX_TYPE: BlobPayloadDecoder,
    }


class ImpersonationTransactionBuilder(PragueTransactionBuilder):
    legacy_signed = ImpersonationLegacyTransaction
    typed_transaction = ImpersonationTypedTransaction


class ImpersonationPragueBlock(PragueBlock):
    transaction_builder = ImpersonationTransactionBuilder
    fields = [
        ("header", PragueBlockHeader),
        ("transactions", CountableList(ImpersonationTransactionBuilder)),
        ("uncles", CountableList(None, max_length=0)),
        ("withdrawals", CountableList(Withdrawal)),
    ]


class ImpersonationPragueVM(PragueVM):
    """py-evm's Prague VM with blocks whose transactions may carry a marker signature."""

    block_class = ImpersonationPragueBlock


def sign_as(unsigned: UnsignedTransactionAPI, sender: bytes, chain_id: int) -> SignedTransactionAPI:
    """Turn `unsigned` into a transaction from `sender` with the marker signature."""
    fields = unsigned.as_dict()  # type: ignore[attr-defined]
    r = marker_r(sender)
    type_byte = getattr(unsigned, "_type_byte", None)
    if type_byte is None:
        # EIP-155: v = 35 + 2 * chain id for y parity 0.
        return ImpersonationLegacyTransaction(**fields, v=35 + 2 * chain_id, r=r, s=IMPERSONATION_S)
    type_id = type_byte[0]
    inner_class = _INNER_CLASSES.get(type_id)
    if inner_class is None:
        raise ValueError(
            f"cannot impersonate the sender of a type {type_id} transaction: only legacy "
            f"and types {sorted(_INNER_CLASSES)} are supported"
        )
    inner = inner_class(**fields, y_parity=0, r=r, s=IMPERSONATION_S)
    return ImpersonationTypedTransaction(type_id, inner)
