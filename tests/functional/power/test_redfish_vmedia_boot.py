"""The redfish-virtual-media boot interface against sushy-tools' emulator: the ISO it builds is served
over HTTP, downloaded and inserted by the BMC, booted once from the CD, and ejected at clean-up."""

from __future__ import annotations

import functools
import http.server
import json
import threading
import urllib.request

import pytest

from agent.common.config import CONF
from agent.conductor.drivers import base, vmedia_boot
from tests.functional.power import test_redfish_emulator as redfish_emulator

PASSWORD = redfish_emulator.PASSWORD
_media = redfish_emulator._media
emulator = redfish_emulator.emulator  # the fixture: sushy-emulator --fake

MAC = "52:54:00:aa:dd:01"


@pytest.fixture
def http_root_server(boot_dirs):
    """[pxe]http_root served on 127.0.0.1, and [pxe]http_url pointing at it."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(boot_dirs["http_root"]))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    CONF.set_override("http_url", f"http://127.0.0.1:{server.server_address[1]}", group="pxe")
    try:
        yield boot_dirs
    finally:
        CONF.clear_override("http_url", group="pxe")
        server.shutdown()
        server.server_close()


def _boot_target(base_url: str, system: str) -> dict:
    with urllib.request.urlopen(f"{base_url}{system}", timeout=5) as answer:
        return json.load(answer)["Boot"]


def test_prepare_inserts_the_iso_and_clean_up_ejects_it(
    make_node, acquire, emulator, http_root_server, tmp_path
):
    base_url, system = emulator
    (tmp_path / "kernel").write_bytes(b"K" * 100000)
    (tmp_path / "initramfs").write_bytes(b"I" * 200000)
    node = make_node(
        "redfish",
        {
            "redfish_address": base_url,
            "redfish_system_id": system,
            "redfish_username": "admin",
            "redfish_password": PASSWORD,
            "deploy_kernel": f"file://{tmp_path / 'kernel'}",
            "deploy_ramdisk": f"file://{tmp_path / 'initramfs'}",
        },
        [(MAC, True)],
    )
    boot = vmedia_boot.RedfishVirtualMediaBoot()
    dirs = http_root_server
    try:
        with acquire(node) as task:
            boot.prepare_ramdisk(task, {})
            task.driver.management.set_boot_device(task, boot.ramdisk_boot_device)
        url = vmedia_boot.iso_url(node)
        inserted = [(d["Id"], d.get("Image")) for d in _media(base_url, system).values() if d.get("Inserted")]
        assert inserted == [("Cd", url)]  # the emulator downloaded it from the conductor's HTTP server
        assert (dirs["http_root"] / node / "boot.iso").stat().st_size > 300000
        assert _boot_target(base_url, system)["BootSourceOverrideTarget"] == "Cd"
        assert base.CDROM == boot.ramdisk_boot_device
        # the port gets a lease and no boot options
        assert (dirs["hostsdir"] / MAC.replace(":", "-")).read_text().startswith(MAC)
        assert (dirs["optsdir"] / node).read_text() == ""
        with acquire(node) as task:
            boot.clean_up_ramdisk(task)
        assert not any(d.get("Inserted") for d in _media(base_url, system).values())
        assert not (dirs["http_root"] / node).exists()
        assert (dirs["hostsdir"] / MAC.replace(":", "-")).read_text().strip().endswith(",ignore")
    finally:
        with acquire(node) as task:
            task.driver.management.detach_virtual_media(task, None)
