"""Summary jobs end to end on the fakes: selection by filter, map-reduce with citations and counts, progress,
cost, failures, cancellation, resume after a crash, incremental runs, and the requests' errors."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from quarry.adapters.local_schedules import LocalRunJournal
from quarry.adapters.memory_usage import InMemoryUsageLedger
from quarry.errors import BudgetExhausted, Conflict, InvalidInput, NotFound, UpstreamError
from quarry.models import DocumentStatus, UsageEntry, UsageScope, UsageTotal, utcnow
from quarry.pricing import token_cost
from quarry.services.access import WorkspaceAccess
from quarry.services.budget import TokenBudget
from quarry.services.models_registry import ModelRegistry
from quarry.services.summaries import EMPTY_PLAN_KEY, SummarySpec, run_prefix
from quarry.services.workspaces import WorkspaceService
from quarry.summary_models import PointKind, SummaryJob, SummaryStatus
from tests.fakes import FakeVectorIndex, RecordingWorkflow
from tests.unit.services.summary_fixtures import ASPECTS, OWNER, PRICED, ReviewerChat, SummaryWorld, review

PROS_CONS = SummarySpec(kind="pros_cons", filter={"product": "X"})


def world_with_reviews(**kw: Any) -> SummaryWorld:
    """Ten reviews of product X (battery x6, dim x4, cheap x3, charges x2) and five of product Y."""
    world = SummaryWorld(**kw)
    x_reviews = [
        ("battery", "dim"),
        ("battery",),
        ("battery", "cheap"),
        ("dim",),
        ("battery", "charges"),
        ("cheap", "dim"),
        ("battery",),
        ("charges",),
        ("battery", "dim", "cheap"),
        (),
    ]
    for aspects in x_reviews:
        world.add(review(*aspects), fields={"product": "X"})
    for _ in range(5):
        world.add(review("price", "battery"), fields={"product": "Y"})
    return world


def ids_of(world: SummaryWorld, product: str) -> set[str]:
    return {
        key[1]
        for key, doc in world.catalog.documents.items()
        if doc.metadata.get("fields", {}).get("product") == product
    }


def cited_with(world: SummaryWorld, word: str, product: str = "X") -> set[str]:
    out = set()
    for doc_id in ids_of(world, product):
        text = world.blobs.get(f"workspaces/ws/documents/{doc_id}/preview/text.txt").decode()
        if word in text.lower():
            out.add(doc_id)
    return out


def test_a_job_summarises_the_selected_documents_with_citations_and_counts() -> None:
    world = world_with_reviews()
    job = world.service.create(OWNER, "ws", PROS_CONS)

    assert job.status is SummaryStatus.SUCCEEDED, job.error
    assert job.result is not None
    points = {(p.kind, p.text): p for p in job.result.points}
    assert set(points) == {
        (PointKind.PRO, "Long battery life"),
        (PointKind.PRO, "Charges fast"),
        (PointKind.CON, "Screen too dim"),
        (PointKind.CON, "Feels cheap"),
    }  # "Too expensive" is said of product Y only: the filter kept those reviews out
    selected = ids_of(world, "X")
    for (_kind, text), point in points.items():
        word = {"Long battery life": "battery", "Charges fast": "charges", "Screen too dim": "dim"}.get(text, "cheap")
        assert set(point.document_ids) == cited_with(world, word), text  # every supporting document, no other
        assert set(point.document_ids) <= selected
        assert point.count == len(set(point.document_ids))
    assert points[(PointKind.PRO, "Long battery life")].count == 6
    # Pros first, then cons, each most mentioned first.
    assert [p.kind for p in job.result.points] == [PointKind.PRO, PointKind.PRO, PointKind.CON, PointKind.CON]
    assert [p.count for p in job.result.points] == [6, 2, 4, 3]
    assert job.result.documents_read == 10
    assert set(job.result.document_names) == {d for p in job.result.points for d in p.document_ids}
    assert job.result.document_names[min(selected)] == "review-001.txt"

    assert job.progress.documents_total == 10 and job.progress.documents_read == 10
    assert job.progress.batches_total == 3 and job.progress.batches_done == 3 and job.progress.batches_failed == 0
    assert job.runs == 1 and job.started_at is not None and job.finished_at is not None
    assert job.watermark == job.started_at


def test_tokens_and_cost_come_from_the_models_usage() -> None:
    world = world_with_reviews()
    job = world.service.create(OWNER, "ws", PROS_CONS)

    prompts = sum(sum(len(t.content.split()) for t in call) for call in world.chat.calls)
    assert job.prompt_tokens == prompts > 0
    assert job.completion_tokens > 0
    assert job.cost_usd == pytest.approx(token_cost(PRICED, job.prompt_tokens, job.completion_tokens))


def test_the_steps_write_the_plan_the_state_machine_reads() -> None:
    """plan -> map_batch x N -> reduce, payload in and out, as the Step Functions workflow calls them."""
    world = world_with_reviews(inline=False)
    job = world.service.create(OWNER, "ws", PROS_CONS)
    assert job.status is SummaryStatus.QUEUED and world.started == [
        {"workspace_id": "ws", "job_id": job.id, "run_id": job.run_id}
    ]
    planned = world.service.plan(world.started[0])
    assert planned == {
        "workspace_id": "ws",
        "job_id": job.id,
        "run_id": job.run_id,
        "batches": 3,
        "plan_key": run_prefix("ws", job.id, str(job.run_id)) + "plan.json",
    }
    items = json.loads(world.blobs.get(planned["plan_key"]))
    assert items == [{"workspace_id": "ws", "job_id": job.id, "run_id": job.run_id, "index": i} for i in range(3)]
    running = world.store.get_job("ws", job.id)
    assert running is not None and running.status is SummaryStatus.RUNNING
    assert running.progress.documents_total == 10 and running.progress.batches_total == 3
    assert world.service.plan(world.started[0]) == planned  # planning again: the stored plan

    assert world.service.map_batch(items[0])["index"] == 0
    after_one = world.store.get_job("ws", job.id)
    assert after_one is not None and after_one.progress.batches_done == 1 and after_one.progress.documents_read == 4
    assert after_one.prompt_tokens > 0
    for item in items[1:]:
        world.service.map_batch(item)
    assert world.service.reduce(world.started[0]) == {"status": "succeeded", "points": 4}
    result = json.loads(world.blobs.get(run_prefix("ws", job.id, str(job.run_id)) + "result.json"))
    assert result["points"][0]["text"] == "Long battery life"


def test_memory_stays_flat_a_batch_reads_only_its_own_documents() -> None:
    world = world_with_reviews(inline=False)
    job = world.service.create(OWNER, "ws", PROS_CONS)
    world.blobs.reads.clear()
    world.service.plan(world.started[0])
    assert not [k for k in world.blobs.reads if k.endswith("text.txt")]  # planning reads no document text
    world.blobs.reads.clear()
    world.service.map_batch({**world.started[0], "index": 1})
    texts = [k for k in world.blobs.reads if k.endswith("text.txt")]
    batch = json.loads(world.blobs.get(run_prefix("ws", job.id, str(job.run_id)) + "batch-1.json"))
    assert len(texts) == len(batch) == 4


def test_a_filter_that_selects_nothing_is_a_422_naming_it() -> None:
    world = world_with_reviews()
    with pytest.raises(InvalidInput, match=r"no documents match the filter \(product = Z\)"):
        world.service.create(OWNER, "ws", SummarySpec(kind="themes", filter={"product": "Z"}))
    world.add("unprocessed", fields={"product": "Z"}, status=DocumentStatus.PROCESSING)
    with pytest.raises(InvalidInput, match="no documents match"):
        world.service.create(OWNER, "ws", SummarySpec(kind="themes", filter={"product": "Z"}))
    assert world.store.records == {}


def test_a_scheduled_job_with_nothing_yet_is_accepted_and_its_run_ends_no_documents() -> None:
    world = world_with_reviews()
    spec = SummarySpec(kind="pros_cons", filter={"product": "Z"}, schedule="cron(0 6 * * ? *)")
    job = world.service.create(OWNER, "ws", spec)
    assert job.status is SummaryStatus.NO_DOCUMENTS
    assert job.error == "no documents match the filter (product = Z)" and job.result is None
    assert world.schedules.schedules == {("ws", job.id): "cron(0 6 * * ? *)"}
    assert world.service.next_run_at(job) is not None and job.watermark is None

    world.add(review("battery"), fields={"product": "Z"})
    again = world.service.run_scheduled("ws", job.id)
    assert again is not None and again.status is SummaryStatus.SUCCEEDED and again.runs == 2
    assert again.result is not None and [p.text for p in again.result.points] == ["Long battery life"]


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (SummarySpec(kind="opinions"), "kind"),
        (SummarySpec(kind="custom"), "instructions"),
        (SummarySpec(kind="custom", instructions="x" * 2001), "instructions"),
        (SummarySpec(kind="themes", language="Klingon 2"), "language"),
        (SummarySpec(kind="themes", language="x" * 41), "language"),
        (SummarySpec(kind="themes", max_points=0), "max_points"),
        (SummarySpec(kind="themes", max_points=21), "max_points"),
        (SummarySpec(kind="themes", schedule="cron(0 6 * * *)"), "schedule"),
        (SummarySpec(kind="themes", schedule="rate(5 minutes)"), "schedule"),
        (SummarySpec(kind="themes", filter={"rating": {"gte": "high"}}), "filter.rating"),
        (SummarySpec(kind="themes", filter={"2bad": 1}), "filter"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(spec: SummarySpec, field: str) -> None:
    world = world_with_reviews()
    with pytest.raises(InvalidInput) as failure:
        world.service.create(OWNER, "ws", spec)
    assert failure.value.message.startswith(f"{field}")
    assert world.store.records == {}


def test_a_workspace_the_caller_cannot_read_is_a_404_everywhere() -> None:
    world = world_with_reviews()
    job = world.service.create(OWNER, "ws", PROS_CONS)
    for call in (
        lambda: world.service.create("mallory", "ws", PROS_CONS),
        lambda: world.service.create("mallory", "ws", SummarySpec(kind="nonsense")),  # 404 before 422
        lambda: world.service.list_jobs("mallory", "ws"),
        lambda: world.service.get("mallory", "ws", job.id),
        lambda: world.service.delete("mallory", "ws", job.id),
        lambda: world.service.run_again("mallory", "ws", job.id),
        lambda: world.service.get(OWNER, "ws", "no-such-job"),
    ):
        with pytest.raises(NotFound):
            call()


def test_a_batch_that_keeps_failing_is_reported_not_dropped() -> None:
    def fail_second_batch(call: int) -> None:
        if call in (5, 6):  # the first document of batch 2, then the first again on its retry
            raise UpstreamError("model unavailable")

    world = world_with_reviews(chat=ReviewerChat(before_map=fail_second_batch))
    job = world.service.create(OWNER, "ws", PROS_CONS)

    assert job.status is SummaryStatus.SUCCEEDED
    assert job.progress.batches_failed == 1 and job.progress.batches_done == 2
    assert job.error == "1 of 3 batches failed after retries; their documents are not in the summary"
    assert job.result is not None and job.result.documents_read == 6
    failed = json.loads(world.blobs.get(run_prefix("ws", job.id, str(job.run_id)) + "map-1.failed.json"))
    assert failed["error"] == {"Error": "UpstreamError", "Cause": "model unavailable"}
    assert job.progress.documents_read == 6


def test_when_every_batch_fails_the_job_fails() -> None:
    def always(call: int) -> None:
        raise UpstreamError("model unavailable")

    world = world_with_reviews(chat=ReviewerChat(before_map=always))
    job = world.service.create(OWNER, "ws", PROS_CONS)
    assert job.status is SummaryStatus.FAILED and job.error == "every batch failed (3 of 3)"
    assert job.result is None and job.progress.batches_failed == 3


def test_a_reply_nothing_can_be_read_from_gets_one_repair_and_none_gets_none() -> None:
    chat = ReviewerChat(scripted=["Here is a summary of the review, it is mixed.", "NONE"])
    world = world_with_reviews(chat=chat)
    job = world.service.create(OWNER, "ws", PROS_CONS)
    assert job.status is SummaryStatus.SUCCEEDED
    assert chat.map_calls == 11  # ten documents, the first asked twice; the second said NONE: not asked again
    [repair] = [call for call in chat.calls if call[-1].content.startswith("Answer again")]
    assert repair[-2].content.startswith("Here is a summary") and "point (good) | point (bad)" in repair[-1].content
    assert job.result is not None and job.result.documents_read == 10
    counts = {p.text: p.count for p in job.result.points}
    assert counts["Long battery life"] == 6 - 1  # the repair read the first review's; the second said NONE


def test_cancelling_stops_between_batches_and_keeps_what_was_done() -> None:
    world = world_with_reviews()

    def cancel_during_second_batch(call: int) -> None:
        if call == 5:  # the second batch's first document
            (job,) = world.store.list_jobs("ws").items
            world.service.cancel(OWNER, "ws", job.id)

    world.chat.before_map = cancel_during_second_batch
    job = world.service.create(OWNER, "ws", PROS_CONS)
    assert job.status is SummaryStatus.CANCELLED and job.finished_at is not None
    assert job.progress.batches_done == 2 and world.chat.map_calls == 8  # the third batch never ran
    assert job.result is None
    prefix = run_prefix("ws", job.id, str(job.run_id))
    assert world.blobs.head(prefix + "map-0.json") and world.blobs.head(prefix + "map-1.json")
    with pytest.raises(Conflict):
        world.service.cancel(OWNER, "ws", job.id)


def test_delete_cancels_a_running_job_and_removes_a_finished_one() -> None:
    world = world_with_reviews(inline=False)
    job = world.service.create(OWNER, "ws", SummarySpec(kind="themes", schedule="rate(1 day)"))
    cancelled = world.service.delete(OWNER, "ws", job.id)
    assert cancelled is not None and cancelled.status is SummaryStatus.CANCELLED
    assert world.service.plan(world.started[0])["plan_key"] == EMPTY_PLAN_KEY  # the run does nothing
    assert world.service.reduce(world.started[0])["status"] == "cancelled"

    assert world.service.delete(OWNER, "ws", job.id) is None
    assert world.store.get_job("ws", job.id) is None
    assert ("ws", job.id) in world.schedules.deleted
    assert not [k for k in world.blobs.blobs if k.startswith(f"summaries/ws/{job.id}/")]


def test_a_crashed_run_resumes_and_skips_the_batches_it_summarised() -> None:
    world = world_with_reviews(inline=False)
    job = world.service.create(OWNER, "ws", PROS_CONS)
    payload = world.started[0]
    world.service.plan(payload)
    world.service.map_batch({**payload, "index": 0})
    world.service.map_batch({**payload, "index": 1})
    # The process dies here. A new one runs the same run again (the local journal, or Step Functions' retry).
    fresh = ReviewerChat()
    world.build(fresh)
    finished = world.service.run(payload)
    assert fresh.map_calls == 2  # only batch 2 (two documents) was left
    assert finished is not None and finished.status is SummaryStatus.SUCCEEDED
    assert finished.progress.batches_done == 3 and finished.progress.documents_read == 10
    assert finished.result is not None and finished.result.points[0].count == 6
    # Tokens: the first process's two batches and the new one's, each once.
    assert finished.prompt_tokens == sum(
        json.loads(world.blobs.get(run_prefix("ws", job.id, str(job.run_id)) + f"map-{i}.json"))["prompt_tokens"]
        for i in range(3)
    )


def test_quarry_serve_resumes_the_runs_a_stopped_process_left(tmp_path: Path) -> None:
    """The local journal keeps runs started and not finished; the next start runs them again."""
    journal = LocalRunJournal(tmp_path / "summary-runs.json")
    world = world_with_reviews(inline=False, journal=journal)
    job = world.service.create(OWNER, "ws", PROS_CONS)
    world.service.plan(world.started[0])
    world.service.map_batch({**world.started[0], "index": 0})
    assert journal.unfinished() == [("ws", job.id, job.run_id)]
    # The process stops here; the next one (same stores, same journal) resumes at start.
    world.inline = True
    fresh = ReviewerChat()
    world.build(fresh)
    assert [j.id for j in world.service.resume_interrupted()] == [job.id]
    done = world.store.get_job("ws", job.id)
    assert done is not None and done.status is SummaryStatus.SUCCEEDED and done.run_id == job.run_id
    assert fresh.map_calls == 6  # batches 1 and 2; batch 0 was summarised before the stop
    assert journal.unfinished() == [] and world.service.resume_interrupted() == []


def test_a_stopping_process_pauses_a_run_between_batches(tmp_path: Path) -> None:
    journal = LocalRunJournal(tmp_path / "summary-runs.json")
    world = world_with_reviews(journal=journal)
    world.chat.before_map = lambda call: world.service.stop() if call == 1 else None
    job = world.service.create(OWNER, "ws", PROS_CONS)
    assert job.status is SummaryStatus.RUNNING and job.progress.batches_done == 1
    assert journal.unfinished() == [("ws", job.id, job.run_id)]  # resumed at the next start


def test_a_step_repeated_by_the_workflow_changes_nothing() -> None:
    world = world_with_reviews(inline=False)
    job = world.service.create(OWNER, "ws", PROS_CONS)
    payload = world.started[0]
    world.service.plan(payload)
    for index in range(3):
        world.service.map_batch({**payload, "index": index})
    assert world.service.map_batch({**payload, "index": 0}) == {"index": 0, "points": 3}
    assert world.chat.map_calls == 10
    assert world.service.record_failed_batch({**payload, "index": 0}) == {"index": 0, "failed": False}
    first = world.service.reduce(payload)
    done = world.store.get_job("ws", job.id)
    assert world.service.reduce(payload) == first
    assert world.store.get_job("ws", job.id) == done


def test_a_second_run_reads_only_new_documents_and_merges_them_in() -> None:
    world = world_with_reviews()
    job = world.service.create(OWNER, "ws", PROS_CONS)
    assert job.result is not None
    for _ in range(3):
        world.add(review("battery", "price"), fields={"product": "X"}, updated_at=utcnow() + timedelta(seconds=5))
    world.chat.calls.clear()
    again = world.service.run_again(OWNER, "ws", job.id)

    assert again.status is SummaryStatus.SUCCEEDED and again.runs == 2
    assert again.progress.documents_total == 3 and again.progress.batches_total == 1
    assert again.result is not None
    counts = {p.text: p.count for p in again.result.points}
    assert counts["Long battery life"] == 9 and counts["Too expensive"] == 3 and counts["Screen too dim"] == 4
    assert again.result.documents_read == 13
    assert again.prompt_tokens > job.prompt_tokens  # spend adds up over the runs
    assert again.watermark is not None and job.watermark is not None and again.watermark > job.watermark


def test_a_run_with_nothing_new_keeps_the_result() -> None:
    world = world_with_reviews()
    job = world.service.create(OWNER, "ws", PROS_CONS)
    again = world.service.run_again(OWNER, "ws", job.id)
    assert again.status is SummaryStatus.SUCCEEDED and again.result == job.result
    assert again.progress.documents_total == 0


def test_run_again_while_running_is_a_conflict() -> None:
    world = world_with_reviews(inline=False)
    job = world.service.create(OWNER, "ws", PROS_CONS)
    with pytest.raises(Conflict):
        world.service.run_again(OWNER, "ws", job.id)


def test_a_scheduled_start_without_a_run_id_gets_one_unless_a_run_is_in_flight() -> None:
    """EventBridge Scheduler starts the state machine with {workspace_id, job_id}: plan names the run."""
    world = world_with_reviews(inline=False)
    job = world.service.create(OWNER, "ws", SummarySpec(kind="themes", schedule="rate(1 day)"))
    skipped = world.service.plan({"workspace_id": "ws", "job_id": job.id})
    assert skipped["batches"] == 0 and skipped["plan_key"] == EMPTY_PLAN_KEY
    assert world.service.reduce(skipped)["status"] == "skipped"
    world.service.run(world.started[0])
    finished = world.store.get_job("ws", job.id)
    assert finished is not None and finished.status is SummaryStatus.SUCCEEDED

    planned = world.service.plan({"workspace_id": "ws", "job_id": job.id})
    assert planned["run_id"] != job.run_id and planned["batches"] == 0  # nothing new since the first run
    rerun = world.store.get_job("ws", job.id)
    assert rerun is not None and rerun.run_id == planned["run_id"] and rerun.runs == 2
    assert world.service.reduce(planned)["status"] == "succeeded"


def test_the_summary_is_rewritten_into_the_requested_language_with_citations_unchanged() -> None:
    world = world_with_reviews()
    job = world.service.create(OWNER, "ws", SummarySpec(kind="pros_cons", filter={"product": "X"}, language="German"))
    assert job.status is SummaryStatus.SUCCEEDED and job.result is not None
    english = world_with_reviews().service.create(OWNER, "ws", PROS_CONS).result
    assert english is not None
    assert [p.text for p in job.result.points] == [p.text.upper() for p in english.points]
    assert [sorted(p.document_ids) for p in job.result.points] == [sorted(p.document_ids) for p in english.points]
    translate = world.chat.calls[-1]
    assert translate[-1].content.startswith("Translate into German")
    assert "Write the points in German." in world.chat.calls[0][0].content  # the map prompt asks for it too


def test_custom_and_themes_jobs_use_their_own_labels() -> None:
    world = world_with_reviews()
    world.chat.scripted = ["people like the battery", "NONE", "people like the battery | great case (good)"]
    job = world.service.create(
        OWNER,
        "ws",
        SummarySpec(kind="custom", filter={"product": "X"}, instructions="What about the battery?", max_points=20),
    )
    first = world.chat.calls[0]
    assert first[-1].content.startswith("Question: What about the battery?\nDocument: ")
    assert job.result is not None
    points = {p.text: (p.kind, p.count) for p in job.result.points}
    assert points["People like the battery"] == (PointKind.POINT, 2)  # documents 1 and 3
    assert points["Great case"] == (PointKind.POINT, 1)  # a judgement is no label of a custom point
    themes = world_with_reviews()
    themes.chat.scripted = ["THEME: battery | delivery (good)"]
    done = themes.service.create(OWNER, "ws", SummarySpec(kind="themes", filter={"product": "X"}, max_points=20))
    assert done.result is not None and {"Battery", "Delivery"} <= {p.text for p in done.result.points}


def test_jobs_are_listed_newest_first() -> None:
    world = world_with_reviews()
    first = world.service.create(OWNER, "ws", PROS_CONS)
    second = world.service.create(OWNER, "ws", SummarySpec(kind="themes"))
    listed: list[SummaryJob] = world.service.list_jobs(OWNER, "ws").items
    assert [j.id for j in listed] == [second.id, first.id]


def test_two_thousand_reviews_in_batches_with_exact_counts() -> None:
    """The issue's scale on the fakes: 125 batches of 16, every count the number of reviews saying it."""
    world = SummaryWorld(batch_documents=16)
    aspects = list(ASPECTS)
    expected = dict.fromkeys(aspects, 0)
    for n in range(2000):
        said = [a for i, a in enumerate(aspects) if n % (i + 2) == 0]
        for a in said:
            expected[a] += 1
        world.add(review(*said), fields={"product": "X"})
    job = world.service.create(OWNER, "ws", SummarySpec(kind="pros_cons", filter={"product": "X"}))

    assert job.status is SummaryStatus.SUCCEEDED
    assert job.progress.batches_total == job.progress.batches_done == 125
    assert job.result is not None and job.result.documents_read == 2000
    counts = {p.text: p.count for p in job.result.points}
    assert counts == {ASPECTS[a][1]: expected[a] for a in aspects}
    assert all(len(p.document_ids) == min(p.count, 25) for p in job.result.points)  # citations capped, not counts


