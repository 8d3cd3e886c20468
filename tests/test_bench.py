"""`hub bench` works: the quickest embedded end-to-end run writes sound results.

This checks the tool, not the hub's speed: figures must be there and positive,
with no HTTP errors; how large they are is for docs/PERFORMANCE.md.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hub.cli import app


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("generator", ["python", "wrk"])
def test_bench_embedded_e2e_writes_results(tmp_path: Path, generator: str) -> None:
    if generator == "wrk" and shutil.which("wrk") is None:
        pytest.skip("wrk is not installed")
    out = tmp_path / "bench.json"
    args = ["bench", "--backend", "embedded", "--only", "e2e", "--duration", "2"]
    args += ["--clients", "2", "--sizes", "1", "--generator", generator, "--out", str(out)]

    result = CliRunner().invoke(app, args)

    assert result.exit_code == 0, result.output
    assert "targets:" in result.output
    document = json.loads(out.read_text())
    assert {"tool", "runs", "machine", "results", "checks"} <= document.keys()
    assert document["machine"]["nproc"] >= 1
    embedded = document["results"]["embedded"]
    assert "documents" not in embedded  # a section of its own (--only documents)
    sweep = embedded["e2e"]["sizes"]["1KiB"]
    (step,) = sweep["steps"]
    assert step["generator"].startswith(generator)
    assert step["http_errors"] == {}
    assert step["msgs_per_s"] > 0
    assert step["accepted"] == step["delivered"] > 0
    assert step["drained"] is True
    assert set(step["latency_ms"]) == {"p50", "p95", "p99", "max"}
    assert step["latency_ms"]["p50"] > 0
    assert step["cpu_us_per_msg"]["hub"] > 0
    assert sweep["saturation"]["clients"] == 2
    targets = {(c["backend"], c["target"]): c["result"] for c in document["checks"]}
    assert targets[("embedded", "e2e 1 KiB >= 1,000 msgs/s")] in ("PASS", "MISS")
    assert targets[("embedded", "p99 < 50 ms at 50 % of saturation")] == "not run"
    assert targets[("embedded", "peak RSS 200 MB within 64 MB of 10 MB")] == "not run"
