"""A plasmd that lies: its receipts carry a forged stdout hash (test use only).

Everything else is the real daemon -- network, negotiator, executor, journal -- and the
signature is valid: only the hash of what the job printed is swapped, which is the lie a
cheating executor would tell to pass off output it never produced. Started by the
tests as a separate process, like any daemon:

    python tests/p2p/liar_node.py run --state-dir ... --socket ... --listen ...
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
from typing import Any

import plasm.actors.node as node_module
from plasm.actors._mailbox import Delivery
from plasm.actors.messages import SignReceipt
from plasm.actors.signer import SignerActor
from plasm.cli import main


class ForgingSigner(SignerActor):
    def on_sign(self, message: SignReceipt, delivery: Delivery) -> Any:
        forged = dataclasses.replace(
            message.receipt, stdout_sha256=hashlib.sha256(b"output that was never printed").digest()
        )
        return super().on_sign(SignReceipt(receipt=forged), delivery)


node_module.SignerActor = ForgingSigner  # type: ignore[misc]

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
