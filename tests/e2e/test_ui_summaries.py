"""Metadata, filters and summary jobs in headless Chromium against `quarry serve`, as a user goes about it:
reviews added with their product and rating (typed text and an uploaded file), one review's metadata edited (a
bad value refused at its row), a search narrowed to one product, then a pros-and-cons summary of that product
read by the real local model, with its progress, its points and the documents behind each point.

The small model's wording changes from run to run: what is checked is structure, counts and citations.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ARTIFACTS
from tests.e2e.ui_steps import create_workspace, open_app
from tests.platform_fixtures import LivePlatform

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.llm, pytest.mark.slow]

ROWS = "[data-testid=document-row]"
# (title, product, rating, text): typed in the "Add text" form.
REVIEWS = [
    ("Aurora review 1", "Aurora", "5", "The battery lasts for days and the sound is clear and punchy. Very happy."),
    ("Aurora review 2", "Aurora", "4", "Comfortable to wear all day. Battery life is excellent on long flights."),
    ("Aurora review 3", "Aurora", "2", "The Bluetooth connection drops every few minutes. Very annoying on calls."),
    ("Aurora review 4", "Aurora", "3", "Good noise cancelling on the train, but far too expensive for what it is."),
    ("Borealis review 1", "Borealis", "1", "The kettle leaks at the base and the lid broke after a week."),
    ("Borealis review 2", "Borealis", "4", "The kettle boils water fast and it is quiet. The handle stays cool."),
]
UPLOAD_NAME = "aurora-support-email.txt"
UPLOAD_TEXT = "Dear support, my Aurora headphones sound great but the ear cushions get hot after an hour."
# The review whose metadata is edited: it moves from Aurora to Borealis, so no Aurora filter may find it.
EDITED = "Aurora review 4"
AURORA = {"Aurora review 1", "Aurora review 2", "Aurora review 3", UPLOAD_NAME}
MENTIONED = re.compile(r"^mentioned in (\d+) documents?$")


@pytest.fixture(scope="module")
def review_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("summary-uploads") / UPLOAD_NAME
    path.write_text(UPLOAD_TEXT)
    return path


def _shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"summaries-{name}.png"), full_page=True)


def _row(page: Any, name: str) -> Any:
    return page.locator(f"{ROWS}[data-document-name='{name}']")


def _fill_fields(scope: Any, fields: list[tuple[str, str, str]]) -> None:
    """Set metadata rows ``(name, type label, value)`` in ``scope`` (an open metadata disclosure), adding rows
    as needed: rows already there (kept from the previous document) are overwritten."""
    for n, (key, kind, value) in enumerate(fields, 1):
        if scope.get_by_label(f"Field {n} name", exact=True).count() == 0:
            scope.get_by_role("button", name="Add field").click()
        scope.get_by_label(f"Field {n} name", exact=True).fill(key)
        scope.get_by_label(f"Field {n} type", exact=True).select_option(label=kind)
        scope.get_by_label(f"Field {n} value", exact=True).fill(value)


def _chips(row: Any) -> dict[str, str]:
    chips = row.get_by_test_id("metadata-chip")
    return {
        str(chips.nth(i).get_attribute("data-key")): chips.nth(i).locator(".meta-chip-value").inner_text()
        for i in range(chips.count())
    }


def _add_reviews(page: Any, review_file: Path) -> None:
    """Every review typed in "Add text" with its metadata, and one file uploaded with metadata of its own."""
    page.locator(".add-forms summary", has_text=re.compile(r"^Add text$")).click()
    form = page.get_by_test_id("add-text-form")
    meta = form.get_by_test_id("add-text-metadata")
    meta.locator("summary").click()
    for title, product, rating, text in REVIEWS:
        form.get_by_label("Title", exact=True).fill(title)
        form.get_by_label("Text", exact=True).fill(text)
        _fill_fields(meta, [("product", "Text", product), ("rating", "Number", rating)])
        assert "2 fields" in meta.locator("summary").inner_text()
        form.get_by_role("button", name="Add text").click()
        form.get_by_role("status").filter(has_text=f"Added “{title}”").wait_for()
        _row(page, title).wait_for()

    upload = page.get_by_test_id("upload-metadata")
    upload.locator("summary").click()
    _fill_fields(upload, [("product", "Text", "Aurora"), ("rating", "Number", "3"), ("channel", "Text", "email")])
    page.get_by_test_id("upload-input").set_input_files(str(review_file))

    names = [title for title, *_ in REVIEWS] + [UPLOAD_NAME]
    for name in names:
        _row(page, name).locator("[data-testid=document-status][data-status=processed]").wait_for(timeout=300_000)


def test_metadata_filters_and_a_summary_of_one_product(
    browser_page: Any, live: LivePlatform, review_file: Path
) -> None:
    page = browser_page
    started = time.monotonic()
    open_app(page, live, "/workspaces")
    workspace_id = create_workspace(page, "Product reviews")

    # 1. Reviews with their metadata, typed and uploaded; every row shows its metadata as chips.
    open_app(page, live, f"/documents/{workspace_id}")
    _add_reviews(page, review_file)
    for title, product, rating, _ in REVIEWS:
        assert _chips(_row(page, title)) == {"product": product, "rating": rating}
    assert _chips(_row(page, UPLOAD_NAME)) == {"channel": "email", "product": "Aurora", "rating": "3"}
    _shot(page, "1-documents-with-metadata")

    # 2. Edit one review's metadata: a bad value is refused at its row, then the product changes and a key is added.
    edited = _row(page, EDITED)
    edited.get_by_role("button", name=f"Edit metadata of {EDITED}").click()
    editor = page.get_by_test_id("metadata-editor")
    entries = editor.get_by_test_id("metadata-entry")
    assert [entries.nth(i).get_attribute("data-key") for i in range(entries.count())] == ["product", "rating"]
    rating = editor.locator("[data-testid=metadata-entry][data-key=rating]")
    rating.get_by_label("Field 2 value", exact=True).fill("")
    editor.get_by_test_id("metadata-save").click()
    error = rating.get_by_test_id("metadata-error")
    assert error.inner_text() == "Enter a number."
    assert rating.get_by_label("Field 2 value", exact=True).get_attribute("aria-invalid") == "true"
    assert editor.locator("[data-testid=metadata-entry][data-key=product] [data-testid=metadata-error]").count() == 0
    _shot(page, "2-metadata-bad-value")

    rating.get_by_label("Field 2 value", exact=True).fill("2")
    assert error.count() == 0  # editing the row clears its problem
    editor.get_by_label("Field 1 value", exact=True).fill("Borealis")
    editor.get_by_role("button", name="Add field").click()
    editor.get_by_label("Field 3 name", exact=True).fill("verified")
    editor.get_by_label("Field 3 type", exact=True).select_option(label="Yes/no")
    editor.get_by_label("Field 3 value", exact=True).select_option(label="Yes")
    with page.expect_response(lambda r: r.request.method == "PATCH" and "/documents/" in r.url) as patched:
        editor.get_by_test_id("metadata-save").click()
    assert patched.value.status == 200, patched.value.text()
    assert patched.value.request.post_data_json == {"metadata": {"product": "Borealis", "rating": 2, "verified": True}}
    editor.get_by_role("status").filter(has_text="Saved.").wait_for()
    assert _chips(edited) == {"product": "Borealis", "rating": "2", "verified": "yes"}
    _shot(page, "3-metadata-saved")
    editor.get_by_role("button", name=f"Close metadata of {EDITED}").click()
    assert editor.count() == 0
    # The edit is stored: a reload shows the same chips.
    page.reload()
    page.wait_for_selector("[data-testid=connection-status][data-status=open]")
    _row(page, EDITED).wait_for()
    assert _chips(_row(page, EDITED)) == {"product": "Borealis", "rating": "2", "verified": "yes"}

    # 3. Search with a filter: every hit is an Aurora document (the edited review no longer is one).
    open_app(page, live, f"/search/{workspace_id}")
    page.get_by_test_id("search-input").fill("battery life and sound of the headphones")
    page.get_by_label("Top k").fill("10")
    toggle = page.get_by_test_id("search-filter-toggle")
    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "true"
    builder = page.get_by_role("group", name="Filter by metadata")
    builder.get_by_role("button", name="Add condition").click()
    builder.get_by_label("Key of condition 1").fill("product")
    assert builder.get_by_label("Operator of condition 1").input_value() == "eq"
    builder.get_by_label("Value of condition 1").fill("Aurora")
    summary = page.get_by_test_id("filter-summary")
    assert "Aurora" in summary.get_by_test_id("filter-description").inner_text()
    with page.expect_response(lambda r: r.url.endswith("/search") and r.request.method == "POST") as searched:
        page.get_by_test_id("search-submit").click()
    assert searched.value.request.post_data_json["filters"] == {"product": "Aurora"}
    page.get_by_test_id("search-results").wait_for()
    names = page.get_by_test_id("hit-name").all_inner_texts()
    assert names and set(names) <= AURORA, names
    _shot(page, "4-search-filtered")

    summary.get_by_role("button", name="Clear filter").click()
    assert page.get_by_test_id("filter-summary").count() == 0
    assert page.get_by_test_id("filter-row").count() == 0
    assert toggle.inner_text().strip() == "Filter"
    with page.expect_response(lambda r: r.url.endswith("/search") and r.request.method == "POST") as searched:
        page.get_by_test_id("search-submit").click()
    assert "filters" not in searched.value.request.post_data_json
    page.get_by_test_id("search-results").wait_for()
    everything = set(page.get_by_test_id("hit-name").all_inner_texts())
    assert everything - AURORA, everything  # unfiltered, the other product's reviews come back too

    # 4. Summaries: a filter that selects nothing is refused, then the pros and cons of Aurora.
    page.get_by_role("link", name="Summaries", exact=True).click()
    page.wait_for_url(re.compile(r"#/summaries/"))
    if workspace_id not in page.url:
        open_app(page, live, f"/summaries/{workspace_id}")
    form = page.get_by_role("form", name="Start a summary")
    assert form.get_by_label("Kind", exact=True).locator("option:checked").inner_text() == "Pros and cons"
    form.get_by_role("button", name="Add condition").click()
    form.get_by_label("Key of condition 1").fill("product")
    form.get_by_label("Value of condition 1").fill("Nimbus")
    with page.expect_response(lambda r: r.url.endswith("/summaries") and r.request.method == "POST") as refused:
        form.get_by_role("button", name="Start summary").click()
    assert refused.value.status == 422
    nothing = form.get_by_test_id("summary-no-documents")
    assert nothing.get_attribute("role") == "alert"
    assert "No documents match." in nothing.inner_text() and "product = Nimbus" in nothing.inner_text()
    assert page.get_by_test_id("summary-job").count() == 0
    _shot(page, "5-no-documents")

    form.get_by_label("Value of condition 1").fill("Aurora")
    assert nothing.count() == 0  # changing the filter clears the alert
    with page.expect_response(lambda r: r.url.endswith("/summaries") and r.request.method == "POST") as accepted:
        form.get_by_role("button", name="Start summary").click()
    assert accepted.value.status == 202, accepted.value.text()
    assert accepted.value.request.post_data_json["filter"] == {"product": "Aurora"}
    job_id = accepted.value.json()["id"]
    job = page.locator(f"[data-testid=summary-job][data-job-id='{job_id}']")
    job.wait_for()
    assert "product = Aurora" in job.get_by_test_id("summary-filter").inner_text()
    bar = job.get_by_role("progressbar", name=re.compile(r"^Progress of Pros and cons of .*Aurora"))

    # Live progress, read as the screen polls: it only goes forward, and ends at every document read.
    seen: list[tuple[str, str]] = []
    deadline = time.monotonic() + 600
    while True:
        status = str(job.get_attribute("data-status"))
        if bar.count():
            seen.append((status, str(bar.get_attribute("value") or "")))
        if status not in ("queued", "running"):
            break
        assert time.monotonic() < deadline, f"the summary did not finish: {seen[-5:]}"
        page.wait_for_timeout(1_000)
    assert status == "succeeded", (status, job.inner_text())
    assert any(s in ("queued", "running") for s, _ in seen), seen  # it was seen moving, not only done
    read = [int(v) for _, v in seen if v]
    assert read == sorted(read), read
    assert bar.get_attribute("value") == bar.get_attribute("max") == str(len(AURORA))
    progress = job.get_by_test_id("summary-progress-text").inner_text()
    assert progress.startswith(f"{len(AURORA)} of {len(AURORA)} documents read"), progress
    assert job.get_by_test_id("summary-status").inner_text() == "done"
    assert job.get_by_test_id("summary-job-error").count() == 0
    assert job.get_by_test_id("summary-failed-batches").count() == 0
    _shot(page, "6-summary-done")

    # The result: Pros / Cons with points, each mentioned in at least one document, citing Aurora documents only.
    result = job.get_by_test_id("summary-result")
    assert result.inner_text().startswith(f"From {len(AURORA)} documents")
    groups = result.get_by_test_id("summary-group")
    assert groups.count() >= 1, result.inner_text()
    labels = {"pro": "Pros", "con": "Cons"}
    cited: dict[str, str] = {}
    for g in range(groups.count()):
        group = groups.nth(g)
        kind = str(group.get_attribute("data-kind"))
        assert kind in labels, kind
        assert group.get_by_role("heading").inner_text() == labels[kind]
        points = group.get_by_test_id("summary-point")
        assert points.count() >= 1
        for p in range(points.count()):
            point = points.nth(p)
            assert point.locator(".summary-point-text").inner_text().strip()
            counted = MENTIONED.match(point.get_by_test_id("summary-point-count").inner_text())
            assert counted, point.inner_text()
            citations = point.get_by_test_id("summary-citation")
            names_here = citations.all_inner_texts()
            assert names_here and set(names_here) <= AURORA, names_here
            assert len(set(names_here)) == len(names_here)
            assert 1 <= len(names_here) <= int(counted.group(1)) <= len(AURORA), point.inner_text()
            for c in range(citations.count()):
                cited[citations.nth(c).inner_text()] = str(citations.nth(c).get_attribute("data-document-id"))
    assert EDITED not in cited

    # A citation opens that document's preview.
    name, document_id = sorted(cited.items())[0]
    job.get_by_test_id("summary-citation").filter(has_text=name).first.click()
    preview = page.get_by_test_id("document-preview")
    preview.get_by_test_id("document-preview-text").wait_for()
    assert name in preview.get_by_test_id("document-preview-name").inner_text()
    texts = {title: text for title, _, _, text in REVIEWS} | {UPLOAD_NAME: UPLOAD_TEXT}
    assert texts[name][:40] in preview.get_by_test_id("document-preview-text").inner_text()
    assert preview.locator("[data-testid=metadata-chip][data-key=product] .meta-chip-value").inner_text() == "Aurora"
    assert document_id
    _shot(page, "7-citation-preview")
    page.keyboard.press("Escape")
    assert preview.count() == 0
    print(f"summaries e2e took {time.monotonic() - started:.0f} s; progress seen: {seen}; cited: {sorted(cited)}")