def test_the_state_machines_catch_fails_the_run_with_the_reason() -> None:
    world = world_with_reviews(inline=False)
    job = world.service.create(OWNER, "ws", PROS_CONS)
    world.service.plan(world.started[0])
    cause = json.dumps({"errorType": "UpstreamError", "errorMessage": "bedrock is unavailable", "stackTrace": []})
    answer = world.service.fail_run({**world.started[0], "error": {"Error": "UpstreamError", "Cause": cause}})
    failed = world.store.get_job("ws", job.id)
    assert answer == {"status": "failed"}
    assert failed is not None and failed.status is SummaryStatus.FAILED
    assert failed.error == "the run failed: bedrock is unavailable"
    # A scheduled start that failed to plan has no run_id: the job's current run is meant; repeating is harmless.
    assert world.service.fail_run({"workspace_id": "ws", "job_id": job.id, "error": {"Error": "X"}}) == {
        "status": "failed"
    }
    assert world.service.fail_run({"workspace_id": "ws", "job_id": "gone"}) == {"status": "skipped"}


# --------------------------------------------------------------------------- spend: usage and the allowance


def _spent_today(ledger: InMemoryUsageLedger, scope: UsageScope, key: str) -> UsageTotal:
    today = utcnow().date()
    total = UsageTotal(today, "")
    for row in ledger.totals(scope, key, since=today, until=today):
        total = UsageTotal(
            today,
            row.model,
            total.requests + row.requests,
            total.prompt_tokens + row.prompt_tokens,
            total.completion_tokens + row.completion_tokens,
            total.cost_usd + row.cost_usd,
        )
    return total


