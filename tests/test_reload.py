"""Hot reload: a running app picks up a newly published snapshot without failing a request,
and a snapshot that will not load leaves the old one serving, saying why."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from conftest import CORPUS, make_settings
from fastapi.testclient import TestClient

from api.http import create_app
from index import Embedder, build_index, current_snapshot_id

NEW_RULE = "Report the xylophone nerve block with 64999 when no specific code fits."


def _publish_with_extra_document(index_dir: Path, embedder: Embedder, tmp_path: Path) -> str:
    extra = tmp_path / "extra"
    extra.mkdir(exist_ok=True)
    (extra / "new-rule.txt").write_text(f"New rule\n\n{NEW_RULE}\n", encoding="utf-8")
    build_index([CORPUS, extra], index_dir, embedder)
    published = current_snapshot_id(index_dir)
    assert published is not None
    return published


def _texts(client: TestClient, question: str) -> list[str]:
    reply = client.post("/v1/query", json={"question": question, "k": 5})
    assert reply.status_code == 200, reply.text
    return [r["text"] for r in reply.json()["results"]]


def test_admin_reload_serves_the_new_snapshot(
    index_copy: Path, embedder: Embedder, tmp_path: Path
) -> None:
    settings = make_settings(index_copy, reload_interval=0)
    with TestClient(create_app(settings, embedder=embedder)) as client:
        before = client.get("/readyz").json()["snapshot"]
        assert not any(NEW_RULE in t for t in _texts(client, "xylophone nerve block"))
        published = _publish_with_extra_document(index_copy, embedder, tmp_path)
        assert client.get("/readyz").json()["snapshot"] == before  # not yet
        report = client.post("/v1/admin/reload").json()
        assert report == {
            "previous": before,
            "current": published,
            "reloaded": True,
            "seconds": report["seconds"],
            "error": None,
        }
        assert any(NEW_RULE in t for t in _texts(client, "xylophone nerve block"))
        again = client.post("/v1/admin/reload").json()
        assert again["reloaded"] is False and again["current"] == published


def test_requests_in_flight_during_a_reload_all_succeed(
    index_copy: Path, embedder: Embedder, tmp_path: Path
) -> None:
    # No rate limit: the three clients ask as fast as they can.
    settings = make_settings(index_copy, reload_interval=0, rate_limit_per_minute=0)
    statuses: list[int] = []
    stop = threading.Event()
    with TestClient(create_app(settings, embedder=embedder)) as client:

        def ask() -> None:
            while not stop.is_set():
                reply = client.post("/v1/query", json={"question": "fluoro for a knee", "k": 3})
                statuses.append(reply.status_code)

        workers = [threading.Thread(target=ask) for _ in range(3)]
        for worker in workers:
            worker.start()
        _publish_with_extra_document(index_copy, embedder, tmp_path)
        assert client.post("/v1/admin/reload").json()["reloaded"] is True
        time.sleep(0.5)
        stop.set()
        for worker in workers:
            worker.join()
    assert statuses and set(statuses) == {200}


def test_a_snapshot_that_will_not_load_leaves_the_old_one_serving(
    index_copy: Path, embedder: Embedder, tmp_path: Path
) -> None:
    settings = make_settings(index_copy, reload_interval=0)
    with TestClient(create_app(settings, embedder=embedder)) as client:
        before = client.get("/readyz").json()["snapshot"]
        published = _publish_with_extra_document(index_copy, embedder, tmp_path)
        damaged = index_copy / "snapshots" / published / "dense.faiss"
        damaged.write_bytes(damaged.read_bytes()[:64])
        report = client.post("/v1/admin/reload").json()
        assert report["reloaded"] is False and report["current"] == before
        assert "dense.faiss" in report["error"]
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["snapshot"] == before and "dense.faiss" in ready.json()["reason"]
        assert _texts(client, "which fluoro code for occipital nerve block")


def test_the_watcher_picks_up_a_published_snapshot(
    index_copy: Path, embedder: Embedder, tmp_path: Path
) -> None:
    settings = make_settings(index_copy, reload_interval=0.2)
    with TestClient(create_app(settings, embedder=embedder)) as client:
        published = _publish_with_extra_document(index_copy, embedder, tmp_path)
        deadline = time.monotonic() + 30
        while client.get("/readyz").json()["snapshot"] != published:
            assert time.monotonic() < deadline, "the watcher did not reload"
            time.sleep(0.1)
        assert any(NEW_RULE in t for t in _texts(client, "xylophone nerve block"))


def test_reload_needs_the_key_when_one_is_set(index_copy: Path, embedder: Embedder) -> None:
    key = "reload-test-key-0123456789"
    settings = make_settings(index_copy, reload_interval=0, api_key=key)
    with TestClient(create_app(settings, embedder=embedder)) as client:
        assert client.post("/v1/admin/reload").status_code == 401
        headers = {"Authorization": f"Bearer {key}"}
        assert client.post("/v1/admin/reload", headers=headers).status_code == 200


def test_without_a_key_reload_is_refused_to_other_machines(
    index_copy: Path, embedder: Embedder
) -> None:
    settings = make_settings(index_copy, reload_interval=0)
    app = create_app(settings, embedder=embedder)
    with TestClient(app, client=("10.1.2.3", 40000)) as client:
        reply = client.post("/v1/admin/reload")
        assert reply.status_code == 403
        assert "this machine only" in reply.json()["error"]["message"]
