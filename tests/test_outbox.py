"""The Slack outbox against the fake Web API: ordering, retries, placeholders, doubt, restarts.

Each test drives faults through the fake (429 with Retry-After, 5xx, held requests, dropped connections,
outages) and asserts what a channel shows afterwards. The outbox's backoff sleep is ``Waits``: it records
every wait it is asked for and returns at once, or holds until ``wake()`` (no test waits in real time).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from slack_sdk.errors import SlackApiError

from bot.core.models import ReleaseKind, ReleaseState
from bot.slack.notifier import SlackNotifier
from bot.slack.outbox import EVENT_TYPE, Failure, OutboxNotifier, OutboxPolicy, classify, outbox_web_client
from bot.store import AsyncStore, Store
from bot.store.outbox import placeholder, placeholder_id
from tests.fakes import FakeSlackWebAPI
from tests.harness import TUESDAY_10AM, MutableClock

CHANNEL, OTHER = "C01RELEASES", "C02BILLING"


class Waits:
    """The outbox's backoff sleep in tests: records each wait; returns at once, or holds while ``held``."""

    def __init__(self, *, held: bool = False) -> None:
        self.seen: list[float] = []
        self.held = held

    async def __call__(self, seconds: float) -> None:
        self.seen.append(seconds)
        if self.held:
            await asyncio.Event().wait()  # only the outbox's wake() (or stop()) ends this wait


def policy(waits: Waits, *, timeout: float = 2.0) -> OutboxPolicy:
    return OutboxPolicy(timeout=timeout, sleep=waits, hand_back_after=5.0)


@asynccontextmanager
async def outbox_on(
    slack: FakeSlackWebAPI,
    db: Path,
    waits: Waits,
    *,
    clock: MutableClock | None = None,
    timeout: float = 2.0,
) -> AsyncIterator[OutboxNotifier]:
    """A started OutboxNotifier over a SQLite file and the fake Slack."""
    store = AsyncStore(Store(db))
    client = outbox_web_client("xoxb-test", slack.base_url, timeout)
    outbox = OutboxNotifier(
        SlackNotifier(client), store, clock=clock or MutableClock(TUESDAY_10AM), policy=policy(waits, timeout=timeout)
    )
    await outbox.start()
    try:
        yield outbox
    finally:
        await outbox.stop()
        store.close()


def texts(slack: FakeSlackWebAPI, channel: str = CHANNEL) -> list[str]:
    """Every message in the channel, replies included, in the order Slack posted them."""
    return [m.text for m in slack.messages(channel)]


def tops(slack: FakeSlackWebAPI, channel: str = CHANNEL) -> list[str]:
    """The ts of the channel's top-level messages."""
    return [m.ts for m in slack.messages(channel) if m.thread_ts is None]


async def test_a_post_slack_takes_returns_its_ts_and_carries_the_outbox_metadata(
    slack: FakeSlackWebAPI, tmp_path: Path
) -> None:
    async with outbox_on(slack, tmp_path / "o.db", Waits()) as outbox:
        ts = await outbox.post(CHANNEL, "parent", [])
        assert placeholder_id(ts) is None, "Slack answered, so the caller gets the real ts"
        reply_ts = await outbox.post(CHANNEL, "reply", [], thread_ts=ts)
        await outbox.update(CHANNEL, ts, "parent (edited)", [])
    [call, _] = slack.calls_to("chat.postMessage")
    assert call.args["metadata"] == {
        "event_type": EVENT_TYPE,
        "event_payload": {"outbox_id": 1, "created": TUESDAY_10AM.isoformat(timespec="microseconds")},
    }
    assert [m.text for m in slack.thread(CHANNEL, ts)] == ["parent (edited)", "reply"]
    assert slack.message(CHANNEL, reply_ts).thread_ts == ts


