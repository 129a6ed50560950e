"""The fleet page (/fleet, /fleet/nodes/{node}) in process: filters, a node's hardware, auth, escaping."""

from __future__ import annotations

import base64
import functools
import html
import re
from pathlib import Path

import bcrypt
import pytest
import webtest
from oslo_config import cfg
from sqlalchemy import update

from agent.api import app as api_app
from agent.conductor import gpu_acceptance, turnover
from agent.conductor.traits import derive_traits
from agent.db import api as db_api
from agent.db import engine as db_engine
from agent.db.models import TurnoverRecord
from agent.inventory import collect

CONF = cfg.CONF
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sysfs"
RESULTS = {"erase_devices_metadata": {"disks": {"/dev/nvme0n1": {"removed": ["gpt"]}}}}
_NODE_LINK = re.compile(r'<a class="node" href="[^"]*">([^<]*)</a>')


@functools.cache
def _inventory(tree: str) -> dict:
    return collect.collect(str(FIXTURES / tree), use_nvml=False)


def _node(api, name: str, tree: str | None = None, **values) -> dict:
    """A node made through the API; its inventory (and the traits Kiln derives) stored; ``values`` set."""
    node = api.post_json("/v1/nodes", {"driver": "fake-hardware", "name": name}).json
    if tree is not None:
        inventory = _inventory(tree)
        db_api.store_inventory(
            db_api.get_node(node["uuid"]).id, inventory, traits=derive_traits(inventory), changes={"gpus": {}}
        )
    if values:
        db_api.update_node(node["uuid"], values)
    return node


def _names(resp) -> list[str]:
    return [html.unescape(n) for n in _NODE_LINK.findall(resp.text)]


@pytest.fixture
def fleet(api):
    """Five nodes: two HGX H100 (one GPU-quarantined), an MI300X, a storage node, one with no inventory."""
    _node(api, "h100-a", "hgx-h100", owner="team-a", provision_state="available")
    quarantined = _node(
        api,
        "h100-q",
        "hgx-h100",
        owner="team-a",
        provision_state="clean failed",
        maintenance=True,
        maintenance_reason="GPU acceptance gate failed: GPU 0000:ba:00.0 link x8, expected x16",
        last_error="Clean step verify_gpus failed",
    )
    db_api.add_node_trait(quarantined["uuid"], gpu_acceptance.TRAIT_QUARANTINE)
    _node(api, "mi300x-a", "mi300x", owner="team-b", provision_state="active")
    _node(api, "stor-a", "storage-sas", provision_state="available")
    _node(api, "bare")
    return api


def test_the_table_lists_every_node_with_its_gpus(fleet):
    resp = fleet.get("/fleet")
    assert resp.content_type == "text/html"
    assert _names(resp) == ["bare", "h100-a", "h100-q", "mi300x-a", "stor-a"]
    assert "H100 SXM5 80GB x 8" in resp.text and "Instinct MI300X 192GB x 8" in resp.text
    assert "5 of 5 nodes match." in resp.text
    # The filters offer what the fleet holds: its states, owners and GPU SKUs.
    assert '<option value="H100_SXM5_80GB">H100 SXM5 80GB</option>' in resp.text
    assert '<option value="MI300X_OAM_192GB">MI300X OAM 192GB</option>' in resp.text
    assert '<option value="team-b">team-b</option>' in resp.text
    assert '<option value="clean failed">clean failed</option>' in resp.text
    # No script anywhere, and the browser is told to run none.
    assert "<script" not in resp.text
    assert "default-src 'none'" in resp.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("sku=H100_SXM5_80GB", ["h100-a", "h100-q"]),
        ("sku=CUSTOM_GPU_H100_SXM5_80GB", ["h100-a", "h100-q"]),
        ("sku=h100_sxm5_80gb&quarantine=no", ["h100-a"]),
        ("quarantine=yes", ["h100-q"]),
        ("quarantine=no", ["bare", "h100-a", "mi300x-a", "stor-a"]),
        ("owner=team-b", ["mi300x-a"]),
        ("state=available", ["h100-a", "stor-a"]),
        ("state=available&owner=team-a", ["h100-a"]),
        ("maintenance=yes", ["h100-q"]),
        ("state=&sku=&owner=&quarantine=&maintenance=", ["bare", "h100-a", "h100-q", "mi300x-a", "stor-a"]),
        ("sku=B200_SXM_180GB", []),
    ],
)
def test_filters_narrow_the_table_on_the_server(fleet, query, names):
    resp = fleet.get(f"/fleet?{query}")
    assert _names(resp) == names
    assert f"{len(names)} of 5 nodes match." in resp.text
    if not names:
        assert "No node matches these filters." in resp.text


