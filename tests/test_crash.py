"""Crash safety with real processes: `cptqa ingest` killed by a signal at random points never
publishes a partial snapshot, and the last good snapshot still loads and answers; two
concurrent ingests do not corrupt the index (the second is refused with a clear message)."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from conftest import CORPUS
from live import LiveServer, cptqa_serve

from index import Embedder, Searcher, build_index, current_snapshot_id, load_current
from index.snapshot import load_snapshot

MODEL = "all-MiniLM-L6-v2"
EXAMPLE = "which fluoro code for occipital nerve block"
CPTQA = str(Path(sys.executable).with_name("cptqa"))
POLL = 0.0005


NEW_TEXT = "Ultrasound guidance for a greater occipital nerve block is reported with 76942."


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> tuple[Path, Path]:
    """A corpus with a published index of it, then one new file the next ingest must embed
    and add (so that it loads the model and embeds before it writes)."""
    root = tmp_path_factory.mktemp("crash")
    corpus = root / "corpus"
    shutil.copytree(CORPUS, corpus)
    build_index([corpus], root / "index", embedder)
    (corpus / "new-policy.txt").write_text(NEW_TEXT, encoding="utf-8")
    return corpus, root / "index"


@pytest.fixture(scope="module")
def renamed(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> tuple[Path, Path]:
    """As `base`, but the change is a renamed file: the next ingest reuses every vector, so it
    reaches the writing of the snapshot in about two seconds (no model to load)."""
    root = tmp_path_factory.mktemp("crash-renamed")
    corpus = root / "corpus"
    shutil.copytree(CORPUS, corpus)
    (corpus / "old-policy.txt").write_text(NEW_TEXT, encoding="utf-8")
    build_index([corpus], root / "index", embedder)
    (corpus / "old-policy.txt").rename(corpus / "new-policy.txt")
    return corpus, root / "index"


def start_ingest(corpus: Path, index_dir: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "CPTQA_INDEX_DIR": str(index_dir)}
    return subprocess.Popen(
        [CPTQA, "ingest", str(corpus)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition: Callable[[], bool], process: subprocess.Popen[str], limit: float) -> bool:
    """Poll until `condition` holds (True) or the process ends or `limit` seconds pass."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and process.poll() is None:
        if condition():
            return True
        time.sleep(POLL)
    return False


def assert_last_good_snapshot_serves(index_dir: Path, embedder: Embedder) -> str:
    """CURRENT names a complete snapshot that answers; every published snapshot is complete."""
    current = current_snapshot_id(index_dir)
    assert current is not None
    snapshot = load_current(index_dir, MODEL)
    assert snapshot.id == current and snapshot.fallback_reason == ""
    for published in (index_dir / "snapshots").iterdir():
        load_snapshot(published, MODEL)  # raises IndexCorrupt on any partial snapshot
    hits = Searcher(snapshot, embedder).search(EXAMPLE, 3).hits
    assert any("for non-spinal procedures" in h.chunk.text for h in hits)
    return current


def builds(index_dir: Path) -> bool:
    return any(index_dir.glob(".build-*"))


# (how the kill point is chosen, the signal, the seed): random moments over the whole run
# (starting, reading the corpus, loading the model, embedding, writing), random moments while
# the snapshot is being written, and the instant the new snapshot is renamed into place, just
# before the pointer swap.
TRIALS = [
    ("anytime", signal.SIGKILL, 11),
    ("writing", signal.SIGKILL, 21),
    ("publishing", signal.SIGKILL, 31),
]
SLOW_TRIALS = [
    (phase, sig, seed)
    for seed in range(100, 105)
    for phase, sig in (
        ("anytime", signal.SIGKILL),
        ("anytime", signal.SIGTERM),
        ("writing", signal.SIGKILL),
        ("writing", signal.SIGTERM),
        ("writing", signal.SIGINT),
        ("publishing", signal.SIGKILL),
    )
]


