"""Summary jobs on the real local platform: `quarry serve` (embedded Postgres, MiniLM, the packaged Qwen model
through llama.cpp, the local workflow) over short reviews that carry a product in their metadata; and
`quarry summarize` from the command line.

What must hold whatever the small model writes: the job succeeds; every point cites documents, and only
documents the filter selected (the other product's reviews are never cited); each citation names its
document; counts are consistent (at least as many as the citations, at most the documents read); progress
reaches its totals; tokens were counted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.platform_fixtures import LivePlatform

pytestmark = pytest.mark.integration

HEADPHONES = [
    "The battery lasts about 30 hours, I charge it once a week. Sound is clear and punchy.",
    "Very comfortable, I wear them all day at work. Battery life is excellent.",
    "The Bluetooth connection drops every few minutes when my phone is in my pocket. Annoying.",
    "Great noise cancelling on the train, I hear nothing. But they are too expensive for what they are.",
    "Sound quality is amazing, deep bass and clear highs.",
    "After two hours my ears hurt, the ear cups press too hard.",
    "Battery easily lasts a long flight and more. Noise cancelling works well.",
    "Connection keeps dropping with my laptop. Had to re-pair them many times.",
    "Overpriced. Cheaper headphones sound just as good.",
    "Light and comfortable, I forget I am wearing them.",
    "The noise cancelling blocks the office chatter completely. Love it.",
    "Lovely sound, rich and detailed. The case feels cheap though.",
    "Bluetooth disconnects randomly, very frustrating during calls.",
    "Battery life is the best I have had in headphones.",
    "Comfortable fit even with glasses.",
    "Too pricey for the build quality you get.",
    "Clear sound and strong bass. Very happy with the audio.",
    "Ear cushions get hot and uncomfortable after an hour.",
    "Der Akku hält ewig, fast eine Woche. Sehr zufrieden.",
    "The active noise cancelling is superb on planes.",
]
GRINDER = [
    "This coffee grinder is loud but grinds evenly.",
    "Grinder makes a mess, coffee grounds everywhere on the counter.",
    "Even grind for espresso, very consistent.",
    "The motor is very noisy in the morning.",
    "Easy to clean and the grind size is easy to set.",
    "Static makes the grounds stick to the container.",
    "Good value for a burr grinder.",
    "It broke after three months, the motor died.",
    "Consistent grind, quiet enough.",
    "Hopper is small, only holds enough beans for a few cups.",
]


def api(live: LivePlatform, method: str, path: str, *, user: str | None = None, **kw: Any) -> httpx.Response:
    return httpx.request(method, f"{live.base_url}/api{path}", headers=live.headers(user), timeout=120, **kw)


@pytest.fixture(scope="module")
def reviews(live: LivePlatform) -> dict[str, Any]:
    """A workspace of 30 processed reviews: 20 of the headphones, 10 of a coffee grinder."""
    created = api(live, "POST", "/workspaces", json={"name": "reviews"})
    assert created.status_code == 201, created.text
    ws = created.json()["id"]
    names: dict[str, str] = {}
    for product, texts in (("aurora-x2", HEADPHONES), ("grindmaster", GRINDER)):
        for n, text in enumerate(texts, 1):
            title = f"{product}-review-{n:02d}"
            body = {"type": "text", "title": title, "text": text, "metadata": {"product": product}}
            added = api(live, "POST", f"/workspaces/{ws}/documents", json=body)
            assert added.status_code == 201, added.text
            names[added.json()["id"]] = product
    deadline = time.monotonic() + 600
    while True:
        listed = api(live, "GET", f"/workspaces/{ws}/documents", params={"limit": 100}).json()["items"]
        if len(listed) == 30 and all(d["status"] == "processed" for d in listed):
            break
        assert not [d for d in listed if d["status"] == "error"], listed
        assert time.monotonic() < deadline, "the reviews were not processed in time"
        time.sleep(1)
    assert {d["metadata"]["product"] for d in listed} == {"aurora-x2", "grindmaster"}
    return {"id": ws, "products": names, "titles": {d["id"]: d["name"] for d in listed}}


def wait_for(live: LivePlatform, ws: str, job_id: str, *, timeout: float = 1500) -> tuple[dict[str, Any], list[int]]:
    """The finished job, and the documents read at each poll (progress as a client sees it)."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    while True:
        job = api(live, "GET", f"/workspaces/{ws}/summaries/{job_id}").json()
        seen.append(job["progress"]["documents_read"])
        if job["status"] not in ("queued", "running"):
            return job, seen
        assert time.monotonic() < deadline, f"the summary job did not finish: {job}"
        time.sleep(1)


def check_points(job: dict[str, Any], selected: set[str], titles: dict[str, str], read: int) -> None:
    points = job["result"]["points"]
    assert points, job
    for point in points:
        ids = [c["document_id"] for c in point["citations"]]
        assert ids and len(set(ids)) == len(ids), point
        assert set(ids) <= selected, f"{point} cites a document the filter did not select"
        assert all(c["document_name"] == titles[c["document_id"]] for c in point["citations"]), point
        assert len(ids) <= point["count"] <= read, point
        assert point["text"].strip(), point