def test_a_runs_tokens_are_counted_in_the_usage_ledger_once_per_batch() -> None:
    ledger = InMemoryUsageLedger()
    world = world_with_reviews(usage=ledger)
    job = world.service.create(OWNER, "ws", PROS_CONS)
    assert job.status is SummaryStatus.SUCCEEDED and job.prompt_tokens > 0

    mine = _spent_today(ledger, UsageScope.USER, OWNER)
    assert (mine.model, mine.requests) == (PRICED, 3)  # one entry per batch, like one per chat answer
    assert (mine.prompt_tokens, mine.completion_tokens) == (job.prompt_tokens, job.completion_tokens)
    assert mine.cost_usd == pytest.approx(job.cost_usd)
    assert _spent_today(ledger, UsageScope.WORKSPACE, "ws") == mine

    world.service.map_batch({**_run_ids(job), "index": 0})  # a step repeated by the workflow counts nothing
    assert _spent_today(ledger, UsageScope.USER, OWNER) == mine


def _run_ids(job: SummaryJob) -> dict[str, Any]:
    return {"workspace_id": job.workspace_id, "job_id": job.id, "run_id": job.run_id}


def _spend_all_of(ledger: InMemoryUsageLedger, user: str, tokens: int) -> None:
    ledger.record(UsageEntry("chat-1", user, None, PRICED, tokens, 0, 0.0))


