"""A pyghmi IPMI BMC emulator for the ipmi tests: python ipmi_bmc.py PORT PASSWORD [--stuck] [--sha1-anyway].

Power changes apply at once (or never, with --stuck); the boot flags byte (persistent, UEFI) is
kept as set, so get_bootdev reports what set_bootdev asked for.
"""

from __future__ import annotations

import sys

from pyghmi.ipmi import bmc
from pyghmi.ipmi.private import serversession

_open_session = serversession.ServerSession.create_open_session_response


def _sha1_only(self, request):
    """Refuse RAKP-HMAC-SHA256 (status 0x11) so pyghmi's client falls back to the SHA-1 suite served here."""
    if request[12] != 1:
        self.clientsessionid = request[4:8]
        return bytearray([request[0], 0x11, 0, 0]) + self.clientsessionid
    return _open_session(self, request)


if "--sha1-anyway" not in sys.argv:  # else as virtualbmc: take the SHA-256 proposal, answer with SHA-1
    serversession.ServerSession.create_open_session_response = _sha1_only


class EmulatedBmc(bmc.Bmc):
    """One server's BMC: chassis power and system boot options in memory."""

    def __init__(self, authdata: dict[str, str], port: int, stuck: bool) -> None:
        super().__init__(authdata, port=port, address="127.0.0.1")
        self.power = "off"
        self.stuck = stuck
        self.boot_flags = 0
        self.boot_device = 0

    def get_power_state(self) -> str:
        """The chassis power state."""
        return self.power

    def _set(self, state: str) -> int:
        if not self.stuck:
            self.power = state
        return 0

    def power_on(self) -> int:
        """Power on."""
        return self._set("on")

    def power_off(self) -> int:
        """Power off at once."""
        return self._set("off")

    def power_shutdown(self) -> int:
        """The OS shuts down at once."""
        return self._set("off")

    def power_reset(self) -> int:
        """Reset: stays on."""
        return self._set("on")

    def power_cycle(self) -> int:
        """Cycle: ends on."""
        return self._set("on")

    def set_system_boot_options(self, request, session) -> None:
        """Keep the boot flags and device of parameter 5; acknowledge the rest."""
        data = request["data"]
        if data[0] == 5:
            self.boot_flags = data[1]
            self.boot_device = data[2]
        session.send_ipmi_response()

    def get_system_boot_options(self, request, session) -> None:
        """Report parameter 5 as set."""
        if request["data"][0] != 5:
            return session.send_ipmi_response(code=0x80)
        session.send_ipmi_response(data=[1, 5, self.boot_flags, self.boot_device, 0, 0, 0])


def main() -> None:
    """Serve until killed."""
    port, password = int(sys.argv[1]), sys.argv[2]
    server = EmulatedBmc({"admin": password}, port, "--stuck" in sys.argv[3:])
    print("listening", flush=True)
    server.listen()


if __name__ == "__main__":
    main()
