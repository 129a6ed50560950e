"""GPU health through NVML, with a stand-in for pynvml (no NVIDIA GPU or driver on this machine)."""

from __future__ import annotations

import copy

from agent.inventory import gpu_health, nvml
from agent.inventory.base import Root


class NVMLError(Exception):
    """pynvml's error: ``value`` is the NVML return code, str() its text."""

    TEXT = {2: "Invalid Argument", 3: "Not Supported", 15: "GPU is lost"}

    def __init__(self, value: int) -> None:
        super().__init__(self.TEXT.get(value, "Unknown Error"))
        self.value = value


class _Value:
    def __init__(self, **kw) -> None:
        self.__dict__.update(kw)


class FakeNvml:
    """An HGX H100 as NVML answers for it: ECC on, rows remapped, 18 NVLinks to NVSwitches.

    ``fail`` maps a function name to an NVML return code it raises instead.
    """

    def __init__(self, fail: dict[str, int] | None = None, links: int = 18) -> None:
        self.fail = fail or {}
        self.links = links

    def __getattribute__(self, name: str):
        fail = object.__getattribute__(self, "fail")
        if name in fail:

            def broken(*args):
                raise NVMLError(fail[name])

            return broken
        return object.__getattribute__(self, name)

    def nvmlInit(self):
        pass

    def nvmlShutdown(self):
        pass

    def nvmlSystemGetDriverVersion(self):
        return "550.90.07"

    def nvmlSystemGetCudaDriverVersion(self):
        return 12040

    def nvmlDeviceGetCount(self):
        return 1

    def nvmlDeviceGetHandleByIndex(self, index):
        return f"handle{index}"

    def nvmlDeviceGetPciInfo(self, handle):
        return _Value(busId=b"00000000:18:00.0")

    def nvmlDeviceGetUUID(self, handle):
        return "GPU-3f0c2a1e-7b4d-4c6e-9a8b-1d2e3f405000"

    def nvmlDeviceGetSerial(self, handle):
        return "1654024075039"

    def nvmlDeviceGetMemoryInfo(self, handle):
        return _Value(total=85520809984)

    def nvmlDeviceGetMigMode(self, handle):
        return (0, 0)

    def nvmlDeviceGetPersistenceMode(self, handle):
        return 1

    def nvmlDeviceGetEccMode(self, handle):
        return [1, 0]

    def nvmlDeviceGetTotalEccErrors(self, handle, error_type, counter_type):
        return {(0, 0): 4, (1, 0): 0, (0, 1): 117, (1, 1): 2}[(error_type, counter_type)]

    def nvmlDeviceGetRetiredPages(self, handle, cause):
        raise NVMLError(3)  # Hopper remaps rows instead

    def nvmlDeviceGetRetiredPagesPendingStatus(self, handle):
        raise NVMLError(3)

    def nvmlDeviceGetRemappedRows(self, handle):
        return (3, 1, 1, 0)

    def nvmlDeviceGetPowerManagementLimit(self, handle):
        return 700000

    def nvmlDeviceGetEnforcedPowerLimit(self, handle):
        return 650000

    def nvmlDeviceGetPowerManagementDefaultLimit(self, handle):
        return 700000

    def nvmlDeviceGetTemperatureThreshold(self, handle, which):
        return {0: 92, 1: 89, 2: 95, 3: 87}[which]

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle):
        return 0x1 | 0x4 | 0x400

    def nvmlDeviceGetFieldValues(self, handle, fields):
        ((field, scope),) = fields
        number = {91: self.links, 164: 26562}[field]
        return [_Value(nvmlReturn=0, valueType=1, value=_Value(uiVal=number))]

    def nvmlDeviceGetNvLinkState(self, handle, link):
        if link >= self.links:
            raise NVMLError(2)
        return 0 if link == 17 else 1

    def nvmlDeviceGetNvLinkVersion(self, handle, link):
        return 6

    def nvmlDeviceGetNvLinkRemotePciInfo(self, handle, link):
        return _Value(busId=f"00000000:{0xC9 + link % 4:02X}:00.0".encode())

    def nvmlDeviceGetNvLinkRemoteDeviceType(self, handle, link):
        return 2


def _gpu() -> dict:
    return {
        "pci_address": "0000:18:00.0",
        "vendor_id": "0x10de",
        "uuid": None,
        "serial": None,
        "memory_bytes": None,
        "mig_mode": None,
        "health": gpu_health.empty_health(),
    }


def _enrich(fake: FakeNvml) -> tuple[dict, Root]:
    gpu, root = _gpu(), Root("/")
    nvml.enrich([gpu], root, nvml=fake)
    return gpu["health"], root


