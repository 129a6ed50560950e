"""The deploy ramdisk installs only requirements.txt's '# node agent' block: the agent must import without
the conductor's and the API's libraries (the ramdisk build's own import check, here in seconds)."""

import subprocess
import sys

# Top-level modules of requirements the ramdisk does not install (and none of its packages pull in).
NOT_IN_RAMDISK = (
    "sqlalchemy", "alembic", "automaton", "sushy", "pyghmi", "cheroot", "jsonpatch", "jsonpointer",
    "keystonemiddleware", "keystoneauth1", "openstack", "libpass", "passlib",
)  # fmt: skip

PROBE = """
import sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is not installed in the deploy ramdisk")
        return None
sys.meta_path.insert(0, Refuse())
import agent.cmd.agent, agent.node.daemon, agent.node.steps, agent.node.lldp
from agent.common import config
config.register_opts()  # every option module, as kiln-agent registers them
print("imported")
"""


def test_the_agent_imports_without_conductor_libraries() -> None:
    code = f"BLOCKED = {NOT_IN_RAMDISK!r}\n" + PROBE
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "imported" in proc.stdout, proc.stderr[-3000:]
