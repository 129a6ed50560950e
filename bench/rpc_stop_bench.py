"""How long stopping an RPC server takes: Kiln's servers against oslo.messaging's default pool.

    python -m bench.rpc_stop_bench [--cycles N] [--workers N]

Each cycle starts a server on the in-memory (fake://) transport, makes one call to it (so the
work pool has a worker), then stops and waits for it. Prints the median stop time of each
kind and the ratio, in one process. The unit suite stops a server in most tests that use RPC.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

import oslo_messaging as messaging
from oslo_config import cfg

from agent.common import rpc


class Ping:
    """The one endpoint: answers ``ping``."""

    def ping(self, context: dict) -> str:
        """Answer."""
        return "pong"


def _server(transport: messaging.Transport, topic: str, kiln: bool) -> messaging.rpc.server.RPCServer:
    if kiln:
        return rpc.get_server(transport, topic, "bench", [Ping()])
    target = messaging.Target(topic=topic, server="bench")
    return messaging.get_rpc_server(
        transport, target, [Ping()], access_policy=messaging.DefaultRPCAccessPolicy
    )


def stop_times(kiln: bool, cycles: int, workers: int) -> list[float]:
    """Seconds each of ``cycles`` stop+wait took, for Kiln's server or oslo's default one."""
    transport = rpc.get_transport(cfg.CONF, url="fake://")
    times = []
    try:
        for _ in range(cycles):
            topic = f"bench-{uuid.uuid4().hex[:8]}"
            server = _server(transport, topic, kiln)
            server.start(override_pool_size=workers)
            client = rpc.get_client(transport, topic, timeout=10)
            for _ in range(workers):
                assert client.call({}, "ping") == "pong"
            began = time.perf_counter()
            server.stop()
            server.wait()
            times.append(time.perf_counter() - began)
    finally:
        transport.cleanup()
    return times


def main(argv: list[str] | None = None) -> int:
    """Print the median stop time of both kinds of server and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=10, help="servers started and stopped per kind")
    parser.add_argument("--workers", type=int, default=4, help="work pool size of each server")
    args = parser.parse_args(argv)
    cfg.CONF([], project="kiln")
    baseline = statistics.median(stop_times(False, args.cycles, args.workers))
    kiln = statistics.median(stop_times(True, args.cycles, args.workers))
    print(f"RPC server stop+wait, median of {args.cycles} (fake:// transport, {args.workers} workers):")
    print(f"  oslo.messaging default pool (futurist): {baseline * 1000:8.1f} ms")
    print(f"  Kiln (rpc.get_server):                  {kiln * 1000:8.1f} ms")
    print(f"  ratio Kiln / default: {kiln / baseline:.3f} ({baseline / max(kiln, 1e-9):.0f}x faster)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
