"""The provision state machine: Ironic's table, walks through a node's life, and illegal verbs."""

from __future__ import annotations

import pytest

from agent.common import exception, states

# Every add_transition() of Ironic's ironic/common/states.py (master, with the hold and service
# states), in its source order, written out by hand as (source, event, destination).
IRONIC_TRANSITIONS = [
    ("available", "deploy", "deploying"),
    ("deploying", "fail", "deploy failed"),
    ("deploy failed", "rebuild", "deploying"),
    ("deploy failed", "deploy", "deploying"),
    ("deploying", "wait", "wait call-back"),
    ("deploying", "hold", "deploy hold"),
    ("wait call-back", "hold", "deploy hold"),
    ("wait call-back", "resume", "deploying"),
    ("wait call-back", "fail", "deploy failed"),
    ("deploy hold", "unhold", "wait call-back"),
    ("deploy hold", "abort", "deploy failed"),
    ("deploying", "done", "active"),
    ("active", "rebuild", "deploying"),
    ("active", "delete", "deleting"),
    ("wait call-back", "delete", "deleting"),
    ("deploy failed", "delete", "deleting"),
    ("deleting", "fail", "error"),
    ("deleting", "clean", "cleaning"),
    ("cleaning", "done", "available"),
    ("cleaning", "fail", "clean failed"),
    ("clean wait", "fail", "clean failed"),
    ("clean wait", "abort", "clean failed"),
    ("cleaning", "wait", "clean wait"),
    ("cleaning", "hold", "clean hold"),
    ("clean wait", "hold", "clean hold"),
    ("clean wait", "resume", "cleaning"),
    ("clean hold", "abort", "clean failed"),
    ("clean hold", "unhold", "clean wait"),
    ("clean failed", "manage", "manageable"),
    ("manageable", "provide", "cleaning"),
    ("manageable", "clean", "cleaning"),
    ("cleaning", "manage", "manageable"),
    ("available", "manage", "manageable"),
    ("error", "rebuild", "deploying"),
    ("error", "delete", "deleting"),
    ("manageable", "inspect", "inspecting"),
    ("inspecting", "done", "manageable"),
    ("inspecting", "fail", "inspect failed"),
    ("inspecting", "wait", "inspect wait"),
    ("inspect wait", "done", "manageable"),
    ("inspect wait", "fail", "inspect failed"),
    ("inspect wait", "abort", "inspect failed"),
    ("inspect wait", "resume", "inspecting"),
    ("inspect failed", "manage", "manageable"),
    ("inspect failed", "inspect", "inspecting"),
    ("active", "rescue", "rescuing"),
    ("rescuing", "done", "rescue"),
    ("rescuing", "wait", "rescue wait"),
    ("rescue wait", "resume", "rescuing"),
    ("rescue", "rescue", "rescuing"),
    ("rescue", "delete", "deleting"),
    ("rescue wait", "fail", "rescue failed"),
    ("rescuing", "fail", "rescue failed"),
    ("rescue wait", "abort", "rescue failed"),
    ("rescue failed", "rescue", "rescuing"),
    ("rescue failed", "unrescue", "unrescuing"),
    ("rescue failed", "delete", "deleting"),
    ("rescue wait", "delete", "deleting"),
    ("rescue", "unrescue", "unrescuing"),
    ("unrescuing", "done", "active"),
    ("unrescuing", "fail", "unrescue failed"),
    ("unrescue failed", "rescue", "rescuing"),
    ("unrescue failed", "unrescue", "unrescuing"),
    ("unrescue failed", "delete", "deleting"),
    ("enroll", "manage", "verifying"),
    ("verifying", "done", "manageable"),
    ("verifying", "fail", "enroll"),
    ("manageable", "adopt", "adopting"),
    ("adopting", "done", "active"),
    ("adopting", "fail", "adopt failed"),
    ("adopt failed", "adopt", "adopting"),
    ("adopt failed", "manage", "manageable"),
    ("servicing", "done", "active"),
    ("active", "service", "servicing"),
    ("servicing", "fail", "service failed"),
    ("servicing", "wait", "service wait"),
    ("servicing", "hold", "service hold"),
    ("service wait", "hold", "service hold"),
    ("service hold", "service", "servicing"),
    ("service hold", "unhold", "service wait"),
    ("service wait", "resume", "servicing"),
    ("service wait", "fail", "service failed"),
    ("service hold", "fail", "service failed"),
    ("service wait", "abort", "service failed"),
    ("service hold", "abort", "service failed"),
    ("service failed", "service", "servicing"),
    ("service failed", "rescue", "rescuing"),
    ("service failed", "delete", "deleting"),
    ("service failed", "abort", "active"),
    ("service wait", "delete", "deleting"),
    ("service failed", "wait", "service wait"),
    ("service failed", "hold", "service hold"),
    ("wait call-back", "abort", "deploy failed"),
]

IRONIC_STATES = {
    "enroll", "verifying", "manageable", "available", "active", "deploying", "wait call-back",
    "deploy failed", "deploy hold", "deleting", "cleaning", "clean wait", "clean failed", "clean hold",
    "error", "inspecting", "inspect wait", "inspect failed", "adopting", "adopt failed", "rescue",
    "rescuing", "rescue wait", "rescue failed", "unrescuing", "unrescue failed", "servicing",
    "service wait", "service failed", "service hold",
}  # fmt: skip


