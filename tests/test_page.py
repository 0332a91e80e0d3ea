"""The web page at `/`: served by the app, then used in a real browser.

The browser tests drive Debian's chromium (`/usr/bin/chromium`, installed by `.ci/run`) with
Python playwright, which downloads no browser of its own, against a real `cptqa serve` process.
They save screenshots in tests/artifacts/ for a person to look at.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import shot
from conftest import SERVED_API_KEY
from fastapi.testclient import TestClient
from live import LiveServer, cptqa_serve

from api.web import PAGE_DIR

EXAMPLE = "which fluoro code for occipital nerve block"


# --- the page as the app serves it -------------------------------------------------------------


def test_the_page_is_served_at_the_root_with_a_strict_policy(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    html = response.text
    assert '<label for="question">' in html and 'id="question"' in html
    assert 'name="viewport"' in html and 'lang="en"' in html
    for asset in ("/page/app.js", "/page/style.css"):
        assert asset in html
        assert client.get(asset).status_code == 200


def test_the_page_writes_corpus_text_as_text_never_as_html() -> None:
    script = (PAGE_DIR / "app.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script


# --- in a real browser -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(seed_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """`cptqa serve` with the default settings, as the README starts it."""
    with cptqa_serve(seed_index, tmp_path_factory.mktemp("page-serve")) as live:
        yield live


def ask(page, base: str, question: str) -> None:  # noqa: ANN001
    page.goto(base + "/")
    page.get_by_label("Question").fill(question)
    page.get_by_label("Question").press("Enter")


def test_the_page_answers_the_example_question_with_77002_highlighted(
    page, server: LiveServer
) -> None:  # noqa: ANN001
    ask(page, server.base, EXAMPLE)
    top = page.locator("#passages mark.code.top", has_text="77002").first
    top.wait_for()
    assert top.is_visible()
    answering = page.locator("#passages > li", has_text="for non-spinal procedures")
    assert answering.locator("mark", has_text="77002").count() >= 1
    meta = answering.locator(".meta").first.inner_text()
    # Its document by title, not by file name; no bare score or character offsets.
    assert "Wiki Difference between 77002 & 77003" in meta
    assert ".txt" not in meta and "characters" not in meta and "score" not in meta
    lead = page.locator("#lead-code")
    assert lead.locator(".code-link").inner_text() == "77002"
    assert "needle placement" in lead.locator(".descriptor").inner_text()
    assert "non-spinal" in lead.locator("blockquote").first.inner_text()
    # The other codes are below it, and smaller.
    others = page.locator("#other-codes > li")
    assert others.count() >= 1 and others.first.locator(".code-link").inner_text() != "77002"
    lead_size = lead.locator(".code-link").evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
    other_size = others.first.locator(".code-link").evaluate(
        "e => parseFloat(getComputedStyle(e).fontSize)"
    )
    assert lead_size > other_size
    assert "passages" in page.locator("#status").inner_text()
    # Text cut short by the server ends with an ellipsis, never mid-word without one.
    for text in page.locator(".evidence").all_inner_texts():
        assert text.rstrip()[-1] in ".!?:;)\"'”’…", text
    shot(page, "page-answer")


def test_why_this_shows_the_ranking_features_on_demand(page, server: LiveServer) -> None:  # noqa: ANN001
    ask(page, server.base, EXAMPLE)
    first_passage = page.locator("#passages > li").first
    first_passage.wait_for()
    why = first_passage.locator("details.why")
    table = why.locator("table")
    assert not table.is_visible()  # closed until asked for
    why.locator("summary", has_text="Why this?").click()
    assert table.is_visible()
    names = table.locator("tbody th").all_inner_texts()
    assert "dense" in names and "bm25" in names and len(names) > 20
    assert "lambdamart" in why.inner_text() or "linear" in why.inner_text()
    code_why = page.locator("#lead-code details.why")
    code_why.locator("summary").click()
    assert "relevance" in code_why.locator("tbody").inner_text()
    shot(page, "page-why-this")


def test_a_clicked_code_opens_the_codes_page_and_back_returns(page, server: LiveServer) -> None:  # noqa: ANN001
    ask(page, server.base, EXAMPLE)
    page.locator("#passages mark", has_text="77002").first.click()
    page.locator("#code-title", has_text="77002").wait_for()
    # The title shows at once; the rest fills in when the lookup has answered.
    page.locator("#descriptors", has_text="non-spinal").wait_for()
    assert page.url.endswith("#code=77002")
    assert page.locator("#search-view").is_hidden()
    descriptors = page.locator("#descriptors").inner_text()
    assert "non-spinal" in descriptors and "Wiki Difference between 77002 & 77003" in descriptors
    assert ".txt" not in descriptors
    assert page.locator("#related a").count() >= 1
    assert page.locator("#code-passages mark", has_text="77002").count() >= 1
    shot(page, "page-code")
    page.get_by_role("link", name="Back to the results").click()
    page.locator("#passages mark", has_text="77002").first.wait_for()
    assert page.locator("#code-view").is_hidden()


def test_an_empty_question_shows_the_error_in_words(page, server: LiveServer) -> None:  # noqa: ANN001
    page.goto(server.base + "/")
    page.get_by_role("button", name="Search").click()
    error = page.get_by_role("alert")
    error.wait_for()
    assert "The question is empty" in error.inner_text()
    assert "`" not in error.inner_text()  # words, not markup
    assert page.locator("#search-view").is_hidden()
    shot(page, "page-empty-question")


def visible_headings_have_content(page) -> None:  # noqa: ANN001
    for section in page.locator("#code-view section").all():
        if section.is_visible():
            assert section.locator("li").count() >= 1, section.inner_text()


def test_a_code_the_corpus_lacks_offers_its_neighbours_without_empty_headings(
    page, server: LiveServer
) -> None:  # noqa: ANN001
    page.goto(server.base + "/#code=62271")
    page.get_by_role("alert").wait_for()
    assert page.locator("#code-view h3:visible").count() == 0
    visible_headings_have_content(page)
    shot(page, "page-unknown-code")
    page.get_by_role("alert").get_by_role("link", name="62270").click()
    page.locator("#code-title", has_text="62270").wait_for()
    page.locator("#descriptors li").first.wait_for()
    visible_headings_have_content(page)


def test_a_rarely_mentioned_code_is_shown_with_a_hint_of_the_likely_code(
    page, server: LiveServer
) -> None:  # noqa: ANN001
    page.goto(server.base + "/#code=62370")
    page.locator("#code-passages mark", has_text="62370").first.wait_for()
    assert page.get_by_role("alert").is_hidden()  # not an error: the corpus does mention it
    hint = page.locator("#code-hint")
    assert hint.is_visible() and "62270" in hint.inner_text() and "once" in hint.inner_text()
    visible_headings_have_content(page)
    shot(page, "page-rare-code-hint")
    hint.get_by_role("link", name="62270").click()
    page.locator("#code-title", has_text="62270").wait_for()


def test_a_passage_opens_in_its_document_marked_in_context(page, server: LiveServer) -> None:  # noqa: ANN001
    ask(page, server.base, EXAMPLE)
    answering = page.locator("#passages > li", has_text="for non-spinal procedures")
    answering.locator("a.doc").click()
    mark = page.locator("#doc-view mark.passage-here")
    mark.wait_for()
    assert "#doc=" in page.url and "chunk=" in page.url
    assert page.locator("#doc-title").inner_text() == "Wiki Difference between 77002 & 77003"
    assert "for non-spinal procedures" in mark.inner_text()
    whole = page.locator("#doc-body").inner_text()
    assert len(whole) > len(mark.inner_text()) * 3  # the passage in its context
    assert mark.locator("mark.code", has_text="77002").count() >= 1
    assert mark.is_visible()  # scrolled to
    shot(page, "page-document")
    page.get_by_role("link", name="Back to the results").click()
    page.locator("#lead-code .code-link").wait_for()


def test_evidence_outside_the_shown_passages_links_to_its_document(
    page, server: LiveServer
) -> None:  # noqa: ANN001
    page.goto(server.base + "/#q=" + EXAMPLE.replace(" ", "+") + "&k=1")
    page.locator("#lead-code .code-link").wait_for()
    shown = page.locator("#passages > li").get_attribute("data-chunk")
    away = page.locator("#answer a.to-document").first
    away.wait_for()
    assert "not among the passages shown" in away.inner_text()
    away.click()
    mark = page.locator("#doc-view mark.passage-here")
    mark.wait_for()
    assert shown not in page.url
    shot(page, "page-evidence-in-document")


def test_the_page_works_from_the_keyboard_alone(page, server: LiveServer) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    page.goto(server.base + "/#")
    page.locator("body").focus()

    def tab_to(predicate: str, limit: int = 40) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            script = f"(() => {{ const a = document.activeElement; return {predicate}; }})()"
            if page.evaluate(script):
                return
        pytest.fail(f"Tab never reached: {predicate}")

    tab_to("a.id === 'question'")
    page.keyboard.type(EXAMPLE)
    page.keyboard.press("Enter")
    page.locator("#lead-code .code-link").first.wait_for()
    tab_to("a.classList.contains('code-link')")
    page.keyboard.press("Enter")
    page.locator("#code-title", has_text="77002").wait_for()
    # The title shows at once; focus moves to it when the lookup has answered. (Polled by
    # Playwright's own injected script: a string given to wait_for_function is re-evaluated
    # in the page, which the page's Content-Security-Policy forbids.)
    expect(page.locator("#code-title")).to_be_focused(timeout=15000)
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "question"


def test_the_page_fits_a_phone(browser, server: LiveServer) -> None:  # noqa: ANN001
    phone_size = {"width": 390, "height": 844}
    context = browser.new_context(
        viewport=phone_size, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    phone = context.new_page()
    phone.goto(server.base + "/")
    phone.get_by_label("Question").fill(EXAMPLE)
    phone.get_by_role("button", name="Search").tap()
    phone.locator("#passages mark", has_text="77002").first.wait_for()
    width = phone.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the page scrolls sideways on a phone: {width}"
    box = phone.get_by_role("button", name="Search").bounding_box()
    assert box and box["height"] >= 40  # a thumb-sized target
    shot(phone, "page-phone")
    context.close()


def test_no_passages_is_said_in_words(page, server: LiveServer) -> None:  # noqa: ANN001
    empty = {"question": "anything", "results": [], "codes": [], "took_ms": 1.0}
    page.route(
        "**/v1/query",
        lambda route: route.fulfill(
            status=200, content_type="application/json", body=json.dumps(empty)
        ),
    )
    ask(page, server.base, "anything")
    page.get_by_role("alert").wait_for()
    assert "No passages found" in page.get_by_role("alert").inner_text()


def test_passage_text_cannot_inject_markup(page, server: LiveServer) -> None:  # noqa: ANN001
    hostile = "<img src=x onerror=\"document.title='pwned'\"> see 77002"
    reply = {
        "question": "q",
        "results": [
            {
                "rank": 1,
                "chunk_id": "evil.txt#0",
                "document": "<b>evil.txt</b>",
                "start": 0,
                "end": len(hostile),
                "text": hostile,
                "context": "",
                "score": 1.0,
                "codes": [
                    {
                        "code": "77002",
                        "system": "CPT",
                        "category": "I",
                        "start": hostile.index("77002"),
                        "end": hostile.index("77002") + 5,
                        "modifiers": [],
                        "role": "mentioned",
                    }
                ],
            }
        ],
        "codes": [],
        "took_ms": 1.0,
    }
    page.route(
        "**/v1/query",
        lambda route: route.fulfill(
            status=200, content_type="application/json", body=json.dumps(reply)
        ),
    )
    ask(page, server.base, "q")
    page.locator("#passages mark", has_text="77002").wait_for()
    assert page.locator("#passages img, #passages b").count() == 0
    assert "<img src=x" in page.locator("#passages").inner_text()
    assert page.title() != "pwned"


def test_the_page_asks_for_the_api_key_when_the_server_wants_one(
    page, keyed_server: LiveServer
) -> None:  # noqa: ANN001
    ask(page, keyed_server.base, EXAMPLE)
    page.get_by_label("API key").wait_for()
    assert "needs an API key" in page.locator("#key-form").inner_text()
    page.get_by_label("API key").fill("not-the-key-at-all")
    page.get_by_role("button", name="Use this key").click()
    page.locator("#key-why", has_text="wrong").wait_for()
    page.get_by_label("API key").fill(SERVED_API_KEY)
    page.get_by_role("button", name="Use this key").click()
    page.locator("#passages mark", has_text="77002").first.wait_for()
    assert page.locator("#key-form").is_hidden()
    shot(page, "page-after-key")


def test_the_api_docs_render_with_no_network(browser, server: LiveServer) -> None:  # noqa: ANN001
    """/docs (Swagger UI) loads its script and style from this server: with every other host
    cut off, it still draws every route."""
    context = browser.new_context(viewport={"width": 1100, "height": 1400})
    elsewhere: list[str] = []

    def only_this_server(route) -> None:  # noqa: ANN001
        if route.request.url.startswith(server.base):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    context.route("**/*", only_this_server)
    docs = context.new_page()
    docs.goto(server.base + "/docs")
    docs.locator(".swagger-ui .opblock-summary-path", has_text="/v1/query").first.wait_for()
    paths = docs.locator(".swagger-ui .opblock-summary-path").all_inner_texts()
    for path in ("/v1/query", "/v1/codes/{code}", "/v1/documents/{document_id}", "/mcp"):
        assert any(path in shown for shown in paths), (path, paths)
    shot(docs, "docs-offline")
    assert elsewhere == [], f"the docs reached other hosts: {elsewhere}"
    context.close()
