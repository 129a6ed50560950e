"""Each functional run talks to RabbitMQ on a vhost of its own, so a second run (or a running
Kiln) that uses the same topics never answers this run's calls."""

from __future__ import annotations

import uuid

import oslo_messaging as messaging
import pytest
from oslo_config import cfg

from agent.common import rpc
from tests.functional import procs

pytestmark = [
    pytest.mark.skipif(not procs.reachable(5672), reason="RabbitMQ is not listening on 127.0.0.1:5672"),
    pytest.mark.skipif(procs.RABBITMQCTL is None, reason="rabbitmqctl is not installed"),
]


class Echo:
    """An endpoint that says which run answered."""

    def __init__(self, who: str) -> None:
        self.who = who

    def who_answers(self, context: dict) -> str:
        """The name of the run this server belongs to."""
        return self.who


def test_a_call_is_answered_only_on_its_own_vhost(rabbit_vhost) -> None:
    assert rabbit_vhost == procs.RABBIT_VHOST and procs.RABBIT_URL.endswith("/" + rabbit_vhost)
    other_vhost = f"kiln-test-other-{uuid.uuid4().hex[:8]}"
    topic = "kiln.vhost-isolation"  # the same topic in both runs, as two Kiln test runs would use
    procs.add_vhost(other_vhost)
    ours = rpc.get_transport(cfg.CONF, url=procs.RABBIT_URL)
    theirs = rpc.get_transport(cfg.CONF, url=f"rabbit://guest:guest@127.0.0.1:5672/{other_vhost}")
    server = rpc.get_server(ours, topic, "this-run", [Echo("this run")])
    server.start()
    try:
        assert rpc.get_client(ours, topic, timeout=20).call({}, "who_answers") == "this run"
        with pytest.raises(messaging.MessagingTimeout):
            rpc.get_client(theirs, topic, timeout=3).call({}, "who_answers")
    finally:
        assert rpc.stop_server(server, 10)
        ours.cleanup()
        theirs.cleanup()
        procs.delete_vhost(other_vhost)