def test_the_form_keeps_the_chosen_filters(fleet):
    resp = fleet.get("/fleet?sku=H100_SXM5_80GB&quarantine=true")
    assert '<option value="H100_SXM5_80GB" selected>' in resp.text
    assert '<option value="yes" selected>yes</option>' in resp.text


def test_pages_follow_one_another(fleet):
    first = fleet.get("/fleet?limit=2")
    assert _names(first) == ["bare", "h100-a"]
    assert "showing 2" in first.text
    href = html.unescape(re.search(r'<a id="next" href="([^"]*)"', first.text).group(1))
    second = fleet.get(href)
    assert _names(second) == ["h100-q", "mi300x-a"]
    third = fleet.get(html.unescape(re.search(r'<a id="next" href="([^"]*)"', second.text).group(1)))
    assert _names(third) == ["stor-a"] and 'id="next"' not in third.text


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ("colour=red", "Unknown query parameter(s) colour on /fleet"),
        ("quarantine=maybe", "Query parameter quarantine must be a boolean, not &#39;maybe&#39;"),
        ("sku=H100%20SXM5", "Query parameter sku must be a GPU SKU"),
        ("limit=-1", "Limit must be positive"),
        ("marker=0b0e0e0e-0000-4000-8000-000000000000", "Marker node 0b0e0e0e-0000-4000-8000-000000000000"),
    ],
)
def test_bad_filters_answer_400_naming_them(fleet, query, said):
    resp = fleet.get(f"/fleet?{query}", status=400)
    assert resp.content_type == "text/html"
    assert said in resp.text


def test_a_node_shows_its_hardware_health_and_history(fleet):
    resp = fleet.get("/fleet/nodes/h100-q")
    text = resp.text
    gpus = text[text.index('id="gpus"') : text.index('id="nics"')]
    assert gpus.count("<tr>") == 9  # header and 8 GPUs
    # Each GPU with its NUMA node and PCIe placement: switch, width and speed; the degraded one marked.
    assert re.search(
        r"0000:18:00\.0</td><td>H100 SXM5 80GB</td><td>H100_SXM5_80GB</td><td>80 GB</td>\s*<td>0</td>", gpus
    )
    assert "0000:16:00.0" in gpus and "x16 @ 32.0 GT/s" in gpus
    assert "x8 @ 32.0 GT/s (max x16 @ 32.0 GT/s)" in gpus and "degraded" in gpus
    assert "Xid errors: 48, 63, 79" in gpus
    nics = text[text.index('id="nics"') : text.index('id="disks"')]
    assert "enp25s0np0" in nics and "a0:88:c2:4e:3f:10" in nics and "400G" in nics and "4 of 16" in nics
    disks = text[text.index('id="disks"') : text.index('id="traits"')]
    assert "SAMSUNG MZ1L2960HCJR-00A07</td><td>960 GB</td><td>nvme</td><td>SSD</td><td>0</td>" in disks
    assert "Supermicro SYS-821GE-TNHR" in text and "Intel(R) Xeon(R) Platinum 8480+, 224 logical" in text
    health = text[text.index('id="health"') : text.index('id="gpus"')]
    assert "GPU quarantine" in health and "link x8, expected x16" in health
    assert "Clean step verify_gpus failed" in health and "2 GPUs reporting errors" in health
    assert "CUSTOM_GPU_QUARANTINE" in text[text.index('id="traits"') :]
    history = text[text.index('id="history"') : text.index('id="turnover"')]
    assert "Inventory reported; changed: gpus" in history
    assert "No turnover records" in text
    # By UUID too; a node without an inventory says so.
    node_uuid = db_api.get_node("h100-q").uuid
    assert fleet.get(f"/fleet/nodes/{node_uuid}").text.count("<h1") == 1
    assert "has reported no inventory yet" in fleet.get("/fleet/nodes/bare").text


