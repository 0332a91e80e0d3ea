"""Session fixtures: the real model loaded once, real snapshots built once, the real app."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import launched_chromium, opened_page
from fastapi.testclient import TestClient

from api import Settings, create_app
from index import DEFAULT_MODEL, Embedder, build_index
from index.encoder import OnnxEncoder, ensure_export

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
DATA = Path(__file__).resolve().parent / "data"
DEV_CORPUS = DATA / "dev_corpus"


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's CPTQA_* variables or a `.env` in the working folder."""
    import os

    for name in list(os.environ):
        if name.startswith("CPTQA_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(scope="session")
def onnx_encoder() -> OnnxEncoder:
    """The question encoder `cptqa serve` uses by default (the ONNX export, fp32)."""
    return OnnxEncoder(ensure_export(DEFAULT_MODEL), "fp32")


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    """An index of the default corpus (the seed texts)."""
    index_dir = tmp_path_factory.mktemp("seed-index")
    build_index([CORPUS], index_dir, embedder)
    return index_dir


@pytest.fixture(scope="session")
def dev_index(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    """An index of the seeds beside the dev corpus (realistic neighbours)."""
    index_dir = tmp_path_factory.mktemp("dev-index")
    build_index([CORPUS, DEV_CORPUS], index_dir, embedder)
    return index_dir


DATED_CORPUS = DATA / "dated_corpus"


@pytest.fixture(scope="session")
def dated_index(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    """An index of short texts from different years (tests/data/dated_corpus.md)."""
    index_dir = tmp_path_factory.mktemp("dated-index")
    build_index([DATED_CORPUS], index_dir, embedder)
    return index_dir


@pytest.fixture()
def index_copy(seed_index: Path, tmp_path: Path) -> Path:
    """A private copy of the seed index, for tests that change or break it."""
    target = tmp_path / "index"
    shutil.copytree(seed_index, target)
    return target


def make_settings(index_dir: Path, **overrides: object) -> Settings:
    return Settings(index_dir=index_dir, corpus_dir=CORPUS, **overrides)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def client(seed_index: Path, embedder: Embedder) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(seed_index), embedder=embedder)) as test_client:
        yield test_client


SERVED_API_KEY = "served-test-key-0123456789"


@pytest.fixture(scope="session")
def keyed_server(seed_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A real `cptqa serve` process on the seed index, with CPTQA_API_KEY set (see live.py)."""
    from live import cptqa_serve

    workdir = tmp_path_factory.mktemp("keyed-serve")
    with cptqa_serve(seed_index, workdir, api_key=SERVED_API_KEY) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's chromium under playwright (tests/browser.py), one per test module."""
    with launched_chromium() as launched:
        yield launched


@pytest.fixture()
def page(browser):  # noqa: ANN001, ANN201
    """A fresh browser page; an error in the page's own script fails the test."""
    with opened_page(browser) as opened:
        yield opened
