"""``python -m scorer.supply keygen|sign|verify``: keys and signatures of model versions and
rule packs, by hand (``scorer models package`` signs by itself when SCORER_SIGNING__KEY is set).

    python -m scorer.supply keygen --out keys/release-2026        # .key (0600) and .pub
    python -m scorer.supply sign model_repository/siem_classifier/3 --key keys/release-2026.key
    python -m scorer.supply verify model_repository/siem_classifier/3 --trusted-keys keys/trusted

Exit codes: 0 done / verified; 1 refused (the reason on stderr); 2 usage.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from scorer.errors import IntegrityError
from scorer.supply import signing


def _from_env(parser: argparse.ArgumentParser, flag: str, env: str, what: str) -> None:
    parser.add_argument(flag, type=Path, default=os.environ.get(env) or None, help=f"{what} (default: ${env})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scorer.supply", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    k = sub.add_parser("keygen", help="a new Ed25519 key pair: OUT.key (private, 0600) and OUT.pub")
    k.add_argument("--out", type=Path, required=True, help="path prefix of the two files (no default)")
    s = sub.add_parser("sign", help="sign the SHA256SUMS of model version or rule pack directories")
    s.add_argument("directories", type=Path, nargs="+", help="version or pack directories holding SHA256SUMS")
    _from_env(s, "--key", signing.SIGNING_KEY_ENV, "PEM private key")
    s.add_argument(
        "--keep-others",
        action="store_true",
        help="keep other keys' signatures (key rotation: sign with the new key beside the old); "
        "default: this key's signature replaces all",
    )
    v = sub.add_parser("verify", help="check signatures against trusted keys (exit 1 if any is refused)")
    v.add_argument("directories", type=Path, nargs="+", help="version or pack directories")
    _from_env(v, "--trusted-keys", signing.TRUSTED_KEYS_ENV, "directory of *.pub keys")
    args = parser.parse_args(argv)
    try:
        if args.command == "keygen":
            kid = signing.generate(args.out.with_suffix(".key"), args.out.with_suffix(".pub"))
            print(f"key {kid}: {args.out.with_suffix('.key')} (keep secret), {args.out.with_suffix('.pub')} (trust)")
        elif args.command == "sign":
            if args.key is None:
                parser.error(f"--key or ${signing.SIGNING_KEY_ENV} is required")
            key = signing.load_private_key(args.key)
            for directory in args.directories:
                print(f"{directory}: signed by {signing.sign(directory, key, keep_others=args.keep_others)}")
        else:
            if args.trusted_keys is None:
                parser.error(f"--trusted-keys or ${signing.TRUSTED_KEYS_ENV} is required")
            trusted = signing.TrustedKeys.load(args.trusted_keys)
            for directory in args.directories:
                print(f"{directory}: verified, signed by {signing.verify(directory, trusted)}")
    except (IntegrityError, FileExistsError) as exc:
        print(f"scorer.supply: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
