"""`plasmd id` and `plasmd keygen`: the node's identity."""

from __future__ import annotations

import argparse

from plasm.commands._options import add_state_dir, state_dir


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    add_state_dir(parser)
    parser.set_defaults(_identity_command=name)
    if name == "id":
        parser.add_argument("--json", action="store_true", help="print one JSON object")


def main(args: argparse.Namespace) -> int:
    from plasm.keystore import create_key, load_key

    directory = state_dir(args)
    if args._identity_command == "keygen":
        identity = create_key(directory)
        print(f"made a new node key at {identity.path}")
        print(f"peer ID     {identity.peer_id}")
        return 0
    identity = load_key(directory)
    if args.json:
        import orjson

        print(
            orjson.dumps(
                {"peer_id": identity.peer_id, "public_key": identity.public_key.hex()}
            ).decode()
        )
    else:
        print(f"peer ID     {identity.peer_id}")
        print(f"public key  {identity.public_key.hex()}")
    return 0
