"""Turnover records, shared by the conductor that signs them, the API and kiln-verify-certificate.

A record is the canonical JSON text of what a cleaning did (agent.conductor.turnover builds it),
signed with the conductor's ed25519 key. The API serves the text as it was signed, its parsed
``content`` beside it for people, the base64 signature and the id of the key.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

FORMAT = "kiln-turnover/1"


class VerifyError(ValueError):
    """A turnover record whose signature, key or content does not check out."""


def public_pem(public: ed25519.Ed25519PublicKey) -> bytes:
    """The public key as PEM (SubjectPublicKeyInfo)."""
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_id(public: ed25519.Ed25519PublicKey) -> str:
    """sha256 (hex) of the raw public key: names the key that signed a record."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def canonical(record: dict[str, Any]) -> str:
    """The text that is signed: JSON with sorted keys, compact, ASCII."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def sign(record: dict[str, Any], key: ed25519.Ed25519PrivateKey) -> dict[str, str]:
    """The record's text, its base64 signature and the key id."""
    text = canonical(record)
    signature = base64.b64encode(key.sign(text.encode())).decode()
    return {"record": text, "signature": signature, "key_id": key_id(key.public_key())}


def verify(document: dict[str, Any], public: ed25519.Ed25519PublicKey) -> dict[str, Any]:
    """Check a served record (record text, signature, key_id; content if given); return the record."""
    for field in ("record", "signature", "key_id"):
        if not isinstance(document.get(field), str):
            raise VerifyError(f"the document has no {field} string")
    if document["key_id"] != key_id(public):
        raise VerifyError(f"signed by key {document['key_id']}, not by the given key {key_id(public)}")
    try:
        public.verify(base64.b64decode(document["signature"], validate=True), document["record"].encode())
    except (InvalidSignature, ValueError) as exc:
        raise VerifyError(f"the signature does not match the record text ({type(exc).__name__})") from None
    record = json.loads(document["record"])
    if "content" in document and document["content"] != record:
        raise VerifyError("the content beside the record differs from the signed record text")
    return record


def summary(record: dict[str, Any]) -> list[str]:
    """A verified record in a few lines for people: outcome, times, disks, GPU memory per GPU."""
    disks = ", ".join(f"{d.get('disk')} ({d.get('method')})" for d in record.get("disks") or []) or "none"
    memory = record.get("gpu_memory") or {}
    lines = [
        f"node {record.get('node_uuid')}, cleaning {record.get('outcome')}",
        f"  from {record.get('started_at')} to {record.get('ended_at')}; disks wiped: {disks}",
        f"  GPU memory cleared: {memory.get('cleared')}"
        + (f" ({memory['why']})" if memory.get("why") else ""),
    ]
    for gpu in record.get("gpus") or []:
        how = (
            f"cleared by {gpu.get('method')}" if gpu.get("cleared") else f"not cleared: {gpu.get('why_not')}"
        )
        lines.append(f"    GPU {gpu.get('pci_address')} (serial {gpu.get('serial') or 'unknown'}): {how}")
    return lines


def served(row: Any) -> dict[str, Any]:
    """A stored record as the API serves it: the signed text, its parsed content, the signature."""
    created = row.created_at.isoformat() if isinstance(row.created_at, datetime.datetime) else None
    return {
        "uuid": row.uuid,
        "node_uuid": row.node_uuid,
        "created_at": created,
        "record": row.record,
        "content": json.loads(row.record),
        "signature": row.signature,
        "key_id": row.key_id,
    }
