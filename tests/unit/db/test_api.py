"""Tests of agent.db.api on a real database (SQLite here; PostgreSQL and MariaDB in tests/functional/db)."""

from __future__ import annotations

import datetime
import multiprocessing

import pytest
from sqlalchemy import update

from agent.common import exception
from agent.db import api, models
from agent.db import exceptions as db_exc
from agent.db import inventory as db_inventory

UUID1 = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
UUID2 = "2be26c0b-03f2-4d2e-ae87-c02d7f33c123"
SYS_UUID = "4c4c4544-0042-3510-8052-b4c04f4d4e31"
INST_UUID = "9f1e7c2a-5b6d-4e8f-a1b2-c3d4e5f60718"


def _node(**values) -> models.Node:
    values.setdefault("driver", "fake-hardware")
    return api.create_node(values)


def _set_column(engine, model, ident_col, ident, **values) -> None:
    """Set columns directly (e.g. a timestamp in the past) the way another process would."""
    with engine.begin() as conn:
        conn.execute(update(model).where(ident_col == ident).values(**values))


def _ago(seconds: int) -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=seconds)


class TestNodes:
    def test_create_defaults(self, db):
        node = _node(name="gpu-01")
        assert len(node.uuid) == 36
        assert node.id >= 1
        assert node.provision_state == "enroll"
        assert node.power_state is None
        assert node.maintenance is False
        assert node.properties == {}
        assert node.driver_internal_info == {}
        assert node.traits == []
        assert node.created_at.tzinfo is datetime.UTC
        assert abs((datetime.datetime.now(datetime.UTC) - node.created_at).total_seconds()) < 60
        assert node.updated_at is None

    def test_json_round_trip(self, db):
        props = {
            "cpus": 224,
            "memory_mb": 2097152,
            "gpus": [{"model": "H100 SXM5 80GB", "numa": 0}],
            "ü": "ß",
        }
        _node(uuid=UUID1, properties=props, extra={"rack": "r12", "nested": {"a": [1, None, True]}})
        node = api.get_node(UUID1)
        assert node.properties == props
        assert node.extra == {"rack": "r12", "nested": {"a": [1, None, True]}}

    def test_get_by_uuid_name_and_id(self, db):
        created = _node(uuid=UUID1, name="gpu-01")
        assert api.get_node(UUID1).name == "gpu-01"
        assert api.get_node(UUID1.upper()).id == created.id
        assert api.get_node("gpu-01").uuid == UUID1
        assert api.get_node_by_id(created.id).uuid == UUID1

    def test_get_missing(self, db):
        with pytest.raises(exception.NodeNotFound, match="gpu-99"):
            api.get_node("gpu-99")
        with pytest.raises(exception.NodeNotFound, match=UUID2):
            api.get_node(UUID2)
        with pytest.raises(exception.NodeNotFound):
            api.get_node_by_id(12345)

    def test_duplicate_uuid(self, db):
        _node(uuid=UUID1)
        with pytest.raises(exception.NodeAlreadyExists, match=UUID1):
            _node(uuid=UUID1, name="other")

    def test_duplicate_name(self, db):
        _node(name="gpu-01")
        with pytest.raises(exception.DuplicateName, match="gpu-01"):
            _node(name="gpu-01")
        assert len(api.list_nodes()) == 1

    def test_missing_driver(self, db):
        with pytest.raises(exception.MissingParameterValue, match="driver"):
            api.create_node({"name": "x"})

    def test_bad_uuid_and_unknown_field(self, db):
        with pytest.raises(exception.InvalidParameterValue, match="not-a-uuid"):
            _node(uuid="not-a-uuid")
        with pytest.raises(exception.InvalidParameterValue, match="colour"):
            _node(colour="red")

    def test_update(self, db):
        node = _node(uuid=UUID1, name="gpu-01")
        before = node.provision_updated_at
        updated = api.update_node(UUID1, {"provision_state": "manageable", "properties": {"cpus": 8}})
        assert updated.provision_state == "manageable"
        assert updated.properties == {"cpus": 8}
        assert updated.updated_at is not None
        assert updated.provision_updated_at >= before
        again = api.get_node("gpu-01")
        assert again.provision_state == "manageable"
        assert again.properties == {"cpus": 8}

    def test_update_refuses_uuid_and_duplicate_name(self, db):
        _node(uuid=UUID1, name="a")
        _node(uuid=UUID2, name="b")
        with pytest.raises(exception.InvalidParameterValue, match="uuid"):
            api.update_node(UUID1, {"uuid": UUID2})
        with pytest.raises(exception.DuplicateName, match="b"):
            api.update_node(UUID1, {"name": "b"})
        assert api.get_node(UUID1).name == "a"

    def test_update_missing(self, db):
        with pytest.raises(exception.NodeNotFound):
            api.update_node(UUID1, {"power_state": "power on"})

    def test_instance_uuid_unique(self, db):
        _node(uuid=UUID1, instance_uuid=INST_UUID)
        assert api.get_node_by_instance(INST_UUID).uuid == UUID1
        with pytest.raises(db_exc.InstanceAssociated, match=INST_UUID):
            _node(uuid=UUID2, instance_uuid=INST_UUID)

    def test_system_uuid_lookup(self, db):
        _node(uuid=UUID1, system_uuid=SYS_UUID.upper())
        assert api.get_node_by_system_uuid(SYS_UUID).uuid == UUID1
        with pytest.raises(exception.NodeNotFound, match=UUID2):
            api.get_node_by_system_uuid(UUID2)

    def test_destroy_removes_dependents(self, db):
        node = _node(uuid=UUID1, traits=["CUSTOM_GPU_COUNT_8"])
        api.create_port({"address": "52:54:00:00:00:01", "node_id": node.id})
        db_inventory.store_inventory(node.id, {"cpu": {"count": 8}})
        alloc = api.create_allocation({"name": "a1", "node_id": node.id})
        api.destroy_node(UUID1)
        with pytest.raises(exception.NodeNotFound):
            api.get_node(UUID1)
        with pytest.raises(exception.PortNotFound):
            api.get_port_by_address("52:54:00:00:00:01")
        assert api.get_allocation(alloc.uuid).node_id is None
        _node(uuid=UUID2)
        assert api.list_ports() == []
        with pytest.raises(exception.NodeNotFound):
            api.destroy_node(UUID1)


