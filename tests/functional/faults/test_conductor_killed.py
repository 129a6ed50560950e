"""kiln-conductor SIGKILLed in the middle of cleaning and of a deploy, with a second conductor up:
the survivor takes the node over (the work completes) or the node ends in a clear failed state with
a last_error naming the dead conductor. It is never left in an ``*ing`` or wait state, and nothing
of the node (driver_info, instance_info, ports) is lost."""

from __future__ import annotations

import signal
import time

import pytest

from tests.functional import procs
from tests.functional.deploy.conftest import MAC
from tests.functional.faults.deploy_stack import WAIT, deploy_stack, driver_info, enroll, logs
from tests.functional.faults.services import start_conductor

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not procs.reachable(5672), reason="RabbitMQ is not listening on 127.0.0.1:5672"),
    pytest.mark.skipif(not procs.reachable(5432), reason="PostgreSQL is not listening on 127.0.0.1:5432"),
]
HOSTS = ("conductor-a", "conductor-b")
SETTLED = {"available", "active", "clean failed", "deploy failed", "manageable"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The deploy stack with two conductors sharing a throwaway PostgreSQL database."""
    with procs.throwaway_postgres() as db_url:
        with deploy_stack(tmp_path_factory.mktemp("killed"), procs.RABBIT_URL, db_url, HOSTS) as stack:
            yield stack


def _kill_owner(stack: dict, bm, node_id: str, states: tuple[str, ...]) -> tuple[str, str]:
    """SIGKILL the conductor working on the node once it is in one of ``states``; (host, state)."""

    def busy():
        node = bm.get_node(node_id)
        return (
            (node.conductor, node.provision_state)
            if node.provision_state in states and node.conductor
            else None
        )

    host, state = procs.wait_for(busy, WAIT, f"node in {states}", tuple(stack["conductors"].values()))
    proc = stack["conductors"][host]
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    return host, state


def _settle(bm, node_id: str, stack: dict):
    """Wait until the node leaves every *ing and wait state; the node."""
    try:
        procs.wait_for(lambda: bm.get_node(node_id).provision_state in SETTLED, WAIT, "the node to settle")
    except AssertionError as exc:
        node = bm.get_node(node_id)
        raise AssertionError(
            f"{exc}: stuck in {node.provision_state} ({node.last_error}){logs(stack)}"
        ) from None
    return bm.get_node(node_id)


def _revive(stack: dict, host: str) -> None:
    stack["conductors"][host] = start_conductor(stack["conf"], host)


def _intact(stack: dict, bm, node) -> None:
    if node.provision_state.endswith("failed"):  # the survivor tidied up what the dead one set up
        assert node.power_state == "power off", node.power_state
        assert not stack["node"].agent_running()
        script = stack["tmp"] / "httpboot" / f"{MAC.replace(':', '-')}.ipxe"
        assert not script.exists(), f"{script} left behind"
    assert node.driver_info["redfish_address"] == driver_info(stack["bmc"])["redfish_address"]
    assert [p.address for p in bm.ports(node_id=node.id)] == [MAC]
    assert node.reservation is None


def test_conductor_killed_during_cleaning(stack) -> None:
    bm = stack["conn"].baremetal
    node = enroll(stack, bm)
    bm.set_node_provision_state(node, "provide")
    started = time.monotonic()
    host, state = _kill_owner(stack, bm, node.id, ("cleaning", "clean wait"))
    settled = _settle(bm, node.id, stack)
    took = time.monotonic() - started
    print(
        f"killed {host} in {state}; node {settled.provision_state} after {took:.0f} s: {settled.last_error}"
    )
    assert settled.provision_state in ("available", "clean failed"), settled.last_error
    if settled.provision_state == "clean failed":
        assert host in settled.last_error and "Retry" in settled.last_error
    survivor = next(h for h in HOSTS if h != host)
    procs.wait_for(lambda: bm.get_node(node.id).conductor == survivor, 30, f"the API to name {survivor}")
    _intact(stack, bm, settled)
    _revive(stack, host)
    if settled.provision_state == "clean failed":  # the operator's way out works on the survivor
        bm.set_node_provision_state(node, "manage", wait=True, timeout=WAIT)
        settled = bm.set_node_provision_state(node, "provide", wait=True, timeout=WAIT)
    assert settled.provision_state == "available", settled.last_error


def test_conductor_killed_during_deploy(stack) -> None:
    bm = stack["conn"].baremetal
    node = bm.get_node("sim-node")
    assert node.provision_state == "available"
    url, sha = stack["image"]
    bm.patch_node(
        node,
        [
            {"op": "add", "path": "/instance_info/image_source", "value": url},
            {"op": "add", "path": "/instance_info/image_checksum", "value": sha},
        ],
    )
    bm.set_node_provision_state(node, "active")
    host, state = _kill_owner(stack, bm, node.id, ("deploying", "wait call-back"))
    settled = _settle(bm, node.id, stack)
    print(f"killed {host} in {state}; node {settled.provision_state}: {settled.last_error}")
    assert settled.provision_state in ("active", "deploy failed"), settled.last_error
    if settled.provision_state == "deploy failed":
        assert host in settled.last_error
    assert settled.instance_info["image_source"] == url
    _intact(stack, bm, settled)
    _revive(stack, host)


def test_conductor_killed_while_the_agent_deploys(stack) -> None:
    """Killed in ``wait call-back`` (the agent works, no lock held): the survivor carries on or fails it."""
    bm = stack["conn"].baremetal
    node = bm.get_node("sim-node")
    assert node.provision_state in ("deploy failed", "active")
    if node.provision_state == "active":
        bm.set_node_provision_state(node, "deleted", wait=True, timeout=WAIT)
    bm.set_node_provision_state(node, "active")  # a retry of the failed deploy, or a new one
    host, state = _kill_owner(stack, bm, node.id, ("wait call-back",))
    settled = _settle(bm, node.id, stack)
    print(f"killed {host} in {state}; node {settled.provision_state}: {settled.last_error}")
    assert settled.provision_state in ("active", "deploy failed"), settled.last_error
    if settled.provision_state == "deploy failed":
        assert settled.last_error
    _intact(stack, bm, settled)
    _revive(stack, host)