def kill_at_random_point(
    base: tuple[Path, Path], tmp_path: Path, embedder: Embedder, phase: str, sig: int, seed: int
) -> Path:
    """Kill an ingest by `sig` at a point chosen by `phase` and `seed`; check the index."""
    corpus, template = base
    index_dir = tmp_path / "index"
    shutil.copytree(template, index_dir)
    before = current_snapshot_id(index_dir)
    chance = random.Random(seed)
    snapshots_before = {p.name for p in (index_dir / "snapshots").iterdir()}
    process = start_ingest(corpus, index_dir)
    try:
        if phase == "anytime":
            time.sleep(chance.uniform(0.0, 7.0))
        elif phase == "writing":
            wait_for(lambda: builds(index_dir), process, 120)
            time.sleep(chance.uniform(0.0, 0.06))
        else:
            wait_for(
                lambda: {p.name for p in (index_dir / "snapshots").iterdir()} != snapshots_before,
                process,
                120,
            )
        process.send_signal(sig)
    finally:
        process.communicate(timeout=120)
    current = assert_last_good_snapshot_serves(index_dir, embedder)
    assert current in (before, *{p.name for p in (index_dir / "snapshots").iterdir()})
    return index_dir


def assert_next_ingest_finishes_the_job(corpus: Path, index_dir: Path, embedder: Embedder) -> None:
    """The next ingest clears what the dead one left and publishes."""
    finish = start_ingest(corpus, index_dir)
    out, err = finish.communicate(timeout=300)
    assert finish.returncode == 0, err
    assert not builds(index_dir) and not list(index_dir.glob(".trash-*"))
    assert_last_good_snapshot_serves(index_dir, embedder)
    documents = load_current(index_dir, MODEL).store.documents
    assert "new-policy.txt" in documents


@pytest.mark.parametrize(("phase", "sig", "seed"), TRIALS)
def test_ingest_killed_at_a_random_point_never_publishes_a_partial_snapshot(
    base: tuple[Path, Path],
    renamed: tuple[Path, Path],
    tmp_path: Path,
    embedder: Embedder,
    phase: str,
    sig: int,
    seed: int,
) -> None:
    start = base if phase == "anytime" else renamed
    index_dir = kill_at_random_point(start, tmp_path, embedder, phase, sig, seed)
    if phase == "writing":
        assert_next_ingest_finishes_the_job(start[0], index_dir, embedder)


@pytest.mark.slow
@pytest.mark.parametrize(("phase", "sig", "seed"), SLOW_TRIALS)
def test_ingest_killed_many_times_never_publishes_a_partial_snapshot(
    base: tuple[Path, Path],
    renamed: tuple[Path, Path],
    tmp_path: Path,
    embedder: Embedder,
    phase: str,
    sig: int,
    seed: int,
) -> None:
    start = base if phase == "anytime" else renamed
    index_dir = kill_at_random_point(start, tmp_path, embedder, phase, sig, seed)
    assert_next_ingest_finishes_the_job(start[0], index_dir, embedder)


def lock_is_held(lock: Path) -> bool:
    """True when some process holds an flock on `lock` (read from /proc/locks, which does not
    take the lock itself, so it cannot disturb the ingest being watched)."""
    if not lock.exists():
        return False
    inode = f":{lock.stat().st_ino} "
    return any(
        "FLOCK" in line and inode in line for line in Path("/proc/locks").read_text().splitlines()
    )


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs Linux /proc/locks")
def test_a_second_concurrent_ingest_is_refused_and_the_first_completes(
    base: tuple[Path, Path], tmp_path: Path, embedder: Embedder
) -> None:
    corpus, template = base
    index_dir = tmp_path / "index"
    shutil.copytree(template, index_dir)
    before = current_snapshot_id(index_dir)
    first = start_ingest(corpus, index_dir)
    try:
        assert wait_for(lambda: lock_is_held(index_dir / ".lock"), first, 120)
        first.send_signal(signal.SIGSTOP)  # hold it mid-ingest, lock in hand
        second = start_ingest(corpus, index_dir)
        out, err = second.communicate(timeout=300)
        assert second.returncode == 5
        assert "another `cptqa ingest` is writing" in err
        assert current_snapshot_id(index_dir) == before
    finally:
        first.send_signal(signal.SIGCONT)
        out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert current_snapshot_id(index_dir) != before
    assert_last_good_snapshot_serves(index_dir, embedder)
    assert "new-policy.txt" in load_current(index_dir, MODEL).store.documents


