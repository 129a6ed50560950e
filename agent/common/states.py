"""Ironic's provision and power states, and the one table of legal transitions between them.

State names, verbs and transitions are Ironic's (ironic/common/states.py), so a client of
Ironic's API sees the same values here. The table below is the only place a transition is
declared; everything else (the machine, ``next_state``) is built from it.
"""

from __future__ import annotations

from automaton import exceptions as automaton_exc
from automaton import machines

from agent.common import exception

# --- provision states -----------------------------------------------------------------------

NOSTATE = None
ENROLL = "enroll"
VERIFYING = "verifying"
MANAGEABLE = "manageable"
AVAILABLE = "available"
ACTIVE = "active"
DEPLOYING = "deploying"
DEPLOYWAIT = "wait call-back"
DEPLOYFAIL = "deploy failed"
DEPLOYHOLD = "deploy hold"
DEPLOYDONE = "deploy complete"  # only ever a target shown by old clients, never a state
DELETING = "deleting"
DELETED = "deleted"  # transitory: what tear_down reports, never stored
CLEANING = "cleaning"
CLEANWAIT = "clean wait"
CLEANFAIL = "clean failed"
CLEANHOLD = "clean hold"
ERROR = "error"
INSPECTING = "inspecting"
INSPECTWAIT = "inspect wait"
INSPECTFAIL = "inspect failed"
ADOPTING = "adopting"
ADOPTFAIL = "adopt failed"
RESCUE = "rescue"
RESCUING = "rescuing"
RESCUEWAIT = "rescue wait"
RESCUEFAIL = "rescue failed"
UNRESCUING = "unrescuing"
UNRESCUEFAIL = "unrescue failed"
SERVICING = "servicing"
SERVICEWAIT = "service wait"
SERVICEFAIL = "service failed"
SERVICEHOLD = "service hold"

# Words the REST API accepts as a target that are not states themselves.
DEPLOY = "deploy"
UNDEPLOY = "undeploy"
REBUILD = "rebuild"
SERVICE = "service"

VERBS: dict[str, str] = {
    "active": "deploy",
    "deploy": "deploy",
    "deleted": "delete",
    "undeploy": "delete",
    "manage": "manage",
    "provide": "provide",
    "inspect": "inspect",
    "abort": "abort",
    "clean": "clean",
    "adopt": "adopt",
    "rescue": "rescue",
    "unrescue": "unrescue",
    "unhold": "unhold",
    "service": "service",
}
"""API target (PUT /v1/nodes/{node}/states/provision {"target": ...}) -> machine event."""

API_TARGETS: dict[str, str] = {**VERBS, REBUILD: "rebuild"}
"""Every target the API accepts; "rebuild" is a verb Ironic handles beside VERBS."""

STABLE_STATES = (ENROLL, MANAGEABLE, AVAILABLE, ACTIVE, ERROR, RESCUE)
"""States a node stays in until someone asks for a change."""

UNSTABLE_STATES = (
    DEPLOYING,
    DEPLOYWAIT,
    CLEANING,
    CLEANWAIT,
    VERIFYING,
    DELETING,
    INSPECTING,
    INSPECTWAIT,
    ADOPTING,
    RESCUING,
    RESCUEWAIT,
    UNRESCUING,
    SERVICING,
    SERVICEWAIT,
)
"""States the conductor moves a node out of by itself."""

HOLD_STATES = frozenset((DEPLOYHOLD, CLEANHOLD, SERVICEHOLD))
"""States where a step paused the work until an operator sends ``unhold`` (or ``abort``)."""

AGENT_WAIT_STATES = frozenset((DEPLOYWAIT, CLEANWAIT, INSPECTWAIT, SERVICEWAIT, RESCUEWAIT))
"""States in which the conductor waits for the node's agent (its heartbeats and step results)."""

FAILURE_STATES = frozenset(
    (DEPLOYFAIL, CLEANFAIL, INSPECTFAIL, RESCUEFAIL, UNRESCUEFAIL, ADOPTFAIL, SERVICEFAIL)
)

