"""/v1/nodes/{node}/kiln/turnover and kiln-verify-certificate on what it serves."""

from __future__ import annotations

import json

from oslo_config import cfg

from agent.cmd import verify_certificate
from agent.conductor import turnover
from agent.db import api as db_api

CONF = cfg.CONF
RESULTS = {"erase_devices_metadata": {"disks": {"/dev/sda": {"removed": ["gpt", "ext4"]}}}}


def _record(node_uuid: str) -> str:
    return turnover.record_cleaning(db_api.get_node(node_uuid), RESULTS, False, "cleaned")


def test_records_are_served_and_verify_offline(api, tmp_path, capsys):
    node = api.post_json("/v1/nodes", {"driver": "fake-hardware", "name": "wiped"}).json
    assert api.get("/v1/nodes/wiped/kiln/turnover").json == {"records": []}
    record_uuid = _record(node["uuid"])
    listed = api.get("/v1/nodes/wiped/kiln/turnover").json["records"]
    assert [r["uuid"] for r in listed] == [record_uuid]
    one = api.get(f"/v1/nodes/wiped/kiln/turnover/{record_uuid}").json
    assert one["content"]["disks"] == [
        {
            "disk": "/dev/sda",
            "step": "erase_devices_metadata",
            "method": "metadata",
            "signatures_removed": ["gpt", "ext4"],
        }
    ]
    public = CONF.turnover.signing_key_file + ".pub"
    path = tmp_path / "record.json"
    path.write_text(json.dumps(one))
    assert verify_certificate.main([str(path), "--public-key", public]) == 0
    assert f"valid: node {node['uuid']}, cleaning cleaned" in capsys.readouterr().out
    # One changed character of the signed text, or of the content beside it, is caught.
    path.write_text(json.dumps(dict(one, record=one["record"].replace("/dev/sda", "/dev/sdb"))))
    assert verify_certificate.main([str(path), "--public-key", public]) == 1
    assert "INVALID" in capsys.readouterr().err
    path.write_text(json.dumps(dict(one, content={**one["content"], "outcome": "skipped"})))
    assert verify_certificate.main([str(path), "--public-key", public]) == 1
    path.write_text("{not json")
    assert verify_certificate.main([str(path), "--public-key", public]) == 2
    assert "cannot read the record" in capsys.readouterr().err
    api.get(f"/v1/nodes/wiped/kiln/turnover/{node['uuid']}", status=404)
    # The evidence outlives the node: an administrator reads it by the node's UUID.
    api.delete("/v1/nodes/wiped", status=204)
    left = api.get(f"/v1/nodes/{node['uuid']}/kiln/turnover").json["records"]
    assert [r["uuid"] for r in left] == [record_uuid]
    api.get("/v1/nodes/wiped/kiln/turnover", status=404)


def test_a_record_signed_by_another_key_is_refused(api, tmp_path, capsys):
    node = api.post_json("/v1/nodes", {"driver": "fake-hardware", "name": "other-key"}).json
    one = api.get(f"/v1/nodes/other-key/kiln/turnover/{_record(node['uuid'])}").json
    turnover.load_or_create_key(str(tmp_path / "other.pem"))
    assert (tmp_path / "other.pem").stat().st_mode & 0o777 == 0o600
    path = tmp_path / "record.json"
    path.write_text(json.dumps(one))
    assert verify_certificate.main([str(path), "--public-key", str(tmp_path / "other.pem.pub")]) == 1
    assert "not by the given key" in capsys.readouterr().err
