"""kiln-demo's GPU acceptance gate: automated cleaning of the fixture fleet through the ramdisk agent.

The GPU trees (``hgx-h100`` with its degraded link and fatal Xids, ``mi300x`` with an
uncorrectable RAS error) fail ``verify_gpus`` and end quarantined; ``storage-sas`` (and
``h200-vm``, captured on a real H200, when the run includes it) is cleaned, its disks sparse files
through [agent]disk_map, and gets a signed turnover record, which the demo verifies with the
conductor's public key. The fake power driver "PXE-boots" each node: the demo stops the node's
running agent and starts a ramdisk agent (agent.demo.deploy.RamdiskAgent). This host's node is
never cleaned, and no step touches a real disk or GPU.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from agent.common import states

#: (tree, what the demo expects of it), in the order shown.
GATE_TREES = (
    ("hgx-h100", states.CLEANFAIL),
    ("mi300x", states.CLEANFAIL),
    ("h200-vm", states.AVAILABLE),
    ("storage-sas", states.AVAILABLE),
)
#: Clean step priorities of the demo: the gate first, then the metadata erase, then the GPU reset.
PRIORITIES = (("verify_gpus", 100), ("erase_devices_metadata", 99), ("clear_gpu_memory", 10))
DISK_SIZE = 16 * 1024 * 1024
OWNER = "tenant-a"


def _stand_ins(demo: Any, node: Any) -> dict[str, str]:
    """A sparse file per disk of the node's inventory, for [agent]disk_map."""
    where = os.path.join(demo.tmp, "gate", node.label)
    os.makedirs(where, exist_ok=True)
    out = {}
    for disk in node.inventory.get("disks") or []:
        name = disk.get("name") if isinstance(disk, dict) else None
        if not name:
            continue
        path = os.path.join(where, os.path.basename(name) + ".img")
        with open(path, "wb") as fh:
            fh.truncate(DISK_SIZE)
        out[name] = path
    return out


def _wait(demo: Any, node: Any, wanted: set[str], timeout: float) -> Any:
    """Print each provision state (and clean step) ``node`` passes through until one of ``wanted``."""
    from agent.db import api as db_api

    last, row = None, None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = db_api.get_node(node.node_uuid)
        step = (row.driver_internal_info or {}).get("clean_step") or {}
        seen = (row.provision_state, step.get("step") if isinstance(step, dict) else None)
        if seen != last:
            shown = f" (step {seen[1]})" if seen[1] else ""
            demo.say(f"{demo.stamp()} {node.label:<12} {row.provision_state}{shown}")
            last = seen
        if row.provision_state in wanted and row.reservation is None:
            return row
        time.sleep(0.05)
    demo.say(f"kiln-demo: {node.label} stayed in {last[0] if last else '?'} for {timeout:.0f} s")
    return None


def _show_record(demo: Any, node: Any) -> bool:
    """Print the node's last turnover record and whether it verifies with the conductor's public key."""
    from agent.common import evidence
    from agent.conductor import turnover
    from agent.db import api as db_api

    rows = db_api.list_turnover_records(node.node_uuid)
    if not rows:
        demo.say(f"kiln-demo: {node.label} has no turnover record")
        return False
    document = evidence.served(rows[-1])
    public = turnover.load_or_create_key().public_key()
    try:
        record = evidence.verify(document, public)
    except evidence.VerifyError as exc:
        demo.say(f"{' ' * 21}turnover record {document['uuid']} does NOT verify: {exc}")
        return False
    demo.say(
        f"{' ' * 21}turnover record {document['uuid']}: signature valid "
        f"(ed25519 key {document['key_id'][:16]}...)"
    )
    lines = evidence.summary(record)
    before = record.get("before") or {}
    lines.insert(1, f"  owner before {before.get('owner')}, lessee before {before.get('lessee')}")
    for line in lines:
        demo.say(f"{' ' * 21}{line}")
    return True


def _clean(demo: Any, node: Any, api: Any, expect: str) -> bool:
    """Clean one node through the ramdisk agent; print how it ended; say whether it ended as expected."""
    from agent.conductor import gpu_acceptance
    from agent.db import api as db_api
    from agent.demo.deploy import RamdiskAgent

    demo.overrides.set("disk_map", _stand_ins(demo, node), "agent")
    db_api.update_node(
        node.node_uuid, {"deploy_interface": "direct", "automated_clean": True, "owner": OWNER}
    )
    ramdisk = None
    try:
        api.call({}, "change_provision_state", node_ident=node.node_uuid, verb="manage")
        if _wait(demo, node, {states.MANAGEABLE}, 20) is None:
            return False
        api.call({}, "change_provision_state", node_ident=node.node_uuid, verb="provide")
        if _wait(demo, node, {states.CLEANWAIT, states.AVAILABLE, states.CLEANFAIL}, 20) is None:
            return False
        if node.agent is not None:
            node.agent.shutdown()  # the fake power-on "PXE-boots" the node into the ramdisk
        demo.say(f"{demo.stamp()} {node.label:<12} powered on into the ramdisk agent")
        ramdisk = RamdiskAgent(demo.transport, node.node_uuid, node.inventory, 0.5)
        row = _wait(demo, node, {states.AVAILABLE, states.CLEANFAIL}, 60)
    finally:
        if ramdisk is not None:
            ramdisk.stop()
    if row is None:
        return False
    traits = db_api.get_node_traits(node.node_uuid)
    if row.provision_state == states.CLEANFAIL:
        quarantined = gpu_acceptance.TRAIT_QUARANTINE in traits
        demo.say(
            f"{' ' * 21}maintenance {'on' if row.maintenance else 'off'}, "
            f"{gpu_acceptance.TRAIT_QUARANTINE if quarantined else 'not quarantined'}"
        )
        demo.say(f"{' ' * 21}reason: {row.maintenance_reason or row.last_error}")
    else:
        _show_record(demo, node)
    return row.provision_state == expect


def run(demo: Any) -> bool:
    """Clean the fixture fleet's gate nodes; say whether each ended as the demo expects."""
    from agent.common import rpc
    from agent.conductor import agent_commands
    from agent.conductor.agent_client import AgentClient

    by_label = {n.label: n for n in demo.nodes if n.node_uuid}
    chosen = [(by_label[label], expect) for label, expect in GATE_TREES if label in by_label]
    if not chosen:
        names = ", ".join(label for label, _ in GATE_TREES)
        demo.say(f"kiln-demo: GPU gate not shown: none of the trees {names} is part of this run")
        return True
    for step, priority in PRIORITIES:
        demo.overrides.set(f"{step}_priority", priority, "deploy")
    steps = ", ".join(f"{s} ({p})" for s, p in PRIORITIES)
    demo.say(f"GPU acceptance gate: automated cleaning of {len(chosen)} node(s), steps {steps}")
    agent_commands.set_agent_client(AgentClient(demo.transport, timeout=10))
    api = rpc.get_client(demo.transport, rpc.CONDUCTOR_TOPIC, timeout=30)  # as kiln-api calls it
    # The failures are the demo's point and it prints them; without -v their ERROR logs would repeat them.
    quiet = logging.getLogger("agent")
    level = quiet.level
    if quiet.getEffectiveLevel() >= logging.ERROR:
        quiet.setLevel(logging.CRITICAL)
    ok = True
    try:
        for node, expect in chosen:
            ended = _clean(demo, node, api, expect)
            if not ended:
                demo.say(f"kiln-demo: {node.label} did not end {expect} as the gate expects")
            ok = ok and ended
    finally:
        agent_commands.set_agent_client(None)
        quiet.setLevel(level)
    demo.say()
    return ok
