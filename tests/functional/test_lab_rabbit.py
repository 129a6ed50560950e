"""The lab's RabbitMQ account on the real broker, with a password that starts with "-"."""

from __future__ import annotations

import uuid

import kombu
import pytest

from agent.lab import rabbit
from tests.functional import procs

pytestmark = pytest.mark.skipif(procs.RABBITMQCTL is None, reason="rabbitmqctl is not installed")


def test_a_password_that_starts_with_a_dash_is_a_password(monkeypatch) -> None:
    """token_urlsafe makes such passwords one time in 64: rabbitmqctl must not read them as options."""
    name = f"kiln-test-lab-{uuid.uuid4().hex[:8]}"  # not the lab's own: a lab may be up on this broker
    monkeypatch.setattr(rabbit, "VHOST", name)
    monkeypatch.setattr(rabbit, "USER", name)
    password = "-El2L-Gl3i5uWdP2"
    try:
        rabbit.create(password)
        assert rabbit.exists()
        url = rabbit.transport_url(password, "127.0.0.1").replace("rabbit://", "amqp://")
        with kombu.Connection(url) as conn:
            conn.connect()
            assert conn.connected
    finally:
        removed = rabbit.destroy()
    assert removed == [f"rabbitmq user {name}", f"rabbitmq vhost {name}"]
    assert not rabbit.exists()
