"""A node's serial console (GET and PUT /v1/nodes/{node}/states/console): not supported by Kiln.

Ironic serves it through a console interface (IPMI Serial-over-LAN, a Redfish graphical console).
Kiln has none: the BMCs it is proven against offer no console (virtualbmc's IPMI answers "SOL
payload disabled", sushy-tools has no console service), so both requests answer 400 saying so
instead of the 404 of an unknown path.
"""

from __future__ import annotations

import webob

from agent.api import base, dbread, errors, policy
from agent.api.router import Router


def _unsupported(node_uuid: str) -> errors.ApiError:
    return errors.HTTPBadRequest(
        f"Node {node_uuid}: the serial console is not supported: Kiln has no console interface "
        "(no IPMI Serial-over-LAN or Redfish console); read the console on the BMC itself."
    )


def get_console(req: base.ApiRequest, node_ident: str) -> webob.Response:
    """GET /v1/nodes/{node}/states/console: 400, no console interface."""
    node = dbread.get_node(req, node_ident)
    policy.authorize(req, "baremetal:node:get_console", node)
    raise _unsupported(node.uuid)


def set_console(req: base.ApiRequest, node_ident: str) -> webob.Response:
    """PUT /v1/nodes/{node}/states/console ({"enabled": bool}): 400, no console interface."""
    node = dbread.get_node(req, node_ident)
    policy.authorize(req, "baremetal:node:set_console_state", node)
    body = base.json_object(req, "the console state")
    if not isinstance(body.get("enabled"), bool):
        raise errors.HTTPBadRequest('The console state must be {"enabled": true} or {"enabled": false}.')
    raise _unsupported(node.uuid)


def register(router: Router) -> None:
    """Add the console routes."""
    router.add("GET", "/v1/nodes/{node_ident}/states/console", get_console)
    router.add("PUT", "/v1/nodes/{node_ident}/states/console", set_console)