async def test_while_slack_refuses_callers_get_placeholders_and_the_thread_catches_up_in_order(
    slack: FakeSlackWebAPI, tmp_path: Path
) -> None:
    waits = Waits(held=True)
    async with outbox_on(slack, tmp_path / "o.db", waits) as outbox:
        slack.fail_next("chat.postMessage", status=429, retry_after=3)
        parent = await outbox.post(CHANNEL, "parent", [])
        assert parent == placeholder(1), "rate-limited: the caller carries on with a placeholder"
        # The lane is failing now: later writes queue behind the parent without waiting for Slack.
        first = await outbox.post(CHANNEL, "one", [], thread_ts=parent)
        await outbox.update(CHANNEL, parent, "parent: deploying", [])
        await outbox.post(CHANNEL, "two", [], thread_ts=parent)
        await outbox.update(CHANNEL, parent, "parent: succeeded", [])
        assert (first, texts(slack)) == (placeholder(2), [])
        assert waits.seen == [3.0], "Retry-After is honoured (it is longer than the first backoff)"
        outbox.wake()
        await outbox.drained()
        assert (await outbox.permalink(CHANNEL, parent)).endswith(tops(slack)[0].replace(".", ""))
    [top] = tops(slack)
    assert [m.text for m in slack.thread(CHANNEL, top)] == ["parent: succeeded", "one", "two"]
    assert [c.args["text"] for c in slack.calls_to("chat.update")] == ["parent: succeeded"], (
        "the pending edit was superseded by the newer one"
    )
    assert [c.args.get("thread_ts") for c in slack.calls_to("chat.postMessage")] == [None, top, top]


async def test_backoff_doubles_up_to_the_cap_and_nothing_is_dropped(slack: FakeSlackWebAPI, tmp_path: Path) -> None:
    waits = Waits()
    async with outbox_on(slack, tmp_path / "o.db", waits) as outbox:
        ts = await outbox.post(CHANNEL, "parent", [])
        slack.fail_next("chat.update", times=7, status=500)
        await outbox.update(CHANNEL, ts, "edited", [])
        await outbox.drained()
    assert waits.seen == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert slack.message(CHANNEL, ts).text == "edited"
    assert len(slack.faulted_calls) == 7 and len(slack.calls_to("chat.update")) == 1


async def test_a_post_that_timed_out_but_landed_is_found_not_posted_again(
    slack: FakeSlackWebAPI, tmp_path: Path
) -> None:
    landed = asyncio.Event()

    class SlackFinishesMeanwhile(Waits):
        async def __call__(self, seconds: float) -> None:
            self.seen.append(seconds)
            # Time passes during the backoff: Slack finishes the held request (posts it) meanwhile.
            await slack.wait_for("chat.postMessage", predicate=lambda c: c.delay > 0)
            landed.set()

    waits = SlackFinishesMeanwhile()
    async with outbox_on(slack, tmp_path / "o.db", waits, timeout=0.2) as outbox:
        slack.delay_next("chat.postMessage", 0.6)
        ts = await outbox.post(CHANNEL, "parent", [])
        assert ts == placeholder(1), "no answer within the client timeout"
        await outbox.drained()
        assert landed.is_set()
        assert waits.seen == [outbox.policy.doubt_wait], "a post in doubt waits for late requests to land"
        row = outbox.db.sync.outbox_row(1)
    assert texts(slack) == ["parent"], "posted exactly once"
    assert len(slack.calls_to("chat.postMessage")) == 1
    [lookup] = slack.calls_to("conversations.history")
    assert lookup.args["include_all_metadata"] in ("1", "true")
    assert row is not None and row.state == "sent" and row.sent_ts == slack.messages(CHANNEL)[0].ts


async def test_a_post_in_doubt_stays_in_doubt_while_looking_for_it_fails(
    slack: FakeSlackWebAPI, tmp_path: Path
) -> None:
    class SlackFinishesMeanwhile(Waits):
        async def __call__(self, seconds: float) -> None:
            self.seen.append(seconds)
            await slack.wait_for("chat.postMessage", predicate=lambda c: c.delay > 0)

    waits = SlackFinishesMeanwhile()
    async with outbox_on(slack, tmp_path / "o.db", waits, timeout=0.2) as outbox:
        slack.delay_next("chat.postMessage", 0.5)
        slack.fail_next("conversations.history", status=429, retry_after=2)
        await outbox.post(CHANNEL, "parent", [])
        await outbox.drained()
    assert texts(slack) == ["parent"], "the refused lookup did not clear the doubt: looked again, found it"
    assert len(slack.calls_to("conversations.history")) == 1 and len(slack.faulted_calls) == 1
    assert waits.seen == [10.0, 10.0]