class TestListNodes:
    def _fleet(self):
        _node(name="c", provision_state="available", resource_class="gpu", owner="p1")
        _node(name="a", provision_state="active", maintenance=True, instance_uuid=INST_UUID)
        _node(name=None, provision_state="available", fault="power failure", lessee="p2")
        _node(name="b", provision_state="clean wait", conductor_group="rack1", driver="ipmi")
        _node(name=None, provision_state="manageable", reservation="cond-1")

    def test_filters(self, db):
        self._fleet()
        names = lambda **f: sorted(str(n.name) for n in api.list_nodes(f))  # noqa: E731
        assert names(provision_state="available") == ["None", "c"]
        assert names(provision_state_in=["active", "clean wait"]) == ["a", "b"]
        assert names(maintenance=True) == ["a"]
        assert len(api.list_nodes({"maintenance": False})) == 4
        assert names(resource_class="gpu") == ["c"]
        assert names(owner="p1") == ["c"]
        assert names(lessee="p2") == ["None"]
        assert names(driver="ipmi") == ["b"]
        assert names(conductor_group="rack1") == ["b"]
        assert names(fault="power failure") == ["None"]
        assert names(associated=True) == ["a"]
        assert len(api.list_nodes({"associated": False})) == 4
        assert names(reserved=True) == ["None"]
        assert names(reserved_by_any_of=["cond-1", "cond-2"]) == ["None"]
        assert len(api.list_nodes({"reserved": False})) == 4
        assert names(provision_state="available", resource_class="gpu") == ["c"]

    def test_bad_filters(self, db):
        with pytest.raises(exception.InvalidParameterValue, match="colour"):
            api.list_nodes({"colour": "red"})
        with pytest.raises(exception.InvalidParameterValue, match="maintenance"):
            api.list_nodes({"maintenance": "yes"})
        with pytest.raises(exception.InvalidParameterValue, match="provision_state_in"):
            api.list_nodes({"provision_state_in": "active"})

    def test_paginate_by_id(self, db):
        uuids = [_node().uuid for _ in range(5)]
        page1 = api.list_nodes(limit=2)
        assert [n.uuid for n in page1] == uuids[:2]
        page2 = api.list_nodes(limit=2, marker=page1[-1].uuid)
        assert [n.uuid for n in page2] == uuids[2:4]
        page3 = api.list_nodes(limit=2, marker=page2[-1].uuid)
        assert [n.uuid for n in page3] == uuids[4:]
        assert [n.uuid for n in api.list_nodes(sort_dir="desc", limit=2, marker=uuids[3])] == [
            uuids[2],
            uuids[1],
        ]

    @pytest.mark.parametrize("sort_dir", ["asc", "desc"])
    def test_paginate_by_name_with_nulls(self, db, sort_dir):
        self._fleet()
        full = [n.name for n in api.list_nodes(sort_key="name", sort_dir=sort_dir)]
        expected = [None, None, "a", "b", "c"]
        assert full == (expected if sort_dir == "asc" else expected[::-1])
        seen, marker = [], None
        while True:
            page = api.list_nodes(limit=2, marker=marker, sort_key="name", sort_dir=sort_dir)
            if not page:
                break
            seen.extend(page)
            marker = page[-1].uuid
        assert [n.name for n in seen] == full
        assert len({n.uuid for n in seen}) == 5

    def test_invalid_sorting_and_paging(self, db):
        node = _node()
        with pytest.raises(exception.Invalid, match="sort_key 'properties'"):
            api.list_nodes(sort_key="properties")
        with pytest.raises(exception.Invalid, match="sort_key 'bogus'"):
            api.list_nodes(sort_key="bogus")
        with pytest.raises(exception.Invalid, match="sort_dir 'up'"):
            api.list_nodes(sort_dir="up")
        with pytest.raises(exception.Invalid, match="limit 0"):
            api.list_nodes(limit=0)
        with pytest.raises(exception.Invalid, match=UUID2):
            api.list_nodes(marker=UUID2)
        assert [n.uuid for n in api.list_nodes(marker=node.uuid)] == []


