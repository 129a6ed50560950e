"""NVIDIA DCGM diagnostics for the GPU burn-in: run ``dcgmi diag -r LEVEL -j`` and read its JSON.

Two JSON shapes are read: DCGM 3 (``"DCGM GPU Diagnostic"``, results per ``gpu_ids``, optional
``"GPU Device Serials"``) and DCGM 4 (``"DCGM Diagnostic"``, results per ``entity_group`` /
``entity_id``, serials under the top-level ``entity_groups``). DCGM numbers GPUs as NVML does
(PCI bus order); a GPU is matched to the inventory by its serial, else by that order.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from agent.node.steps.errors import StepError

#: (burn-in shorter than this many seconds, DCGM run level): DCGM's levels take about a minute
#: (1, quick), a few minutes (2, medium), half an hour (3, long); an hour or more runs 4 (1-2 h).
LEVELS = ((120, 1), (1800, 2), (3600, 3))
#: How long each level may run at most before dcgmi is stopped, whatever the duration asked.
LEVEL_LIMIT_S = {1: 600, 2: 1800, 3: 7200, 4: 14400}


def level_for(duration: float) -> int:
    """The ``dcgmi diag -r`` level a burn-in of ``duration`` seconds runs."""
    for below, level in LEVELS:
        if duration < below:
            return level
    return 4


def _document(text: str) -> dict | None:
    """The JSON object in dcgmi's output (it may print warnings before it), or None."""
    start = text.find("{")
    if start < 0:
        return None
    try:
        doc = json.loads(text[start:])
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _serials(doc: dict, root: dict) -> dict[tuple[str, int], str]:
    """(entity group, id) -> serial, from DCGM 4's entity_groups or DCGM 3's GPU Device Serials."""
    out: dict[tuple[str, int], str] = {}
    for group in doc.get("entity_groups") or []:
        if not isinstance(group, dict):
            continue
        for entity in group.get("entities") or []:
            if isinstance(entity, dict) and isinstance(entity.get("serial_num"), str):
                out[(str(group.get("entity_group") or "GPU"), int(entity.get("entity_id", -1)))] = entity[
                    "serial_num"
                ]
    legacy = root.get("GPU Device Serials")
    if isinstance(legacy, dict):
        for gpu_id, serial in legacy.items():
            if str(gpu_id).isdigit() and isinstance(serial, str):
                out[("GPU", int(gpu_id))] = serial
    return out


def _entities(result: dict) -> list[tuple[str, int]]:
    """The entities one result is about: DCGM 4's entity, or DCGM 3's gpu_ids ("0,1" or 0)."""
    if "entity_id" in result:
        return [(str(result.get("entity_group") or "GPU"), int(result["entity_id"]))]
    ids = result.get("gpu_ids", result.get("gpu_id"))
    if isinstance(ids, int) and not isinstance(ids, bool):
        return [("GPU", ids)]
    if isinstance(ids, str):
        return [("GPU", int(i)) for i in ids.split(",") if i.strip().isdigit()]
    return []


def _text(items: Any, key: str) -> list[str]:
    """Warning or info strings of a result (DCGM writes lists of objects or of strings)."""
    if isinstance(items, str | dict):
        items = [items]
    out = []
    for item in items if isinstance(items, list) else []:
        value = item.get(key) if isinstance(item, dict) else item
        if isinstance(value, str) and value.strip():
            out.append(value.strip())
    return out


def _gpu_for(
    entity: tuple[str, int], serials: dict[tuple[str, int], str], gpus: list[dict]
) -> tuple[str | None, str | None, str]:
    """(PCI address, serial, how it was matched) of a DCGM entity among the inventory's GPUs."""
    group, number = entity
    serial = serials.get(entity)
    if group.upper() != "GPU":
        return None, serial, f"DCGM {group} {number}"
    by_serial = next((g for g in gpus if serial and g.get("serial") == serial), None)
    if by_serial is not None:
        return by_serial.get("pci_address"), serial, "serial"
    nvidia = sorted(
        (g for g in gpus if g.get("vendor_id") == "0x10de"), key=lambda g: str(g.get("pci_address"))
    )
    if 0 <= number < len(nvidia):
        gpu = nvidia[number]
        return gpu.get("pci_address"), serial or gpu.get("serial"), "PCI order"
    return None, serial, f"DCGM GPU {number} (not in the inventory)"


