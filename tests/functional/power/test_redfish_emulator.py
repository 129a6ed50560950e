"""Redfish power and management against sushy-tools' emulator (fake systems driver) on 127.0.0.1."""

from __future__ import annotations

import functools
import http.server
import json
import subprocess
import threading
import time
import urllib.request

import pytest

from agent.common import exception, states
from agent.conductor.drivers import redfish
from tests.functional.procs import free_port

PASSWORD = "redfish-pw-9f2e"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    """sushy-emulator --fake on a free port, with state of its own; yields (base URL, system path)."""
    port = free_port()
    conf = tmp_path_factory.mktemp("redfish-emulator") / "emulator.conf"
    conf.write_text(f"SUSHY_EMULATOR_STATE_DIR = {str(conf.parent / 'state')!r}\n")
    proc = subprocess.Popen(
        ["sushy-emulator", "--fake", "-i", "127.0.0.1", "-p", str(port), "--config", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/redfish/v1/Systems", timeout=2) as answer:
                    members = json.load(answer)["Members"]
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(
                        f"sushy-emulator did not start: {proc.stderr.read1().decode()}"
                    ) from None
                time.sleep(0.2)
        yield base, members[0]["@odata.id"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def node(make_node, emulator, fast_polls):
    base, system = emulator
    return make_node(
        driver="redfish",
        driver_info={
            "redfish_address": base,
            "redfish_system_id": system,
            "redfish_username": "admin",
            "redfish_password": PASSWORD,
        },
    )


def test_power_on_off_reboot(node, acquire) -> None:
    with acquire(node) as task:
        assert isinstance(task.driver.power, redfish.RedfishPower)
        power = task.driver.power
        power.set_power_state(task, states.POWER_ON, timeout=30)
        assert power.get_power_state(task) == states.POWER_ON
        power.set_power_state(task, states.POWER_OFF, timeout=30)
        assert power.get_power_state(task) == states.POWER_OFF
        power.reboot(task, timeout=30)  # from off: powers on
        assert power.get_power_state(task) == states.POWER_ON
        power.set_power_state(task, states.SOFT_POWER_OFF, timeout=30)
        assert power.get_power_state(task) == states.POWER_OFF


def test_boot_device_once_and_persistent(node, acquire) -> None:
    with acquire(node) as task:
        management = task.driver.management
        # The emulator always reports BootSourceOverrideEnabled "Continuous" (its template hard-codes
        # it), so only the device reads back; once-vs-persistent is checked on the IPMI emulator.
        management.set_boot_device(task, "pxe", persistent=False)
        assert management.get_boot_device(task)["boot_device"] == "pxe"
        management.set_boot_device(task, "disk", persistent=True)
        assert management.get_boot_device(task) == {"boot_device": "disk", "persistent": True}
        management.set_boot_device(task, "cdrom", persistent=False)
        assert management.get_boot_device(task)["boot_device"] == "cdrom"
        assert management.get_supported_boot_devices(task) == ["pxe", "disk", "cdrom"]
        with pytest.raises(exception.InvalidParameterValue) as info:
            management.set_boot_device(task, "bios")
        assert 'boot device "bios"' in str(info.value) and "offers pxe, disk, cdrom" in str(info.value)
        with pytest.raises(exception.InvalidParameterValue, match='boot device "floppy"'):
            management.set_boot_device(task, "floppy")


def test_boot_mode(node, acquire) -> None:
    with acquire(node) as task:
        management = task.driver.management
        management.set_boot_mode(task, "bios")
        assert management.get_boot_mode(task) == "bios"
        management.set_boot_mode(task, "uefi")
        assert management.get_boot_mode(task) == "uefi"
        assert task.node.driver_internal_info["boot_mode"] == "uefi"


def test_power_state_failure_names_node_and_state(node, acquire) -> None:
    # The fake systems apply a change 1-11 s after it is asked for; with a 1 s budget the wait
    # fails unless the change happened to land within that second (then try again from off).
    with acquire(node) as task:
        power = task.driver.power
        power.set_power_state(task, states.POWER_OFF, timeout=30)
        for _attempt in range(6):
            try:
                power.set_power_state(task, states.POWER_ON, timeout=1)
            except exception.PowerStateFailure as exc:
                message = str(exc)
                break
            power.set_power_state(task, states.POWER_OFF, timeout=30)
        else:
            pytest.fail("the emulator applied every power change within 1 s")
    assert node in message
    assert '"power on"' in message and "within 1 s" in message


def test_unknown_system_is_a_clear_error_without_the_password(make_node, acquire, emulator) -> None:
    base, _system = emulator
    node = make_node(
        driver="redfish",
        driver_info={
            "redfish_address": base,
            "redfish_system_id": "/redfish/v1/Systems/nope",
            "redfish_username": "admin",
            "redfish_password": PASSWORD,
        },
    )
    with acquire(node) as task:
        with pytest.raises(redfish.RedfishError) as info:
            task.driver.power.get_power_state(task)
    assert node in str(info.value) and "/redfish/v1/Systems/nope" in str(info.value)
    assert PASSWORD not in str(info.value)


def _media(base: str, system: str) -> dict[str, dict]:
    """The emulator's virtual media devices as it serves them, by id."""
    with urllib.request.urlopen(f"{base}{system}/VirtualMedia", timeout=5) as answer:
        members = json.load(answer)["Members"]
    found = {}
    for member in members:
        with urllib.request.urlopen(f"{base}{member['@odata.id']}", timeout=5) as answer:
            device = json.load(answer)
        found[device["Id"]] = device
    return found


@pytest.fixture
def image_server(tmp_path):
    """A file server on 127.0.0.1 (the emulator downloads what it inserts); yields the image URL."""
    (tmp_path / "kiln-ramdisk.iso").write_bytes(b"\0" * 4096)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/kiln-ramdisk.iso"
    finally:
        server.shutdown()
        server.server_close()


def test_virtual_media_attach_detach(node, acquire, emulator, image_server) -> None:
    base, system = emulator
    url = image_server
    # sushy-tools keeps virtual media state on disk across emulator runs: start and end empty.
    with acquire(node) as task:
        task.driver.management.detach_virtual_media(task, None)
    try:
        with acquire(node) as task:
            task.driver.management.attach_virtual_media(task, "cdrom", url, "local")
        inserted = [(d["Id"], d.get("Image")) for d in _media(base, system).values() if d.get("Inserted")]
        assert inserted == [("Cd", url)]
        with acquire(node) as task:
            task.driver.management.detach_virtual_media(task, ["cdrom"])
        assert not any(d.get("Inserted") for d in _media(base, system).values())
        with acquire(node) as task:
            task.driver.management.attach_virtual_media(task, "usb", url, "local")
        inserted = [(d["Id"], d.get("Image")) for d in _media(base, system).values() if d.get("Inserted")]
        assert inserted == [("Floppy", url)]  # the emulator's removable device takes Floppy and USBStick
    finally:
        with acquire(node) as task:
            task.driver.management.detach_virtual_media(task, None)
    assert not any(d.get("Inserted") for d in _media(base, system).values())