class TestTraits:
    def test_set_add_remove(self, db):
        _node(uuid=UUID1, traits=["CUSTOM_B", "CUSTOM_A", "CUSTOM_A"])
        assert api.get_node_traits(UUID1) == ["CUSTOM_A", "CUSTOM_B"]
        assert api.set_node_traits(UUID1, ["CUSTOM_GPU_COUNT_8", "CUSTOM_A"]) == [
            "CUSTOM_A",
            "CUSTOM_GPU_COUNT_8",
        ]
        api.add_node_trait(UUID1, "CUSTOM_NIC_SRIOV")
        api.add_node_trait(UUID1, "CUSTOM_NIC_SRIOV")
        assert api.get_node(UUID1).traits == ["CUSTOM_A", "CUSTOM_GPU_COUNT_8", "CUSTOM_NIC_SRIOV"]
        api.remove_node_trait(UUID1, "CUSTOM_A")
        assert api.get_node_traits(UUID1) == ["CUSTOM_GPU_COUNT_8", "CUSTOM_NIC_SRIOV"]
        with pytest.raises(exception.NotFound, match="CUSTOM_A"):
            api.remove_node_trait(UUID1, "CUSTOM_A")
        api.update_node(UUID1, {"traits": []})
        assert api.get_node_traits(UUID1) == []

    def test_bad_traits(self, db):
        _node(uuid=UUID1)
        with pytest.raises(exception.InvalidParameterValue, match="must be a list"):
            api.set_node_traits(UUID1, "CUSTOM_A")
        with pytest.raises(exception.InvalidParameterValue, match="Invalid trait ''"):
            api.set_node_traits(UUID1, [""])
        with pytest.raises(exception.NodeNotFound):
            api.get_node_traits(UUID2)

    def test_traits_in_as_dict(self, db):
        node = _node(uuid=UUID1, traits=["CUSTOM_X"])
        values = node.as_dict()
        assert values["traits"] == ["CUSTOM_X"]
        assert values["uuid"] == UUID1
        assert values["driver"] == "fake-hardware"


