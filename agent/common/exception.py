"""Kiln's exceptions. Each message says what failed, on which node or device, and what to do."""

from __future__ import annotations


class KilnException(Exception):
    """Base of every Kiln error; ``code`` is the HTTP status the API answers with."""

    code = 500
    message = "An unknown error occurred."

    def __init__(self, message: str | None = None, **kwargs) -> None:
        self.kwargs = kwargs
        if message is None:
            try:
                message = self.message % kwargs
            except (KeyError, TypeError):
                message = self.message
        super().__init__(message)

    def __str__(self) -> str:
        return self.args[0] if self.args else self.message


class Invalid(KilnException):
    code = 400
    message = "Invalid input: %(reason)s"


class InvalidParameterValue(Invalid):
    message = "%(err)s"


class MissingParameterValue(Invalid):
    message = "%(err)s"


class InvalidState(KilnException):
    code = 409
    message = "Invalid state: %(reason)s"


class InvalidStateRequested(Invalid):
    message = (
        'The requested action "%(action)s" can not be performed on node "%(node)s" '
        'while it is in state "%(state)s".'
    )


class NotFound(KilnException):
    code = 404
    message = "Resource could not be found."


class NodeNotFound(NotFound):
    message = "Node %(node)s could not be found."


class PortNotFound(NotFound):
    message = "Port %(port)s could not be found."


class ChassisNotFound(NotFound):
    message = "Chassis %(chassis)s could not be found."


class VolumeConnectorNotFound(NotFound):
    message = "Volume connector %(connector)s could not be found."


class VolumeTargetNotFound(NotFound):
    message = "Volume target %(target)s could not be found."


class DeployTemplateNotFound(NotFound):
    message = "Deploy template %(template)s could not be found."


class RunbookNotFound(NotFound):
    message = "Runbook %(runbook)s could not be found."


class InspectionRuleNotFound(NotFound):
    message = "Inspection rule %(rule)s could not be found."


class ConductorNotFound(NotFound):
    message = "No conductor is alive to handle %(what)s."


class Conflict(KilnException):
    code = 409
    message = "Conflict."


class DuplicateName(Conflict):
    message = "A node with name %(name)s already exists."


class MACAlreadyExists(Conflict):
    message = "A port with MAC address %(mac)s already exists."


class NodeAlreadyExists(Conflict):
    message = "A node with UUID %(uuid)s already exists."


class NodeLocked(Conflict):
    message = (
        "Node %(node)s is locked by host %(host)s, please retry after the current operation is completed."
    )


class NoFreeConductorWorker(KilnException):
    code = 503
    message = (
        "The conductor has no free worker for this action: all [conductor]workers_pool_size workers are "
        "busy with other nodes. Retry shortly, raise workers_pool_size, or add conductors."
    )


class NodeNotLocked(KilnException):
    message = "Node %(node)s found not to be locked by host %(host)s on release."


class NodeInMaintenance(Conflict):
    message = "The %(op)s operation can't be performed on node %(node)s because it's in maintenance mode."


class DriverNotFound(NotFound):
    message = "Could not find the following driver(s) or hardware type(s): %(driver_name)s."


class InterfaceNotFoundInEntrypoint(Invalid):
    message = "Could not find the following interface in the %(iface)s entrypoint: %(name)s."


class Unauthorized(KilnException):
    code = 401
    message = "Not authorized: %(reason)s"


class InvalidAgentToken(Unauthorized):
    message = "Agent token for node %(node)s is missing or wrong; the message was rejected."

    def __init__(self, message: str | None = None, **kwargs) -> None:
        if message is None and kwargs.get("reason"):
            message = (
                f"Agent token for node {kwargs.get('node')} is missing or wrong ({kwargs['reason']}); "
                "the message was rejected."
            )
        super().__init__(message, **kwargs)


class DiscoveryDisabled(NotFound):
    message = (
        "No node matches the lookup (MACs %(macs)s, system UUID %(uuid)s) and discovery is off; "
        "enroll the node or set [conductor]enable_discovery."
    )


class AgentCommandFailed(KilnException):
    message = "Agent command %(command)s failed on node %(node)s: %(error)s"


