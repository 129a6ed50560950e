"""Signed agent configuration: the conductor signs the ini it serves, the agent checks it (ed25519).

The signed file is the ini followed by one comment line, so it stays a valid ini file::

    [DEFAULT]
    transport_url = rabbit://...
    # kiln-signature: ed25519 <base64 of the 64-byte signature of every byte above this line>

The agent gets the public key from the kernel command line (``kiln.config_key=<base64 of the raw
32-byte key>``) or from ``[agent]config_public_key_file`` (PEM); with a key, an unsigned or altered
file is refused with ConfigSignatureError.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

MARKER = b"# kiln-signature: ed25519 "


class ConfigSignatureError(ValueError):
    """The agent configuration is unsigned, altered, or its key is unusable."""


def generate_key() -> ed25519.Ed25519PrivateKey:
    """A new signing key."""
    return ed25519.Ed25519PrivateKey.generate()


def private_pem(key: ed25519.Ed25519PrivateKey) -> bytes:
    """``key`` as unencrypted PKCS#8 PEM."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_pem(public: ed25519.Ed25519PublicKey) -> bytes:
    """``public`` as SubjectPublicKeyInfo PEM."""
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def public_b64(public: ed25519.Ed25519PublicKey) -> str:
    """``public`` as the kernel parameter kiln.config_key carries it: url-safe base64 of the raw key."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.urlsafe_b64encode(raw).decode("ascii")


def load_private_key(path: str) -> ed25519.Ed25519PrivateKey:
    """The ed25519 private key in the PEM file ``path``; ConfigSignatureError naming it otherwise."""
    try:
        with open(path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigSignatureError(f"cannot read the config signing key {path}: {exc}") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ConfigSignatureError(f"config signing key {path} is not an ed25519 key")
    return key


def write_private_key(path: str, key: ed25519.Ed25519PrivateKey) -> None:
    """Write ``key`` to ``path`` (mode 0600) and its public key to ``path + '.pub'``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private_pem(key))
    with open(path + ".pub", "wb") as f:
        f.write(public_pem(key.public_key()))


def parse_public_key(value: str, source: str) -> ed25519.Ed25519PublicKey:
    """A public key from PEM text or url-safe base64 of its raw 32 bytes (errors name ``source``)."""
    text = value.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode("ascii"))
            if not isinstance(key, ed25519.Ed25519PublicKey):
                raise ValueError("not an ed25519 public key")
            return key
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        if len(raw) != 32:
            raise ValueError(f"{len(raw)} bytes, an ed25519 public key has 32")
        return ed25519.Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, binascii.Error, UnicodeEncodeError) as exc:
        raise ConfigSignatureError(f"the config public key from {source} is unusable: {exc}") from None


def load_public_key(path: str) -> ed25519.Ed25519PublicKey:
    """The public key in the PEM file ``path``."""
    try:
        with open(path, encoding="ascii") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigSignatureError(f"cannot read the config public key {path}: {exc}") from None
    return parse_public_key(text, path)


def sign_config(body: bytes, key: ed25519.Ed25519PrivateKey) -> bytes:
    """``body`` (an ini file) with its signature line appended."""
    if not body.endswith(b"\n"):
        body += b"\n"
    signature = base64.b64encode(key.sign(body))
    return body + MARKER + signature + b"\n"


def verify_config(data: bytes, public: ed25519.Ed25519PublicKey, source: str) -> bytes:
    """The ini of a signed file ``data`` (from ``source``); ConfigSignatureError when unsigned or altered."""
    stripped = data.rstrip(b"\n")
    body, sep, last = stripped.rpartition(b"\n")
    if not last.startswith(MARKER):
        raise ConfigSignatureError(
            f"the agent configuration from {source} is not signed (no '# kiln-signature' last line); "
            "the conductor signs it when [broker]config_signing_key_file is set"
        )
    body = body + sep
    try:
        signature = base64.b64decode(last[len(MARKER) :].strip(), validate=True)
        public.verify(signature, body)
    except (InvalidSignature, binascii.Error, ValueError):
        raise ConfigSignatureError(
            f"the agent configuration from {source} has a signature that does not match its content "
            "or this ramdisk's key (kiln.config_key / [agent]config_public_key_file): altered in "
            "transit, or signed by another conductor key; refused"
        ) from None
    return body
