"""The signer: the only holder of the node's private key.

It turns an unsigned `Receipt` into a signed envelope. Keeping the key in one actor
means no other thread, and no code path but this one, ever touches it.
"""

from __future__ import annotations

from typing import ClassVar

from nacl.signing import SigningKey

from plasm.actors._mailbox import Delivery, PlasmActor
from plasm.protocol.messages import Message, ReceiptSigned, SignReceipt
from plasm.protocol.receipt import sign_receipt


class SignerActor(PlasmActor):
    handlers: ClassVar[dict[type[Message], str]] = {SignReceipt: "on_sign"}

    def __init__(self, signing_key: SigningKey) -> None:
        super().__init__()
        self._key = signing_key

    def on_sign(self, delivery: Delivery) -> ReceiptSigned:
        message = delivery.message
        assert isinstance(message, SignReceipt)
        return ReceiptSigned(envelope=sign_receipt(message.receipt, self._key))