class ImageChecksumError(KilnException):
    code = 400
    message = "Image %(image)s checksum mismatch: expected %(expected)s, got %(actual)s."


class InventoryInvalid(Invalid):
    message = "Inventory from node %(node)s is invalid: %(reason)s"


class BootFileWriteError(KilnException):
    message = "Could not write boot file %(path)s: %(reason)s"


class PowerStateFailure(KilnException):
    message = "Failed to set node power state to %(pstate)s."


# --- database errors (formerly agent.db.exceptions) ---


class PortAlreadyExists(Conflict):
    message = "A port with UUID %(uuid)s already exists."


class PortDuplicateName(Conflict):
    message = "A port with name %(name)s already exists."


class PortgroupNotFound(NotFound):
    message = "Portgroup %(portgroup)s could not be found."


class PortgroupAlreadyExists(Conflict):
    message = "A portgroup with UUID %(uuid)s already exists."


class PortgroupDuplicateName(Conflict):
    message = "A portgroup with name %(name)s already exists."


class PortgroupMACAlreadyExists(Conflict):
    message = "A portgroup with MAC address %(mac)s already exists."


class PortgroupNotEmpty(Invalid):
    message = (
        "Cannot complete the requested action because portgroup %(portgroup)s contains ports; "
        "move or delete its ports first."
    )


class VifAlreadyAttached(Conflict):
    message = (
        "Unable to attach VIF because VIF %(vif)s is already attached to "
        "Ironic %(object_type)s %(object_uuid)s"
    )


class NoFreePhysicalPorts(Invalid):
    message = "Unable to attach VIF %(vif)s, not enough free physical ports."


class VifNotAttached(Invalid):
    message = "Unable to detach VIF %(vif)s from node %(node)s because it is not attached to it."


class NetworkNotFound(Invalid):
    message = "Network %(network)s is not declared."


class NetworkNotAllowed(KilnException):
    code = 403
    message = "Network %(network)s may not be used here."


class SwitchError(KilnException):
    message = "Switch %(switch)s port %(port)s: %(error)s"


class NeutronError(KilnException):
    message = "Neutron at %(url)s: %(error)s"


class ConductorNotRegistered(NotFound):
    message = "Conductor %(conductor)s is not registered."


class TurnoverRecordNotFound(NotFound):
    message = "Turnover record %(record)s could not be found."


class AllocationNotFound(NotFound):
    message = "Allocation %(allocation)s could not be found."


class AllocationAlreadyExists(Conflict):
    message = "An allocation with UUID %(uuid)s already exists."


class AllocationDuplicateName(Conflict):
    message = "An allocation with name %(name)s already exists."


class InstanceAssociated(Conflict):
    message = (
        "Instance %(instance_uuid)s is already associated with a node; it cannot be associated with %(node)s."
    )


class NodeLookupConflict(Conflict):
    message = (
        "Lookup by MACs %(macs)s and system UUID %(uuid)s matches several nodes (%(nodes)s); "
        "remove the duplicate ports or nodes."
    )


class ChassisNotEmpty(Invalid):
    message = (
        "Cannot complete the requested action because chassis %(chassis)s contains nodes; move them first."
    )


class ResourceAlreadyExists(Conflict):
    message = "A %(kind)s with %(what)s already exists."


class BIOSSettingNotFound(NotFound):
    message = "Node %(node)s doesn't have a BIOS setting '%(name)s'"


class UnsupportedDriverExtension(Invalid):
    message = "Driver %(driver)s does not support %(extension)s (disabled or not implemented)."


class RPCVersionCapped(Conflict):
    message = (
        "%(method)s needs %(topic)s RPC API %(needed)s, but [upgrade_levels]%(option)s caps it at %(cap)s "
        "while services of an older release run; retry once every %(option)s runs the new release and "
        "the cap is lifted."
    )


class AgentRPCRefused(Unauthorized):
    message = (
        "RPC method %(method)s may not be called on the agents' topic %(topic)s: agents may call only "
        "%(allowed)s. The message was refused and logged."
    )
