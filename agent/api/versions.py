"""API microversions: the range served and the negotiation of the requested one (Ironic's rules)."""

from __future__ import annotations

import re

from agent.api import errors

BASE_VERSION = 1
MIN_VERSION = (1, 1)
# Ironic 39's newest microversion. Everything Kiln serves keeps Ironic's semantics at every version;
# what it does not serve is listed in the README's compatibility section (those paths answer 404).
MAX_VERSION = (1, 115)

MIN_HEADER = "X-OpenStack-Ironic-API-Minimum-Version"
MAX_HEADER = "X-OpenStack-Ironic-API-Maximum-Version"
VERSION_HEADER = "X-OpenStack-Ironic-API-Version"
STD_HEADER = "OpenStack-API-Version"
SERVICE_TYPE = "baremetal"

# When each microversion that matters here was introduced (Ironic's numbering).
NODE_NAME = 5
FIELDS_SELECTOR = 8
PROVISION_STATE_FILTER = 9
ENROLL_DEFAULT = 11
ABORT = 13
STATES_LINK = 14
MANUAL_CLEAN = 15
DRIVER_FILTER = 16
ADOPT = 17
PORT_ADVANCED_NET = 19
RESOURCE_CLASS = 21
PORTGROUPS = 23
PORTGROUP_SUBRESOURCES = 24
PORTGROUP_MODE_PROPERTIES = 26
VIFS = 28
DYNAMIC_DRIVERS = 30
DYNAMIC_INTERFACES = 31
VOLUME = 32
PORT_PHYSNET = 34
REBUILD_CONFIGDRIVE = 35
TRAITS = 37
RESCUE = 38
INSPECT_ABORT = 41
DETAIL_QUERY = 43
CONDUCTOR_GROUP = 46
CONDUCTORS = 49
OWNER = 50
DESCRIPTION = 51
ALLOCATIONS = 52
SMARTNIC = 53
EVENTS = 54
DEPLOY_TEMPLATES = 55
CONFIGDRIVE_DICT = 56
ALLOCATION_UPDATE = 57
ALLOCATION_OWNER = 60
RETIRED = 61
LESSEE = 65
VIF_PORT_UUID = 67
DEPLOY_STEPS = 69
DISABLE_RAMDISK = 70
DEPLOY_VERBS = 73
DRIVER_FIELDS = 77
NODE_HISTORY = 78
PROJECT_CREATE = 80
INVENTORY = 81
SHARDS = 82
UNHOLD = 85
FIRMWARE = 86
SERVICE = 87
VMEDIA = 89
RUNBOOKS = 92
INSPECTION_RULES = 96
INSTANCE_NAME = 104
HEALTH = 109
RUNBOOK_TRAITS = 112
HISTORY_FIELDS = 115

_VERSION_RE = re.compile(r"^(\d+)\.(\d+)$")


def to_string(version: tuple[int, int]) -> str:
    """Return "X.Y" for ``version``."""
    return f"{version[0]}.{version[1]}"


def min_string() -> str:
    """Return the oldest microversion served."""
    return to_string(MIN_VERSION)


def max_string() -> str:
    """Return the newest microversion served."""
    return to_string(MAX_VERSION)


def _requested(headers) -> str | None:
    """Return the version string the request asks for, the standard header first."""
    std = headers.get(STD_HEADER)
    if std:
        for item in std.split(","):
            parts = item.strip().split()
            if len(parts) == 2 and parts[0].lower() == SERVICE_TYPE:
                return parts[1]
    return headers.get(VERSION_HEADER)


def negotiate(headers) -> tuple[int, int]:
    """Return the microversion to serve for request ``headers``; 400 malformed, 406 out of range."""
    raw = _requested(headers)
    if raw is None or raw.strip() == "":
        return MIN_VERSION
    raw = raw.strip()
    if raw.lower() == "latest":
        return MAX_VERSION
    match = _VERSION_RE.match(raw)
    if not match:
        raise errors.HTTPBadRequest(
            f"Invalid value for {VERSION_HEADER} header: {raw!r}; use MAJOR.MINOR such as "
            f"{max_string()}, or latest."
        )
    version = (int(match.group(1)), int(match.group(2)))
    if version[0] != BASE_VERSION:
        raise errors.HTTPNotAcceptable(
            f"Version {raw} was requested but major version {version[0]} is not served. "
            f"The supported version range is: [{min_string()}, {max_string()}]."
        )
    if version < MIN_VERSION or version > MAX_VERSION:
        raise errors.HTTPNotAcceptable(
            f"Version {raw} was requested but the minor version is not supported by this service. "
            f"The supported version range is: [{min_string()}, {max_string()}]."
        )
    return version


def response_headers(version: tuple[int, int] | None) -> dict[str, str]:
    """Return the version headers every response carries."""
    served = version or MIN_VERSION
    return {
        MIN_HEADER: min_string(),
        MAX_HEADER: max_string(),
        VERSION_HEADER: to_string(served),
        STD_HEADER: f"{SERVICE_TYPE} {to_string(served)}",
        "Vary": f"{VERSION_HEADER}, {STD_HEADER}",
    }
