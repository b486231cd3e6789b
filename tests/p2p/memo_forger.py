"""A plasmd that forges memo records (test use only).

Everything is the real daemon, but the memo records it publishes are forged, as
`PLASM_FORGE_MEMO` says:

- ``wrong_key:<hex>``: validly signed by this node, holding the genuine receipt of the job
  it ran, but filed under the memo key ``<hex>`` of another job;
- ``unsigned:<hex>``: the bare memo payload under ``<hex>``, no COSE signature at all.

Its own DHT accepts whatever it stores (its validator is switched off), so it hands the
forged record to any peer that asks for that key. Started as a separate process:

    python tests/p2p/memo_forger.py run --state-dir ... --socket ... --listen ...
"""

from __future__ import annotations

import dataclasses
import os
import sys

import nacl.signing

import plasm.actors.negotiator._memos as memos
import plasm.actors.signer as signer
from plasm.actors.messages import PublishMemo
from plasm.cli import main
from plasm.protocol import cose, reuse
from plasm.protocol.identity import peer_id_from_public_key
from plasm.protocol.reuse import CONTENT_TYPE_MEMO

MODE, _, FORGED_KEY = os.environ["PLASM_FORGE_MEMO"].partition(":")


def forged_sign(payload: bytes, key: nacl.signing.SigningKey) -> bytes:
    if MODE == "unsigned":
        return payload
    return cose.sign1(payload, CONTENT_TYPE_MEMO, peer_id_from_public_key(bytes(key.verify_key)),
                      key)


original_publish = memos.Memos.publish


def publish_under_another_key(self: memos.Memos, request: PublishMemo) -> None:
    original_publish(self, dataclasses.replace(request, key=bytes.fromhex(FORGED_KEY)))


signer.sign_memo = forged_sign  # type: ignore[assignment]
memos.Memos.publish = publish_under_another_key  # type: ignore[method-assign]
# Read by the DHT's memo validator when the network starts: this node's own DHT keeps it.
reuse.verify_memo = lambda record, expected_key=None: None  # type: ignore[assignment,return-value]

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