# --- an index folder that cannot be written (issue 17) -----------------------------------------


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder this process cannot write: read-only by mode, or (as root, whom modes do not
    stop) a sysfs folder, which no one can write to."""
    if os.geteuid() == 0:
        return Path("/sys/kernel")
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


def test_ingest_into_an_unwritable_index_says_so_with_exit_code_6(tmp_path: Path) -> None:
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "a.txt").write_text(NEW_TEXT, encoding="utf-8")
    (tmp_path / "a-file").write_text("not a folder", encoding="utf-8")
    for index_dir, why in (
        (unwritable_folder(tmp_path), "cannot write the index in"),
        (tmp_path / "a-file", "it is a file, not a folder"),
    ):
        env = {**os.environ, "CPTQA_INDEX_DIR": str(index_dir)}
        result = subprocess.run(
            [CPTQA, "ingest", str(tmp_path / "corpus")],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 6, result.stderr
        assert why in result.stderr and "CPTQA_INDEX_DIR" in result.stderr
        assert "Traceback" not in result.stderr
    assert (tmp_path / "a-file").read_text(encoding="utf-8") == "not a folder"


# --- a published snapshot damaged under a running server (issue 17) ----------------------------

QUESTIONS = [
    "which fluoro code for occipital nerve block",
    "ultrasound guidance for a nerve block",
    "is 76000 bundled",
    "spinal injection fluoroscopy",
    "knee joint injection guidance",
    "difference between 77002 and 77003",
]


@pytest.fixture(scope="module")
def two_snapshots(
    tmp_path_factory: pytest.TempPathFactory, seed_index: Path, embedder: Embedder
) -> Path:
    """The seed index, then a newer snapshot with one more document: a good one to fall back to."""
    root = tmp_path_factory.mktemp("two-snapshots")
    index_dir = root / "index"
    shutil.copytree(seed_index, index_dir)
    (root / "extra").mkdir()
    (root / "extra" / "new.txt").write_text(NEW_TEXT, encoding="utf-8")
    build_index([CORPUS, root / "extra"], index_dir, embedder)
    return index_dir


def live_snapshot(server: LiveServer) -> Path:
    index_dir = server.log.parent / "served-index"
    return index_dir / "snapshots" / str(current_snapshot_id(index_dir))


def statuses(server: LiveServer) -> list[int]:
    return [
        httpx.post(f"{server.base}/v1/query", json={"question": q}, timeout=30).status_code
        for q in QUESTIONS
    ]


def test_published_snapshot_files_are_read_only(two_snapshots: Path) -> None:
    snapshot = two_snapshots / "snapshots" / str(current_snapshot_id(two_snapshots))
    for name in (
        "chunks.sqlite",
        "sentence_vectors.npy",
        "dense.faiss",
        "lexical/data.csc.index.npy",
    ):
        assert (snapshot / name).stat().st_mode & 0o777 == 0o444, name


def test_garbage_in_the_live_chunk_store_falls_back_to_the_previous_snapshot(
    two_snapshots: Path, tmp_path: Path
) -> None:
    with cptqa_serve(two_snapshots, tmp_path, CPTQA_RELOAD_INTERVAL="0") as server:
        damaged = live_snapshot(server)
        store = damaged / "chunks.sqlite"
        size = store.stat().st_size
        with open(store, "r+b") as handle:  # garbage in place, the size unchanged
            for offset in range(4096, size, 4096):
                handle.seek(offset)
                handle.write(os.urandom(512))
        assert statuses(server) == [200] * len(QUESTIONS)  # none is a 500
        ready = httpx.get(f"{server.base}/readyz", timeout=10)
        assert ready.status_code == 200
        assert ready.json()["snapshot"] != damaged.name
        reason = ready.json()["reason"]
        assert damaged.name in reason and "malformed" in reason and str(tmp_path) not in reason
        assert server.log_text().count("marked unhealthy") == 1  # logged once, not per request


def test_a_truncated_mapped_file_never_kills_the_server(seed_index: Path, tmp_path: Path) -> None:
    with cptqa_serve(seed_index, tmp_path, CPTQA_RELOAD_INTERVAL="0") as server:
        assert statuses(server)[0] == 200
        vectors = live_snapshot(server) / "sentence_vectors.npy"
        os.truncate(vectors, 128)  # the pages mapped by the server are gone
        refused = httpx.post(f"{server.base}/v1/query", json={"question": EXAMPLE}, timeout=30)
        assert refused.status_code == 503 and refused.json()["error"]["type"] == "index_corrupt"
        assert "sentence_vectors.npy is 128 bytes" in refused.json()["error"]["message"]
        ready = httpx.get(f"{server.base}/readyz", timeout=10)
        assert (
            ready.status_code == 503 and "sentence_vectors.npy" in ready.json()["error"]["message"]
        )
        assert httpx.get(f"{server.base}/healthz", timeout=10).status_code == 200  # alive
        assert "SIGBUS" not in server.log_text() and "Fatal Python error" not in server.log_text()
