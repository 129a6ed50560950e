"""The lab's servers on its host address: HTTP boot files and images, and TCP forwards (RabbitMQ).

``python -m agent.lab.serve --bind 10.99.0.1 --http-port 8080 --root DIR --forward 5672=127.0.0.1:5672``
RabbitMQ listens on 127.0.0.1 only, so the VMs reach it through the forward. Each HTTP request is
logged with its wall-clock time (seconds since the epoch): the benchmark reads the boot phases from it.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import socket
import sys
import threading
import time


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        sys.stderr.write(f"{time.time():.3f} {self.address_string()} {format % args}\n")
        sys.stderr.flush()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _forward(listener: socket.socket, target: tuple[str, int]) -> None:
    while True:
        client, _ = listener.accept()
        try:
            upstream = socket.create_connection(target, timeout=10)
            upstream.settimeout(None)
        except OSError as exc:
            sys.stderr.write(f"{time.time():.3f} forward to {target} failed: {exc}\n")
            client.close()
            continue
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pipe, args=(a, b), daemon=True).start()


def forward(bind: str, port: int, target: tuple[str, int]) -> threading.Thread:
    """Accept on ``bind:port`` and relay each connection to ``target``, in a daemon thread."""
    listener = socket.create_server((bind, port), reuse_port=False)
    thread = threading.Thread(target=_forward, args=(listener, target), daemon=True)
    thread.start()
    return thread


def main(argv: list[str] | None = None) -> int:
    """Serve until killed."""
    p = argparse.ArgumentParser(prog="python -m agent.lab.serve")
    p.add_argument("--bind", required=True)
    p.add_argument("--http-port", type=int, required=True)
    p.add_argument("--root", required=True, help="directory served over HTTP")
    p.add_argument("--forward", action="append", default=[], help="PORT=HOST:PORT")
    args = p.parse_args(argv)
    for spec in args.forward:
        port, _, target = spec.partition("=")
        host, _, tport = target.rpartition(":")
        forward(args.bind, int(port), (host, int(tport)))
    handler = functools.partial(_Handler, directory=args.root)
    server = http.server.ThreadingHTTPServer((args.bind, args.http_port), handler)
    sys.stderr.write(f"{time.time():.3f} serving {args.root} on http://{args.bind}:{args.http_port}\n")
    sys.stderr.flush()
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
