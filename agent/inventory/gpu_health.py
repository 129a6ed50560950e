"""GPU health through NVML: ECC, retired pages, remapped rows, NVLink, power, thermal, clocks.

Called by :mod:`agent.inventory.nvml` for each NVIDIA GPU NVML answers for. Each NVML call
is guarded on its own:

- ``NVML_ERROR_NOT_SUPPORTED`` (retired pages on Hopper, NVLink on a PCIe card, thresholds
  a VM does not expose) leaves the field null and names it in ``health["not_supported"]``:
  the GPU does not have it, which is no error.
- Any other failure leaves the field null and adds an entry to ``errors`` naming the call
  and the GPU (``nvmlDeviceGetRemappedRows(0000:18:00.0) failed: GPU is lost``).
"""

from __future__ import annotations

from typing import Any

from agent.inventory.base import Root
from agent.inventory.model import GpuHealth, NvLink

NOT_SUPPORTED = 3  # NVML_ERROR_NOT_SUPPORTED
INVALID_ARGUMENT = 2  # NVML_ERROR_INVALID_ARGUMENT: a link number past the GPU's last link
MAX_LINKS = 18  # NVLink links of a Hopper/Blackwell GPU (NVML_NVLINK_MAX_LINKS is 36 in newer bindings)
FI_NVLINK_LINK_COUNT = 91  # NVML_FI_DEV_NVLINK_LINK_COUNT
FI_NVLINK_GET_SPEED = 164  # NVML_FI_DEV_NVLINK_GET_SPEED, scope = link: MB/s
NVLINK_VERSIONS = {1: "1.0", 2: "2.0", 3: "2.2", 4: "3.0", 5: "3.1", 6: "4.0", 7: "5.0", 8: "6.0"}
REMOTE_TYPES = {0: "gpu", 1: "ibmnpu", 2: "switch"}

#: nvmlClocksEventReason* bits, as nvidia-smi -q names them under "Clocks Event Reasons".
CLOCK_EVENT_REASONS = {
    0x001: "gpu_idle",
    0x002: "applications_clocks_setting",
    0x004: "sw_power_cap",
    0x008: "hw_slowdown",
    0x010: "sync_boost",
    0x020: "sw_thermal_slowdown",
    0x040: "hw_thermal_slowdown",
    0x080: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}
# NVML_TEMPERATURE_THRESHOLD_*: SHUTDOWN 0, SLOWDOWN 1, MEM_MAX 2, GPU_MAX 3.
THRESHOLDS = {"shutdown_c": 0, "slowdown_c": 1, "memory_max_c": 2, "gpu_max_c": 3}


def empty_health() -> GpuHealth:
    """A health record with nothing read yet (every field null)."""
    return {
        "nvml": False,
        "not_supported": [],
        "persistence_mode": None,
        "ecc": None,
        "retired_pages": None,
        "remapped_rows": None,
        "power": None,
        "thermal": None,
        "throttle_reasons": None,
        "nvlinks": None,
        "xid_errors": None,
        "ras": None,
        "xgmi_links": None,
    }


def decode_clock_reasons(mask: int) -> list[str]:
    """Name the bits of a clocks-event-reasons mask; unknown bits as hex ('0x400')."""
    names = [name for bit, name in CLOCK_EVENT_REASONS.items() if mask & bit]
    rest = mask & ~sum(CLOCK_EVENT_REASONS)
    bit = 1
    while rest >= bit:
        if rest & bit:
            names.append(f"0x{bit:x}")
        bit <<= 1
    return names


