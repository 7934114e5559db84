#!/usr/bin/env python3
"""An independent verifier for syndicate JSONL exports, written from
docs/FORMAT.md alone (section 6.1), with nothing but the Python standard
library. It shares no code with the Rust implementation.

    python3 docs/verify_jsonl.py trail.jsonl [--head HASH] [--chain NAME] [--trusted-keys keys.txt]
    python3 docs/verify_jsonl.py --decision decision.json --trusted-keys keys.txt
    python3 docs/verify_jsonl.py --report changes.md --signature changes.md.sig --trusted-keys keys.txt

Exit 0 and one line when intact; exit 1 naming the first bad seq and check.

With --trusted-keys, every approval by a person (`action.approved` with
`method` "human") must also carry a signed decision (FORMAT.md 9.5) that names
this chain, its request, digest and approver, decides "approve", and verifies
with a trusted key of that approver; the first that does not is reported as
`signature` at its seq. The second form checks one signed decision file; the
third a report's detached signature (FORMAT.md 11.3: a C2SP signed note of
the report's SHA-256 and size). They need the `cryptography` package
(Ed25519), imported only for them.
"""
import base64
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


def parse_vkey(text):
    """A C2SP verifier key `name+hex id+base64(0x01 || key)` -> (name, id, key)."""
    name, key_id, b64 = text.split("+", 2)
    if not name or any(c.isspace() or ord(c) < 0x20 for c in name) or not re.fullmatch(r"[0-9a-f]{8}", key_id):
        raise ValueError(f"not a verifier key: {text!r}")
    raw = base64.b64decode(b64, validate=True)
    if len(raw) != 33 or raw[0] != 1:
        raise ValueError(f"not an Ed25519 verifier key: {text!r}")
    computed = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4].hex()
    if computed != key_id:
        raise ValueError(f"key id {key_id} does not match the key ({computed})")
    return name, key_id, raw[1:]


def jcs_of_strings(value):
    """RFC 8785 bytes of an object whose members are strings or null, with
    ASCII member names: sorted members, no whitespace, JSON string escapes
    as JCS writes them (Python's json module writes the same)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


STATEMENT = ["action_digest", "approver", "chain", "decision", "expires_at", "request_id"]


def read_keys(keys_path):
    lines = [line.strip() for line in open(keys_path, encoding="utf-8")]
    return [parse_vkey(line) for line in lines if line and not line.startswith("#")]


def signature_problem(signed, keys):
    """None when the signed decision verifies with a trusted key, else why."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if not isinstance(signed, dict) or sorted(signed) != ["key_id", "signature", "statement"]:
        return "members are not statement, key_id, signature"
    statement = signed["statement"]
    if not isinstance(statement, dict) or sorted(statement) != STATEMENT:
        return f"statement members are not {STATEMENT}"
    if not all(isinstance(v, str) for k, v in statement.items() if k != "expires_at"):
        return "statement members must be strings"
    if statement["expires_at"] is not None and not isinstance(statement["expires_at"], str):
        return "expires_at must be a string or null"
    approver = statement["approver"]
    matching = [k for (name, key_id, k) in keys if name == approver and key_id == signed["key_id"]]
    if not matching:
        return f"no trusted key of {approver} has key id {signed['key_id']}"
    message = b"syndicate:approval:v1\x00" + jcs_of_strings(statement)
    try:
        signature = base64.b64decode(signed["signature"], validate=True)
        Ed25519PublicKey.from_public_bytes(matching[0]).verify(signature, message)
    except (InvalidSignature, ValueError):
        return f"the signature of {approver} does not verify"
    return None


def approval_problem(env, keys):
    """For a person's approval: None when its signed decision is for exactly
    this approval and verifies with a trusted key, else why."""
    body = env["body"]
    if env["kind"] != "action.approved" or not isinstance(body, dict) or body.get("method") != "human":
        return None
    signed = body.get("signed")
    if signed is None:
        return f"approval by {body.get('approver')!r} is not signed"
    problem = signature_problem(signed, keys)
    if problem:
        return problem
    st = signed["statement"]
    expected = {
        "chain": env["chain"],
        "request_id": body.get("request_id"),
        "action_digest": body.get("action_digest"),
        "approver": body.get("approver"),
        "decision": "approve",
    }
    for member, value in expected.items():
        if st[member] != value:
            return f"the signed statement's {member} is {st[member]!r}, not {value!r}"
    return None