STUCK_STATES_TREATED_AS_FAIL = (
    DEPLOYING,
    CLEANING,
    VERIFYING,
    INSPECTING,
    ADOPTING,
    RESCUING,
    UNRESCUING,
    DELETING,
    SERVICING,
)
"""States that cannot resume when their conductor dies: the node is failed instead."""

DELETE_ALLOWED_STATES = (MANAGEABLE, ENROLL, ADOPTFAIL)
UPDATE_ALLOWED_STATES = (
    DEPLOYFAIL,
    INSPECTING,
    INSPECTFAIL,
    INSPECTWAIT,
    CLEANFAIL,
    ERROR,
    VERIFYING,
    ADOPTFAIL,
    RESCUEFAIL,
    UNRESCUEFAIL,
    SERVICE,
    SERVICEHOLD,
    SERVICEFAIL,
)
"""Transitional states in which a node's fields may still be updated."""

LOOKUP_ALLOWED_STATES = frozenset(
    (DEPLOYING, DEPLOYWAIT, CLEANING, CLEANWAIT, INSPECTING, INSPECTWAIT, RESCUING, RESCUEWAIT, SERVICEWAIT)
)
FASTTRACK_LOOKUP_ALLOWED_STATES = frozenset(
    (ENROLL, MANAGEABLE, AVAILABLE, SERVICING, SERVICEHOLD) + tuple(LOOKUP_ALLOWED_STATES)
)

# --- power states ---------------------------------------------------------------------------

POWER_ON = "power on"
POWER_OFF = "power off"
REBOOT = "rebooting"
SOFT_REBOOT = "soft rebooting"
SOFT_POWER_OFF = "soft power off"
POWER_STATES = (POWER_ON, POWER_OFF, REBOOT, SOFT_REBOOT, SOFT_POWER_OFF)
"""Values of ``power_state`` / ``target_power_state`` (ERROR too when the BMC cannot be read)."""

# --- the machine ----------------------------------------------------------------------------

# Where an unstable state is heading; the node shows it as target_provision_state.
STATE_TARGETS: dict[str, str] = {
    VERIFYING: MANAGEABLE,
    DEPLOYING: ACTIVE,
    DEPLOYWAIT: ACTIVE,
    DEPLOYFAIL: ACTIVE,
    DEPLOYHOLD: ACTIVE,
    CLEANING: AVAILABLE,
    CLEANWAIT: AVAILABLE,
    CLEANFAIL: AVAILABLE,
    CLEANHOLD: AVAILABLE,
    DELETING: AVAILABLE,
    INSPECTING: MANAGEABLE,
    INSPECTWAIT: MANAGEABLE,
    INSPECTFAIL: MANAGEABLE,
    ADOPTING: ACTIVE,
    ADOPTFAIL: ACTIVE,
    RESCUING: RESCUE,
    RESCUEWAIT: RESCUE,
    RESCUEFAIL: RESCUE,
    UNRESCUING: ACTIVE,
    UNRESCUEFAIL: ACTIVE,
    SERVICING: ACTIVE,
    SERVICEWAIT: ACTIVE,
    SERVICEFAIL: ACTIVE,
    SERVICEHOLD: ACTIVE,
}

