"""`cptqa ingest --ray ADDRESS`: the ingest's stages on a Ray cluster write the snapshot a
local ingest writes.

The two-node test starts a real cluster on loopback (tests/ray_cluster.py) and takes a few
minutes: it runs in `make test-all` (`pytest -m slow tests/test_ray_ingest.py` alone).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import CORPUS, DATA, DEV_CORPUS
from ray_cluster import ray_cluster
from typer.testing import CliRunner

from api.cli import app
from index import DEFAULT_MODEL, load_current

CPTQA = str(Path(sys.executable).parent / "cptqa")
PUBLIC = {"seeds": CORPUS, "dev": DEV_CORPUS, "devset": DATA / "devset" / "corpus"}


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_missing_ray_is_one_clear_line(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets without the extra
    arguments = ["ingest", str(CORPUS), "--index-dir", str(tmp_path / "index")]
    if how == "flag":
        arguments += ["--ray", "auto"]
    else:
        monkeypatch.setenv("CPTQA_RAY_ADDRESS", "auto")
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert "Ray is not installed" in lines[0] and "pip install 'cptqa[ray]'" in lines[0]
    assert not (tmp_path / "index").exists()


@pytest.mark.parametrize(
    ("address", "says"),
    [
        ("nonsense", "is not a Ray address"),
        ("127.0.0.1:99999", "is not a Ray address"),
        ("ray://127.0.0.1:10001", "Ray Client"),
        ("127.0.0.1:1", "nothing answers at 127.0.0.1:1"),
    ],
)
def test_bad_ray_address_is_refused_before_anything_is_read(
    address: str, says: str, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        app, ["ingest", str(CORPUS), "--index-dir", str(tmp_path / "index"), "--ray", address]
    )
    assert result.exit_code == 2, result.output
    assert says in result.output
    assert not (tmp_path / "index").exists()


def _ingest(
    command: list[str],
    index_dir: Path,
    paths: list[Path],
    *more: str,
    env: dict[str, str] | None = None,
) -> tuple[int, int]:
    """Run `cptqa ingest` as a process; (passages embedded, reused) from its report."""
    argv = [*command, "ingest", *map(str, paths), "--index-dir", str(index_dir), *more]
    environment = {**os.environ, **(env or {})}
    result = subprocess.run(argv, capture_output=True, text=True, timeout=900, env=environment)
    assert result.returncode == 0, result.stderr[-3000:]
    found = re.search(r"\((\d+) passages embedded, (\d+) reused\)", result.stdout)
    assert found, result.stdout
    return int(found[1]), int(found[2])


def _lexical_postings(directory: Path) -> dict[str, tuple[tuple[int, float], ...]]:
    """Each token's (chunk, weight) postings: bm25s numbers its vocabulary in set order,
    which moves with Python's hash seed, so two local ingests differ in bytes, not in this."""
    vocabulary = json.loads((directory / "vocab.index.json").read_text())
    data, rows, starts = (
        np.load(directory / f"{name}.csc.index.npy") for name in ("data", "indices", "indptr")
    )
    return {
        token: tuple(
            zip(
                rows[starts[c] : starts[c + 1]].tolist(),
                data[starts[c] : starts[c + 1]].tolist(),
                strict=True,
            )
        )
        for token, c in vocabulary.items()
        if c + 1 < len(starts)  # bm25s's empty token "" has no column
    }


def assert_same_snapshot(local_dir: Path, remote_dir: Path) -> None:
    local, remote = load_current(local_dir, DEFAULT_MODEL), load_current(remote_dir, DEFAULT_MODEL)
    assert list(remote.store.documents.values()) == list(local.store.documents.values())
    assert remote.store.chunks == local.store.chunks  # text, offsets, codes, context, pages
    np.testing.assert_allclose(
        np.asarray(remote.vectors, np.float32), np.asarray(local.vectors, np.float32), atol=1e-5
    )
    np.testing.assert_allclose(
        np.asarray(remote.sentences.vectors, np.float32),
        np.asarray(local.sentences.vectors, np.float32),
        atol=1e-5,
    )
    a, b = local.directory, remote.directory
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    # The glossary is a table of chunks.sqlite: byte for byte like the rest.
    # Vectors (the sentences' array, and the chunks' inside the FAISS file) are compared above.
    vectors = ("lexical", "manifest.json", "sentence_vectors.npy", "dense.faiss")
    exact = [f for f in files if f.parts[0] not in vectors]
    assert "chunks.sqlite" in map(str, exact)
    for name in exact:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert _lexical_postings(a / "lexical") == _lexical_postings(b / "lexical")
    manifests = [
        {k: v for k, v in s.manifest.items() if k not in ("created", "id", "files")}
        for s in (local, remote)
    ]
    assert manifests[0] == manifests[1]