def _reserve_in_process(url, tag, idents, barrier, results) -> None:
    """Child process: for each node in turn, wait for the sibling, then try to reserve it."""
    api.configure(url)
    try:
        for round_no, ident in enumerate(idents):
            barrier.wait(timeout=60)
            try:
                node = api.reserve_node(tag, ident)
                results.put((round_no, tag, "won", node.reservation))
            except exception.NodeLocked as exc:
                results.put((round_no, tag, "locked", exc.kwargs["host"]))
            except Exception as exc:  # reported to the parent, which fails the test
                results.put((round_no, tag, "error", repr(exc)))
    finally:
        api.dispose()


class TestReservations:
    def test_reserve_and_release(self, db):
        _node(uuid=UUID1, name="gpu-01")
        node = api.reserve_node("cond-1", "gpu-01")
        assert node.reservation == "cond-1"
        assert api.get_node(UUID1).reservation == "cond-1"
        api.release_node("cond-1", UUID1)
        assert api.get_node(UUID1).reservation is None
        assert api.reserve_node("cond-2", UUID1).reservation == "cond-2"
        api.release_node("cond-2", node.id)
        assert api.reserve_node("cond-3", node.id).reservation == "cond-3"

    def test_locked_by_other_and_same_tag(self, db):
        _node(uuid=UUID1)
        api.reserve_node("cond-1", UUID1)
        with pytest.raises(exception.NodeLocked, match="locked by host cond-1") as info:
            api.reserve_node("cond-2", UUID1)
        assert info.value.kwargs == {"node": UUID1, "host": "cond-1"}
        with pytest.raises(exception.NodeLocked, match="cond-1"):
            api.reserve_node("cond-1", UUID1)

    def test_release_errors(self, db):
        _node(uuid=UUID1)
        with pytest.raises(exception.NodeNotLocked, match="cond-1"):
            api.release_node("cond-1", UUID1)
        api.reserve_node("cond-1", UUID1)
        with pytest.raises(exception.NodeNotLocked, match="cond-2"):
            api.release_node("cond-2", UUID1)
        assert api.get_node(UUID1).reservation == "cond-1"
        with pytest.raises(exception.NodeNotFound):
            api.release_node("cond-1", UUID2)

    def test_reserve_missing(self, db):
        with pytest.raises(exception.NodeNotFound, match="gpu-404"):
            api.reserve_node("cond-1", "gpu-404")

    def test_clear_for_conductor(self, db):
        for name in ("a", "b", "c"):
            _node(name=name)
        api.reserve_node("cond-1", "a")
        api.reserve_node("cond-1", "b")
        api.reserve_node("cond-2", "c")
        assert api.clear_node_reservations_for_conductor("cond-1") == 2
        assert [n.reservation for n in api.list_nodes(sort_key="name")] == [None, None, "cond-2"]

    def test_two_processes_race(self, db, db_url):
        """Two processes reserve the same node at once, several times: exactly one wins each time."""
        ctx = multiprocessing.get_context("spawn")
        nodes = [_node(name=f"race-{round_no}") for round_no in range(3)]
        barrier, results = ctx.Barrier(2), ctx.Queue()  # the barrier starts each round afresh
        idents = [node.uuid for node in nodes]
        procs = [
            ctx.Process(target=_reserve_in_process, args=(db_url, tag, idents, barrier, results))
            for tag in ("cond-a", "cond-b")
        ]
        for proc in procs:
            proc.start()
        outcome = [results.get(timeout=120) for _ in range(len(procs) * len(nodes))]
        for proc in procs:
            proc.join(timeout=60)
            assert proc.exitcode == 0
        for round_no, node in enumerate(nodes):
            seen = [(tag, status, holder) for r, tag, status, holder in outcome if r == round_no]
            statuses = sorted(status for _tag, status, _holder in seen)
            assert statuses == ["locked", "won"], seen
            winner = next(tag for tag, status, _ in seen if status == "won")
            loser_saw = next(holder for _, status, holder in seen if status == "locked")
            assert loser_saw == winner
            assert api.get_node(node.uuid).reservation == winner


