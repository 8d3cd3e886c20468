"""`python -m adapters.national_portal`: run the simulated national portal until Ctrl-C."""

from __future__ import annotations

import argparse

from adapters.national_portal.server import ACCOUNTS, NationalPortal
from adapters.serving import wait_for_interrupt


def main(argv: list[str] | None = None) -> None:
    """Run the simulated National Public Service Portal in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser("python -m adapters.national_portal", description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9004)
    parser.add_argument(
        "--account",
        action="append",
        metavar="USER:PASSWORD",
        help=f"an accepted login (repeatable; default {next(iter(ACCOUNTS))}:...)",
    )
    parser.add_argument("--session-ttl", type=float, default=1800.0, help="seconds")
    parser.add_argument("--per-second", type=float, help="answer 429 above this request rate")
    args = parser.parse_args(argv)
    accounts = dict(a.split(":", 1) for a in args.account) if args.account else ACCOUNTS
    portal = NationalPortal(accounts, session_ttl=args.session_ttl, host=args.host, port=args.port)
    with portal:
        if args.per_second:
            portal.rate_limit(per_second=args.per_second)
        print(f"national portal on {portal.url} (received: {portal.url}/_portal/received)")
        wait_for_interrupt()
        print(f"stopped: {portal.stats()}")


if __name__ == "__main__":
    main()
