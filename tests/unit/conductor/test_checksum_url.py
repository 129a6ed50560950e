"""image_checksum may be the URL of a checksum file, as Ironic accepts: the conductor passes it on and the
agent reads the image's line from it."""

from __future__ import annotations

import os
import types

import pytest

from agent.common import exception, states
from agent.conductor.drivers import direct
from tests.unit.conductor.deploy_stack import Stack

UUID = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"


def _node(**info) -> types.SimpleNamespace:
    return types.SimpleNamespace(
        uuid=UUID, instance_info={"image_source": "http://img/x/disk.raw", **info}, properties={}
    )


def test_checksum_url_is_passed_to_the_agent() -> None:
    args = direct.write_image_args(_node(image_checksum="https://img/x/SHA256SUMS"))
    assert args["image_checksum"] == "https://img/x/SHA256SUMS"
    assert args["image_os_hash_value"] is None
    assert args["image_os_hash_algo"] is None
    args = direct.write_image_args(_node(image_checksum="http://img/SHA512SUMS", image_os_hash_algo="SHA512"))
    assert args["image_os_hash_algo"] == "sha512"


@pytest.mark.parametrize(
    ("info", "words"),
    [
        ({"image_checksum": "ftp://img/SUMS"}, ["ftp://img/SUMS", "instance_info image_checksum"]),
        ({"image_checksum": "http://img/SUMS", "image_os_hash_algo": "crc32"}, ['"crc32"']),
    ],
)
def test_bad_checksum_urls_are_named(info, words) -> None:
    with pytest.raises(exception.InvalidParameterValue) as err:
        direct.write_image_args(_node(**info))
    for word in words:
        assert word in str(err.value)
    assert UUID in str(err.value)


def test_deploy_with_a_checksum_file(tmp_path) -> None:
    stack = Stack(tmp_path)
    try:
        with open(os.path.join(stack.images, "SHA256SUMS"), "w") as fh:
            fh.write(f"{'f' * 64}  other.raw\n{stack.image_sha}  disk.raw\n")
        stack.set_image(checksum=stack.http.url("SHA256SUMS"))
        stack.manager.change_provision_state({}, stack.node.uuid, "active")
        stack.wait_state(states.DEPLOYWAIT)
        stack.boot_agent()
        node = stack.drive(states.ACTIVE, states.DEPLOYFAIL)
        assert node.provision_state == states.ACTIVE, node.last_error
    finally:
        stack.close()