async def test_a_post_in_doubt_is_re_sent_when_slack_refuses_the_lookup_outright(
    slack: FakeSlackWebAPI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with outbox_on(slack, tmp_path / "o.db", Waits()) as outbox:
        slack.fail_next("chat.postMessage", drop_connection=True)
        slack.fail_next("conversations.history", status=200, error="missing_scope")
        await outbox.post(CHANNEL, "parent", [])
        await outbox.drained()
    assert texts(slack) == ["parent"], "not lost for want of the history scope"
    assert any("a duplicate is possible" in r.getMessage() for r in caplog.records)


async def test_a_reply_lost_with_a_dropped_connection_is_looked_for_in_its_thread_then_posted_once(
    slack: FakeSlackWebAPI, tmp_path: Path
) -> None:
    async with outbox_on(slack, tmp_path / "o.db", Waits()) as outbox:
        parent = await outbox.post(CHANNEL, "parent", [])
        slack.fail_next("chat.postMessage", drop_connection=True)
        await outbox.post(CHANNEL, "reply", [], thread_ts=parent)
        await outbox.drained()
    assert [m.text for m in slack.thread(CHANNEL, parent)] == ["parent", "reply"]
    [lookup] = slack.calls_to("conversations.replies")
    assert lookup.args["ts"] == parent and lookup.args["oldest"] == parent


async def test_an_upload_that_timed_out_but_was_shared_is_not_uploaded_again(
    slack: FakeSlackWebAPI, tmp_path: Path
) -> None:
    class SlackFinishesMeanwhile(Waits):
        async def __call__(self, seconds: float) -> None:
            self.seen.append(seconds)
            await slack.wait_for("files.completeUploadExternal", predicate=lambda c: c.delay > 0)

    async with outbox_on(slack, tmp_path / "o.db", SlackFinishesMeanwhile(), timeout=0.2) as outbox:
        parent = await outbox.post(CHANNEL, "weekly summary", [])
        slack.delay_next("files.completeUploadExternal", 0.5)
        await outbox.upload(CHANNEL, parent, "week.png", b"\x89PNG chart", "Releases this week")
        await outbox.drained()
    [_, shared] = slack.thread(CHANNEL, parent)
    assert [f["name"] for f in shared.files] == ["week.png"]
    assert len(slack.calls_to("files.getUploadURLExternal")) == 1, "found in the thread, not uploaded again"


async def test_a_refused_post_raises_to_its_caller_and_is_not_retried(slack: FakeSlackWebAPI, tmp_path: Path) -> None:
    async with outbox_on(slack, tmp_path / "o.db", Waits()) as outbox:
        slack.fail_next("chat.postMessage", status=200, error="not_in_channel")
        with pytest.raises(SlackApiError):
            await outbox.post(CHANNEL, "refused", [])
        await outbox.post(CHANNEL, "next", [])
        await outbox.drained()
        assert outbox.db.sync.outbox_counts() == {"dead": 1, "sent": 1}
    assert texts(slack) == ["next"]


async def test_after_a_day_undelivered_a_row_is_given_up_and_logged(
    slack: FakeSlackWebAPI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = MutableClock(TUESDAY_10AM)
    async with outbox_on(slack, tmp_path / "o.db", Waits(held=True), clock=clock) as outbox:
        slack.set_down(True)
        await outbox.post(CHANNEL, "stale", [])
        await outbox.post(OTHER, "elsewhere", [])
        clock.advance(hours=25)
        slack.set_down(False)
        await outbox.post(CHANNEL, "fresh", [])
        outbox.wake()
        await outbox.drained()
    assert texts(slack) == ["fresh"] and texts(slack, OTHER) == []
    assert sum("gave up on post" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR) == 2


async def test_one_failing_channel_does_not_hold_up_another(slack: FakeSlackWebAPI, tmp_path: Path) -> None:
    async with outbox_on(slack, tmp_path / "o.db", Waits(held=True)) as outbox:
        slack.fail_next("chat.postMessage", status=503)
        held = await outbox.post(CHANNEL, "a1", [])
        await outbox.post(CHANNEL, "a2", [], thread_ts=held)
        other = await outbox.post(OTHER, "b1", [])
        await outbox.post(OTHER, "b2", [], thread_ts=other)
        assert placeholder_id(other) is None
        assert (texts(slack), texts(slack, OTHER)) == ([], ["b1", "b2"])
        outbox.wake()
        await outbox.drained()
    assert texts(slack) == ["a1", "a2"]


async def test_rows_pending_at_stop_are_delivered_once_after_a_restart(slack: FakeSlackWebAPI, tmp_path: Path) -> None:
    db = tmp_path / "o.db"
    async with outbox_on(slack, db, Waits(held=True)) as outbox:
        slack.set_down(True, close_connection=True)
        parent = await outbox.post(CHANNEL, "parent", [])
        for n in range(3):
            await outbox.post(CHANNEL, f"reply {n}", [], thread_ts=parent)
        await outbox.update(CHANNEL, parent, "parent: done", [])
    slack.set_down(False)
    release = Store(db)
    made = release.create_release(
        service="notify",
        env="staging",
        version="1.0.0",
        kind=ReleaseKind.DEPLOY,
        state=ReleaseState.QUEUED,
        requested_by="U1",
        now=TUESDAY_10AM,
        take_lock=False,
    )
    release.update_release(made.id, channel=CHANNEL, thread_ts=parent)
    release.close()
    async with outbox_on(slack, db, Waits()) as outbox:
        # start() returns once each lane has had its first go: here, everything is delivered.
        assert outbox.db.sync.outbox_counts() == {"sent": 5}
        stored = outbox.db.sync.get_release(made.id)
    [top] = tops(slack)
    assert [m.text for m in slack.thread(CHANNEL, top)] == ["parent: done", "reply 0", "reply 1", "reply 2"]
    assert stored is not None and stored.thread_ts == top, "the placeholder stored on the release was swapped"


async def test_a_placeholder_stored_just_after_its_post_went_out_is_swapped_once_the_lane_runs_dry(
    slack: FakeSlackWebAPI, tmp_path: Path
) -> None:
    db = tmp_path / "o.db"
    setup = Store(db)
    made = setup.create_release(
        service="notify",
        env="staging",
        version="1.0.0",
        kind=ReleaseKind.DEPLOY,
        state=ReleaseState.QUEUED,
        requested_by="U1",
        now=TUESDAY_10AM,
        take_lock=False,
    )
    setup.close()
    handed: list[str] = []
    let_go = asyncio.Event()

    class CallerStoresItLate(Waits):
        async def __call__(self, seconds: float) -> None:
            self.seen.append(seconds)
            if len(self.seen) == 1:
                await let_go.wait()  # the parent's backoff: its caller gets the placeholder meanwhile
                return
            # The edit's backoff: the parent went out (and placeholders were swapped) just before the caller
            # stores its placeholder on the release.
            await outbox.db.run(outbox.db.sync.update_release, made.id, channel=CHANNEL, thread_ts=handed[0])

    async with outbox_on(slack, db, CallerStoresItLate()) as outbox:
        slack.fail_next("chat.postMessage", status=429)
        handed.append(await outbox.post(CHANNEL, "parent", []))
        assert handed == [placeholder(1)]
        slack.fail_next("chat.update", status=429)
        await outbox.update(CHANNEL, handed[0], "parent: done", [])
        let_go.set()
        await outbox.drained()
        stored = outbox.db.sync.get_release(made.id)
    [top] = tops(slack)
    assert stored is not None and stored.thread_ts == top
    assert slack.message(CHANNEL, top).text == "parent: done"


async def test_a_delivered_row_costs_two_store_round_trips_its_parent_or_target_included(
    slack: FakeSlackWebAPI, tmp_path: Path
) -> None:
    """Taking a row reads the row it replies under or edits and begins its attempt; recording it sent takes
    the next. Placeholders were handed out here, so the dry lane swaps them once more."""
    async with outbox_on(slack, tmp_path / "o.db", Waits(held=True)) as outbox:
        slack.fail_next("chat.postMessage", status=429)
        parent = await outbox.post(CHANNEL, "parent", [])
        await outbox.post(CHANNEL, "reply", [], thread_ts=parent)
        await outbox.update(CHANNEL, parent, "parent: done", [])
        before = outbox.db.round_trips
        outbox.wake()
        await outbox.drained()
        delivery = outbox.db.round_trips - before
        delivered = [outbox.db.sync.outbox_row(n) for n in (1, 2, 3)]
    [top] = tops(slack)
    assert [m.text for m in slack.thread(CHANNEL, top)] == ["parent: done", "reply"]
    assert [(r.state, r.attempts, r.in_doubt) for r in delivered if r is not None] == [
        ("sent", 2, False),
        ("sent", 1, False),
        ("sent", 1, False),
    ], "each attempt counted once, where its row was taken"
    assert delivery == 1 + 3 + 1, "the first take, one per row (recorded sent, next taken), the swap"


async def test_an_ephemeral_answer_in_doubt_is_not_shown_twice(slack: FakeSlackWebAPI, tmp_path: Path) -> None:
    async with outbox_on(slack, tmp_path / "o.db", Waits(), timeout=0.2) as outbox:
        slack.delay_next("chat.postEphemeral", 0.4)
        await outbox.ephemeral(CHANNEL, "U1", "only you", [])
        await outbox.drained()
        await slack.wait_for("chat.postEphemeral")
    assert [e.text for e in slack.ephemerals] == ["only you"]


async def test_home_views_are_coalesced_per_user_while_slack_is_down(slack: FakeSlackWebAPI, tmp_path: Path) -> None:
    view = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "v"}}]}
    async with outbox_on(slack, tmp_path / "o.db", Waits(held=True)) as outbox:
        slack.set_down(True)
        for n in range(3):
            await outbox.publish_home("U1", {**view, "private_metadata": str(n)})
        slack.set_down(False)
        outbox.wake()
        await outbox.drained()
    assert [c.args["view"]["private_metadata"] for c in slack.calls_to("views.publish")] == ["2"]


