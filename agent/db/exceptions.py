"""Database errors that agent.common.exception does not define yet (subclasses of its classes)."""

from __future__ import annotations

from agent.common import exception


class PortAlreadyExists(exception.Conflict):
    message = "A port with UUID %(uuid)s already exists."


class PortDuplicateName(exception.Conflict):
    message = "A port with name %(name)s already exists."


class ConductorNotRegistered(exception.NotFound):
    message = "Conductor %(conductor)s is not registered."


class AllocationNotFound(exception.NotFound):
    message = "Allocation %(allocation)s could not be found."


class AllocationAlreadyExists(exception.Conflict):
    message = "An allocation with UUID %(uuid)s already exists."


class AllocationDuplicateName(exception.Conflict):
    message = "An allocation with name %(name)s already exists."


class InstanceAssociated(exception.Conflict):
    message = (
        "Instance %(instance_uuid)s is already associated with a node; it cannot be associated with %(node)s."
    )