def check_decision(decision_path, keys_path):
    def refused(detail):
        print(f"REFUSED: {detail}")
        return 1

    keys = read_keys(keys_path)
    signed = json.loads(open(decision_path, "rb").read().decode("utf-8"), object_pairs_hook=no_duplicates)
    problem = signature_problem(signed, keys)
    if problem:
        return refused(problem)
    statement = signed["statement"]
    approver = statement["approver"]
    print(
        f"signed: {statement['decision']} of request {statement['request_id']!r} on chain "
        f"{statement['chain']!r} by {approver} ({approver}+{signed['key_id']})"
    )
    return 0


def check_report(report_path, sig_path, keys_path):
    """A report's detached signature (FORMAT.md 11.3, signed note of 10.5)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    def refused(detail):
        print(f"REFUSED: {detail}")
        return 1

    keys = read_keys(keys_path)
    data = open(report_path, "rb").read()
    try:
        note = open(sig_path, "rb").read().decode("utf-8")
    except UnicodeDecodeError:
        return refused("the signature is not UTF-8 text")
    cut = note.rfind("\n\n")
    if cut < 0 or not note.endswith("\n"):
        return refused("not a signed note")
    text, lines = note[: cut + 1], note[cut + 2 : -1].split("\n")
    verified = []
    for line in lines:
        parts = line[2:].split(" ") if line.startswith("\u2014 ") else []
        if len(parts) != 2:
            return refused(f"not a signature line: {line!r}")
        name, b64 = parts
        try:
            raw = base64.b64decode(b64, validate=True)
        except ValueError:
            return refused(f"signature of {name} is not base64")
        if len(raw) < 5:
            return refused(f"signature of {name} is too short")
        for key_name, key_id, public in keys:
            if key_name == name and key_id == raw[:4].hex():
                try:
                    Ed25519PublicKey.from_public_bytes(public).verify(raw[4:], text.encode("utf-8"))
                except InvalidSignature:
                    return refused(f"the signature by {name}+{key_id} does not verify")
                verified.append(f"{name}+{key_id}")
    if not verified:
        return refused("no signature is by a trusted key")
    digest = hashlib.sha256(data).hexdigest()
    if text != f"syndicate-report-signature/v1\nsha256 {digest}\nsize {len(data)}\n":
        return refused(f"the report (sha256 {digest}, {len(data)} bytes) is not the one signed: {text!r}")
    print(f"verified: {report_path} ({len(data)} bytes, sha256 {digest}) signed by {', '.join(verified)}")
    return 0


def main(argv):
    args = argv[1:]
    if "--report" in args and "--signature" in args and "--trusted-keys" in args and len(args) == 6:
        i, j, k = args.index("--report"), args.index("--signature"), args.index("--trusted-keys")
        return check_report(args[i + 1], args[j + 1], args[k + 1])
    if "--decision" in args and "--trusted-keys" in args and len(args) == 4:
        i, j = args.index("--decision"), args.index("--trusted-keys")
        return check_decision(args[i + 1], args[j + 1])
    head = chain = keys = None
    if "--trusted-keys" in args:
        i = args.index("--trusted-keys")
        keys = read_keys(args[i + 1])
        del args[i : i + 2]
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
        if keys is not None:
            problem = approval_problem(env, keys)
            if problem:
                return broken("signature", problem)
        prev, last_at, seq = digest, at, seq + 1
    if head is not None and (seq == 0 or prev != head):
        seq -= 1
        return broken("head", f"expected {head}, found {prev if seq >= 0 else 'an empty chain'}")
    signed = ", every approval by a person signed by a trusted key" if keys is not None else ""
    print(f"intact: {seq} events on chain {chain!r}, head {prev}{signed}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