def parse(doc: dict, gpus: list[dict], level: int) -> dict[str, Any]:
    """Read a ``dcgmi diag -j`` document: the tests run and a finding per GPU and failed test."""
    root = doc.get("DCGM Diagnostic") or doc.get("DCGM GPU Diagnostic")
    if not isinstance(root, dict):
        raise StepError(
            "dcgmi diag printed JSON without a 'DCGM Diagnostic' or 'DCGM GPU Diagnostic' object: "
            f"keys {sorted(doc)}"
        )
    if isinstance(root.get("runtime_error"), str) and root["runtime_error"].strip():
        raise StepError(f"dcgmi diag -r {level} -j could not run: {root['runtime_error'].strip()}")
    serials = _serials(doc, root)
    tests, findings, warnings = [], [], []
    for category in root.get("test_categories") or []:
        if not isinstance(category, dict):
            continue
        for test in category.get("tests") or []:
            if not isinstance(test, dict):
                continue  # DCGM 3 writes null between tests
            name = str(test.get("name") or "?")
            statuses = []
            for result in test.get("results") or []:
                if not isinstance(result, dict):
                    continue
                status = str(result.get("status") or "").strip().lower()
                statuses.append(status)
                why = "; ".join(_text(result.get("warnings"), "warning") + _text(result.get("info"), "info"))
                for entity in _entities(result) or [("GPU", -1)]:
                    address, serial, matched = _gpu_for(entity, serials, gpus)
                    where = "" if matched in ("serial", "PCI order") else f"{matched}: "
                    message = f"DCGM diag level {level} test '{name}' {status or 'no status'}"
                    if status == "fail":
                        findings.append(
                            {
                                "check": "burnin",
                                "pci_address": address,
                                "serial": serial,
                                "message": f"{where}{message}: {why or 'no reason given'}",
                            }
                        )
                    elif status == "warn":
                        warnings.append(f"GPU {address or '?'}: {where}{message}: {why}")
            summary = test.get("test_summary") if isinstance(test.get("test_summary"), dict) else {}
            overall = str(summary.get("status") or "").lower() or (
                "fail"
                if "fail" in statuses
                else "pass"
                if "pass" in statuses
                else ",".join(sorted(set(statuses)))
            )
            tests.append({"category": category.get("category"), "name": name, "status": overall})
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    return {
        "method": "dcgm",
        "level": level,
        "dcgm_version": meta.get("version") or root.get("version"),
        "tests": tests,
        "warnings": warnings,
        "findings": findings,
    }


def run_diag(dcgmi: str, level: int, gpus: list[dict]) -> dict[str, Any]:
    """Run ``dcgmi diag -r LEVEL -j`` on every GPU and read its result; StepError when it could not run."""
    command = [dcgmi, "diag", "-r", str(level), "-j"]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=LEVEL_LIMIT_S[level], check=False
        )
    except subprocess.TimeoutExpired:
        raise StepError(
            f"{' '.join(command)} ran longer than {LEVEL_LIMIT_S[level]} s and was stopped"
        ) from None
    except OSError as exc:
        raise StepError(f"{' '.join(command)} could not be started: {exc}") from None
    doc = _document(done.stdout)
    if doc is None:
        said = (done.stderr or done.stdout or "").strip()[-500:] or "nothing"
        raise StepError(f"{' '.join(command)} exited {done.returncode} without JSON output; it said: {said}")
    result = parse(doc, gpus, level)
    result["exit_code"] = done.returncode
    if done.returncode != 0 and not result["findings"]:
        said = (done.stderr or "").strip()[-500:] or "no message"
        raise StepError(
            f"{' '.join(command)} exited {done.returncode} but named no failed test: {said}", details=result
        )
    return result