class TestPorts:
    def test_create_normalises_mac(self, db):
        node = _node(uuid=UUID1)
        port = api.create_port({"address": "52-54-00-AB-CD-EF", "node_id": UUID1, "name": "eth0"})
        assert port.address == "52:54:00:ab:cd:ef"
        assert port.node_id == node.id
        assert port.pxe_enabled is True
        assert port.local_link_connection == {}
        assert api.get_port_by_address("52:54:00:AB:CD:EF").uuid == port.uuid
        assert api.get_port("eth0").uuid == port.uuid
        assert api.get_port(port.uuid.upper()).address == "52:54:00:ab:cd:ef"

    @pytest.mark.parametrize("bad", ["52:54:00:ab:cd", "zz:54:00:ab:cd:ef", "", "52:54:00:ab:cd:ef:01"])
    def test_bad_mac(self, db, bad):
        with pytest.raises(exception.InvalidParameterValue, match=f"Invalid MAC address '{bad}'"):
            api.create_port({"address": bad})

    def test_duplicate_mac_any_case(self, db):
        api.create_port({"address": "52:54:00:ab:cd:ef"})
        with pytest.raises(exception.MACAlreadyExists, match="52:54:00:ab:cd:ef"):
            api.create_port({"address": "52:54:00:AB:CD:EF"})

    def test_duplicate_uuid_and_name(self, db):
        api.create_port({"address": "52:54:00:00:00:01", "uuid": UUID1, "name": "p"})
        with pytest.raises(db_exc.PortAlreadyExists, match=UUID1):
            api.create_port({"address": "52:54:00:00:00:02", "uuid": UUID1})
        with pytest.raises(db_exc.PortDuplicateName, match="p"):
            api.create_port({"address": "52:54:00:00:00:03", "name": "p"})

    def test_unknown_node_and_missing_address(self, db):
        with pytest.raises(exception.NodeNotFound, match=UUID2):
            api.create_port({"address": "52:54:00:00:00:01", "node_id": UUID2})
        with pytest.raises(exception.MissingParameterValue, match="address"):
            api.create_port({"node_id": 1})

    def test_list_update_destroy(self, db):
        n1, n2 = _node(name="n1"), _node(name="n2")
        p1 = api.create_port({"address": "52:54:00:00:00:01", "node_id": n1.id, "physical_network": "prov"})
        p2 = api.create_port({"address": "52:54:00:00:00:02", "node_id": n1.id, "pxe_enabled": False})
        p3 = api.create_port({"address": "52:54:00:00:00:03", "node_id": n2.id})
        assert [p.uuid for p in api.list_ports(node_id="n1")] == [p1.uuid, p2.uuid]
        assert [p.uuid for p in api.list_ports(node_id=n2.id)] == [p3.uuid]
        assert [p.uuid for p in api.list_ports(filters={"pxe_enabled": False})] == [p2.uuid]
        assert [p.uuid for p in api.list_ports(filters={"physical_network": "prov"})] == [p1.uuid]
        assert [p.uuid for p in api.list_ports(filters={"address": "52:54:00:00:00:03"})] == [p3.uuid]
        assert [p.uuid for p in api.list_ports(limit=1, marker=p1.uuid)] == [p2.uuid]
        assert [p.address for p in api.list_ports(sort_key="address", sort_dir="desc")][
            0
        ] == "52:54:00:00:00:03"
        updated = api.update_port(p3.uuid, {"address": "52:54:00:00:00:AA", "node_id": "n1"})
        assert updated.address == "52:54:00:00:00:aa"
        assert updated.node_id == n1.id
        with pytest.raises(exception.MACAlreadyExists, match="52:54:00:00:00:01"):
            api.update_port(p2.uuid, {"address": "52:54:00:00:00:01"})
        with pytest.raises(exception.InvalidParameterValue, match="'garbage'"):
            api.update_port(p2.uuid, {"address": "garbage"})
        api.destroy_port(p2.uuid)
        assert [p.uuid for p in api.list_ports(node_id="n1")] == [p1.uuid, p3.uuid]
        with pytest.raises(exception.PortNotFound):
            api.destroy_port(p2.uuid)

    def test_lookup_nodes_by_macs(self, db):
        n1, n2 = _node(name="n1"), _node(name="n2")
        api.create_port({"address": "52:54:00:00:00:01", "node_id": n1.id})
        api.create_port({"address": "52:54:00:00:00:02", "node_id": n1.id})
        api.create_port({"address": "52:54:00:00:00:03", "node_id": n2.id})
        found = api.lookup_nodes_by_macs(["52:54:00:00:00:02", "52:54:00:00:00:01", "not-a-mac", None])
        assert [n.name for n in found] == ["n1"]
        found = api.lookup_nodes_by_macs(["52:54:00:00:00:03", "52-54-00-00-00-01"])
        assert [n.name for n in found] == ["n1", "n2"]
        assert api.lookup_nodes_by_macs(["aa:bb:cc:dd:ee:ff"]) == []
        assert api.lookup_nodes_by_macs([]) == []


