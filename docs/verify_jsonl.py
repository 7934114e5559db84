#!/usr/bin/env python3
"""An independent verifier for syndicate JSONL exports, written from
docs/FORMAT.md alone (section 6.1), with nothing but the Python standard
library. It shares no code with the Rust implementation.

    python3 docs/verify_jsonl.py trail.jsonl [--head HASH] [--chain NAME]

Exit 0 and one line when intact; exit 1 naming the first bad seq and check.
"""
import hashlib
import json
import re
import sys

MEMBERS = ["actor", "at", "body", "chain", "kind", "once", "policy", "prev", "seq", "session", "v"]
AT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key")
    return dict(pairs)


def main(argv):
    args = argv[1:]
    head = chain = None
    if "--head" in args:
        i = args.index("--head")
        head = args[i + 1]
        del args[i : i + 2]
    if "--chain" in args:
        i = args.index("--chain")
        chain = args[i + 1]
        del args[i : i + 2]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    data = open(args[0], "rb").read()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    prev, last_at, seq = "0" * 64, None, 0

    def broken(check, detail):
        print(f"BROKEN at seq {seq}: {check}: {detail}")
        return 1

    for line in lines:
        digest = hashlib.sha256(b"syndicate:event:v1\x00" + line).hexdigest()
        try:
            env = json.loads(line.decode("utf-8"), object_pairs_hook=no_duplicates)
        except ValueError as e:
            return broken("format", f"not JSON ({e})")
        if not isinstance(env, dict) or list(env.keys()) != MEMBERS:
            return broken("format", "members are not the eleven of section 4.1 in canonical order")
        if env["v"] != 1:
            return broken("format", f"v {env['v']}")
        if chain is None:
            chain = env["chain"]
        if env["chain"] != chain:
            return broken("chain", f"expected {chain!r}, found {env['chain']!r}")
        if env["seq"] != seq:
            return broken("sequence", f"expected seq {seq}, found {env['seq']}")
        if not isinstance(env["prev"], str) or not HEX64.match(env["prev"]) or env["prev"] != prev:
            return broken("prev link", f"expected {prev}, found {env['prev']}")
        at = env["at"]
        if not isinstance(at, str) or not AT.match(at):
            return broken("format", f"at {at!r}")
        if last_at is not None and at < last_at:  # fixed width: text order is time order
            return broken("time order", f"{at} is before {last_at}")
        prev, last_at, seq = digest, at, seq + 1
    if head is not None and (seq == 0 or prev != head):
        seq -= 1
        return broken("head", f"expected {head}, found {prev if seq >= 0 else 'an empty chain'}")
    print(f"intact: {seq} events on chain {chain!r}, head {prev}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