@pytest.mark.llm
@pytest.mark.slow
def test_pros_and_cons_of_one_product_cite_only_its_reviews(live: LivePlatform, reviews: dict[str, Any]) -> None:
    ws = reviews["id"]
    headphones = {doc for doc, product in reviews["products"].items() if product == "aurora-x2"}
    started = api(
        live, "POST", f"/workspaces/{ws}/summaries", json={"filter": {"product": "aurora-x2"}, "kind": "pros_cons"}
    )
    assert started.status_code == 202, started.text
    assert started.json()["filter_description"] == "product = aurora-x2"
    job, seen = wait_for(live, ws, started.json()["id"])

    assert job["status"] == "succeeded", job
    assert seen == sorted(seen)  # progress only goes forward
    progress = job["progress"]
    assert progress["documents_total"] == progress["documents_read"] == 20
    assert progress["batches_done"] == progress["batches_total"] >= 2 and progress["batches_failed"] == 0
    assert job["result"]["documents_read"] == 20
    check_points(job, headphones, reviews["titles"], read=20)
    kinds = [p["kind"] for p in job["result"]["points"]]
    assert set(kinds) <= {"pro", "con"} and kinds == sorted(kinds, key=["pro", "con"].index)
    assert sum(1 for k in kinds if k == "pro") <= 5 and sum(1 for k in kinds if k == "con") <= 5
    assert job["prompt_tokens"] > 0 and job["completion_tokens"] > 0 and job["runs"] == 1
    print(json.dumps(job["result"]["points"], indent=1))  # what the small model made of it, in the test log

    # Run it again: nothing is new, so nothing is read and the result stands.
    again = api(live, "POST", f"/workspaces/{ws}/summaries/{job['id']}/runs")
    assert again.status_code == 202, again.text
    rerun, _ = wait_for(live, ws, job["id"])
    assert rerun["status"] == "succeeded" and rerun["runs"] == 2
    assert rerun["progress"]["documents_total"] == 0 and rerun["result"] == job["result"]


def test_bad_requests_are_refused_before_any_work(live: LivePlatform, reviews: dict[str, Any]) -> None:
    ws = reviews["id"]
    nothing = api(live, "POST", f"/workspaces/{ws}/summaries", json={"filter": {"product": "none"}, "kind": "themes"})
    assert nothing.status_code == 422
    assert nothing.json()["error"]["message"] == "no documents match the filter (product = none)"
    bad = api(live, "POST", f"/workspaces/{ws}/summaries", json={"kind": "themes", "schedule": "cron(0 6 * * *)"})
    assert bad.status_code == 422 and "schedule" in bad.json()["error"]["message"]
    stranger = api(live, "POST", f"/workspaces/{ws}/summaries", json={"kind": "themes"}, user="mallory")
    assert stranger.status_code == 404
    assert api(live, "GET", f"/workspaces/{ws}/summaries", user="mallory").status_code == 404


@pytest.mark.llm
@pytest.mark.slow
def test_quarry_summarize_from_the_command_line(
    tmp_path_factory: pytest.TempPathFactory, pg_database: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "QUARRY_DATA_DIR": str(tmp_path_factory.mktemp("cli-summaries")),
        "QUARRY_PG_DSN": pg_database,
        "HF_HUB_OFFLINE": "1",
    }

    def quarry(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "quarry.cli", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=1500, check=False)

    for product, texts in (("aurora", HEADPHONES[:6]), ("grinder", GRINDER[:3])):
        folder = tmp_path / product
        folder.mkdir()
        for n, text in enumerate(texts, 1):
            (folder / f"{product}-{n}.txt").write_text(text)
        ingested = quarry("ingest", str(folder), "--workspace", "cli-reviews", "--meta", f"product={product}")
        assert ingested.returncode == 0, ingested.stderr

    done = quarry("summarize", "--workspace", "cli-reviews", "--filter", "product=aurora", "--kind", "themes", "--json")
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    assert job["status"] == "succeeded" and job["progress"]["documents_read"] == 6
    titles = {c["document_id"]: c["document_name"] for p in job["result"]["points"] for c in p["citations"]}
    assert all(name.startswith("aurora-") for name in titles.values()), titles
    assert {p["kind"] for p in job["result"]["points"]} == {"theme"}

    shown = quarry("summaries", "list", "--workspace", "cli-reviews")
    assert shown.returncode == 0 and job["id"][:8] in shown.stdout and "succeeded" in shown.stdout
    details = quarry("summaries", "show", job["id"][:8], "--workspace", "cli-reviews")
    assert details.returncode == 0 and "THEME" in details.stdout and "6/6 documents" in details.stdout
    nothing = quarry("summarize", "--workspace", "cli-reviews", "--filter", "product=kettle")
    assert nothing.returncode == 1 and "no documents match the filter (product = kettle)" in nothing.stderr