@pytest.mark.slow
def test_two_node_ray_ingest_writes_the_local_snapshot(tmp_path: Path) -> None:
    corpora = []
    for name, source in PUBLIC.items():
        shutil.copytree(source, tmp_path / "corpus" / name)
        corpora.append(tmp_path / "corpus" / name)
    local_dir, remote_dir = tmp_path / "local", tmp_path / "remote"
    with ray_cluster(tmp_path / "ray", workers=1) as cluster:
        on_ray = cluster.command(CPTQA)  # the driver runs beside the nodes, on loopback
        address = {"CPTQA_RAY_ADDRESS": cluster.address}
        remote = _ingest(on_ray, remote_dir, corpora, env=address)
        local = _ingest([CPTQA], local_dir, corpora)
        assert remote == local
        assert_same_snapshot(local_dir, remote_dir)

        # Incremental: a new document, a changed one, a removed one; only new text embedded.
        texts = sorted((corpora[2]).rglob("*.txt"))
        texts[0].write_text(texts[0].read_text() + "\n\nAdd-on 64484 is reported with 64483.\n")
        texts[-1].unlink()
        (corpora[2] / "new.md").write_text("# Sacroiliac joint\n\nReport 64451 for the SI joint.\n")
        # "644901." is the code 64490 with a footnote mark only because other documents write
        # 64490: documents the first ingest read, which this one takes as stored and does not
        # parse again, so their codes are scanned apart from the new files' on the cluster.
        # Two folders with a file of the same name: the second gets another id after reading.
        for n, corpus in enumerate(corpora[:2]):
            (corpus / "same-name.txt").write_text(f"Folder {n}.\n\nReport 64451 once.\n")
        footnote = corpora[2] / "footnote.txt"
        footnote.write_text("Facet injections.\n\n644901. Per joint, not per nerve.\n")
        remote = _ingest(on_ray, remote_dir, corpora, "--ray", cluster.address)
        local = _ingest([CPTQA], local_dir, corpora)
        assert remote == local
        assert 0 < remote[0] < 20 and remote[1] > 900
        assert_same_snapshot(local_dir, remote_dir)
        chunks = load_current(remote_dir, DEFAULT_MODEL).store.chunks
        written = {
            m.code for c in chunks if c.document_id.endswith("footnote.txt") for m in c.codes
        }
        assert written == {"64490"}


@pytest.mark.slow
def test_ray_ingest_on_hosts_that_share_no_disk_writes_the_local_snapshot(
    tmp_path: Path,
) -> None:
    """Two Ray nodes as two hosts (each its own network namespace and address, linked by a
    virtual Ethernet pair), the worker node unable to see the corpus folder, the head node
    with no CPU of its own, so that every stage runs on the worker: the driver sends the
    files' bytes, and the snapshot is the local one."""
    corpus = tmp_path / "corpus"
    shutil.copytree(DEV_CORPUS, corpus / "dev")
    shutil.copytree(CORPUS, corpus / "seeds")
    local_dir, remote_dir = tmp_path / "local", tmp_path / "remote"
    with ray_cluster(
        tmp_path / "ray", workers=1, hosts=True, hidden=(corpus,), head_cpus=0
    ) as cluster:
        assert not cluster.address.startswith("127.")
        # The worker node's own view of the corpus folder: empty.
        seen = subprocess.run(
            ["nsenter", "-t", str(cluster.pids[1]), "-m", "ls", "-A", str(corpus)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert seen.stdout.strip() == ""
        assert any(corpus.iterdir())
        on_ray = cluster.command(CPTQA)
        remote = _ingest(on_ray, remote_dir, [corpus], "--ray", cluster.address)
        local = _ingest([CPTQA], local_dir, [corpus])
        assert remote == local and remote[0] > 50
        assert_same_snapshot(local_dir, remote_dir)

        # Incremental: a changed file's new bytes are sent, an unchanged one is not read again.
        changed = sorted((corpus / "dev").glob("*.txt"))[0]
        changed.write_text(changed.read_text() + "\n\nAdd-on 64484 is reported with 64483.\n")
        remote = _ingest(on_ray, remote_dir, [corpus], "--ray", cluster.address)
        local = _ingest([CPTQA], local_dir, [corpus])
        assert remote == local and 0 < remote[0] < 20
        assert_same_snapshot(local_dir, remote_dir)
