"""The outbox against the Slack sandbox: order, ts, threads, edits, rate limits, retries, restarts."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from bot.outbox import Outbox
from bot.sandbox.stack import Stack
from tests.helpers import wait_for

pytestmark = pytest.mark.both_backends  # SQLite and PostgreSQL (tests/conftest.py)


def on_outbox(stack: Stack, action: Callable[[Outbox], Any]) -> Any:
    assert stack.services is not None
    outbox = stack.services.outbox

    async def run() -> Any:
        return action(outbox)

    return stack.on_app(run())


def row(stack: Stack, row_id: int) -> dict[str, Any]:
    async def fetch() -> dict[str, Any]:
        assert stack.services is not None
        cursor = stack.services.store.execute("SELECT * FROM outbox WHERE id = ?", (row_id,))
        names = [d[0] for d in cursor.description]
        return dict(zip(names, cursor.fetchone(), strict=True))

    return stack.on_app(fetch())


def test_post_records_ts_and_channel(stack: Stack) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Missed call* from 0410 203 045"}}]
    row_id = on_outbox(stack, lambda o: o.post("C0SALES", "Missed call from 0410 203 045", blocks))
    assert stack.drain(10)
    [message] = stack.slack.channel_messages("C0SALES")
    assert message["text"] == "Missed call from 0410 203 045"
    assert message["blocks"] == blocks
    stored = row(stack, row_id)
    assert stored["status"] == "sent"
    assert stored["ts"] == message["ts"]
    assert stored["posted_channel"] == "C0SALES"


def test_replies_thread_and_edits_update_in_place(stack: Stack) -> None:
    def queue(o: Outbox) -> tuple[int, int, int, int]:
        parent = o.post("C0SALES", "Number requested")
        reply = o.post("C0SALES", "first reply", thread_of=parent)
        reply2 = o.post("C0SALES", "reply to the reply", thread_of=reply)
        edit = o.update(parent, "Number is live")
        return parent, reply, reply2, edit

    parent, _, _, _ = on_outbox(stack, queue)
    assert stack.drain(10)
    messages = stack.slack.channel_messages("C0SALES")
    root = messages[0]
    assert root["text"] == "Number is live" and root["edits"] == 1
    assert [m["thread_ts"] for m in messages[1:]] == [root["ts"], root["ts"]]
    update_call = stack.slack.calls_to("chat.update")[0]
    assert update_call.args["ts"] == row(stack, parent)["ts"]
    assert update_call.args["channel"] == "C0SALES"


def test_only_the_newest_pending_edit_is_sent(stack: Stack) -> None:
    stack.slack.inject(503, seconds=0.5, methods={"chat.update"})

    def queue(o: Outbox) -> None:
        parent = o.post("C0DIGEST", "0 missed calls")
        for n in range(1, 6):
            o.update(parent, f"{n} missed calls")

    on_outbox(stack, queue)
    wait_for(
        lambda: (
            stack.slack.channel_messages("C0DIGEST")
            and stack.slack.channel_messages("C0DIGEST")[0]["text"] == "5 missed calls"
        ),
        timeout=15,
    )
    sent_texts = [c.args["text"] for c in stack.slack.calls_to("chat.update")]
    assert sent_texts[-1] == "5 missed calls"
    assert len(sent_texts) < 5


def test_direct_message_to_a_user_then_update_uses_the_dm_channel(stack: Stack) -> None:
    def queue(o: Outbox) -> int:
        dm = o.post("U0REP", "Your number expires in 15 minutes")
        o.update(dm, "Extended to 17:00")
        return dm

    dm = on_outbox(stack, queue)
    assert stack.drain(10)
    assert row(stack, dm)["posted_channel"] == "D0REP"
    assert stack.slack.channel_messages("D0REP")[0]["text"] == "Extended to 17:00"


def test_same_dedup_key_posts_once(stack: Stack) -> None:
    ids = on_outbox(stack, lambda o: [o.post("C0SALES", "once", dedup_key="alert:ECS1") for _ in range(3)])
    assert len(set(ids)) == 1
    assert stack.drain(10)
    assert len(stack.slack.channel_messages("C0SALES")) == 1


def test_refused_message_is_marked_failed_and_the_channel_moves_on(stack: Stack) -> None:
    too_long = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]

    def queue(o: Outbox) -> tuple[int, int]:
        return o.post("C0SALES", "bad", too_long), o.post("C0SALES", "good")

    bad, good = on_outbox(stack, queue)
    assert stack.drain(10)
    assert row(stack, bad)["status"] == "failed"
    assert row(stack, bad)["error"].startswith("invalid_blocks")
    assert "must be less than 3001 characters" in row(stack, bad)["error"]
    assert row(stack, good)["status"] == "sent"
    assert [m["text"] for m in stack.slack.channel_messages("C0SALES")] == ["good"]


def test_server_errors_are_retried_until_slack_accepts(stack: Stack) -> None:
    assert stack.services is not None
    stack.services.outbox.backoff_base = 0.05
    stack.slack.inject(503, count=3, methods={"chat.postMessage"})
    row_id = on_outbox(stack, lambda o: o.post("C0SALES", "persistent"))
    assert stack.drain(10)
    assert [m["text"] for m in stack.slack.channel_messages("C0SALES")] == ["persistent"]
    assert row(stack, row_id)["attempts"] == 3
    assert len([c for c in stack.slack.calls if c.method == "chat.postMessage"]) == 4


def test_429_retry_after_is_honoured(tmp_path) -> None:
    # Slack allows one post per channel per second; the outbox here is told nothing about it.
    with Stack(tmp_path, slack_channel_interval=1.0, outbox_channel_interval=0.0) as stack:
        on_outbox(stack, lambda o: [o.post("C0BUSY", f"alert {n}") for n in range(4)])
        start = time.monotonic()
        assert stack.drain(20)
        elapsed = time.monotonic() - start
        assert [m["text"] for m in stack.slack.channel_messages("C0BUSY")] == [f"alert {n}" for n in range(4)]
        assert stack.slack.peak_posts_per_second("C0BUSY") == 1
        assert stack.slack.rate_limited >= 1
        # After each 429 the outbox waited Retry-After (1 s) rather than hammering Slack.
        rejected = [c for c in stack.slack.calls if c.status == 429]
        assert len(rejected) <= 4
        assert elapsed >= 2.5


def test_channels_are_independent_under_rate_limits(tmp_path) -> None:
    with Stack(tmp_path, slack_channel_interval=1.0, outbox_channel_interval=1.05) as stack:
        on_outbox(stack, lambda o: [o.post(f"C0CH{n % 5}", f"alert {n}") for n in range(10)])
        start = time.monotonic()
        assert stack.drain(20)
        elapsed = time.monotonic() - start
        for n in range(5):
            assert len(stack.slack.channel_messages(f"C0CH{n}")) == 2
        assert stack.slack.peak_posts_per_second() == 1
        assert stack.slack.rate_limited == 0
        assert elapsed < 3.0  # five channels in parallel: ~1 s, not ~10 s


@pytest.mark.slow
def test_unsent_rows_are_delivered_after_a_restart(tmp_path) -> None:
    with Stack(tmp_path) as stack:
        stack.slack.inject(503, seconds=60)  # Slack is down
        ids = on_outbox(stack, lambda o: [o.post("C0SALES", f"alert {n}") for n in range(5)])
        wait_for(lambda: any(c.status == 503 for c in stack.slack.calls))
        stack.stop_app()  # the process stops with everything unsent
        assert stack.slack.channel_messages("C0SALES") == []
        stack.slack.clear_faults()  # Slack is back
        stack.start_app()  # same database
        assert stack.drain(15)
        assert [m["text"] for m in stack.slack.channel_messages("C0SALES")] == [f"alert {n}" for n in range(5)]
        assert all(row(stack, i)["status"] == "sent" for i in ids)


def test_response_url_posts_go_through_the_outbox(stack: Stack) -> None:
    url = stack.slack.new_response_url()
    on_outbox(stack, lambda o: o.respond(url, {"response_type": "ephemeral", "text": "Done."}))
    assert stack.drain(10)
    assert stack.slack.responses_to(url) == [{"response_type": "ephemeral", "text": "Done."}]


def test_bad_token_keeps_messages_for_later(tmp_path) -> None:
    with Stack(tmp_path, SLACK_BOT_TOKEN="xoxb-wrong") as stack:
        assert stack.services is not None
        stack.services.outbox.backoff_base = 10
        row_id = on_outbox(stack, lambda o: o.post("C0SALES", "kept"))
        wait_for(lambda: row(stack, row_id)["attempts"] >= 1)
        assert row(stack, row_id)["status"] == "pending"
        assert row(stack, row_id)["error"] == "invalid_auth"


def test_a_lost_answer_is_checked_in_history_not_posted_twice(stack: Stack) -> None:
    assert stack.services is not None
    stack.services.outbox.backoff_base = 0.05
    stack.slack.inject(503, count=1, methods={"chat.postMessage"}, after_commit=True)
    row_id = on_outbox(stack, lambda o: o.post("C0SALES", "exactly once"))
    assert stack.drain(10)
    [message] = stack.slack.channel_messages("C0SALES")
    assert message["metadata"] == {"event_type": "switchboard_outbox", "event_payload": {"row": row_id}}
    assert row(stack, row_id)["ts"] == message["ts"] and row(stack, row_id)["sending_at"] is None
    history = stack.slack.calls_to("conversations.history")
    assert len(history) == 1 and history[0].args["include_all_metadata"] == "true"


def test_a_crash_after_slack_accepted_is_not_posted_twice(stack: Stack) -> None:
    row_id = on_outbox(stack, lambda o: o.post("C0SALES", "before the crash"))
    assert stack.drain(10)

    async def crashed_before_marking_sent() -> None:
        # What SIGKILL between Slack's answer and the UPDATE leaves behind.
        assert stack.services is not None
        stack.services.store.execute(
            "UPDATE outbox SET status = 'pending', ts = NULL, sending_at = created_at WHERE id = ?", (row_id,)
        )
        stack.services.outbox.wake()

    stack.on_app(crashed_before_marking_sent())
    wait_for(lambda: row(stack, row_id)["status"] == "sent")
    assert len(stack.slack.channel_messages("C0SALES")) == 1
    assert row(stack, row_id)["ts"] == stack.slack.channel_messages("C0SALES")[0]["ts"]


def test_a_digest_found_already_posted_after_a_crash_is_edited_to_show_every_line(stack: Stack) -> None:
    """A replica rendered a storm digest, Slack accepted it, and the replica died before recording it; meanwhile
    another replica added a line, counting on the dead one's follow-up edit. The survivor must not lose it."""
    from bot.domain.routing import add_to_digest

    def first_line(o: Outbox) -> int:
        return add_to_digest(o.store, o, "C0SALES", "📞 first call")

    digest = on_outbox(stack, first_line)
    assert stack.drain(10)
    [posted] = stack.slack.channel_messages("C0SALES")
    assert "first call" in str(posted) and "second call" not in str(posted)

    async def crashed_then_a_line_arrived() -> None:
        assert stack.services is not None
        store = stack.services.store
        store.execute("INSERT INTO digest_lines (digest_id, line) VALUES (?, '📞 second call')", (digest,))
        store.execute(
            "UPDATE outbox SET status = 'pending', ts = NULL, sending_at = created_at WHERE method = 'chat.postMessage'"
        )
        stack.services.outbox.wake()

    stack.on_app(crashed_then_a_line_arrived())
    wait_for(lambda: stack.slack.calls_to("chat.update"))
    assert stack.drain(10)
    [shown] = stack.slack.channel_messages("C0SALES")  # still one message, now with both lines
    assert "first call" in str(shown) and "second call" in str(shown)