class _Reader:
    """Guarded NVML calls for one GPU, recording failures and unsupported fields."""

    def __init__(self, root: Root, nvml: Any, handle: Any, where: str, health: GpuHealth) -> None:
        self.root, self.nvml, self.handle, self.where, self.health = root, nvml, handle, where, health
        self.unsupported = False

    def call(self, field: str, name: str, *args: Any) -> Any:
        """Call nvml.<name>(handle, *args); None on failure (recorded unless NotSupported)."""
        self.unsupported = False
        fn = getattr(self.nvml, name, None)
        if fn is None:
            self.root.note("nvml", f"{name} missing from this pynvml: {field} of {self.where} not read")
            return None
        try:
            return fn(self.handle, *args)
        except Exception as exc:  # noqa: BLE001 - NVML raises its own error classes
            if getattr(exc, "value", None) == NOT_SUPPORTED:
                self.unsupported = True
                if field not in self.health["not_supported"]:
                    self.health["not_supported"].append(field)
            else:
                shown = ", ".join([self.where] + [str(a) for a in args])
                self.root.note("nvml", f"{name}({shown}) failed: {exc or type(exc).__name__}")
            return None


def fill_health(root: Root, nvml: Any, handle: Any, where: str, health: GpuHealth) -> None:
    """Read every NVML health field of one GPU into ``health`` (in place)."""
    r = _Reader(root, nvml, handle, where, health)
    health["nvml"] = True
    mode = r.call("persistence_mode", "nvmlDeviceGetPersistenceMode")
    health["persistence_mode"] = _flag(mode)
    health["ecc"] = _ecc(r)
    health["retired_pages"] = _retired_pages(r)
    rows = r.call("remapped_rows", "nvmlDeviceGetRemappedRows")
    if isinstance(rows, list | tuple) and len(rows) >= 4:
        health["remapped_rows"] = {
            "correctable": _int(rows[0]),
            "uncorrectable": _int(rows[1]),
            "pending": _flag(rows[2]),
            "failure": _flag(rows[3]),
        }
    health["power"] = _power(r)
    health["thermal"] = _thermal(r)
    mask = r.call("throttle_reasons", *_clock_reasons_call(nvml))
    health["throttle_reasons"] = decode_clock_reasons(mask) if isinstance(mask, int) else None
    health["nvlinks"] = _nvlinks(r)
    health["not_supported"].sort()


def _clock_reasons_call(nvml: Any) -> tuple[str]:
    """The newer name when the bindings have it (ThrottleReasons is deprecated)."""
    if hasattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons"):
        return ("nvmlDeviceGetCurrentClocksEventReasons",)
    return ("nvmlDeviceGetCurrentClocksThrottleReasons",)


def _ecc(r: _Reader) -> dict | None:
    mode = r.call("ecc", "nvmlDeviceGetEccMode")
    if mode is None and r.unsupported:
        return None  # no ECC on this GPU: no counters either
    current, pending = mode if isinstance(mode, list | tuple) and len(mode) == 2 else (None, None)
    counts: dict = {}
    for counter, counter_type in (("volatile", 0), ("aggregate", 1)):  # NVML_VOLATILE_ECC, NVML_AGGREGATE_ECC
        counts[counter] = {
            kind: _int(r.call("ecc", "nvmlDeviceGetTotalEccErrors", error_type, counter_type))
            for kind, error_type in (("correctable", 0), ("uncorrectable", 1))  # NVML_MEMORY_ERROR_TYPE_*
        }
    return {"mode_current": _flag(current), "mode_pending": _flag(pending), **counts}


def _retired_pages(r: _Reader) -> dict | None:
    single = r.call("retired_pages", "nvmlDeviceGetRetiredPages", 0)  # MULTIPLE_SINGLE_BIT_ECC_ERRORS
    if single is None and r.unsupported:
        return None  # Ampere and later remap rows instead
    double = r.call("retired_pages", "nvmlDeviceGetRetiredPages", 1)  # DOUBLE_BIT_ECC_ERROR
    pending = r.call("retired_pages", "nvmlDeviceGetRetiredPagesPendingStatus")
    return {
        "single_bit": len(single) if isinstance(single, list | tuple) else None,
        "double_bit": len(double) if isinstance(double, list | tuple) else None,
        "pending": _flag(pending),
    }


def _power(r: _Reader) -> dict | None:
    values = {
        "limit_w": r.call("power", "nvmlDeviceGetPowerManagementLimit"),
        "enforced_limit_w": r.call("power", "nvmlDeviceGetEnforcedPowerLimit"),
        "default_limit_w": r.call("power", "nvmlDeviceGetPowerManagementDefaultLimit"),
    }
    if all(v is None for v in values.values()):
        return None
    return {k: round(v / 1000, 3) if isinstance(v, int) else None for k, v in values.items()}  # mW -> W