async def test_the_fake_pages_history_and_shows_metadata_when_asked(slack: FakeSlackWebAPI, tmp_path: Path) -> None:
    async with outbox_on(slack, tmp_path / "o.db", Waits()) as outbox:
        tss = [await outbox.post(CHANNEL, f"m{n}", []) for n in range(3)]
        await outbox.post(CHANNEL, "in thread", [], thread_ts=tss[0])
    client = outbox_web_client("xoxb-test", slack.base_url, 2.0)
    page = await client.conversations_history(channel=CHANNEL, limit=2)
    assert [m["text"] for m in page["messages"]] == ["m2", "m1"] and page["has_more"]
    assert all("metadata" not in m for m in page["messages"])
    rest = await client.conversations_history(
        channel=CHANNEL, limit=2, cursor=page["response_metadata"]["next_cursor"], include_all_metadata=True
    )
    assert [m["text"] for m in rest["messages"]] == ["m0"] and rest["messages"][0]["metadata"]["event_type"]
    after = await client.conversations_history(channel=CHANNEL, oldest=tss[0])
    assert [m["text"] for m in after["messages"]] == ["m2", "m1"]
    thread = await client.conversations_replies(channel=CHANNEL, ts=tss[0])
    assert [m["text"] for m in thread["messages"]] == ["m0", "in thread"]


