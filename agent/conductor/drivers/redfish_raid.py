"""RAID over Redfish (sushy): the node's target_raid_config becomes Storage Volumes
(clean step ``raid.create_configuration``), and ``raid.delete_configuration`` removes them.

Each logical disk is created on the storage its ``controller`` names (else the first storage the
BMC lists), with Ironic's mapping of RAID levels to Redfish RAIDType (when the controller lists
SupportedRAIDTypes) or VolumeType. A BMC without Storage volumes refuses the step, saying so.
"""

from __future__ import annotations

from typing import Any

import sushy
from oslo_log import log as logging

from agent.common import exception, raid
from agent.conductor.drivers import base, redfish

LOG = logging.getLogger(__name__)

GIB = 1024**3
#: Ironic's RAID level -> (Redfish VolumeType, Redfish RAIDType).
LEVELS: dict[str, tuple[str, str | None]] = {
    "JBOD": ("RawDevice", None),
    "0": ("NonRedundant", "RAID0"),
    "1": ("Mirrored", "RAID1"),
    "5": ("StripedWithParity", "RAID5"),
    "6": ("StripedWithParity", "RAID6"),
    "1+0": ("SpannedMirrors", "RAID10"),
    "5+0": ("SpannedStripesWithParity", "RAID50"),
    "6+0": ("SpannedStripesWithParity", "RAID60"),
}

_CREATE_ARGS = {
    "create_root_volume": {"description": "Create the root volume (default true).", "required": False},
    "create_nonroot_volumes": {"description": "Create the other volumes (default true).", "required": False},
    "delete_existing": {
        "description": "Delete the existing volumes first (default true).",
        "required": False,
    },
}


def _storages(task) -> list:
    system = redfish.get_system(task.node)
    try:
        storages = system.storage.get_members()
    except (sushy.exceptions.SushyError, OSError) as exc:
        raise exception.UnsupportedDriverExtension(
            driver=task.node.driver, extension=f"RAID (the BMC offers no Storage resource: {exc})"
        ) from None
    if not storages:
        raise exception.UnsupportedDriverExtension(
            driver=task.node.driver, extension="RAID (the BMC lists no storage controller)"
        )
    return storages


def _pick(task, storages: list, controller: str | None):
    if controller is None:
        return storages[0]
    for storage in storages:
        if controller in (storage.identity, storage.name, storage.path):
            return storage
    names = ", ".join(s.identity for s in storages)
    raise exception.InvalidParameterValue(
        err=f"Node {task.node.uuid}: target_raid_config names controller {controller!r}, which the BMC "
        f"does not have; its storage: {names}."
    )


def _payload(task, storage, disk: dict[str, Any]) -> dict[str, Any]:
    volume_type, raid_type = LEVELS.get(disk["raid_level"], (None, None))
    if volume_type is None:
        raise exception.InvalidParameterValue(
            err=f"Node {task.node.uuid}: RAID level {disk['raid_level']} has no Redfish equivalent; "
            f"use one of {', '.join(LEVELS)}."
        )
    size = raid.size_bytes(
        disk, redfish._call(task.node, "read drive sizes", lambda: storage.drives_max_size_bytes)
    )
    if size is None:
        raise exception.InvalidParameterValue(
            err=f"Node {task.node.uuid}: size_gb MAX needs drive sizes, which storage {storage.identity} "
            "does not report."
        )
    payload: dict[str, Any] = {"CapacityBytes": size}
    supported = [
        str(getattr(t, "value", t)) for c in (storage.storage_controllers or []) for t in (c.raid_types or [])
    ]
    if raid_type and supported:
        payload["RAIDType"] = raid_type
    else:
        payload["VolumeType"] = volume_type
    if disk.get("volume_name"):
        payload["Name"] = disk["volume_name"]
    return payload


class RedfishRAID(base.RAIDInterface):
    """RAID volumes through the Redfish Storage resources of the node's ComputerSystem."""

    def get_properties(self) -> dict[str, str]:
        """The Redfish driver_info keys."""
        return {**redfish.REQUIRED, **redfish.OPTIONAL}

    def validate(self, task) -> None:
        """Check the node's Redfish driver_info."""
        redfish.parse_driver_info(task.node)

    @base.clean_step(priority=0, argsinfo=_CREATE_ARGS)
    def create_configuration(
        self,
        task,
        create_root_volume: bool = True,
        create_nonroot_volumes: bool = True,
        delete_existing: bool = True,
    ) -> None:
        """Create the volumes of target_raid_config; record what was built in raid_config."""
        node = task.node
        target = node.target_raid_config or {}
        if not target.get("logical_disks"):
            raise exception.InvalidParameterValue(
                err=f"Node {node.uuid}: raid.create_configuration needs a target_raid_config; set one with "
                "baremetal node set --target-raid-config FILE."
            )
        disks = [
            d
            for d in target["logical_disks"]
            if (create_root_volume if d.get("is_root_volume") else create_nonroot_volumes)
        ]
        storages = _storages(task)
        if delete_existing:
            self._delete_all(task, storages)
        built = []
        for disk in disks:
            storage = _pick(task, storages, disk.get("controller"))
            payload = _payload(task, storage, disk)
            volumes = redfish._call(
                node, f"read the volumes of {storage.identity}", lambda s=storage: s.volumes
            )
            created = redfish._call(node, f"create a volume on {storage.identity}", volumes.create, payload)
            name = getattr(created, "name", None) or disk.get("volume_name")
            LOG.info(
                "Node %s: RAID %s volume %s created on %s",
                node.uuid,
                disk["raid_level"],
                name,
                storage.identity,
            )
            built.append(
                {
                    **{k: v for k, v in disk.items() if k != "physical_disks"},
                    "size_gb": payload["CapacityBytes"] // GIB,
                    "controller": storage.identity,
                    "volume_name": name,
                }
            )
        task.update_node({"raid_config": {"logical_disks": built}})

    @base.clean_step(priority=0)
    def delete_configuration(self, task) -> None:
        """Delete every volume of every storage; raid_config becomes empty."""
        self._delete_all(task, _storages(task))
        task.update_node({"raid_config": {}})

    def _delete_all(self, task, storages: list) -> None:
        for storage in storages:
            volumes = redfish._call(
                task.node, f"read the volumes of {storage.identity}", lambda s=storage: s.volumes
            )
            for volume in redfish._call(task.node, "list volumes", volumes.get_members):
                redfish._call(task.node, f"delete volume {volume.identity}", volume.delete)
                LOG.info(
                    "Node %s: volume %s deleted from %s", task.node.uuid, volume.identity, storage.identity
                )