def test_turnover_records_show_whether_they_verify(fleet, tmp_path):
    node = db_api.get_node("stor-a")
    good = turnover.record_cleaning(node, RESULTS, False, "cleaned")
    bad = turnover.record_cleaning(node, RESULTS, True, "cleaned")
    with db_engine.session(write=True) as sess:
        row = sess.query(TurnoverRecord).filter_by(uuid=bad).one()
        sess.execute(
            update(TurnoverRecord)
            .where(TurnoverRecord.uuid == bad)
            .values(record=row.record.replace("manual", "automated"))
        )
    records = fleet.get("/fleet/nodes/stor-a").text.split('id="turnover"')[1]
    verdicts = re.findall(r'<span class="badge (\w+) verdict">([^<]*)</span>', records)
    assert [v[0] for v in verdicts] == ["ok", "bad"], (good, verdicts)
    assert "signature verifies" in verdicts[0][1]
    assert "does NOT verify: the signature does not match the record text" in verdicts[1][1]
    assert "/dev/nvme0n1 (metadata)" in records and "not cleared: no clear_gpu_memory step ran" in records
    # Without the public key the page says it could not check, and where it looked.
    CONF.set_override("public_key_file", str(tmp_path / "absent.pub"), group="turnover")
    try:
        records = fleet.get("/fleet/nodes/stor-a").text.split('id="turnover"')[1]
    finally:
        CONF.clear_override("public_key_file", group="turnover")
    assert records.count("badge unchecked verdict") == 2
    assert f"not checked: no public key to check against: {tmp_path / 'absent.pub'}" in records


def test_unknown_node_is_404(fleet):
    resp = fleet.get("/fleet/nodes/no-such-node", status=404)
    assert resp.content_type == "text/html"
    assert "Node no-such-node could not be found" in resp.text


def test_names_from_the_database_are_escaped(api):
    node = db_api.create_node({"driver": "fake-hardware", "name": "<script>alert(1)</script>"})
    db_api.update_node(
        node.uuid,
        {
            "owner": '<b onclick="x()">o</b>',
            "last_error": "<img src=x onerror=alert(2)>",
            "maintenance": True,
        },
    )
    for url in ("/fleet", f"/fleet/nodes/{node.uuid}"):
        text = api.get(url).text
        assert "<script" not in text and "<img" not in text and "<b " not in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
        assert "&lt;b onclick=&#34;x()&#34;&gt;o&lt;/b&gt;" in text
    assert "&lt;img src=x onerror=alert(2)&gt;" in api.get(f"/fleet/nodes/{node.uuid}").text
    # A name in the path is escaped on the error page too.
    assert "&lt;svg&gt;" in api.get("/fleet/nodes/%3Csvg%3E", status=404).text


def _basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_http_basic_guards_the_page(conductor, tmp_path):
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    (tmp_path / "htpasswd").write_text(f"admin:{hashed}\n")
    CONF.set_override("http_basic_auth_user_file", str(tmp_path / "htpasswd"))
    try:
        app = webtest.TestApp(api_app.build_app(conductor, auth_strategy="http_basic"))
        db_api.create_node({"driver": "fake-hardware", "name": "guarded"})
        for url in ("/fleet", "/fleet/nodes/guarded", "/fleet/nodes/absent"):
            resp = app.get(url, status=401)
            assert resp.headers["WWW-Authenticate"] == 'Basic realm="Baremetal API"'
            assert "guarded" not in resp.text
        app.get("/fleet", headers=_basic("admin", "wrong"), status=401)
        assert "guarded" in app.get("/fleet", headers=_basic("admin", "s3cret")).text
        assert app.get("/fleet/nodes/guarded", headers=_basic("admin", "s3cret")).status_int == 200
    finally:
        CONF.clear_override("http_basic_auth_user_file")


class _Member:
    """The identity keystonemiddleware leaves for a member of ``project`` (no admin role)."""

    def __init__(self, app, project):
        self.app, self.project = app, project

    def __call__(self, environ, start_response):
        environ.update(
            HTTP_X_IDENTITY_STATUS="Confirmed", HTTP_X_PROJECT_ID=self.project, HTTP_X_ROLES="member"
        )
        return self.app(environ, start_response)


def test_a_project_sees_only_its_nodes(fleet, conductor):
    db_api.update_node("stor-a", {"lessee": "team-b"})
    member = webtest.TestApp(_Member(api_app.ApiApp(conductor), "team-b"))
    assert _names(member.get("/fleet")) == ["mi300x-a", "stor-a"]
    assert (
        '<option value="team-a">' not in member.get("/fleet").text
    )  # other projects' owners are not offered
    member.get("/fleet/nodes/h100-a", status=404)
    # A lessee reads the hardware, not the turnover records (they name the lessees before it).
    page = member.get("/fleet/nodes/stor-a").text
    assert "SAMSUNG_MZ7LH480HAHQ-00005</td><td>480 GB</td><td>sata</td>" in page
    assert "read the node&#39;s turnover records): policy kiln:node:owner_action" in page
    assert "No turnover records" not in page
