"""A bounded fuzz run of the API from its own OpenAPI description: schemathesis
(its command line, `st run`) generates requests for every operation and checks
that no answer is a 5xx. The hub runs on the embedded default on a real socket;
`FUZZ_EXAMPLES` (default 25) bounds the cases per operation, a fixed seed makes
a failure repeatable."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.settings import Settings
from tests.support import KEYS, OPS_KEY, SENDER, ThreadedHub, write_config

EXAMPLES = os.environ.get("FUZZ_EXAMPLES", "25")
SEED = "20261124"
ST = shutil.which("st", path=str(Path(sys.executable).parent))


@pytest.fixture(scope="module")
def fuzzed_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedHub]:
    tmp = tmp_path_factory.mktemp("fuzz")
    config = write_config(tmp, "http://127.0.0.1:9")
    settings = Settings(config=config, database_url=f"sqlite:///{tmp / 'hub.db'}", blob_dir=tmp)
    with ThreadedHub(settings) as hub:
        yield hub


@pytest.mark.parametrize("key", [KEYS[SENDER], OPS_KEY], ids=["as-a-system", "as-an-operator"])
def test_no_generated_request_makes_a_server_error(fuzzed_hub: ThreadedHub, key: str) -> None:
    if ST is None:
        pytest.skip("schemathesis is not installed (pip install -e '.[test]')")
    run = subprocess.run(
        [
            ST,
            "run",
            f"{fuzzed_hub.url}/openapi.json",
            "-H",
            f"Authorization: Bearer {key}",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            EXAMPLES,
            "--seed",
            SEED,
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "Server error" not in run.stdout
