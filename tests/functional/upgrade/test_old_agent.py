"""The previous release's kiln-agent (installed from git into its own venv) against this kiln-conductor.

Over the real RabbitMQ (this run's vhost) and PostgreSQL: the old agent looks up, reports its
inventory and heartbeats, and the node goes through an in-band inspection driven by this
conductor, capped with ``[upgrade_levels]agent`` at the old release as an operator would during
the upgrade. The "reboot" of inspection is the old agent restarted on the same tree.
"""

from __future__ import annotations

import json

import pytest

from agent.common import exception, row_dicts, states, upgrade_levels
from agent.conductor import hash_ring
from agent.conductor import rpcapi as conductor_rpcapi
from agent.conductor.agent_client import AgentClient
from agent.db import api as db_api
from tests.functional import procs
from tests.functional.test_conductor_rabbit import HGX, Cluster, _discovered_node
from tests.functional.upgrade import old_release

pytestmark = [
    pytest.mark.skipif(not procs.reachable(5672), reason="RabbitMQ is not listening on 127.0.0.1:5672"),
    pytest.mark.skipif(not procs.reachable(5432), reason="PostgreSQL is not listening on 127.0.0.1:5432"),
    pytest.mark.skipif(not HGX.is_dir(), reason=f"fixture tree {HGX} is missing"),
]


@pytest.fixture(scope="module")
def old_venv():
    """The previous release's venv (built into ~/.cache/kiln on first use)."""
    return old_release.release_venv()


def _old_agent(cluster: Cluster, venv, run: int):
    """Start the previous release's kiln-agent on the cluster's tree; return (process, log)."""
    sections = cluster._common()
    sections["inventory"] = {"use_nvml": "false"}
    sections["agent"] = {
        "root": cluster.root,
        "state_dir": cluster.tmp / "agent-state",
        "lookup_timeout": 5,
        "report_timeout": 5,
        "backoff_initial": 0.5,
        "backoff_max": 2,
        "watch_interval": 0.5,
    }
    conf = procs.write_conf(cluster.tmp / "old-agent.conf", sections)
    log = cluster.tmp / f"old-agent-{run}.log"
    proc = old_release.start(venv, "agent.cmd.agent", conf, log)
    cluster.procs.append(proc)
    return proc, log


def test_old_agent_is_served_and_inspected(cluster, transport, old_venv, monkeypatch) -> None:
    # The conductor runs capped at the old release for its agents, as the README's upgrade says.
    common = cluster._common

    def _with_caps() -> dict:
        sections = common()
        sections["upgrade_levels"] = {"agent": "2026.12.04"}
        return sections

    monkeypatch.setattr(cluster, "_common", _with_caps)
    conductor, conductor_log = cluster.conductor(
        "ft-upgrade-a", enabled_inspect_interfaces="agent,fake,no-inspect"
    )
    agent, agent_log = _old_agent(cluster, old_venv, 1)
    live = (conductor, agent)
    # It is the old code that runs: the old venv's package, outside this checkout.
    imported = old_release.run(old_venv, "-c", "import agent; print(agent.__file__)", cwd=cluster.tmp)
    assert str(old_venv) in imported.stdout and str(procs.REPO) not in imported.stdout

    # Lookup (discovery) and the inventory report are accepted and stored.
    node = procs.wait_for(_discovered_node, 120, "the old agent's node and inventory", live)
    assert node.provision_state == states.ENROLL
    assert len(db_api.get_node_inventory(node.id)["gpus"]) == 8
    assert {"CUSTOM_GPU_H100_SXM5_80GB", "CUSTOM_GPU_COUNT_8"} <= set(node.traits)
    assert "a0:88:c2:4e:3f:10" in {p.address for p in db_api.list_ports(node_id=node.id)}
    # Heartbeats are recorded, on the topic the new conductor named at lookup.
    first = procs.wait_for(lambda: db_api.get_node(node.uuid).last_heartbeat_at, 30, "a heartbeat", live)
    procs.wait_for(
        lambda: db_api.get_node(node.uuid).last_heartbeat_at > first, 30, "a later heartbeat", live
    )

    # This conductor's agent client, capped at the old release, commands the old agent.
    token = json.loads((cluster.tmp / "agent-state" / "agent-token.json").read_text())["agent_token"]
    agent_api = AgentClient(transport, timeout=15, version_cap=upgrade_levels.RELEASES["2026.12.04"]["agent"])
    assert agent_api.ping({}, node.uuid, token)["node_uuid"] == node.uuid
    assert len(agent_api.get_inventory({}, node.uuid, token)["gpus"]) == 8
    # A step newer than the old agent is refused by it, by name, not lost.
    with pytest.raises(exception.InvalidParameterValue, match="burnin_gpus"):
        agent_api.run_step({}, node.uuid, token, "burnin_gpus", {})

    # Inspection through the agent: manage, then inspect; the conductor clears the token and
    # "reboots" the node (fake power), the agent restarts, looks up again and reports.
    ring = hash_ring.HashRingManager(reset_interval=0)
    rpcapi = conductor_rpcapi.ConductorAPI(transport=transport, timeout=30, ring=ring)
    as_dict = row_dicts.node_to_dict(node)
    rpcapi.update_node({}, as_dict, {"inspect_interface": "agent"})
    rpcapi.change_provision_state({}, as_dict, "manage")
    procs.wait_for(
        lambda: db_api.get_node(node.uuid).provision_state == states.MANAGEABLE, 60, "manageable", live
    )
    rpcapi.change_provision_state({}, as_dict, "inspect")
    procs.wait_for(
        lambda: db_api.get_node(node.uuid).provision_state == states.INSPECTWAIT, 60, "inspect wait", live
    )
    assert db_api.get_node(node.uuid).agent_token_hash is None  # cleared for the next boot
    assert procs.stop(agent) == 0, cluster.logs()
    agent, agent_log = _old_agent(cluster, old_venv, 2)
    live = (conductor, agent)
    inspected = procs.wait_for(
        lambda: (n := db_api.get_node(node.uuid)).provision_state == states.MANAGEABLE and n,
        120,
        "inspected",
        live,
    )
    assert inspected.inspection_finished_at is not None, cluster.logs()
    assert inspected.last_error is None, inspected.last_error
    assert inspected.inspection_finished_at > inspected.inspection_started_at
    log = procs.read(conductor_log)
    # Two lookups handed out a token: the first start's and the "rebooted" agent's.
    assert log.count(f"Issued the agent token of node {node.uuid}") == 2, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    assert procs.stop(agent) == 0, cluster.logs()
    assert "Traceback" not in procs.read(agent_log), procs.read(agent_log)[-3000:]
    assert procs.stop(conductor) == 0, cluster.logs()
