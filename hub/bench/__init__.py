"""`hub bench`: how fast the hub is on this machine, next to the broker's own ceiling.

Sections (each can be run alone with `--only`):

- `raw`: pika straight to a RabbitMQ quorum queue, windowed confirms (the ceiling);
- `e2e`: HTTP ingest to delivery through `hub serve` child processes, stepping the
  number of concurrent clients up to the saturation point, for 1, 10 and 100 KiB;
- `load`: open-loop load at 25, 50 and 75 % of the saturation rate, latency p50/p99;
- `scale`: one API process with 1, then 2, worker processes (services backend).

Backends: `services` (PostgreSQL + RabbitMQ) and `embedded` (SQLite + in-process).
Results are printed as a table and written as JSON; see docs/PERFORMANCE.md.
"""

from hub.bench.runner import SECTIONS, BenchOptions, run_bench, show_results

__all__ = ["SECTIONS", "BenchOptions", "run_bench", "show_results"]
