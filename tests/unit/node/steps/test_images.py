"""write_image against a real HTTP server on 127.0.0.1, onto stand-in disk files."""

from __future__ import annotations

import subprocess

import pytest

from agent.node.steps import fetch, images
from agent.node.steps.errors import StepError
from tests.unit.node.steps.helpers import MIB, digest, make_disk, make_gpt, make_raw_image, read_range, table

SIZE = 24 * MIB


def same_data(disk: str, image: str) -> bool:
    """The image's partition entries and data (after the GPT header, before the backup GPT) are on disk."""
    return read_range(disk, 1024, SIZE - MIB) == read_range(image, 1024, SIZE - MIB)


@pytest.fixture
def raw_image(images_dir):
    """A 24 MiB raw GPT image in the served directory."""
    return make_raw_image(str(images_dir / "disk.raw"), SIZE)


def test_raw_image_written_and_verified(ctx, server, raw_image, disks):
    sha = digest(raw_image, "sha256")
    out = images.write_image(
        ctx,
        {"image_source": server.url("disk.raw"), "image_os_hash_algo": "sha256", "image_os_hash_value": sha},
    )
    assert out["root_device"] == "/dev/vda"
    assert out["bytes"] == SIZE
    assert out["checksum"] == f"sha256:{sha}"
    # the disk holds the image; sfdisk --relocate moved the backup GPT to the disk's end (the header changed)
    assert same_data(disks["/dev/vda"], raw_image)
    parts = table(disks["/dev/vda"])
    assert parts["label"] == "gpt"
    assert parts["partitions"][0]["name"] == "root"
    assert parts["lastlba"] == 5 * (1 << 30) // 512 - 34


def test_sha512_legacy_checksum_and_hints(ctx, server, raw_image, disks):
    sha = digest(raw_image, "sha512")
    out = images.write_image(
        ctx,
        {
            "image_source": server.url("disk.raw"),
            "image_checksum": sha,
            "root_device": {"serial": "KILN-DATA-0002"},
        },
    )
    assert out["root_device"] == "/dev/vdb"
    assert out["checksum"] == f"sha512:{sha}"
    assert read_range(disks["/dev/vdb"], 2 * MIB, 4096) == read_range(raw_image, 2 * MIB, 4096)


def test_qcow2_converted(ctx, server, raw_image, images_dir, disks):
    qcow = str(images_dir / "disk.qcow2")
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw_image, qcow], check=True)
    sha = digest(qcow, "sha256")
    out = images.write_image(
        ctx,
        {
            "image_source": server.url("disk.qcow2"),
            "image_os_hash_algo": "sha256",
            "image_os_hash_value": sha,
            "image_disk_format": "qcow2",
        },
    )
    assert out["bytes"] == SIZE  # the virtual size
    assert out["checksum"] == f"sha256:{sha}"
    assert same_data(disks["/dev/vda"], raw_image)


def test_bad_checksum_fails_and_wipes_table(ctx, server, raw_image, disks):
    actual = digest(raw_image, "sha256")
    wrong = "0" * 64
    with pytest.raises(StepError) as err:
        images.write_image(
            ctx,
            {
                "image_source": server.url("disk.raw"),
                "image_os_hash_algo": "sha256",
                "image_os_hash_value": wrong,
            },
        )
    assert f"expected sha256:{wrong}" in str(err.value)
    assert f"got sha256:{actual}" in str(err.value)
    assert table(disks["/dev/vda"]) is None
    assert read_range(disks["/dev/vda"], 0, MIB) == bytes(MIB)


def test_bad_checksum_qcow2_wipes_previous_table(ctx, server, raw_image, images_dir, disks):
    make_gpt(disks["/dev/vda"], "start=2048")  # old deploy
    assert table(disks["/dev/vda"])["label"] == "gpt"
    qcow = str(images_dir / "disk.qcow2")
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw_image, qcow], check=True)
    with pytest.raises(StepError, match="checksum mismatch"):
        images.write_image(
            ctx,
            {
                "image_source": server.url("disk.qcow2"),
                "image_checksum": "1" * 64,
                "image_disk_format": "qcow2",
            },
        )
    assert table(disks["/dev/vda"]) is None


def test_unreachable_image(ctx, server, disks):
    server.close()
    with pytest.raises(StepError, match=r"cannot download the image from http://127\.0\.0\.1:\d+/disk\.raw"):
        images.write_image(ctx, {"image_source": server.url("disk.raw"), "image_checksum": "a" * 64})


def test_missing_image_names_http_status(ctx, server, disks):
    with pytest.raises(StepError, match="HTTP 404"):
        images.write_image(ctx, {"image_source": server.url("nope.raw"), "image_checksum": "a" * 64})


def test_md5_refused_unless_allowed(ctx, conf, server, raw_image, disks):
    md5 = digest(raw_image, "md5")
    args = {"image_source": server.url("disk.raw"), "image_os_hash_algo": "md5", "image_os_hash_value": md5}
    with pytest.raises(StepError, match="md5 image checksums are refused"):
        images.write_image(ctx, args)
    assert table(disks["/dev/vda"]) is None  # refused before touching the disk
    conf.override("allow_md5", True, group="agent")
    assert images.write_image(ctx, args)["checksum"] == f"md5:{md5}"


def test_qcow2_declared_raw_is_refused(ctx, server, raw_image, images_dir):
    qcow = str(images_dir / "disk.qcow2")
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw_image, qcow], check=True)
    with pytest.raises(StepError, match="image is qcow2 but image_disk_format says raw"):
        images.write_image(ctx, {"image_source": server.url("disk.qcow2"), "image_checksum": digest(qcow)})


def test_image_larger_than_disk(ctx, conf, server, raw_image, disks, tmp_path):
    small = make_disk(str(tmp_path / "small.img"), 8 * MIB)
    conf.override("disk_map", {**disks, "/dev/vdb": small}, group="agent")
    with pytest.raises(StepError, match=r"the image \(25165824 B\) is larger than the disk"):
        images.write_image(
            ctx,
            {
                "image_source": server.url("disk.raw"),
                "image_checksum": digest(raw_image),
                "root_device": {"name": "vdb"},
            },
        )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"image_checksum": "a" * 64}, "needs image_source"),
        ({"image_source": "ftp://x/y", "image_checksum": "a" * 64}, "must be an http"),
        ({"image_source": "http://127.0.0.1:1/x"}, "needs image_os_hash_value"),
        ({"image_source": "http://127.0.0.1:1/x", "image_checksum": "abc"}, "unsupported image checksum"),
        ({"image_source": "http://127.0.0.1:1/x", "image_checksum": "sha256:zz"}, "not a sha256 hex digest"),
        ({"image_source": "http://127.0.0.1:1/x", "image_checksum": "a" * 64, "image_disk_format": "vmdk"},
         "vmdk"),
        ({"image_source": "http://127.0.0.1:1/x", "image_checksum": "a" * 64, "root_device": {"colour": "x"}},
         "unknown root device hints colour"),
    ],
)  # fmt: skip
def test_bad_arguments(ctx, args, message):
    with pytest.raises(StepError, match=message):
        images.write_image(ctx, args)


def test_safe_url_hides_credentials_and_query():
    assert fetch.safe_url("https://u:secret@img.example:8443/a/b.raw?temp_url_sig=abc") == (
        "https://img.example:8443/a/b.raw"
    )