# (source, event, destination): every legal move, grouped by the operation it belongs to.
TRANSITIONS: tuple[tuple[str, str, str], ...] = (
    # enrolment: verify the BMC credentials
    (ENROLL, "manage", VERIFYING),
    (VERIFYING, "done", MANAGEABLE),
    (VERIFYING, "fail", ENROLL),
    # manageable <-> available
    (MANAGEABLE, "provide", CLEANING),
    (MANAGEABLE, "clean", CLEANING),
    (AVAILABLE, "manage", MANAGEABLE),
    # deployment
    (AVAILABLE, "deploy", DEPLOYING),
    (DEPLOYING, "wait", DEPLOYWAIT),
    (DEPLOYING, "hold", DEPLOYHOLD),
    (DEPLOYING, "done", ACTIVE),
    (DEPLOYING, "fail", DEPLOYFAIL),
    (DEPLOYWAIT, "resume", DEPLOYING),
    (DEPLOYWAIT, "hold", DEPLOYHOLD),
    (DEPLOYWAIT, "fail", DEPLOYFAIL),
    (DEPLOYWAIT, "abort", DEPLOYFAIL),
    (DEPLOYWAIT, "delete", DELETING),
    (DEPLOYHOLD, "unhold", DEPLOYWAIT),
    (DEPLOYHOLD, "abort", DEPLOYFAIL),
    (DEPLOYFAIL, "rebuild", DEPLOYING),
    (DEPLOYFAIL, "deploy", DEPLOYING),
    (DEPLOYFAIL, "delete", DELETING),
    (ACTIVE, "rebuild", DEPLOYING),
    (ERROR, "rebuild", DEPLOYING),
    # tear down
    (ACTIVE, "delete", DELETING),
    (ERROR, "delete", DELETING),
    (DELETING, "clean", CLEANING),
    (DELETING, "fail", ERROR),
    # cleaning
    (CLEANING, "done", AVAILABLE),
    (CLEANING, "manage", MANAGEABLE),
    (CLEANING, "wait", CLEANWAIT),
    (CLEANING, "hold", CLEANHOLD),
    (CLEANING, "fail", CLEANFAIL),
    (CLEANWAIT, "resume", CLEANING),
    (CLEANWAIT, "hold", CLEANHOLD),
    (CLEANWAIT, "fail", CLEANFAIL),
    (CLEANWAIT, "abort", CLEANFAIL),
    (CLEANHOLD, "unhold", CLEANWAIT),
    (CLEANHOLD, "abort", CLEANFAIL),
    (CLEANFAIL, "manage", MANAGEABLE),
    # inspection
    (MANAGEABLE, "inspect", INSPECTING),
    (INSPECTING, "done", MANAGEABLE),
    (INSPECTING, "wait", INSPECTWAIT),
    (INSPECTING, "fail", INSPECTFAIL),
    (INSPECTWAIT, "done", MANAGEABLE),
    (INSPECTWAIT, "resume", INSPECTING),
    (INSPECTWAIT, "fail", INSPECTFAIL),
    (INSPECTWAIT, "abort", INSPECTFAIL),
    (INSPECTFAIL, "manage", MANAGEABLE),
    (INSPECTFAIL, "inspect", INSPECTING),
    # adoption of a node deployed by other means
    (MANAGEABLE, "adopt", ADOPTING),
    (ADOPTING, "done", ACTIVE),
    (ADOPTING, "fail", ADOPTFAIL),
    (ADOPTFAIL, "adopt", ADOPTING),
    (ADOPTFAIL, "manage", MANAGEABLE),
    # rescue
    (ACTIVE, "rescue", RESCUING),
    (RESCUING, "done", RESCUE),
    (RESCUING, "wait", RESCUEWAIT),
    (RESCUING, "fail", RESCUEFAIL),
    (RESCUEWAIT, "resume", RESCUING),
    (RESCUEWAIT, "fail", RESCUEFAIL),
    (RESCUEWAIT, "abort", RESCUEFAIL),
    (RESCUEWAIT, "delete", DELETING),
    (RESCUE, "rescue", RESCUING),
    (RESCUE, "unrescue", UNRESCUING),
    (RESCUE, "delete", DELETING),
    (RESCUEFAIL, "rescue", RESCUING),
    (RESCUEFAIL, "unrescue", UNRESCUING),
    (RESCUEFAIL, "delete", DELETING),
    (UNRESCUING, "done", ACTIVE),
    (UNRESCUING, "fail", UNRESCUEFAIL),
    (UNRESCUEFAIL, "rescue", RESCUING),
    (UNRESCUEFAIL, "unrescue", UNRESCUING),
    (UNRESCUEFAIL, "delete", DELETING),
    # servicing an active node
    (ACTIVE, "service", SERVICING),
    (SERVICING, "done", ACTIVE),
    (SERVICING, "wait", SERVICEWAIT),
    (SERVICING, "hold", SERVICEHOLD),
    (SERVICING, "fail", SERVICEFAIL),
    (SERVICEWAIT, "resume", SERVICING),
    (SERVICEWAIT, "hold", SERVICEHOLD),
    (SERVICEWAIT, "fail", SERVICEFAIL),
    (SERVICEWAIT, "abort", SERVICEFAIL),
    (SERVICEWAIT, "delete", DELETING),
    (SERVICEHOLD, "service", SERVICING),
    (SERVICEHOLD, "unhold", SERVICEWAIT),
    (SERVICEHOLD, "fail", SERVICEFAIL),
    (SERVICEHOLD, "abort", SERVICEFAIL),
    (SERVICEFAIL, "service", SERVICING),
    (SERVICEFAIL, "rescue", RESCUING),
    (SERVICEFAIL, "wait", SERVICEWAIT),
    (SERVICEFAIL, "hold", SERVICEHOLD),
    (SERVICEFAIL, "delete", DELETING),
    (SERVICEFAIL, "abort", ACTIVE),
)

