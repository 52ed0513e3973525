"""Ed25519 signatures over a version's ``SHA256SUMS`` (models and rule packs alike).

Checksums alone do not stop someone who can write the repository: they rewrite the model
and its SHA256SUMS together. A signature by a key they do not hold does. The signed message
binds the manifest to where it is published, ``<parent>/<name>`` of its directory
(``siem_classifier/3``, ``sigma_windows/2``), so a signed old version copied under a new
version number is refused too::

    scorer-manifest-v1\\n<parent>/<name>\\n<the exact bytes of SHA256SUMS>

``SHA256SUMS.sig`` (JSON) holds one signature per signing key (several during a key
rotation). A version verifies when one of them is by a trusted key and checks out; then
the manifest must also list every file of the directory, so nothing unsigned rides along.

Trust is process-wide, from the environment, read by every process that loads a model or
a pack (``scorer run``, ``scorer models``/``rules``, the Triton launchers):
``SCORER_SIGNING__TRUSTED_KEYS`` is a directory of ``*.pub`` PEM public keys. Unset (the
default), no key is trusted and unsigned versions load as before (checksums still
verified). Set, every version must carry a valid signature by one of them. The signing
side reads a PEM private key from ``SCORER_SIGNING__KEY`` (``scorer models package`` signs
with it). Keys are plain Ed25519 PEM, as ``openssl genpkey -algorithm ed25519`` writes them;
the crypto is the ``cryptography`` package's, nothing home-made. deploy/SECURITY.md:
key handling and rotation.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from scorer.errors import IntegrityError

TRUSTED_KEYS_ENV = "SCORER_SIGNING__TRUSTED_KEYS"
SIGNING_KEY_ENV = "SCORER_SIGNING__KEY"
MANIFEST = "SHA256SUMS"
SIGNATURE = "SHA256SUMS.sig"
_DOMAIN = b"scorer-manifest-v1\n"


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _message(directory: Path) -> bytes:
    subject = f"{directory.resolve().parent.name}/{directory.resolve().name}".encode()
    return _DOMAIN + subject + b"\n" + (directory / MANIFEST).read_bytes()


@dataclass(frozen=True)
class TrustedKeys:
    """Public keys by key id, and where they came from (for messages)."""

    keys: dict[str, Ed25519PublicKey]
    source: str = ""

    @classmethod
    def load(cls, directory: Path) -> TrustedKeys:
        if not directory.is_dir():
            raise IntegrityError(f"{TRUSTED_KEYS_ENV}={directory}: not a directory; refusing to load any version")
        keys: dict[str, Ed25519PublicKey] = {}
        for path in sorted(directory.glob("*.pub")):
            try:
                public = serialization.load_pem_public_key(path.read_bytes())
            except ValueError as exc:
                raise IntegrityError(f"{path}: not a PEM public key ({exc})") from None
            if not isinstance(public, Ed25519PublicKey):
                raise IntegrityError(f"{path}: not an Ed25519 public key")
            keys[key_id(public)] = public
        if not keys:
            raise IntegrityError(
                f"{directory}: no *.pub key; refusing to load any version (unset "
                f"{TRUSTED_KEYS_ENV} to accept unsigned versions)"
            )
        return cls(keys, str(directory))

    @classmethod
    def configured(cls) -> TrustedKeys | None:
        """The process's trusted keys, or None when none are configured (unsigned allowed)."""
        value = os.environ.get(TRUSTED_KEYS_ENV, "").strip()
        return cls.load(Path(value)) if value else None


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise IntegrityError(f"signing key {path}: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise IntegrityError(f"signing key {path}: not an Ed25519 private key")
    return key


def generate(private_path: Path, public_path: Path) -> str:
    """A new key pair (private key written 0600); its key id."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    public = key.public_key()
    public_path.write_bytes(
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return key_id(public)


def _signatures(directory: Path) -> list[dict[str, str]]:
    path = directory / SIGNATURE
    if not path.is_file():
        return []
    try:
        doc = json.loads(path.read_text())
        sigs = doc["signatures"]
        if not isinstance(sigs, list) or not all(isinstance(s, dict) for s in sigs):
            raise TypeError("signatures is not a list of objects")
        return sigs
    except (ValueError, KeyError, TypeError) as exc:
        raise IntegrityError(f"{path}: unreadable ({exc})") from None


def sign(directory: Path, key: Ed25519PrivateKey, *, keep_others: bool = False) -> str:
    """Sign ``directory``'s SHA256SUMS; the key id. ``keep_others`` keeps the signatures of
    other keys (a rotation: old and new key both sign until the old one is retired)."""
    if not (directory / MANIFEST).is_file():
        raise IntegrityError(f"{directory}: no {MANIFEST} to sign")
    kid = key_id(key.public_key())
    others = [s for s in _signatures(directory) if s.get("key_id") != kid] if keep_others else []
    entry = {
        "key_id": kid,
        "algorithm": "ed25519",
        "signature": base64.b64encode(key.sign(_message(directory))).decode(),
    }
    (directory / SIGNATURE).write_text(json.dumps({"signatures": [*others, entry]}, indent=1) + "\n")
    return kid


def sign_if_configured(directory: Path) -> str | None:
    """Sign with ``SCORER_SIGNING__KEY`` when it is set (what packaging calls); the key id.
    Unset: a signature left from an earlier write is removed (it signed other bytes)."""
    value = os.environ.get(SIGNING_KEY_ENV, "").strip()
    if not value:
        (directory / SIGNATURE).unlink(missing_ok=True)
        return None
    return sign(directory, load_private_key(Path(value)))


def verify(directory: Path, trusted: TrustedKeys) -> str:
    """The id of the trusted key whose signature over ``directory``'s SHA256SUMS verifies;
    IntegrityError otherwise, or when the manifest leaves a file of the directory out."""
    sigs = _signatures(directory)
    if not sigs:
        raise IntegrityError(
            f"{directory}: no {SIGNATURE}; refusing an unsigned version (trusted keys: {trusted.source})"
        )
    message = _message(directory)
    for entry in sigs:
        public = trusted.keys.get(str(entry.get("key_id", "")))
        if public is None:
            continue
        try:
            public.verify(base64.b64decode(str(entry.get("signature", "")), validate=True), message)
        except (InvalidSignature, ValueError):
            raise IntegrityError(
                f"{directory}: signature by key {entry['key_id']} does not verify "
                f"(files or {MANIFEST} changed after signing, or moved)"
            ) from None
        listed = {line.partition("  ")[2].strip() for line in (directory / MANIFEST).read_text().splitlines()}
        unlisted = sorted(p.name for p in directory.iterdir() if p.name not in listed | {MANIFEST, SIGNATURE})
        if unlisted:
            raise IntegrityError(f"{directory}: {unlisted} not covered by the signed {MANIFEST}")
        return str(entry["key_id"])
    ids = ", ".join(str(s.get("key_id")) for s in sigs)
    raise IntegrityError(f"{directory}: signed only by untrusted key(s) {ids} (trusted keys: {trusted.source})")


def check(directory: Path) -> str | None:
    """The load-time hook: verify against the configured trusted keys; None when none are
    configured (unsigned versions allowed)."""
    trusted = TrustedKeys.configured()
    return None if trusted is None else verify(directory, trusted)
