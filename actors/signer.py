"""The signer: the only holder of the node's private key.

It turns an unsigned `Receipt` into a signed envelope. Keeping the key in one actor
means no other thread, and no code path but this one, ever touches it.
"""

from __future__ import annotations

from typing import ClassVar

from nacl.signing import SigningKey
from plasm.actors._mailbox import Delivery, PlasmActor
from plasm.actors.errors import ActorLayerError
from plasm.protocol.identity import peer_id_from_public_key
from plasm.protocol.messages import Message, ReceiptSigned, SignReceipt
from plasm.protocol.receipt import sign_receipt


class SignerActor(PlasmActor):
    handlers: ClassVar[dict[type[Message], str]] = {SignReceipt: "on_sign"}

    def __init__(self, signing_key: SigningKey) -> None:
        super().__init__()
        self._key = signing_key
        self._peer_id = peer_id_from_public_key(bytes(signing_key.verify_key))

    def on_sign(self, delivery: Delivery) -> ReceiptSigned:
        message = delivery.message
        assert isinstance(message, SignReceipt)
        if message.receipt.executor != self._peer_id:
            # The key signs only what this node executed: a receipt naming another
            # executor would be a forgery with our signature on it.
            raise SignerError(
                f"refusing to sign a receipt whose executor is {message.receipt.executor}, "
                f"not this node ({self._peer_id})"
            )
        return ReceiptSigned(envelope=sign_receipt(message.receipt, self._key))


class SignerError(ActorLayerError):
    """The signer refused a request (a receipt that does not name this node)."""
