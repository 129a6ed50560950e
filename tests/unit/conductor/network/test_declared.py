"""Declared networks ([network:NAME]) and who may attach them (agent.conductor.drivers.network.declared)."""

from __future__ import annotations

import types

import pytest
from oslo_config import cfg

from agent.common import config, exception
from agent.conductor.drivers.network import declared


def _conf(tmp_path, text: str) -> cfg.ConfigOpts:
    path = tmp_path / "kiln.conf"
    path.write_text(text)
    conf = config.register_opts(cfg.ConfigOpts())
    conf(["--config-file", str(path)], project="kiln")
    return conf


def test_networks_are_read_from_their_sections(tmp_path):
    conf = _conf(
        tmp_path,
        "[network:a]\nvlan_id = 210\nproject = p1\n"
        "[network:b]\nvlan_id=4094\nshared=True\nphysical_network=dc1\n",
    )
    nets = declared.load_networks(conf)
    assert nets["a"] == declared.Network("a", 210, "p1", False, None, str(tmp_path / "kiln.conf"))
    assert (nets["b"].vlan_id, nets["b"].shared, nets["b"].physical_network) == (4094, True, "dc1")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("vlan_id = 5000\nshared = true", "vlan_id '5000' is not an integer in 1..4094"),
        ("vlan_id = 10", "set exactly one of project"),
        ("vlan_id = 10\nshared = true\nproject = p", "set exactly one of project"),
        ("vlan_id = 10\nshared = maybe", "shared 'maybe' is not true or false"),
        ("vlan_id = 10\nshared = true\nvlan = 3", "unknown key(s) vlan"),
    ],
)
def test_bad_sections_name_section_and_file(tmp_path, body, message):
    conf = _conf(tmp_path, f"[network:bad]\n{body}\n")
    with pytest.raises(exception.InvalidParameterValue) as err:
        declared.load_networks(conf)
    assert message in str(err.value)
    assert f"[network:bad] in {tmp_path / 'kiln.conf'}" in str(err.value)


def test_two_networks_on_one_vlan_are_refused(tmp_path):
    conf = _conf(
        tmp_path, "[network:a]\nvlan_id = 7\nshared = true\n[network:b]\nvlan_id = 7\nshared = true\n"
    )
    with pytest.raises(exception.InvalidParameterValue, match="both declare vlan_id 7"):
        declared.load_networks(conf)


def _node(**kw):
    values = {"uuid": "n-1", "owner": None, "lessee": None, "driver_info": {}}
    values.update(kw)
    return types.SimpleNamespace(**values)


def test_attach_rules():
    mine = declared.Network("mine", 10, project="p1")
    shared = declared.Network("pub", 11, shared=True)
    declared.check_attach(_node(owner="p1"), mine, {"is_admin": True})
    declared.check_attach(_node(owner="p0", lessee="p1"), mine, {"project_id": "p1"})
    declared.check_attach(_node(), shared, {"project_id": "anyone"})
    with pytest.raises(exception.NetworkNotAllowed, match="not to the caller's project p2"):
        declared.check_attach(_node(owner="p1"), mine, {"project_id": "p2"})
    with pytest.raises(exception.NetworkNotAllowed, match="is used by project p2"):
        declared.check_attach(_node(owner="p1", lessee="p2"), mine, {"is_admin": True})
    with pytest.raises(exception.NetworkNotAllowed, match="service network"):
        declared.check_attach(_node(driver_info={"cleaning_network": "pub"}), shared, {"is_admin": True})
