"""``composer sim``: run the simulator in the foreground until SIGINT or SIGTERM.

What lives here: :func:`main` (argument parsing, the one ready line on stdout, clean
shutdown on a signal, exit codes: 0 after a signal, 2 for a bad option or fault spec, 3 when
the address cannot be bound). What does not: the server itself (``server.py``); the
project's ``composer`` command calls :func:`main` for its ``sim`` subcommand.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from composer.sim.faults import GRAMMAR
from composer.sim.server import PROTOCOL_NAMES, Simulator

DEFAULT_PORT = 8787


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="composer sim",
        description=(
            "Serve the Gemini, Vertex, OpenAI Videos and relay video-generation protocols on loopback, "
            "backed by composer's local generator (real MP4s), with fault injection."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 picks a free one)"
    )
    parser.add_argument(
        "--latency",
        type=float,
        default=0.0,
        metavar="S",
        help="an operation is done no sooner than S seconds",
    )
    parser.add_argument("--faults", default="", metavar="SPEC", help=f"fault rules: {GRAMMAR}")
    parser.add_argument("--seed", type=int, default=0, help="seed of fault draws, ids and generation seeds")
    parser.add_argument(
        "--drift", type=float, default=1.0, metavar="X", help="drift strength of generated clips"
    )
    parser.add_argument(
        "--storage", type=Path, default=None, metavar="DIR", help="keep videos here (default: temporary)"
    )
    parser.add_argument(
        "--key", default=None, help="the only API key / token accepted (default: any non-empty one)"
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="log every request to stderr")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the simulator until SIGINT/SIGTERM; prints one ready line with the base URL."""
    args = _parser().parse_args(argv)
    if args.latency < 0:
        print("composer sim: --latency must be 0 or more seconds", file=sys.stderr)
        return 2
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, format="composer sim: %(message)s", stream=sys.stderr)
    try:
        sim = Simulator(
            host=args.host,
            port=args.port,
            latency_s=args.latency,
            faults=args.faults,
            seed=args.seed,
            drift=args.drift,
            storage=args.storage,
            api_key=args.key,
        )
    except ValueError as error:
        print(f"composer sim: {error}", file=sys.stderr)
        return 2
    try:
        sim.start()
    except OSError as error:
        print(
            f"composer sim: cannot listen on {args.host}:{args.port} ({error.strerror or error}); "
            "choose another --port (0 picks a free one)",
            file=sys.stderr,
        )
        return 3
    stop = threading.Event()
    previous: dict[int, object] = {}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, on_signal)
    try:
        print(f"composer sim: serving {', '.join(PROTOCOL_NAMES)} at {sim.base_url}", flush=True)
        # A timed wait, so the main thread wakes to run the signal handler promptly.
        while not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
        for number, handler in previous.items():
            signal.signal(number, handler)  # type: ignore[arg-type]
    return 0