ALL_STATES = frozenset(STABLE_STATES) | frozenset(STATE_TARGETS) | HOLD_STATES | FAILURE_STATES
EVENTS = frozenset(event for _src, event, _dst in TRANSITIONS)


class ProvisionMachine(machines.FiniteMachine):
    """automaton's FiniteMachine that also tracks the target state, as Ironic's nodes show it."""

    def __init__(self) -> None:
        super().__init__()
        self._target_state: str | None = None

    @property
    def target_state(self) -> str | None:
        """The stable state the current operation is heading to, or None."""
        return self._target_state

    def is_stable(self, state: str) -> bool:
        """Whether ``state`` is one a node rests in until asked to move."""
        return state in STABLE_STATES

    def _validate_target(self, target: str | None) -> None:
        if target is not None and target not in STABLE_STATES:
            raise exception.InvalidState(
                reason=f'target "{target}" is not a stable state; use one of {", ".join(STABLE_STATES)}'
            )

    def initialize(self, start_state: str | None = None, target_state: str | None = None) -> None:
        """Start the machine at ``start_state`` heading to ``target_state`` (or the state's own)."""
        if start_state not in self._states:
            raise exception.InvalidState(reason=f'"{start_state}" is not a provision state')
        super().initialize(start_state=start_state)
        self._validate_target(target_state)
        self._target_state = target_state or STATE_TARGETS.get(start_state)

    def _post_process_event(self, event: str, result):
        current = self.current_state
        if self._target_state == current:
            self._target_state = None
        if current in STATE_TARGETS:
            self._target_state = STATE_TARGETS[current]
        return super()._post_process_event(event, result)

    def process_event(self, event: str, target_state: str | None = None):
        """Move along ``event``; ``target_state`` overrides where the new state is heading."""
        self._validate_target(target_state)
        result = super().process_event(event)
        if target_state:
            self._target_state = target_state
        return result


def _build() -> ProvisionMachine:
    machine = ProvisionMachine()
    for state in sorted(ALL_STATES):
        machine.add_state(state)
    for src, event, dst in TRANSITIONS:
        machine.add_transition(src, dst, event)
    machine.freeze()
    return machine


MACHINE = _build()
"""The frozen provision state machine; use ``new_machine`` for one that can move."""


def new_machine(state: str, target_state: str | None = None) -> ProvisionMachine:
    """Return a machine sharing the table, initialized at ``state``."""
    machine = MACHINE.copy(shallow=True)
    machine.initialize(state, target_state)
    return machine


def next_state(current: str, event: str, node: str | None = None) -> str:
    """Return the state ``event`` leads to from ``current``; InvalidStateRequested when illegal."""
    if current not in ALL_STATES:
        raise exception.InvalidStateRequested(
            f'Node "{node or "?"}" is in unknown provision state "{current}"; '
            f"known states are: {', '.join(sorted(ALL_STATES))}."
        )
    machine = new_machine(current)
    try:
        machine.process_event(event)
    except automaton_exc.NotFound:
        raise exception.InvalidStateRequested(action=event, node=node or "?", state=current) from None
    return machine.current_state


def allowed_events(state: str) -> list[str]:
    """Events that are legal from ``state``, sorted."""
    return sorted(event for src, event, _dst in TRANSITIONS if src == state)
