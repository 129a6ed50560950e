"""Turnover evidence: each cleaning leaves a record, signed by the conductor, of what it erased.

The record says which disks were wiped and how (NVMe crypto or user-data erase, discard with
verification, zero pass; or the partition tables and signatures removed), with the verification
samples; whether GPU memory was cleared, and in ``gpus`` per GPU (PCI address, serial) whether it
was reset and how, or why not; the owner and lessee before; and when the
cleaning began and ended. Its canonical JSON text is signed with the conductor's ed25519 key
([turnover]signing_key_file) and stored, text and signature, in ``turnover_records``. Anyone holding
the public key checks a record offline with ``kiln-verify-certificate`` (agent.common.evidence).
"""

from __future__ import annotations

import os
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from oslo_config import cfg
from oslo_log import log as logging
from oslo_utils import uuidutils

from agent.common import evidence, utils

CONF = cfg.CONF
LOG = logging.getLogger(__name__)

#: driver_internal_info keys holding what cleaning saw at its start.
STARTED_KEY = "turnover_started_at"
BEFORE_KEY = "turnover_before"
ERASE_STEPS = ("erase_devices", "erase_devices_metadata")
GPU_STEP = "clear_gpu_memory"
#: What the record keeps of each GPU from the clear_gpu_memory result.
GPU_KEYS = ("pci_address", "serial", "cleared", "method", "why_not")


def key_path() -> str:
    """The private key file: [turnover]signing_key_file, else one under [DEFAULT]state_path."""
    return CONF.turnover.signing_key_file or os.path.join(CONF.state_path, "turnover-ed25519.pem")


def load_or_create_key(path: str | None = None) -> ed25519.Ed25519PrivateKey:
    """The signing key at ``path``; made there (0600, public key beside it as .pub) when missing."""
    path = path or key_path()
    try:
        with open(path, "rb") as fh:
            key = serialization.load_pem_private_key(fh.read(), password=None)
    except FileNotFoundError:
        key = ed25519.Ed25519PrivateKey.generate()
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        with open(path + ".pub", "wb") as fh:
            fh.write(evidence.public_pem(key.public_key()))
        LOG.info("Made the turnover signing key %s (public key %s.pub)", path, path)
        return key
    except ValueError as exc:
        raise ValueError(f"[turnover]signing_key_file {path} is not a PEM private key: {exc}") from exc
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ValueError(
            f"[turnover]signing_key_file {path} holds a {type(key).__name__}, not an ed25519 key"
        )
    return key


def note_start(node: Any) -> dict[str, Any]:
    """driver_internal_info entries marking a cleaning's start: the time, the owner and lessee."""
    return {
        STARTED_KEY: utils.utcnow().isoformat(),
        BEFORE_KEY: {"owner": node.owner, "lessee": node.lessee},
    }


def _disks(results: dict[str, dict]) -> list[dict[str, Any]]:
    disks = []
    for step in ERASE_STEPS:
        for name, outcome in sorted(((results.get(step) or {}).get("disks") or {}).items()):
            entry = {"disk": name, "step": step}
            if step == "erase_devices_metadata":
                entry["method"] = "metadata"
                entry["signatures_removed"] = (outcome or {}).get("removed") or []
            else:
                entry["method"] = (outcome or {}).get("method")
                entry["verified"] = (outcome or {}).get("verified")
                entry["samples"] = (outcome or {}).get("samples")
            disks.append(entry)
    return disks


def _gpus(results: dict[str, dict]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The GPU memory summary and, per GPU, whether its memory was cleared, how, or why not."""
    outcome = results.get(GPU_STEP)
    if outcome is None:
        return {"cleared": False, "why": f"no {GPU_STEP} step ran in this cleaning"}, []
    gpus = [
        {key: entry.get(key) for key in GPU_KEYS}
        for entry in outcome.get("gpus") or []
        if isinstance(entry, dict)
    ]
    if not gpus:
        return {"cleared": False, "why": "the node has no GPUs"}, []
    left = [g for g in gpus if g.get("cleared") is not True]
    summary: dict[str, Any] = {"cleared": not left, "gpu_count": len(gpus)}
    if left:
        summary["why"] = f"{len(left)} of {len(gpus)} GPU(s) not cleared (see gpus)"
    return summary, gpus


def build(node: Any, results: dict[str, dict], manual: bool, outcome: str) -> dict[str, Any]:
    """The record of the cleaning that just ended on ``node`` from its agent steps' ``results``."""
    info = node.driver_internal_info or {}
    gpu_memory, gpus = _gpus(results)
    return {
        "format": evidence.FORMAT,
        "node_uuid": node.uuid,
        "cleaning": "manual" if manual else "automated",
        "outcome": outcome,
        "started_at": info.get(STARTED_KEY),
        "ended_at": utils.utcnow().isoformat(),
        "before": info.get(BEFORE_KEY) or {"owner": None, "lessee": None},
        "disks": _disks(results),
        "gpu_memory": gpu_memory,
        "gpus": gpus,
    }


def record_cleaning(node: Any, results: dict[str, dict], manual: bool, outcome: str) -> str | None:
    """Sign and store the record of the node's cleaning; its UUID (None, logged, when it failed)."""
    from agent.db import api as db_api

    try:
        signed = evidence.sign(build(node, results, manual, outcome), load_or_create_key())
        record_uuid = uuidutils.generate_uuid()
        db_api.create_turnover_record(record_uuid, node.uuid, **signed)
    except Exception:  # noqa: BLE001 - evidence must not break cleaning; its absence is logged
        LOG.exception("Node %s: the turnover record of this cleaning could not be written", node.uuid)
        return None
    LOG.info("Node %s: turnover record %s written", node.uuid, record_uuid)
    return record_uuid
