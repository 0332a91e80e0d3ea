"""The `cptqa` command line, run in-process with typer's runner and as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CORPUS
from typer.testing import CliRunner

from api.cli import app

runner = CliRunner()


def test_query_without_an_index_says_what_to_run(tmp_path: Path) -> None:
    result = runner.invoke(app, ["query", "fluoro code", "--index-dir", str(tmp_path / "none")])
    assert result.exit_code == 3
    assert "cptqa ingest" in result.output


def test_ingest_of_an_empty_folder_fails_clearly(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = runner.invoke(
        app, ["ingest", str(tmp_path / "empty"), "--index-dir", str(tmp_path / "index")]
    )
    assert result.exit_code == 2
    assert "nothing readable in" in result.output and "--remove" in result.output
    assert not (tmp_path / "index" / "CURRENT").exists()


def test_ingest_of_a_missing_path_is_an_error_even_with_an_index(index_copy: Path) -> None:
    current = (index_copy / "CURRENT").read_text()
    result = runner.invoke(app, ["ingest", "no-such-folder", "--index-dir", str(index_copy)])
    assert result.exit_code == 2
    assert "no-such-folder does not exist" in result.output
    assert "nothing changed" not in result.output
    assert (index_copy / "CURRENT").read_text() == current


def test_ingest_of_a_folder_of_unreadable_files_is_an_error_said_once(
    index_copy: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "blobs"
    folder.mkdir()
    (folder / "blob.txt").write_bytes(b"\x00\x01\x02binary" * 50)
    current = (index_copy / "CURRENT").read_text()
    result = runner.invoke(app, ["ingest", str(folder), "--index-dir", str(index_copy)])
    assert result.exit_code == 2
    assert "nothing readable in" in result.output
    assert result.output.count("blob.txt") == 1  # named once, with its reason
    assert "binary file" in result.output
    assert (index_copy / "CURRENT").read_text() == current


def test_codes_prints_the_mentions_as_json() -> None:
    result = runner.invoke(app, ["codes", "Bill 64405-50 with 77002, not TX 77003."])
    assert result.exit_code == 0
    mentions = json.loads(result.output)
    assert [m["code"] for m in mentions] == ["64405", "77002"]
    assert mentions[0]["modifiers"] == ["50"]


def test_codes_reads_standard_input() -> None:
    result = runner.invoke(app, ["codes", "-"], input="CPT code 62270 and J3301")
    assert [m["code"] for m in json.loads(result.output)] == ["62270", "J3301"]


def test_ingest_then_query_as_a_real_process(tmp_path: Path) -> None:
    """The README path: `cptqa ingest` then `cptqa query --json` on the default corpus."""
    env = {**os.environ, "CPTQA_INDEX_DIR": str(tmp_path / "store")}
    # The installed console script, as a user runs it (it does not put the cwd on sys.path).
    cptqa = [str(Path(sys.executable).with_name("cptqa"))]
    ingest = subprocess.run(
        [*cptqa, "ingest", str(CORPUS)], env=env, capture_output=True, text=True, timeout=300
    )
    assert ingest.returncode == 0, ingest.stderr
    assert "indexed 2 documents" in ingest.stdout
    query = subprocess.run(
        [*cptqa, "query", "which fluoro code for occipital nerve block", "--k", "3", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert query.returncode == 0, query.stderr
    body = json.loads(query.stdout)
    assert any("for non-spinal procedures" in r["text"] for r in body["results"])
    assert "77002" in [c["code"] for c in body["codes"]]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CPTQA_ENCODER", "fastest"),
        ("CPTQA_SOLO_QUERY_THREADS", "-1"),
        ("CPTQA_PREFETCH", "maybe"),
    ],
)
def test_a_bad_setting_is_a_clear_error(
    monkeypatch, seed_index: Path, name: str, value: str
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["query", "fluoro", "--index-dir", str(seed_index)])
    assert result.exit_code == 2
    assert name in result.output and "Traceback" not in result.output


@pytest.fixture
def restored_environment():  # type: ignore[no-untyped-def]
    """`serve --workers N` hands its options to worker processes through the environment;
    run in-process, it would leave them set for every later test."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_serve_refuses_a_bad_worker_count_and_a_busy_port(
    seed_index: Path, restored_environment: None
) -> None:
    import socket

    result = CliRunner().invoke(app, ["serve", "--workers", "0", "--index-dir", str(seed_index)])
    assert result.exit_code == 2 and "workers" in result.output
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            app, ["serve", "--workers", "2", "--port", str(port), "--index-dir", str(seed_index)]
        )
    assert result.exit_code != 0
    assert f"cannot listen on 127.0.0.1:{port}" in result.output


def test_one_shot_commands_do_not_open_the_solo_encoder_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from api import cli

    monkeypatch.delenv("CPTQA_SOLO_QUERY_THREADS", raising=False)
    assert cli._settings().solo_query_threads == 1  # query, eval, codes: off
    assert cli._settings(service=True).solo_query_threads == 0  # serve, mcp: automatic
    monkeypatch.setenv("CPTQA_SOLO_QUERY_THREADS", "2")
    assert cli._settings().solo_query_threads == 2  # asked for explicitly
