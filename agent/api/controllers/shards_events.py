"""/v1/shards (1.82): the shards nodes name and how many nodes each has; /v1/events (1.54): the
network events a networking service posts (validated and logged: Kiln's network interfaces wire
ports themselves and wait for no event)."""

from __future__ import annotations

import webob
from oslo_log import log as logging
from oslo_utils import uuidutils
from sqlalchemy import func, select

from agent.api import base, errors, policy, versions
from agent.api.router import Router
from agent.db import engine as db_engine
from agent.db.models import Node

LOG = logging.getLogger(__name__)

EVENTS = versions.EVENTS
_NETWORK_EVENTS = ("network.bind_port", "network.unbind_port", "network.delete_port")
_EVENT_KEYS = {
    "event",
    "port_id",
    "mac_address",
    "status",
    "device_id",
    "binding:host_id",
    "binding:vnic_type",
}


def list_shards(req: base.ApiRequest) -> webob.Response:
    """GET /v1/shards: [{"name", "count"}] of the shards that have nodes (administrators only)."""
    base.require_version(req, versions.SHARDS)
    policy.authorize(req, "baremetal:shards:get")
    with db_engine.session() as sess:
        query = select(Node.shard, func.count()).where(Node.shard.is_not(None)).group_by(Node.shard)
        rows = sess.execute(query.order_by(Node.shard)).all()
    return base.json_response({"shards": [{"name": name, "count": count} for name, count in rows]})


def post_events(req: base.ApiRequest) -> webob.Response:
    """POST /v1/events: 204 once every event is a valid network event."""
    base.require_version(req, EVENTS)
    body = base.json_object(req, "the events")
    events = body.get("events")
    if set(body) != {"events"} or not isinstance(events, list) or not events:
        raise errors.HTTPBadRequest('The body must be {"events": [...]} with at least one event.')
    for index, event in enumerate(events):
        at = f"events[{index}]"
        if not isinstance(event, dict) or event.get("event") not in _NETWORK_EVENTS:
            raise errors.HTTPBadRequest(f"{at}.event must be one of {', '.join(_NETWORK_EVENTS)}.")
        unknown = sorted(set(event) - _EVENT_KEYS)
        if unknown:
            raise errors.HTTPBadRequest(f"{at} has unknown key(s) {', '.join(unknown)}.")
        for key in ("port_id", "device_id"):
            if event.get(key) is not None and not uuidutils.is_uuid_like(event[key]):
                raise errors.HTTPBadRequest(f"{at}.{key} must be a UUID, not {event[key]!r}.")
        LOG.info(
            "Network event %s for port %s: %s", event["event"], event.get("port_id"), event.get("status")
        )
    return base.no_content()


def register(router: Router) -> None:
    """Add the shard and event routes."""
    router.add("GET", "/v1/shards", list_shards)
    router.add("POST", "/v1/events", post_events)
