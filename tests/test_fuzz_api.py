"""Fuzzing the running service from its own OpenAPI schema with schemathesis: whatever a
client sends, the app answers without a 500 and with a reply that matches the schema.

The schemathesis command line is used (its pytest plugin does not load under pytest 9).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from live import cptqa_serve


def test_fuzzed_requests_get_no_500_and_schema_conforming_replies(
    seed_index: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    workdir = tmp_path_factory.mktemp("fuzz-serve")
    st = str(Path(sys.executable).with_name("st"))
    with cptqa_serve(seed_index, workdir, CPTQA_RATE_LIMIT_PER_MINUTE="0") as server:
        run = subprocess.run(
            [
                st,
                "run",
                server.base + "/openapi.json",
                "--checks",
                "not_a_server_error,response_schema_conformance",
                "--max-examples",
                "25",
                "--seed",
                "20261123",
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    assert "generated" in report and "passed" in report, report
