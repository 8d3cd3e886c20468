"""`python -m adapters.government_office`: run the simulated Government Office until Ctrl-C."""

from __future__ import annotations

import argparse

from adapters.government_office.server import GovernmentOffice
from adapters.serving import wait_for_interrupt


def main(argv: list[str] | None = None) -> None:
    """Run the simulated Government Office task system in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser(
        "python -m adapters.government_office", description=main.__doc__
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9003)
    parser.add_argument(
        "--key", action="append", required=True, help="an accepted X-Api-Key (repeatable)"
    )
    parser.add_argument("--directives", type=int, default=0, help="create N sample directives")
    args = parser.parse_args(argv)
    with GovernmentOffice(args.key, host=args.host, port=args.port) as office:
        for _ in range(args.directives):
            office.create()
        print(f"government office on {office.url} (stats: {office.url}/_gov/stats); Ctrl-C stops")
        wait_for_interrupt()
        print(f"stopped: {office.stats()}")


if __name__ == "__main__":
    main()