def test_a_spent_allowance_refuses_a_new_job_and_a_new_run_as_chat_is_refused() -> None:
    ledger = InMemoryUsageLedger()
    world = world_with_reviews(usage=ledger, budget=TokenBudget(ledger=ledger, daily_tokens=10_000))
    done = world.service.create(OWNER, "ws", PROS_CONS)
    assert done.status is SummaryStatus.SUCCEEDED
    _spend_all_of(ledger, OWNER, 10_000)
    runs_started = len(world.started)

    with pytest.raises(BudgetExhausted) as refused:
        world.service.create(OWNER, "ws", PROS_CONS)
    assert refused.value.status == 429 and refused.value.code == "budget_exhausted"
    assert "daily allowance of 10,000 tokens" in refused.value.message and (refused.value.retry_after or 0) > 0
    with pytest.raises(BudgetExhausted):
        world.service.run_again(OWNER, "ws", done.id)
    assert [job.id for job in world.store.list_jobs("ws").items] == [done.id]  # nothing stored, nothing started
    assert len(world.started) == runs_started
    assert world.store.get_job("ws", done.id) == done


def test_a_run_that_spends_the_allowance_stops_after_its_current_batch() -> None:
    reference = world_with_reviews(inline=False)  # what the first batch costs
    planned = reference.service.create(OWNER, "ws", PROS_CONS)
    reference.service.plan(reference.started[0])
    reference.service.map_batch({**_run_ids(planned), "index": 0})
    first_batch = json.loads(reference.blobs.get(run_prefix("ws", planned.id, str(planned.run_id)) + "map-0.json"))
    first_tokens = first_batch["prompt_tokens"] + first_batch["completion_tokens"]

    ledger = InMemoryUsageLedger()
    today = [utcnow()]
    budget = TokenBudget(ledger=ledger, daily_tokens=first_tokens + 1, clock=lambda: today[0])
    world = world_with_reviews(usage=ledger, budget=budget)
    job = world.service.create(OWNER, "ws", PROS_CONS)  # batch 0 leaves 1 token, batch 1 spends it: 2 of 3

    assert job.status is SummaryStatus.FAILED
    assert job.error is not None and job.error.startswith("stopped after 2 of 3 batches: ")
    assert f"daily allowance of {first_tokens + 1:,} tokens is used up" in job.error
    assert world.chat.map_calls == 8  # the third batch's documents were never sent to the model
    assert job.progress.batches_done == 2 and job.result is None and job.watermark is None
    spent = _spent_today(ledger, UsageScope.USER, OWNER)
    assert (spent.prompt_tokens, spent.completion_tokens) == (job.prompt_tokens, job.completion_tokens)
    assert spent.prompt_tokens + spent.completion_tokens > first_tokens + 1

    with pytest.raises(BudgetExhausted):  # the same day: refused
        world.service.run_again(OWNER, "ws", job.id)
    today[0] += timedelta(days=1)  # the allowance renews at 00:00 UTC
    budget_left = TokenBudget(ledger=ledger, daily_tokens=10_000, clock=lambda: today[0])
    world.budget = budget_left
    world.build()
    again = world.service.run_again(OWNER, "ws", job.id)
    assert again.status is SummaryStatus.SUCCEEDED, again.error
    assert again.progress.documents_total == 10  # the stopped run set no watermark: every document again


