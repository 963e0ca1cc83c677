"""The LINE stand-in (tidtam.demo.line_standin) in a process of its own, for the benchmarks.

Run in-process (``run_in_thread``), the stand-in and the client under test share one GIL, so each
would slow the other down; the real LINE is another machine. Prints ``PORT <n>`` once listening.
"""

from __future__ import annotations

import argparse
import socket

import uvicorn

from tidtam.demo.line_standin import FakeLineState, create_app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--token", required=True)
    parser.add_argument("--latency-ms", type=float, default=0)
    args = parser.parse_args()
    state = FakeLineState(token=args.token)
    state.set_mode(latency_ms=args.latency_ms)
    # As run_in_thread does: a TCP socket, so asyncio sets TCP_NODELAY on accepted connections.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(create_app(state), log_level="warning", lifespan="off",
                            access_log=False, backlog=4096)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