class TestInventory:
    def test_current_and_history(self, db):
        node = _node(uuid=UUID1)
        assert db_inventory.get_node_inventory(UUID1) is None
        assert db_inventory.list_inventory_history(node.id) == []
        db_inventory.store_inventory(node.id, {"cpu": {"count": 8}}, plugin_data={"lldp": {}})
        db_inventory.store_inventory(UUID1, {"cpu": {"count": 16}}, changes={"cpu.count": [8, 16]})
        assert db_inventory.get_node_inventory(node.id) == {"cpu": {"count": 16}}
        assert db_inventory.get_node_plugin_data(node.id) == {"lldp": {}}
        history = db_inventory.list_inventory_history(UUID1)
        assert [h["inventory"]["cpu"]["count"] for h in history] == [16, 8]
        assert history[0]["changes"] == {"cpu.count": [8, 16]}
        assert history[1]["changes"] is None
        assert history[0]["created_at"].tzinfo is datetime.UTC
        assert len(db_inventory.list_inventory_history(UUID1, limit=1)) == 1

    def test_errors(self, db):
        with pytest.raises(exception.NodeNotFound):
            db_inventory.store_inventory(999, {"cpu": {}})
        _node(uuid=UUID1)
        with pytest.raises(exception.InvalidParameterValue, match="must be a dict"):
            db_inventory.store_inventory(UUID1, ["cpu"])
        with pytest.raises(exception.InvalidParameterValue, match="limit"):
            db_inventory.list_inventory_history(UUID1, limit=0)


class TestHeartbeats:
    def test_record(self, db):
        node = _node(uuid=UUID1)
        api.record_agent_heartbeat(node.id)
        after = api.get_node(UUID1)
        assert after.last_heartbeat_at is not None
        assert after.updated_at is None  # a heartbeat is not a change of the node
        at = datetime.datetime(
            2030, 1, 2, 3, 4, 5, 123456, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
        )
        api.record_agent_heartbeat(UUID1, at=at)
        stored = api.get_node(UUID1).last_heartbeat_at
        assert stored == at
        assert stored.tzinfo is datetime.UTC
        assert stored.hour == 1
        assert stored.microsecond == 123456
        with pytest.raises(exception.NodeNotFound):
            api.record_agent_heartbeat(UUID2)

    def test_missing_heartbeat(self, db):
        silent = _node(name="silent", provision_state="clean wait")
        fresh = _node(name="fresh", provision_state="clean wait")
        _node(name="other-state", provision_state="available")
        just_moved = _node(name="just-moved", provision_state="clean wait")
        for node in (silent, fresh, just_moved):
            _set_column(db, models.Node, models.Node.id, node.id, provision_updated_at=_ago(600))
        api.record_agent_heartbeat(silent.id, at=_ago(300))
        api.record_agent_heartbeat(fresh.id)
        api.update_node(just_moved.id, {"provision_state": "clean wait"})
        missing = api.get_nodes_missing_heartbeat(120, ["clean wait", "wait call-back"])
        assert [n.name for n in missing] == ["silent"]
        assert [n.name for n in api.get_nodes_missing_heartbeat(400, ["clean wait"])] == []
        everywhere = api.get_nodes_missing_heartbeat(0)
        assert {"silent", "other-state"} <= {n.name for n in everywhere}