def test_placeholders_swap_through_the_partial_indexes_only(tmp_path: Path) -> None:
    store = Store(tmp_path / "o.db")
    plan = store.sql.query(
        "EXPLAIN QUERY PLAN SELECT id FROM releases WHERE thread_ts LIKE 'outbox:%' AND thread_ts = 'x'"
    )
    assert any("releases_thread_placeholder" in str(step["detail"]) for step in plan), plan
    row_id, _ = store.outbox_enqueue(lane=CHANNEL, channel=CHANNEL, kind="post", payload={}, now=TUESDAY_10AM)
    assert store.outbox_hand_out(row_id) is None
    store.outbox_sent(row_id, "1700000000.000100", TUESDAY_10AM + timedelta(seconds=1))
    assert store.outbox_hand_out(row_id) == "1700000000.000100", "a late hand-out gets the real ts"
    store.close()


async def test_counts_of_each_text_match_what_was_asked(slack: FakeSlackWebAPI, tmp_path: Path) -> None:
    """Concurrent writers while the first nine posts fail (429, 500, 503): each message once, in order."""
    async with outbox_on(slack, tmp_path / "o.db", Waits(), timeout=0.3) as outbox:
        for n in range(9):
            slack.fail_next("chat.postMessage", status=(429, 500, 503)[n % 3])
        parent = await outbox.post(CHANNEL, "parent", [])

        async def writer(w: int) -> None:
            for n in range(5):
                await outbox.post(CHANNEL, f"w{w}-{n}", [], thread_ts=parent)

        await asyncio.gather(*(writer(w) for w in range(4)))
        await outbox.drained()
    counts = Counter(texts(slack))
    assert set(counts.values()) == {1} and len(counts) == 21
    for w in range(4):
        mine = [t for t in texts(slack) if t.startswith(f"w{w}-")]
        assert mine == [f"w{w}-{n}" for n in range(5)], "each writer's messages in the order written"


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (429, b'{"ok": false, "error": "ratelimited"}', Failure("refused", "ratelimited", 7.0)),
        (200, b'{"ok": false, "error": "channel_not_found"}', Failure("fatal", "channel_not_found")),
        # Not JSON although it says so (a gateway's page): slack_sdk hands over the bare aiohttp response.
        (502, b"<html>bad gateway</html>", Failure("server", "HTTP 502")),
    ],
)
async def test_failures_are_sorted_by_what_the_answer_says(status: int, body: bytes, expected: Failure) -> None:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(status=status, body=body, content_type="application/json", headers={"Retry-After": "7"})

    app = web.Application()
    app.router.add_post("/api/chat.postMessage", answer)
    async with TestServer(app) as server:
        client = outbox_web_client("xoxb-test", str(server.make_url("/api/")), 2.0)
        with pytest.raises(SlackApiError) as raised:
            await client.chat_postMessage(channel=CHANNEL, text="hi")
    assert classify(raised.value) == expected