def test_without_history_access_it_posts_again(stack: Stack) -> None:
    row_id = on_outbox(stack, lambda o: o.post("C0SALES", "at least once"))
    assert stack.drain(10)
    stack.slack.inject(500, count=1, methods={"conversations.history"})  # the check fails

    async def crashed() -> None:
        assert stack.services is not None
        stack.services.store.execute(
            "UPDATE outbox SET status = 'pending', sending_at = created_at WHERE id = ?", (row_id,)
        )
        stack.services.outbox.wake()

    stack.on_app(crashed())
    wait_for(lambda: len(stack.slack.channel_messages("C0SALES")) == 2)


@pytest.mark.parametrize("channel", ["C0SALES", "U0REP"], ids=["channel", "dm"])
def test_a_lost_answer_in_a_thread_is_checked_in_the_thread_not_posted_twice(stack: Stack, channel: str) -> None:
    # conversations.history never shows thread replies: only conversations.replies can find this one.
    assert stack.services is not None
    stack.services.outbox.backoff_base = 0.05
    parent = on_outbox(stack, lambda o: o.post(channel, "Virtual number 080 4XXX 513 for the Acme visit"))
    assert stack.drain(10)
    posted_in = row(stack, parent)["posted_channel"]
    stack.slack.inject(503, count=1, methods={"chat.postMessage"}, after_commit=True)
    reply = on_outbox(stack, lambda o: o.post(channel, "Missed call from 0410 203 045", thread_of=parent))
    assert stack.drain(10)
    root, answer = stack.slack.channel_messages(posted_in)  # exactly one reply
    assert answer["thread_ts"] == root["ts"] and answer["text"] == "Missed call from 0410 203 045"
    assert row(stack, reply)["ts"] == answer["ts"] and row(stack, reply)["status"] == "sent"
    [looked] = stack.slack.calls_to("conversations.replies")
    assert looked.args["ts"] == root["ts"] and looked.args["include_all_metadata"] == "true"
    assert stack.slack.calls_to("conversations.history") == []


def test_in_a_channel_the_bot_only_posts_to_it_cannot_check_and_posts_again(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    # chat:write.public lets the bot post where it was never invited, but not read: at least once there.
    stack.slack.add_channel("C0OUTSIDE", bot_member=False)
    row_id = on_outbox(stack, lambda o: o.post("C0OUTSIDE", "at least once"))
    assert stack.drain(10)

    async def crashed() -> None:
        assert stack.services is not None
        stack.services.store.execute(
            "UPDATE outbox SET status = 'pending', sending_at = created_at WHERE id = ?", (row_id,)
        )
        stack.services.outbox.wake()

    with caplog.at_level("WARNING"):
        stack.on_app(crashed())
        wait_for(lambda: len(stack.slack.channel_messages("C0OUTSIDE")) == 2)
    assert [c.response["error"] for c in stack.slack.calls if c.method == "conversations.history"] == ["not_in_channel"]
    assert any("(not_in_channel); posting it again" in r.getMessage() for r in caplog.records)
