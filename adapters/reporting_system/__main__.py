"""`python -m adapters.reporting_system`: run the simulated reporting system until Ctrl-C."""

from __future__ import annotations

import argparse

from adapters.reporting_system.server import ReportingSystem
from adapters.serving import wait_for_interrupt


def main(argv: list[str] | None = None) -> None:
    """Run the simulated government reporting system in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser(
        "python -m adapters.reporting_system", description=main.__doc__
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9005)
    parser.add_argument(
        "--key", action="append", help="an accepted X-Api-Key (repeatable; none: any caller)"
    )
    args = parser.parse_args(argv)
    with ReportingSystem(args.key, host=args.host, port=args.port) as system:
        print(f"reporting system on {system.url} (reports: {system.url}/_reports/received)")
        wait_for_interrupt()
        print(f"stopped: {system.stats()}")


if __name__ == "__main__":
    main()