def test_the_stop_is_one_marker_every_later_batch_of_the_run_reads() -> None:
    """In AWS the batches are separate steps: the first that finds the allowance spent says so for the run."""
    ledger = InMemoryUsageLedger()
    world = world_with_reviews(usage=ledger, budget=TokenBudget(ledger=ledger, daily_tokens=100), inline=False)
    job = world.service.create(OWNER, "ws", PROS_CONS)
    payload = world.started[0]
    world.service.plan(payload)
    assert world.service.map_batch({**payload, "index": 0})["points"] > 0  # 100 tokens: one batch spends them
    for index in (1, 2):
        assert world.service.map_batch({**payload, "index": index}) == {
            "index": index,
            "points": 0,
            "skipped": True,
            "budget_exhausted": True,
        }
    assert world.blobs.head(run_prefix("ws", job.id, str(job.run_id)) + "budget-exhausted.json") is not None
    assert world.service.reduce(payload)["status"] == "failed"
    failed = world.store.get_job("ws", job.id)
    assert failed is not None and failed.error is not None and "stopped after 1 of 3 batches" in failed.error


# --------------------------------------------------------------------------- the workspace purge


def test_purging_a_workspace_removes_its_jobs_their_schedules_and_stored_runs() -> None:
    world = world_with_reviews(inline=False)
    finished = world.service.create(OWNER, "ws", SummarySpec(kind="themes", schedule="rate(1 day)"))
    world.service.run(world.started[-1])
    running = world.service.create(OWNER, "ws", PROS_CONS)
    world.service.plan(world.started[-1])
    world.service.map_batch({**world.started[-1], "index": 0})
    workspace = world.catalog.get_workspace("ws")
    assert workspace is not None
    world.catalog.put_workspace(replace(workspace, id="other"))
    kept = world.service.create(OWNER, "other", SummarySpec(kind="themes", schedule="rate(1 day)"))
    world.service.plan(world.started[-1])  # nothing there yet: a plan of no batches, stored all the same
    assert {k for k in world.blobs.blobs if k.startswith("summaries/ws/")}
    workspaces = WorkspaceService(
        catalog=world.catalog,
        index=FakeVectorIndex(),
        blobs=world.blobs,
        workflow=RecordingWorkflow(),
        models=ModelRegistry(),
        access=WorkspaceAccess(world.catalog),
        jobs=world.service,
    )

    workspaces.purge("ws")
    workspaces.purge("ws")  # the workflow may run the step again

    assert world.store.list_jobs("ws").items == []
    assert world.store.get_job("ws", finished.id) is None and world.store.get_job("ws", running.id) is None
    assert {("ws", finished.id), ("ws", running.id)} <= set(world.schedules.deleted)
    assert ("ws", finished.id) not in world.schedules.schedules
    assert not [k for k in world.blobs.blobs if k.startswith("summaries/ws/")]
    assert world.store.get_job("other", kept.id) is not None  # another workspace's jobs stay
    assert world.schedules.schedules == {("other", kept.id): "rate(1 day)"}
    assert [k for k in world.blobs.blobs if k.startswith(f"summaries/other/{kept.id}/")]
    # the run that was in flight finds its job gone and does nothing more
    in_flight = {**world.started[-2], "index": 1}
    assert in_flight["job_id"] == running.id
    assert world.service.map_batch(in_flight)["skipped"] is True
    assert world.service.reduce(world.started[-2])["status"] == "skipped"
    assert not [k for k in world.blobs.blobs if k.startswith("summaries/ws/")]


