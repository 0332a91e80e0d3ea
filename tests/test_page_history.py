"""The page's code history badges in a real browser against a real `cptqa serve` of texts from
different years (tests/data/dated_corpus.md): a deleted code's badge, a dated passage's badge,
the code page's history. Screenshots go to tests/artifacts/ for a person to look at."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import shot
from live import LiveServer, cptqa_serve


@pytest.fixture(scope="module")
def server(dated_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with cptqa_serve(dated_index, tmp_path_factory.mktemp("dated-serve")) as live:
        yield live


def test_a_dated_passage_and_a_revised_code_carry_badges(page, server: LiveServer) -> None:  # noqa: ANN001
    page.goto(
        server.base + "/#q=lumbar%20puncture%20under%20fluoroscopy%2C%2062270%20%2B%2077003%3F&k=3"
    )
    forum = page.locator("#passages > li", has_text="Our interventional radiologist")
    badge = forum.locator(".badge-dated")
    badge.wait_for()
    assert badge.inner_text() == "2015 advice, before the 2020 change"
    assert "62270 revised 2020" in (badge.get_attribute("title") or "")
    newsletter = page.locator("#passages > li", has_text="Effective January 1, 2020")
    assert newsletter.locator(".badge-dated").count() == 0
    assert newsletter.locator(".badge-year").inner_text() == "2020"
    lp = page.locator("#answer [data-code='62270']")
    assert lp.locator(".badge-revised").inner_text() == "revised 2020 (part now 62328)"
    assert lp.locator(".badge-dated").inner_text() == "2015 advice, before the 2020 change"
    shot(page, "page-dated-passage")


def test_a_deleted_code_shows_its_replacements_and_history(page, server: LiveServer) -> None:  # noqa: ANN001
    page.goto(server.base + "/#code=62311")
    badge = page.locator("#code-facts .badge-deleted")
    badge.wait_for()
    assert badge.inner_text() == "deleted 2017 → 62322, 62323"
    history = page.locator("#code-history").inner_text()
    assert "AMA CPT 2017" in history
    assert "62311 was deleted in 2017" in history and "update_epidural_2017.txt" in history
    shot(page, "page-deleted-code")


def test_a_past_date_of_service_question_shows_the_rule(page, server: LiveServer) -> None:  # noqa: ANN001
    page.goto(server.base + "/")
    page.get_by_label("Question").fill(
        "correcting a 2015 claim: KUB single view abdomen film, 74018 or 74000?"
    )
    page.get_by_label("Question").press("Enter")
    first = page.locator("#lead-code .lead-code")
    first.locator(".badge-rule").wait_for()
    assert first.locator(".code-link").inner_text() == "74000"
    assert "74018 is unassigned as of 2015" in (
        first.locator(".badge-rule").get_attribute("title") or ""
    )
    later = page.locator("#answer [data-code='74018']")
    assert later.locator(".badge-deleted").inner_text() == "not in use until 2018"
    shot(page, "page-past-date-of-service")