def _thermal(r: _Reader) -> dict | None:
    values = {
        k: _int(r.call("thermal", "nvmlDeviceGetTemperatureThreshold", t)) for k, t in THRESHOLDS.items()
    }
    return None if all(v is None for v in values.values()) else values


def _nvlinks(r: _Reader) -> list[NvLink] | None:
    from agent.inventory.nvml import normalize_bus_id  # nvml imports this module

    count = _link_count(r)
    links: list[NvLink] = []
    for link in range(count if count is not None else MAX_LINKS):
        state = _link_state(r, link)
        if state is _NO_LINK:
            break
        if state is _UNSUPPORTED:
            return [] if link else None
        active = _flag(state)
        entry: NvLink = {
            "link": link,
            "active": active,
            "version": None,
            "speed_mb_s": None,
            "remote_pci_address": None,
            "remote_type": None,
        }
        if active:
            version = r.call("nvlinks", "nvmlDeviceGetNvLinkVersion", link)
            entry["version"] = NVLINK_VERSIONS.get(version) if isinstance(version, int) else None
            entry["speed_mb_s"] = _link_speed(r, link)
            remote = r.call("nvlinks", "nvmlDeviceGetNvLinkRemotePciInfo", link)
            entry["remote_pci_address"] = normalize_bus_id(getattr(remote, "busId", None))
            kind = r.call("nvlinks", "nvmlDeviceGetNvLinkRemoteDeviceType", link)
            entry["remote_type"] = REMOTE_TYPES.get(kind) if isinstance(kind, int) else None
        links.append(entry)
    return links


_NO_LINK, _UNSUPPORTED = object(), object()


def _link_state(r: _Reader, link: int) -> Any:
    """The link's state; _NO_LINK past the last link, _UNSUPPORTED where the GPU has no NVLink."""
    try:
        return r.nvml.nvmlDeviceGetNvLinkState(r.handle, link)
    except Exception as exc:  # noqa: BLE001
        code = getattr(exc, "value", None)
        if code == NOT_SUPPORTED and link == 0:
            if "nvlinks" not in r.health["not_supported"]:
                r.health["not_supported"].append("nvlinks")
            return _UNSUPPORTED
        if code in (NOT_SUPPORTED, INVALID_ARGUMENT):
            return _NO_LINK
        r.root.note(
            "nvml", f"nvmlDeviceGetNvLinkState({r.where}, {link}) failed: {exc or type(exc).__name__}"
        )
        return None


def _field_value(r: _Reader, field_id: int, scope: int) -> int | None:
    """One NVML field value (integer types only); None when NVML has none."""
    fn = getattr(r.nvml, "nvmlDeviceGetFieldValues", None)
    if fn is None:
        return None
    try:
        (value,) = fn(r.handle, [(field_id, scope)])
    except Exception:  # noqa: BLE001 - optional: the caller falls back or leaves the field null
        return None
    if getattr(value, "nvmlReturn", 1) != 0:
        return None
    member = {1: "uiVal", 2: "ulVal", 3: "ullVal", 4: "sllVal", 5: "siVal", 6: "usVal"}.get(
        getattr(value, "valueType", None)
    )
    number = getattr(value.value, member, None) if member else None
    return number if isinstance(number, int) else None


def _link_count(r: _Reader) -> int | None:
    count = _field_value(r, FI_NVLINK_LINK_COUNT, 0)
    return count if count is not None and 0 <= count <= 64 else None


def _link_speed(r: _Reader, link: int) -> int | None:
    speed = _field_value(r, FI_NVLINK_GET_SPEED, link)
    if speed is None:
        r.root.note("nvml", f"NVLink speed of {r.where} link {link} not read (field {FI_NVLINK_GET_SPEED})")
    return speed


def _flag(value: Any) -> bool | None:
    """NVML_FEATURE_ENABLED (1) / DISABLED (0) as a bool; None for anything else."""
    return {0: False, 1: True}.get(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