def test_a_document_text_read_before_is_answered_from_the_reply_cache_with_the_same_result() -> None:
    plain = world_with_reviews()
    cached = world_with_reviews(reply_cache=64)
    without = plain.service.create(OWNER, "ws", PROS_CONS)
    with_cache = cached.service.create(OWNER, "ws", PROS_CONS)

    assert with_cache.status is SummaryStatus.SUCCEEDED and with_cache.result is not None
    assert without.result is not None
    assert [(p.kind, p.text, p.count, p.document_ids) for p in with_cache.result.points] == [
        (p.kind, p.text, p.count, p.document_ids) for p in without.result.points
    ]
    assert plain.chat.map_calls == 10
    assert cached.chat.map_calls == 9  # two of product X's reviews say only "The battery lasts for days."
    assert with_cache.prompt_tokens < without.prompt_tokens  # a cached reply costs no token

    again = cached.service.run_again(OWNER, "ws", with_cache.id)
    assert again.status is SummaryStatus.SUCCEEDED and cached.chat.map_calls == 9  # nothing new to read


def test_a_point_copied_into_a_review_that_does_not_say_it_is_dropped_at_the_map() -> None:
    world = SummaryWorld()
    for _ in range(3):
        world.add("The battery lasts for days.", fields={"product": "X"})
    world.chat.scripted = ["long battery life (good) | feels cheap (bad)"] * 3
    job = world.service.create(OWNER, "ws", PROS_CONS)

    assert job.status is SummaryStatus.SUCCEEDED and job.result is not None
    assert [(p.kind, p.text, p.count) for p in job.result.points] == [(PointKind.PRO, "Long battery life", 3)]
    record = json.loads(world.blobs.get(run_prefix("ws", job.id, str(job.run_id)) + "map-0.json"))
    assert record["ungrounded"] == 3


