"""read_cpu and read_numa_nodes on constructed x86 and Arm trees."""

from __future__ import annotations

import os

from agent.inventory.base import Root
from agent.inventory.cpu import parse_cpuinfo, read_cpu, read_numa_nodes
from tests.unit.inventory.treebuild import Tree, fixture_root

CPU = "/sys/devices/system/cpu"
NODE = "/sys/devices/system/node"


def _x86_block(n: int, package: int, core: int) -> str:
    return (
        f"processor\t: {n}\nvendor_id\t: GenuineIntel\ncpu family\t: 6\n"
        f"model name\t: Intel(R) Xeon(R) Platinum 8480+\ncpu MHz\t\t: 2000.000\n"
        f"physical id\t: {package}\ncore id\t\t: {core}\n"
        "flags\t\t: fpu vme de pse tsc msr pae lm avx512f amx_tile\n\n"
    )


def _x86_tree(tmp_path, *, topology: bool = True, lists: bool = True) -> Tree:
    """Two sockets, two cores each, two threads per core: CPUs 0-7 (siblings n and n+4)."""
    tree = Tree(tmp_path)
    layout = {n: (n // 2 % 2, n % 2) for n in range(8)}  # cpu -> (package, core)
    tree.write("/proc/cpuinfo", "".join(_x86_block(n, p, c) for n, (p, c) in layout.items()))
    tree.write(f"{CPU}/online", "0-7")
    for n, (package, core) in layout.items():
        if topology:
            tree.files(f"{CPU}/cpu{n}/topology", physical_package_id=str(package), core_id=str(core))
        if topology and lists:
            tree.files(
                f"{CPU}/cpu{n}/topology",
                thread_siblings_list=f"{n % 4},{n % 4 + 4}",
                core_siblings_list="0-1,4-5" if package == 0 else "2-3,6-7",
            )
    tree.write(f"{CPU}/cpu0/cpufreq/cpuinfo_max_freq", "3800000")
    for node, cpus in ((0, "0-1,4-5"), (1, "2-3,6-7")):
        tree.files(
            f"{NODE}/node{node}",
            cpulist=cpus,
            distance="10 21" if node == 0 else "21 10",
            meminfo=f"Node {node} MemTotal:       263741396 kB\nNode {node} MemFree:        1000 kB",
        )
    return tree


def test_x86_topology_and_numa(tmp_path):
    _x86_tree(tmp_path)
    root = Root(str(tmp_path))
    cpu = read_cpu(root)
    assert cpu["model_name"] == "Intel(R) Xeon(R) Platinum 8480+"
    assert cpu["vendor"] == "GenuineIntel"
    assert cpu["architecture"] == "x86_64"  # derived from the flags: no /proc/sys/kernel/arch here
    assert (cpu["count"], cpu["sockets"], cpu["cores"], cpu["threads_per_core"]) == (8, 2, 4, 2)
    assert cpu["frequency_mhz"] == 3800.0
    assert "avx512f" in cpu["flags"] and "amx_tile" in cpu["flags"]
    assert cpu["numa_nodes"] == [
        {
            "node": 0,
            "cpus": [0, 1, 4, 5],
            "cpulist": "0-1,4-5",
            "memory_bytes": 263741396 * 1024,
            "distances": [10, 21],
        },
        {
            "node": 1,
            "cpus": [2, 3, 6, 7],
            "cpulist": "2-3,6-7",
            "memory_bytes": 263741396 * 1024,
            "distances": [21, 10],
        },
    ]
    assert root.errors == []


def test_topology_from_ids_without_sibling_lists(tmp_path):
    _x86_tree(tmp_path, lists=False)
    root = Root(str(tmp_path))
    cpu = read_cpu(root)
    assert (cpu["count"], cpu["sockets"], cpu["cores"], cpu["threads_per_core"]) == (8, 2, 4, 2)
    assert root.errors == []


def test_garbled_sibling_list_is_recorded_and_ids_used(tmp_path):
    tree = _x86_tree(tmp_path)
    tree.write(f"{CPU}/cpu1/topology/thread_siblings_list", "1,x")
    root = Root(str(tmp_path))
    cpu = read_cpu(root)
    assert (cpu["sockets"], cpu["cores"], cpu["threads_per_core"]) == (2, 4, 2)
    assert [p.path for p in root.errors] == [f"{CPU}/cpu1/topology/thread_siblings_list"]


def test_topology_from_cpuinfo_without_sysfs(tmp_path):
    tree = _x86_tree(tmp_path, topology=False)
    tree.write("/proc/sys/kernel/arch", "x86_64")
    os.unlink(tree.host(f"{CPU}/cpu0/cpufreq/cpuinfo_max_freq"))
    cpu = read_cpu(Root(str(tmp_path)))
    assert (cpu["sockets"], cpu["cores"], cpu["threads_per_core"]) == (2, 4, 2)
    assert cpu["frequency_mhz"] == 2000.0  # "cpu MHz" once cpufreq is gone


def test_offline_cpus_are_not_counted(tmp_path):
    tree = _x86_tree(tmp_path)
    tree.write(f"{CPU}/online", "0-3")
    cpu = read_cpu(Root(str(tmp_path)))
    assert (cpu["count"], cpu["sockets"], cpu["cores"], cpu["threads_per_core"]) == (4, 2, 4, 1)


def test_garbled_numa_files_are_recorded(tmp_path):
    tree = _x86_tree(tmp_path)
    tree.write(f"{NODE}/node1/cpulist", "2-x")
    tree.write(f"{NODE}/node1/meminfo", "nothing useful")
    tree.write(f"{NODE}/node1/distance", "21 ten")
    root = Root(str(tmp_path))
    nodes = read_numa_nodes(root)
    assert nodes[1] == {"node": 1, "cpus": [], "cpulist": "2-x", "memory_bytes": None, "distances": None}
    assert sorted(p.path for p in root.errors) == [
        f"{NODE}/node1/cpulist",
        f"{NODE}/node1/distance",
        f"{NODE}/node1/meminfo",
    ]


ARM_CPUINFO = "".join(
    f"processor\t: {n}\nBogoMIPS\t: 2000.00\n"
    "Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics sve sve2\n"
    "CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\n"
    "CPU part\t: 0xd4f\nCPU revision\t: 0\n\n"
    for n in range(4)
)


def test_arm_grace(tmp_path):
    tree = Tree(tmp_path)
    tree.write("/proc/cpuinfo", ARM_CPUINFO)
    tree.write(f"{CPU}/online", "0-3")
    for n in range(4):
        tree.files(f"{CPU}/cpu{n}/topology", physical_package_id="0", core_id=str(n))
    root = Root(str(tmp_path))
    cpu = read_cpu(root)
    assert cpu["architecture"] == "aarch64"
    assert cpu["vendor"] == "ARM"
    assert cpu["model_name"] == "Neoverse-V2"
    assert (cpu["count"], cpu["sockets"], cpu["cores"], cpu["threads_per_core"]) == (4, 1, 4, 1)
    assert cpu["frequency_mhz"] is None
    assert cpu["flags"][:2] == ["fp", "asimd"] and "sve2" in cpu["flags"]
    assert cpu["numa_nodes"] == []
    assert root.errors == []


def test_missing_cpuinfo_is_recorded(tmp_path):
    Tree(tmp_path).write(f"{CPU}/online", "0-1")
    root = Root(str(tmp_path))
    cpu = read_cpu(root)
    assert cpu["count"] == 2 and cpu["model_name"] is None and cpu["flags"] == []
    assert [p.path for p in root.errors] == ["/proc/cpuinfo"]


def test_parse_cpuinfo_blocks():
    blocks = parse_cpuinfo("processor : 0\nflags : a b\n\nprocessor : 1\nflags : a b c\n")
    assert blocks == [{"processor": "0", "flags": "a b"}, {"processor": "1", "flags": "a b c"}]


def test_hgx_h100_fixture():
    root = fixture_root("hgx-h100")
    cpu = read_cpu(root)
    assert (cpu["model_name"], cpu["vendor"], cpu["architecture"]) == (
        "Intel(R) Xeon(R) Platinum 8480+",
        "GenuineIntel",
        "x86_64",
    )
    assert (cpu["count"], cpu["sockets"], cpu["cores"], cpu["threads_per_core"]) == (224, 2, 112, 2)
    assert cpu["frequency_mhz"] == 3800.0
    nodes = cpu["numa_nodes"]
    assert [(n["node"], n["cpulist"], n["distances"]) for n in nodes] == [
        (0, "0-55,112-167", [10, 21]),
        (1, "56-111,168-223", [21, 10]),
    ]
    assert nodes[0]["cpus"] == [*range(0, 56), *range(112, 168)]
    assert [n["memory_bytes"] for n in nodes] == [1056189812 * 1024, 1056643152 * 1024]
    assert root.errors == []


def test_mi300x_fixture():
    root = fixture_root("mi300x")
    cpu = read_cpu(root)
    assert cpu["model_name"] == "AMD EPYC 9654 96-Core Processor" and cpu["vendor"] == "AuthenticAMD"
    assert (cpu["count"], cpu["sockets"], cpu["cores"], cpu["threads_per_core"]) == (384, 2, 192, 2)
    assert cpu["frequency_mhz"] == 3700.0
    assert [n["distances"] for n in cpu["numa_nodes"]] == [[10, 32], [32, 10]]


def test_vm_fixture_without_cpufreq():
    root = fixture_root("vm")
    cpu = read_cpu(root)
    assert cpu["model_name"] == "Intel Xeon Processor (Icelake)"
    assert (cpu["count"], cpu["sockets"], cpu["cores"], cpu["threads_per_core"]) == (4, 1, 4, 1)
    assert cpu["frequency_mhz"] == 2593.906
    assert [n["cpus"] for n in cpu["numa_nodes"]] == [[0, 1, 2, 3]]


def test_host_kvm_capture():
    root = fixture_root("host-kvm")
    cpu = read_cpu(root)
    assert (cpu["model_name"], cpu["vendor"], cpu["architecture"]) == ("AMD EPYC", "AuthenticAMD", "x86_64")
    assert (cpu["count"], cpu["sockets"], cpu["cores"], cpu["threads_per_core"]) == (2, 1, 2, 1)
    assert cpu["frequency_mhz"] == 1996.25
    assert [(n["node"], n["cpus"], n["distances"]) for n in cpu["numa_nodes"]] == [(0, [0, 1], [10])]
    assert root.errors == []


def test_garbled_cpu_mhz_is_recorded(tmp_path):
    tree = _x86_tree(tmp_path)
    os.unlink(tree.host(f"{CPU}/cpu0/cpufreq/cpuinfo_max_freq"))
    with open(tree.host("/proc/cpuinfo")) as f:
        tree.write("/proc/cpuinfo", f.read().replace("2000.000", "nan"))
    root = Root(str(tmp_path))
    assert read_cpu(root)["frequency_mhz"] is None
    assert [p.path for p in root.errors] == ["/proc/cpuinfo"]


def test_missing_node_cpulist_is_recorded(tmp_path):
    tree = _x86_tree(tmp_path)
    os.unlink(tree.host(f"{NODE}/node0/cpulist"))
    root = Root(str(tmp_path))
    assert read_numa_nodes(root)[0]["cpus"] == []
    assert [(p.path, p.error) for p in root.errors] == [(f"{NODE}/node0/cpulist", "missing")]