def test_every_health_field_is_read():
    health, root = _enrich(FakeNvml())

    assert root.errors == []
    assert health["nvml"] is True
    assert health["persistence_mode"] is True
    assert health["ecc"] == {
        "mode_current": True,
        "mode_pending": False,
        "volatile": {"correctable": 4, "uncorrectable": 0},
        "aggregate": {"correctable": 117, "uncorrectable": 2},
    }
    assert health["remapped_rows"] == {
        "correctable": 3,
        "uncorrectable": 1,
        "pending": True,
        "failure": False,
    }
    assert health["power"] == {"limit_w": 700.0, "enforced_limit_w": 650.0, "default_limit_w": 700.0}
    assert health["thermal"] == {"shutdown_c": 92, "slowdown_c": 89, "memory_max_c": 95, "gpu_max_c": 87}
    assert health["throttle_reasons"] == ["gpu_idle", "sw_power_cap", "0x400"]
    assert len(health["nvlinks"]) == 18
    assert health["nvlinks"][0] == {
        "link": 0,
        "active": True,
        "version": "4.0",
        "speed_mb_s": 26562,
        "remote_pci_address": "0000:c9:00.0",
        "remote_type": "switch",
    }
    assert health["nvlinks"][17] == {
        "link": 17,
        "active": False,
        "version": None,
        "speed_mb_s": None,
        "remote_pci_address": None,
        "remote_type": None,
    }
    # The AMD and kernel-log fields are not NVML's to fill.
    assert health["ras"] is None and health["xgmi_links"] is None and health["xid_errors"] is None


def test_not_supported_is_null_and_named_but_no_error():
    health, root = _enrich(FakeNvml(fail={"nvmlDeviceGetNvLinkState": 3, "nvmlDeviceGetEccMode": 3}))

    assert root.errors == []
    assert health["retired_pages"] is None and health["ecc"] is None and health["nvlinks"] is None
    assert health["not_supported"] == ["ecc", "nvlinks", "retired_pages"]
    assert health["remapped_rows"]["correctable"] == 3  # the rest is still read


def test_a_failing_call_is_null_and_an_error_naming_gpu_and_call():
    health, root = _enrich(
        FakeNvml(
            fail={
                "nvmlDeviceGetRemappedRows": 15,
                "nvmlDeviceGetTotalEccErrors": 15,
                "nvmlDeviceGetTemperatureThreshold": 15,
            }
        )
    )

    assert health["remapped_rows"] is None
    assert health["ecc"] == {
        "mode_current": True,
        "mode_pending": False,
        "volatile": {"correctable": None, "uncorrectable": None},
        "aggregate": {"correctable": None, "uncorrectable": None},
    }
    assert health["thermal"] is None
    errors = [e.error for e in root.errors if e.path == "nvml"]
    assert "nvmlDeviceGetRemappedRows(0000:18:00.0) failed: GPU is lost" in errors
    assert "nvmlDeviceGetTotalEccErrors(0000:18:00.0, 0, 0) failed: GPU is lost" in errors
    assert "nvmlDeviceGetTemperatureThreshold(0000:18:00.0, 0) failed: GPU is lost" in errors
    assert len(errors) == 4 + 1 + 4  # four ECC counters, the remapped rows, four thresholds
    assert health["not_supported"] == ["retired_pages"]


def test_links_counted_by_state_when_the_link_count_field_is_missing():
    fake = FakeNvml(links=4)
    fake.fail = {"nvmlDeviceGetFieldValues": 2}
    health, root = _enrich(fake)

    assert [link["link"] for link in health["nvlinks"]] == [0, 1, 2, 3]
    assert all(link["speed_mb_s"] is None for link in health["nvlinks"])
    assert [e.error for e in root.errors] == [
        f"NVLink speed of 0000:18:00.0 link {n} not read (field 164)" for n in range(4)
    ]


def test_older_bindings_use_throttle_reasons():
    class Older(FakeNvml):
        def __getattribute__(self, name):
            if name == "nvmlDeviceGetCurrentClocksEventReasons":
                raise AttributeError(name)
            return super().__getattribute__(name)

        def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle):
            return 0x48

    health, root = _enrich(Older())
    assert health["throttle_reasons"] == ["hw_slowdown", "hw_thermal_slowdown"]
    assert root.errors == []


def test_an_odd_answer_costs_the_health_not_the_inventory():
    class Odd(FakeNvml):
        def nvmlDeviceGetFieldValues(self, handle, fields):
            return object()  # not a sequence of field values

    health, root = _enrich(Odd())
    assert health["persistence_mode"] is True  # read before the odd answer
    assert root.errors == [] or all(e.path == "nvml" for e in root.errors)


def test_a_gpu_without_health_key_is_left_alone():
    gpu = _gpu()
    del gpu["health"]
    before = copy.deepcopy(gpu)
    nvml.enrich([gpu], Root("/"), nvml=FakeNvml())
    assert gpu["uuid"] == "GPU-3f0c2a1e-7b4d-4c6e-9a8b-1d2e3f405000"
    assert set(gpu) == set(before)


def test_decode_clock_reasons():
    assert gpu_health.decode_clock_reasons(0) == []
    assert gpu_health.decode_clock_reasons(0x1FF) == list(gpu_health.CLOCK_EVENT_REASONS.values())
    assert gpu_health.decode_clock_reasons(0x800) == ["0x800"]