def test_a_pro_or_con_its_own_sentence_contradicts_is_dropped_at_the_map() -> None:
    """Asked about its sentence alone, "The screen is dim outdoors." comes back praise (the fake flips it):
    the con the map read from it is dropped in every review, the points the check confirms stay."""
    world = world_with_reviews(chat=ReviewerChat(contradict={"dim"}))
    job = world.service.create(OWNER, "ws", PROS_CONS)

    assert job.status is SummaryStatus.SUCCEEDED and job.result is not None
    assert {p.text: p.count for p in job.result.points} == {"Long battery life": 6, "Charges fast": 2, "Feels cheap": 3}
    records = [
        json.loads(world.blobs.get(run_prefix("ws", job.id, str(job.run_id)) + f"map-{i}.json"))
        for i in range(job.progress.batches_total)
    ]
    assert sum(record["contradicted"] for record in records) == 4  # the four reviews that say the screen is dim
    assert world.chat.polarity_calls == 6 + 2 + 4 + 3  # one check per pro or con read


def test_points_are_not_polarity_checked_in_a_language_their_documents_are_not_in() -> None:
    """The sentence that holds a point is found by the point's words: across languages there is none."""
    world = world_with_reviews(chat=ReviewerChat(contradict={"dim"}))
    job = world.service.create(OWNER, "ws", SummarySpec(kind="pros_cons", filter={"product": "X"}, language="German"))

    assert job.status is SummaryStatus.SUCCEEDED and job.result is not None
    assert world.chat.polarity_calls == 0
    assert any(p.kind is PointKind.CON and p.count == 4 for p in job.result.points)  # the dim screen, kept


def test_the_points_of_a_review_in_another_language_are_translated_at_the_map() -> None:
    """So they merge with the same points of the other reviews (the fake's translation: upper case)."""
    world = SummaryWorld()
    german = world.add("Der Akku hält tagelang. Das Gehäuse wirkt billig.", fields={"product": "X"})
    world.add(review("battery"), fields={"product": "X"})
    world.chat.scripted = ["Akku hält tagelang (good) | Gehäuse wirkt billig (bad)"]
    job = world.service.create(OWNER, "ws", PROS_CONS)

    assert job.status is SummaryStatus.SUCCEEDED and job.result is not None
    translations = [call for call in world.chat.calls if call[-1].content.startswith("Translate into English")]
    assert "1. Akku hält tagelang\n2. Gehäuse wirkt billig" in translations[0][-1].content  # the map's
    record = json.loads(world.blobs.get(run_prefix("ws", job.id, str(job.run_id)) + "map-0.json"))
    texts = {point["text"]: point["document_ids"] for point in record["points"]}
    assert texts["AKKU HÄLT TAGELANG"] == [german.id] and texts["GEHÄUSE WIRKT BILLIG"] == [german.id]
