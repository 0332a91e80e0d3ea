"""bench/peers.py's arithmetic and its missing-peer path; needs no peer package and no model."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "peers.py"


@pytest.fixture(scope="module")
def peers() -> Iterator[ModuleType]:
    # The script forces the hub-offline variables on import; keep that out of other tests.
    with pytest.MonkeyPatch.context() as patch:
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "TOKENIZERS_PARALLELISM"):
            patch.setenv(name, "1")
        spec = importlib.util.spec_from_file_location("bench_peers", SCRIPT)
        if spec is None or spec.loader is None:
            pytest.skip(f"cannot load {SCRIPT}")
        module = importlib.util.module_from_spec(spec)
        patch.setitem(sys.modules, spec.name, module)  # its dataclasses look themselves up there
        spec.loader.exec_module(module)
        yield module


def _row(system: str, p50: float, hit3: float) -> dict:
    return {"system": system, "p50_ms": p50, "p95_ms": p50 * 2, "hit@3": hit3}


def test_latency_ratio_is_peer_p50_over_cptqa_p50(peers: ModuleType) -> None:
    rows = [_row("cptqa", 4.0, 0.9), _row("langchain", 14.0, 0.8), _row("txtai", 8.0, 0.95)]
    by_peer = {r["peer"]: r for r in peers.ratios(rows)}
    assert by_peer["langchain"]["latency_ratio"] == 3.5
    assert by_peer["langchain"]["hit@3_diff"] == pytest.approx(0.1)
    assert by_peer["langchain"]["target_met"] is True
    assert by_peer["txtai"]["latency_ratio"] == 2.0
    assert by_peer["txtai"]["target_met"] is False  # neither 3x faster nor as good at hit@3


def test_equal_hit3_at_three_times_faster_meets_the_target(peers: ModuleType) -> None:
    rows = [_row("cptqa", 5.0, 0.8), _row("langchain", 15.0, 0.8)]
    assert peers.ratios(rows)[0]["target_met"] is True


def test_plain_bm25_is_compared_but_not_held_to_the_target(peers: ModuleType) -> None:
    (bm25,) = peers.ratios([_row("cptqa", 5.0, 0.8), _row("bm25", 0.2, 0.6)])
    assert bm25["latency_ratio"] == 0.04
    assert bm25["target_met"] is None
    assert "-" in peers.format_table([bm25]).splitlines()[1].split()


def test_a_failed_system_gets_no_ratio(peers: ModuleType) -> None:
    rows = [_row("cptqa", 5.0, 0.8), {"system": "txtai", "error": "ImportError: x"}]
    assert peers.ratios(rows) == []
    assert peers.ratios([{"system": "cptqa", "error": "boom"}, _row("bm25", 1.0, 0.5)]) == []


def test_gold_rank_collapses_whitespace_and_stops_at_depth(peers: ModuleType) -> None:
    passages = ["nothing here", "use 77002 for\n  non-spinal   procedures", "x"]
    assert peers.gold_rank(passages, ["for non-spinal procedures"]) == 2
    assert peers.gold_rank(passages, ["absent"]) is None
    deep = ["filler"] * peers.DEPTH + ["the gold"]
    assert peers.gold_rank(deep, ["the gold"]) is None


def test_quality_counts_hits_and_reciprocal_ranks(peers: ModuleType) -> None:
    metrics = peers.quality([1, 2, 4, None])
    assert metrics["hit@1"] == 0.25
    assert metrics["hit@3"] == 0.5
    assert metrics["mrr@10"] == pytest.approx((1 + 0.5 + 0.25) / 4)


def test_percentile_is_nearest_rank(peers: ModuleType) -> None:
    values = [float(v) for v in range(1, 21)]
    assert peers.percentile(values, 50) == 10.0
    assert peers.percentile(values, 95) == 19.0
    assert peers.percentile([7.0], 95) == 7.0


def test_table_aligns_the_union_of_columns(peers: ModuleType) -> None:
    table = peers.format_table([_row("cptqa", 4.0, 1.0), {"system": "txtai", "error": "E: x"}])
    header, first, second = table.splitlines()
    assert header.split() == ["system", "p50_ms", "p95_ms", "hit@3", "error"]
    assert first.index("4.000") == header.index("p50_ms")
    assert second.rstrip().endswith("E: x")


def test_missing_peer_is_skipped_with_the_install_hint(
    peers: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(peers.PEER_MODULES, "txtai", ("no_such_module_for_cptqa_tests",))
    assert peers.available_systems(["txtai"]) == ["cptqa"]
    out = capsys.readouterr().out
    assert "skipped txtai" in out
    assert "pip install -e '.[peers]'" in out


def test_unknown_peer_is_refused(peers: ModuleType) -> None:
    with pytest.raises(SystemExit):
        peers.parse_args(["--only", "langchain,haystack"])
    assert peers.parse_args(["--only", "bm25", "--threads", "2"]).only == ["bm25"]
