"""The API's answer when the conductor has no free worker: 503, as Ironic answers NoFreeConductorWorker."""

from __future__ import annotations

from agent.common import states
from agent.common.config import CONF
from agent.conductor import workers
from agent.db import api as db_api
from tests.unit.api.conftest import error_of, wait_for_state


def test_provision_past_the_pool_answers_503_and_leaves_the_node(api) -> None:
    CONF.set_override("workers_pool_size", 2, group="conductor")
    CONF.set_override("power_delay", 2.0, group="fake")  # each deploy holds its worker 2 s
    old = workers.set_pool(None)
    try:
        nodes = [
            db_api.create_node(
                {"name": f"busy-{i}", "driver": "fake-hardware", "provision_state": states.AVAILABLE}
            ).uuid
            for i in range(3)
        ]
        for uuid in nodes[:2]:
            api.put_json(f"/v1/nodes/{uuid}/states/provision", {"target": "active"}, status=202)
        resp = api.put_json(f"/v1/nodes/{nodes[2]}/states/provision", {"target": "active"}, status=503)
        assert "no free worker" in error_of(resp)
        third = api.get(f"/v1/nodes/{nodes[2]}").json
        assert (third["provision_state"], third["target_provision_state"], third["reservation"]) == (
            "available",
            None,
            None,
        )
        for uuid in nodes[:2]:
            wait_for_state(api, uuid, "active")
        api.put_json(f"/v1/nodes/{nodes[2]}/states/provision", {"target": "active"}, status=202)
        wait_for_state(api, nodes[2], "active")
    finally:
        pool = workers.set_pool(old)
        if pool is not None:
            pool.wait_idle(30)
            pool.shutdown()
        CONF.clear_override("workers_pool_size", group="conductor")
        CONF.clear_override("power_delay", group="fake")