class TestConductors:
    def test_register_and_reregister(self, db):
        first = api.register_conductor("cond-1", ["fake-hardware"])
        assert first.online is True
        assert first.drivers == ["fake-hardware"]
        assert first.conductor_group == ""
        assert first.updated_at is not None
        api.unregister_conductor("cond-1")
        again = api.register_conductor("cond-1", ["fake-hardware", "ipmi"], conductor_group="rack1")
        assert again.id == first.id
        assert again.online is True
        assert api.get_conductor("cond-1").drivers == ["fake-hardware", "ipmi"]
        assert api.get_conductor("cond-1").conductor_group == "rack1"
        assert [c.hostname for c in api.list_conductors()] == ["cond-1"]

    def test_online_offline(self, db):
        for host in ("c1", "c2", "c3"):
            api.register_conductor(host, ["fake-hardware"])
        _set_column(db, models.Conductor, models.Conductor.hostname, "c2", updated_at=_ago(300))
        api.unregister_conductor("c3")
        assert [c.hostname for c in api.get_online_conductors(60)] == ["c1"]
        assert [c.hostname for c in api.get_offline_conductors(60)] == ["c2", "c3"]
        api.touch_conductor("c2")
        assert [c.hostname for c in api.get_online_conductors(60)] == ["c1", "c2"]
        assert [c.hostname for c in api.get_online_conductors(600)] == ["c1", "c2"]

    def test_unknown_conductor(self, db):
        with pytest.raises(db_exc.ConductorNotRegistered, match="ghost"):
            api.touch_conductor("ghost")
        with pytest.raises(exception.NotFound, match="ghost"):
            api.unregister_conductor("ghost")
        with pytest.raises(exception.NotFound, match="ghost"):
            api.get_conductor("ghost")


class TestAllocations:
    def test_crud(self, db):
        node = _node(name="n1")
        alloc = api.create_allocation(
            {"name": "a1", "resource_class": "gpu", "traits": ["CUSTOM_GPU_COUNT_8"]}
        )
        assert alloc.state == "allocating"
        assert alloc.candidate_nodes == []
        assert api.get_allocation("a1").uuid == alloc.uuid
        updated = api.update_allocation(alloc.uuid, {"state": "active", "node_id": "n1"})
        assert updated.node_id == node.id
        assert [a.name for a in api.list_allocations({"state": "active"})] == ["a1"]
        assert api.list_allocations({"node_id": node.id})[0].traits == ["CUSTOM_GPU_COUNT_8"]
        api.destroy_allocation("a1")
        with pytest.raises(db_exc.AllocationNotFound, match="a1"):
            api.get_allocation("a1")

    def test_conflicts_and_errors(self, db):
        api.create_allocation({"name": "a1", "uuid": UUID1})
        with pytest.raises(db_exc.AllocationDuplicateName, match="a1"):
            api.create_allocation({"name": "a1"})
        with pytest.raises(db_exc.AllocationAlreadyExists, match=UUID1):
            api.create_allocation({"uuid": UUID1})
        with pytest.raises(exception.InvalidParameterValue, match="colour"):
            api.list_allocations({"colour": "red"})
        with pytest.raises(exception.NodeNotFound):
            api.create_allocation({"node_id": 12345})
        with pytest.raises(db_exc.AllocationNotFound):
            api.destroy_allocation(UUID2)
        assert [a.uuid for a in api.list_allocations(limit=5, sort_key="name")] == [UUID1]