def test_table_is_ironics() -> None:
    ours = {(src, event): dst for src, event, dst in states.TRANSITIONS}
    assert len(ours) == len(states.TRANSITIONS), "a (state, event) pair is declared twice"
    theirs = {(src, event): dst for src, event, dst in IRONIC_TRANSITIONS}
    assert ours == theirs
    assert len(ours) == 93


def test_machine_holds_exactly_the_table() -> None:
    walked = set()
    for state in states.ALL_STATES:
        for event in states.allowed_events(state):
            walked.add((state, event, states.next_state(state, event)))
    assert walked == set(IRONIC_TRANSITIONS)


def test_state_names_are_ironics() -> None:
    assert set(states.ALL_STATES) == IRONIC_STATES
    assert states.DEPLOYWAIT == "wait call-back"
    assert states.ENROLL == "enroll"
    assert (states.POWER_ON, states.POWER_OFF, states.REBOOT) == ("power on", "power off", "rebooting")
    assert states.SOFT_POWER_OFF == "soft power off"
    assert states.SOFT_REBOOT == "soft rebooting"


def test_stable_and_unstable_partition() -> None:
    assert set(states.STABLE_STATES) == {"enroll", "manageable", "available", "active", "error", "rescue"}
    assert not set(states.STABLE_STATES) & set(states.UNSTABLE_STATES)
    assert states.HOLD_STATES == {"deploy hold", "clean hold", "service hold"}
    # every non-stable state knows where it is heading, and that is a stable state
    for state in states.ALL_STATES - set(states.STABLE_STATES):
        assert states.STATE_TARGETS[state] in states.STABLE_STATES, state


def test_verbs_map_to_events() -> None:
    assert states.VERBS["active"] == "deploy"
    assert states.VERBS["deleted"] == "delete"
    assert states.VERBS["undeploy"] == "delete"
    assert states.VERBS["unhold"] == "unhold"
    assert states.API_TARGETS["rebuild"] == "rebuild"
    assert set(states.API_TARGETS.values()) <= states.EVENTS


def test_lifecycle_walk() -> None:
    path = [
        ("manage", "verifying"),
        ("done", "manageable"),
        ("provide", "cleaning"),
        ("done", "available"),
        ("deploy", "deploying"),
        ("wait", "wait call-back"),
        ("resume", "deploying"),
        ("done", "active"),
        ("delete", "deleting"),
        ("clean", "cleaning"),
        ("done", "available"),
    ]
    state = "enroll"
    for event, expected in path:
        state = states.next_state(state, event, node="n1")
        assert state == expected


def test_hold_and_unhold_walk() -> None:
    state = "cleaning"
    for event, expected in [("wait", "clean wait"), ("hold", "clean hold"), ("unhold", "clean wait")]:
        state = states.next_state(state, event)
        assert state == expected
    assert states.next_state("deploy hold", "abort") == "deploy failed"
    assert states.next_state("service hold", "unhold") == "service wait"


@pytest.mark.parametrize(
    ("state", "event"),
    [
        ("enroll", "provide"),
        ("enroll", "deploy"),
        ("available", "rescue"),
        ("available", "unhold"),
        ("active", "deploy"),
        ("active", "provide"),
        ("manageable", "deploy"),
        ("deploying", "abort"),
        ("clean failed", "provide"),
        ("error", "manage"),
        ("service wait", "unrescue"),
    ],
)
def test_illegal_verb_names_state_and_verb(state: str, event: str) -> None:
    with pytest.raises(exception.InvalidStateRequested) as info:
        states.next_state(state, event, node="node-7")
    message = str(info.value)
    assert f'"{event}"' in message
    assert f'"{state}"' in message
    assert "node-7" in message


def test_every_missing_pair_is_illegal() -> None:
    legal = {(src, event) for src, event, _dst in IRONIC_TRANSITIONS}
    for state in states.ALL_STATES:
        for event in states.EVENTS:
            if (state, event) in legal:
                continue
            with pytest.raises(exception.InvalidStateRequested):
                states.next_state(state, event)


def test_unknown_state_is_reported() -> None:
    with pytest.raises(exception.InvalidStateRequested, match='unknown provision state "deployed"'):
        states.next_state("deployed", "delete", node="n2")


def test_target_follows_ironic() -> None:
    machine = states.new_machine("available")
    machine.process_event("deploy")
    assert (machine.current_state, machine.target_state) == ("deploying", "active")
    machine.process_event("wait")
    assert machine.target_state == "active"
    machine.process_event("resume")
    machine.process_event("done")
    assert (machine.current_state, machine.target_state) == ("active", None)


def test_manual_clean_heads_back_to_manageable() -> None:
    machine = states.new_machine("manageable")
    machine.process_event("clean", target_state="manageable")
    assert (machine.current_state, machine.target_state) == ("cleaning", "manageable")
    machine.process_event("manage")
    assert (machine.current_state, machine.target_state) == ("manageable", None)


def test_target_must_be_stable() -> None:
    machine = states.new_machine("manageable")
    with pytest.raises(exception.InvalidState, match="not a stable state"):
        machine.process_event("clean", target_state="cleaning")


def test_shared_table_is_frozen() -> None:
    assert states.MACHINE.frozen
    a = states.new_machine("available")
    b = states.new_machine("available")
    a.process_event("deploy")
    assert b.current_state == "available"
