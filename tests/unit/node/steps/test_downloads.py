"""What the agent downloads besides the image: a checksum file named by image_checksum, a configdrive URL;
and a configdrive written twice (a rebuild) leaves one config-2 partition."""

from __future__ import annotations

import base64
import gzip
import subprocess

import pytest

from agent.common import checksums
from agent.node.steps import configdrive, images
from agent.node.steps.errors import StepError
from tests.unit.node.steps.helpers import MIB, digest, make_raw_image, read_range, table

SIZE = 24 * MIB


@pytest.fixture
def raw_image(images_dir):
    """A 24 MiB raw GPT image in the served directory."""
    return make_raw_image(str(images_dir / "disk.raw"), SIZE)


@pytest.mark.parametrize(
    "form",
    [
        "{sha}  disk.raw\n{other}  other.raw\n",
        "{other} *other.raw\n{sha} *./disk.raw\n",
        "SHA256 (disk.raw) = {sha}\n",
    ],
)
def test_checksum_file_names_the_image(ctx, server, raw_image, images_dir, disks, form):
    sha = digest(raw_image, "sha256")
    (images_dir / "SHA256SUMS").write_text(form.format(sha=sha, other="e" * 64))
    out = images.write_image(
        ctx, {"image_source": server.url("disk.raw"), "image_checksum": server.url("SHA256SUMS")}
    )
    assert out["checksum"] == f"sha256:{sha}"
    assert read_range(disks["/dev/vda"], 2 * MIB, 4096) == read_range(raw_image, 2 * MIB, 4096)


def test_checksum_file_with_a_wrong_sum_fails_like_a_wrong_checksum(
    ctx, server, raw_image, images_dir, disks
):
    (images_dir / "SHA256SUMS").write_text(f"{'0' * 64}  disk.raw\n")
    with pytest.raises(StepError, match="checksum mismatch"):
        images.write_image(
            ctx, {"image_source": server.url("disk.raw"), "image_checksum": server.url("SHA256SUMS")}
        )
    assert table(disks["/dev/vda"]) is None


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("SUMS", f"{'a' * 64}  another.raw\n{'b' * 64}  third.raw\n", "no line for 'disk.raw'"),
        ("missing", None, "checksum file server answered HTTP 404"),
        ("big", "x" * (images.CHECKSUM_FILE_LIMIT + 10), "larger than"),
    ],
)
def test_bad_checksum_file_is_named(ctx, server, raw_image, images_dir, disks, name, text, message):
    if text is not None:
        (images_dir / name).write_text(text)
    with pytest.raises(StepError, match=message):
        images.write_image(ctx, {"image_source": server.url("disk.raw"), "image_checksum": server.url(name)})
    assert table(disks["/dev/vda"]) is None  # nothing was written


def test_checksum_forms_one_rule() -> None:
    assert checksums.parse_checksum(None, None, "a" * 128) == ("sha512", "a" * 128)
    assert checksums.parse_checksum("SHA256", "B" * 64, None) == ("sha256", "b" * 64)
    with pytest.raises(checksums.ChecksumError, match='algorithm "sha1"'):
        checksums.parse_checksum(None, None, "sha1:" + "a" * 40)
    with pytest.raises(checksums.ChecksumError, match="not a sha256 hex digest"):
        checksums.parse_checksum(None, None, "d" * 40, default_algo="sha256")
    assert checksums.from_checksum_file(f"{'c' * 64}\n", "http://x/y/any.qcow2") == "c" * 64


def test_configdrive_url_gzip_base64(ctx, server, images_dir, disks, tmp_path):
    iso = configdrive.build_iso({"meta_data": {"uuid": "from-a-url"}}, str(tmp_path))
    (images_dir / "cd.b64").write_text(base64.b64encode(gzip.compress(iso)).decode())
    out = configdrive.write_configdrive(ctx, {"configdrive": server.url("cd.b64"), "root_device": "/dev/vdb"})
    assert out["bytes"] == len(iso)
    assert read_range(disks["/dev/vdb"], out["offset"], len(iso)) == iso


def test_configdrive_url_raw_iso(ctx, server, images_dir, disks, tmp_path):
    iso = configdrive.build_iso({"meta_data": {"uuid": "raw"}}, str(tmp_path))
    (images_dir / "cd.iso").write_bytes(iso)
    out = configdrive.write_configdrive(ctx, {"configdrive": server.url("cd.iso"), "root_device": "/dev/vdb"})
    assert read_range(disks["/dev/vdb"], out["offset"], len(iso)) == iso


@pytest.mark.parametrize(
    ("name", "body", "message"),
    [
        ("gone", None, "configdrive server answered HTTP 404"),
        ("junk", b"\x00\x01not base64 at all", "neither a filesystem image nor gzipped base64"),
        ("huge", b"A" * (configdrive.MAX_BYTES * 2 + 4), "larger than"),
    ],
)
def test_bad_configdrive_url_is_named(ctx, server, images_dir, disks, name, body, message):
    if body is not None:
        (images_dir / name).write_bytes(body)
    with pytest.raises(StepError, match=message) as err:
        configdrive.write_configdrive(ctx, {"configdrive": server.url(name), "root_device": "/dev/vdb"})
    assert name in str(err.value)
    assert table(disks["/dev/vdb"]) is None  # nothing was written


@pytest.mark.parametrize("fmt", ["iso9660", "vfat"])
def test_second_configdrive_replaces_the_first(ctx, disks, fmt):
    subprocess.run(
        ["sfdisk", "--quiet", disks["/dev/vdb"]],
        input="label: dos\nstart=2048, size=20480\n",
        text=True,
        check=True,
    )
    first = configdrive.write_configdrive(
        ctx,
        {
            "configdrive": {"meta_data": {"uuid": "first"}},
            "root_device": "/dev/vdb",
            "configdrive_format": fmt,
        },
    )
    second = configdrive.write_configdrive(
        ctx,
        {
            "configdrive": {"meta_data": {"uuid": "second"}},
            "root_device": "/dev/vdb",
            "configdrive_format": fmt,
        },
    )
    parts = table(disks["/dev/vdb"])["partitions"]
    assert len(parts) == 2, parts  # the image's own partition and one config-2
    assert second["offset"] == first["offset"]
    assert int(parts[0]["start"]) == 2048  # the image's partition is untouched
