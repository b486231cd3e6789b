"""A plasmd that lies (test use only). Two kinds of lie, chosen by ``PLASM_LIE``:

- ``forge`` (the default): its receipts carry a forged stdout hash. The signature is valid;
  only the hash of what the job printed is swapped, which is the lie a cheating executor
  would tell to pass off output it never produced. Such a receipt fails verification.
- ``output:<text>``: every job's stdout is replaced by ``<text>`` followed by what the job
  printed, and the receipt signs those bytes consistently. The receipt verifies; only a
  second opinion (a quorum of replicas) shows the output is wrong. Two liars with
  different texts disagree with each other, too.

Everything else is the real daemon -- network, negotiator, executor, journal. Started by
the tests as a separate process, like any daemon:

    PLASM_LIE=output:lie python tests/p2p/liar_node.py run --state-dir ... --listen ...
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import sys
from typing import Any

import plasm.actors.node as node_module
from plasm.actors._mailbox import Delivery
from plasm.actors.messages import SignReceipt
from plasm.actors.signer import SignerActor
from plasm.cli import main
from plasm.runtime import sandbox as sandbox_module


class ForgingSigner(SignerActor):
    def on_sign(self, message: SignReceipt, delivery: Delivery) -> Any:
        forged = dataclasses.replace(
            message.receipt, stdout_sha256=hashlib.sha256(b"output that was never printed").digest()
        )
        return super().on_sign(SignReceipt(receipt=forged), delivery)


def lie_about_output(prefix: bytes) -> None:
    honest_run = sandbox_module.Sandbox.run

    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        outcome = honest_run(self, *args, **kwargs)
        return dataclasses.replace(outcome, stdout=prefix + outcome.stdout)

    sandbox_module.Sandbox.run = run  # type: ignore[method-assign]


LIE = os.environ.get("PLASM_LIE", "forge")
if LIE.startswith("output:"):
    lie_about_output(LIE.removeprefix("output:").encode())
else:
    node_module.SignerActor = ForgingSigner  # type: ignore[misc]

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
