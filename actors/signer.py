"""The signer: the holder of the node's private key for receipts, capability records and
memo records (verified reuse).

It turns an unsigned `Receipt` into a signed envelope. Keeping the key in one actor means
no other code path signs a receipt or a record. The one other use of the key is the
journal's tree heads (`plasm.protocol.transparency.head_signer`, which signs nothing else),
signed in the journal's own thread because a round trip here per commit batch cost more
than the signature (docs/architecture.md, "The receipt log").
"""

from __future__ import annotations

from nacl.signing import SigningKey

from plasm.actors._mailbox import Delivery, PlasmActor, handles, tell
from plasm.actors.errors import ActorLayerError
from plasm.actors.messages import (
    JobCompleted,
    ReceiptSigned,
    SignCapabilities,
    SignedMemo,
    SignMemo,
    SignReceipt,
)
from plasm.protocol.capabilities import sign_capabilities
from plasm.protocol.identity import peer_id_from_public_key
from plasm.protocol.messages import Capabilities, decode_message
from plasm.protocol.p2p_messages import SignedCapabilities
from plasm.protocol.receipt import sign_receipt
from plasm.protocol.reuse import memo_key_of, sign_memo


class SignerActor(PlasmActor):
    def __init__(self, signing_key: SigningKey) -> None:
        super().__init__()
        self._key = signing_key
        self._peer_id = peer_id_from_public_key(bytes(signing_key.verify_key))

    @handles(SignReceipt)
    def on_sign(self, message: SignReceipt, delivery: Delivery) -> ReceiptSigned | None:
        """Answer the envelope, or (from an executor) forward the completed job."""
        if message.receipt.executor != self._peer_id:
            # The key signs only what this node executed: a receipt naming another
            # executor would be a forgery with our signature on it.
            raise SignerError(
                f"refusing to sign a receipt whose executor is {message.receipt.executor}, "
                f"not this node ({self._peer_id})"
            )
        envelope = sign_receipt(message.receipt, self._key)
        executed = delivery.executed
        if executed is not None and delivery.reply_to is not None:
            tell(
                delivery.reply_to,
                JobCompleted(
                    executed=executed, envelope=envelope, memo_key=memo_key_of(message.receipt)
                ),
                job=delivery.job,
            )
            return None
        return ReceiptSigned(envelope=envelope)

    @handles(SignCapabilities)
    def on_sign_capabilities(
        self, message: SignCapabilities, delivery: Delivery
    ) -> SignedCapabilities:
        caps = decode_message(message.capabilities)
        if not isinstance(caps, Capabilities):
            raise SignerError(f"expected an encoded Capabilities, got {type(caps).__name__}")
        # sign_capabilities itself refuses a record that names another peer.
        return SignedCapabilities(record=sign_capabilities(caps, self._key))


    @handles(SignMemo)
    def on_sign_memo(self, message: SignMemo, delivery: Delivery) -> SignedMemo:
        # sign_memo checks the payload as a verifier would: the key never signs a memo
        # whose receipt, bytes or key do not hold.
        return SignedMemo(record=sign_memo(message.payload, self._key))


class SignerError(ActorLayerError):
    """The signer refused a request (a receipt that does not name this node)."""
