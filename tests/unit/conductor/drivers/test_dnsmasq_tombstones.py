"""Tombstones of ports that left are pruned once older than [dnsmasq]tombstone_ttl; live entries never are."""

from __future__ import annotations

import os
import time

from agent.common.config import CONF
from agent.conductor.drivers import dnsmasq

NODE = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
LIVE, GONE, LEASE = "52:54:00:00:00:01", "52:54:00:00:00:02", "52:54:00:00:00:03"


def _age(name: str, seconds: float) -> None:
    path = os.path.join(CONF.dnsmasq.hostsdir, name)
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_old_tombstones_go_live_entries_stay(boot_dirs) -> None:
    dnsmasq.write_hosts(NODE, [LIVE, GONE])
    dnsmasq.write_instance_hosts([LEASE])
    assert dnsmasq.remove_hosts([GONE]) == 1
    for mac in (LIVE, GONE, LEASE):
        _age(dnsmasq.host_file_name(mac), 7200)  # all old; only the tombstone may go
    assert dnsmasq.prune_tombstones(ttl=3600) == 1
    left = sorted(os.listdir(CONF.dnsmasq.hostsdir))
    assert left == sorted(dnsmasq.host_file_name(m) for m in (LIVE, LEASE))


def test_young_tombstones_and_ttl_zero_are_kept(boot_dirs) -> None:
    dnsmasq.write_hosts(NODE, [GONE])
    dnsmasq.remove_hosts([GONE])
    assert dnsmasq.prune_tombstones(ttl=3600) == 0  # just written: dnsmasq may not have read it yet
    _age(dnsmasq.host_file_name(GONE), 10**6)
    assert dnsmasq.prune_tombstones(ttl=0) == 0  # 0 keeps them forever
    assert os.listdir(CONF.dnsmasq.hostsdir) == [dnsmasq.host_file_name(GONE)]
    CONF.set_override("tombstone_ttl", 60, group="dnsmasq")
    try:
        assert dnsmasq.prune_tombstones() == 1
    finally:
        CONF.clear_override("tombstone_ttl", group="dnsmasq")
    assert os.listdir(CONF.dnsmasq.hostsdir) == []


def test_a_mac_that_comes_back_after_pruning_is_live(boot_dirs) -> None:
    dnsmasq.write_hosts(NODE, [GONE])
    dnsmasq.remove_hosts([GONE])
    _age(dnsmasq.host_file_name(GONE), 10**6)
    assert dnsmasq.prune_tombstones(ttl=1) == 1
    dnsmasq.write_hosts(NODE, [GONE])
    with open(os.path.join(CONF.dnsmasq.hostsdir, dnsmasq.host_file_name(GONE))) as fh:
        assert dnsmasq.is_live(fh.read())
