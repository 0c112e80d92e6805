"""The fake Slack must behave like Slack for the clients the bot uses (slack_sdk AsyncWebClient, Bolt)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from tests.fakes import FakeSlackWebAPI, FakeSocketModeServer, slash_command_payload

FAST = FixedValueRetryIntervalCalculator(0.01)
BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "*api* v1.2 queued"}}]


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlackWebAPI]:
    async with FakeSlackWebAPI() as server:
        yield server


def client_for(fake: FakeSlackWebAPI, token: str = "xoxb-test", **kwargs: Any) -> AsyncWebClient:
    return AsyncWebClient(token=token, base_url=fake.base_url, **kwargs)


async def test_base_url_is_joined_by_slack_sdk_like_slack_com(fake: FakeSlackWebAPI) -> None:
    resp = await client_for(fake).auth_test()
    assert resp["user_id"] == fake.bot_user_id
    assert resp["team_id"] == fake.team_id
    assert resp["bot_id"] == fake.bot_id
    assert resp["url"] == "https://acme.slack.com/"
    (call,) = fake.calls_to("auth.test")
    assert call.headers["authorization"] == "Bearer xoxb-test"
    assert resp.api_url == fake.base_url + "auth.test"


async def test_post_then_update_is_what_the_user_sees(fake: FakeSlackWebAPI) -> None:
    client = client_for(fake)
    first = await client.chat_postMessage(channel="C1", text="Release queued", blocks=BLOCKS)
    reply = await client.chat_postMessage(channel="C1", text="step 1 ok", thread_ts=first["ts"])
    assert float(reply["ts"]) > float(first["ts"])
    assert first["ts"] == "1700000000.000100"
    assert first["message"]["blocks"] == BLOCKS

    new_blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*api* v1.2 shipped"}}]
    updated = await client.chat_update(channel="C1", ts=first["ts"], text="Release shipped", blocks=new_blocks)
    assert updated["message"]["edited"]["user"] == fake.bot_user_id

    parent, child = fake.thread("C1", first["ts"])
    assert (parent.text, parent.blocks) == ("Release shipped", new_blocks)
    assert parent.edits[0]["text"] == "Release queued"
    assert (child.text, child.thread_ts) == ("step 1 ok", first["ts"])
    assert [m.ts for m in fake.messages("C1")] == [first["ts"], reply["ts"]]
    assert fake.calls_to("chat.postMessage")[0].args["blocks"] == BLOCKS


async def test_update_of_unknown_message_is_message_not_found(fake: FakeSlackWebAPI) -> None:
    with pytest.raises(SlackApiError) as err:
        await client_for(fake).chat_update(channel="C1", ts="1600000000.000001", text="x")
    assert err.value.response["error"] == "message_not_found"


async def test_form_encoded_call_with_blocks_as_json_string_is_decoded(fake: FakeSlackWebAPI) -> None:
    client = client_for(fake)
    resp = await client.api_call(
        "chat.postMessage", data={"channel": "C2", "text": "hi", "blocks": '[{"type":"divider"}]'}
    )
    (call,) = fake.calls_to("chat.postMessage")
    assert call.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert call.args["blocks"] == [{"type": "divider"}]
    assert fake.message("C2", resp["ts"]).blocks == [{"type": "divider"}]


async def test_block_kit_limits_are_enforced_like_slack(fake: FakeSlackWebAPI) -> None:
    client = client_for(fake)
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="C1", text="x", blocks=[{"type": "divider"}] * 51)
    assert err.value.response["error"] == "invalid_blocks"
    long_section = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="C1", text="x", blocks=long_section)
    assert err.value.response["error"] == "invalid_blocks"
    assert fake.messages("C1") == []
    await client.chat_postMessage(channel="C1", text="x", blocks=[{"type": "divider"}] * 50)
    assert len(fake.messages("C1")) == 1


async def test_auth_and_unknown_method_errors(fake: FakeSlackWebAPI) -> None:
    with pytest.raises(SlackApiError) as err:
        await AsyncWebClient(base_url=fake.base_url).chat_postMessage(channel="C1", text="x")
    assert err.value.response["error"] == "not_authed"
    with pytest.raises(SlackApiError) as err:
        await client_for(fake, token="xapp-test").chat_postMessage(channel="C1", text="x")
    assert err.value.response["error"] == "not_allowed_token_type"
    with pytest.raises(SlackApiError) as err:
        await client_for(fake).api_call("chat.teleport")
    assert err.value.response.status_code == 200
    assert err.value.response["error"] == "unknown_method"
    assert fake.messages("C1") == []


async def test_usergroups_users_list(fake: FakeSlackWebAPI) -> None:
    fake.set_usergroup("S0ONCALL", ["U1", "U2"], handle="oncall")
    client = client_for(fake)
    assert (await client.usergroups_users_list(usergroup="S0ONCALL"))["users"] == ["U1", "U2"]
    groups = (await client.usergroups_list(include_users=True))["usergroups"]
    assert [(g["id"], g["handle"], g["users"]) for g in groups] == [("S0ONCALL", "oncall", ["U1", "U2"])]
    with pytest.raises(SlackApiError) as err:
        await client.usergroups_users_list(usergroup="S0NOPE")
    assert err.value.response["error"] == "no_such_subteam"


async def test_users_info_reports_configured_timezone(fake: FakeSlackWebAPI) -> None:
    fake.add_user("U0BERLIN", name="greta", tz="Europe/Berlin", tz_label="Central European Time")
    fake.add_user("U0FIXED", tz="America/Los_Angeles", tz_offset=-28800)
    client = client_for(fake)
    user = (await client.users_info(user="U0BERLIN"))["user"]
    assert (user["tz"], user["tz_label"], user["name"]) == ("Europe/Berlin", "Central European Time", "greta")
    assert user["tz_offset"] in (3600, 7200)  # CET or CEST depending on today's date
    assert (await client.users_info(user="U0FIXED"))["user"]["tz_offset"] == -28800


async def test_unknown_users_and_channels_are_errors_when_strict() -> None:
    async with FakeSlackWebAPI(auto_create=False) as strict:
        client = client_for(strict)
        with pytest.raises(SlackApiError) as err:
            await client.users_info(user="U0GHOST")
        assert err.value.response["error"] == "user_not_found"
        with pytest.raises(SlackApiError) as err:
            await client.chat_postMessage(channel="C0GHOST", text="x")
        assert err.value.response["error"] == "channel_not_found"
        strict.add_channel("C0PRIV", "secret", is_private=True, is_member=False)
        info = await client.conversations_info(channel="C0PRIV")
        assert (info["channel"]["name"], info["channel"]["is_private"]) == ("secret", True)
        with pytest.raises(SlackApiError) as err:
            await client.chat_postMessage(channel="C0PRIV", text="x")
        assert err.value.response["error"] == "not_in_channel"


async def test_ephemeral_and_permalink(fake: FakeSlackWebAPI) -> None:
    client = client_for(fake)
    posted = await client.chat_postMessage(channel="C1", text="root")
    eph = await client.chat_postEphemeral(channel="C1", user="U5", text="only you")
    assert eph["message_ts"]
    assert [(e.user, e.text) for e in fake.ephemerals] == [("U5", "only you")]
    assert [m.text for m in fake.messages("C1")] == ["root"]
    link = await client.chat_getPermalink(channel="C1", message_ts=posted["ts"])
    assert link["permalink"] == f"https://acme.slack.com/archives/C1/p{posted['ts'].replace('.', '')}"


async def test_files_upload_v2_end_to_end(fake: FakeSlackWebAPI) -> None:
    client = client_for(fake)
    root = await client.chat_postMessage(channel="C1", text="weekly report")
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    resp = await client.files_upload_v2(
        content=png, filename="lead-time.png", title="Lead time", channel="C1", thread_ts=root["ts"]
    )
    file_id = resp["file"]["id"]
    assert fake.uploads[file_id].data == png
    assert fake.uploads[file_id].title == "Lead time"
    assert fake.uploads[file_id].shared_to == ["C1"]
    (get_url,) = fake.calls_to("files.getUploadURLExternal")
    assert (get_url.args["filename"], int(get_url.args["length"])) == ("lead-time.png", len(png))
    _, shared = fake.thread("C1", root["ts"])
    assert shared.files[0]["id"] == file_id


async def test_rate_limit_is_retried_after_retry_after_and_posted_once(fake: FakeSlackWebAPI) -> None:
    # Retry-After: 0 keeps the test fast; the header itself is checked in the next test.
    fake.fail_next("chat.postMessage", status=429, retry_after=0)
    client = client_for(fake, retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)])
    resp = await client.chat_postMessage(channel="C1", text="deploy")
    assert resp["ok"]
    (faulted,) = fake.faulted_calls
    assert (faulted.status, faulted.error, faulted.fault) == (429, "ratelimited", "429")
    assert len(fake.calls_to("chat.postMessage")) == 1
    assert [m.text for m in fake.messages("C1")] == ["deploy"]


async def test_rate_limit_without_retry_handler_surfaces_retry_after(fake: FakeSlackWebAPI) -> None:
    fake.fail_next("chat.postMessage", status=429, retry_after=7)
    with pytest.raises(SlackApiError) as err:
        await client_for(fake).chat_postMessage(channel="C1", text="x")
    assert err.value.response.status_code == 429
    assert err.value.response["error"] == "ratelimited"
    assert err.value.response.headers["Retry-After"] == "7"
    assert fake.messages("C1") == []


async def test_server_error_is_retried_by_server_error_handler(fake: FakeSlackWebAPI) -> None:
    fake.fail_next("chat.postMessage", times=2, status=500)
    client = client_for(
        fake, retry_handlers=[AsyncServerErrorRetryHandler(max_retry_count=2, interval_calculator=FAST)]
    )
    await client.chat_postMessage(channel="C1", text="deploy")
    assert [c.status for c in fake.faulted_calls] == [500, 500]
    assert len(fake.calls_to("chat.postMessage")) == 1
    assert len(fake.messages("C1")) == 1


async def test_injected_api_error_with_status_200(fake: FakeSlackWebAPI) -> None:
    fake.fail_next("views.open", status=200, error="expired_trigger_id")
    with pytest.raises(SlackApiError) as err:
        await client_for(fake).views_open(trigger_id="t", view={"type": "modal", "blocks": []})
    assert err.value.response["error"] == "expired_trigger_id"
    assert fake.views == {}


async def test_down_answers_503_until_back_up(fake: FakeSlackWebAPI) -> None:
    client = client_for(fake)
    fake.set_down(True)
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="C1", text="x")
    assert err.value.response.status_code == 503
    fake.set_down(False)
    await client.chat_postMessage(channel="C1", text="x")
    assert [c.fault for c in fake.faulted_calls] == ["down"]
    assert len(fake.calls_to("chat.postMessage")) == 1


async def test_down_with_closed_connection_raises_connection_error(fake: FakeSlackWebAPI) -> None:
    fake.set_down(True, close_connection=True)
    with pytest.raises(aiohttp.ClientConnectionError):
        await client_for(fake, retry_handlers=[]).auth_test()
    assert [c.fault for c in fake.faulted_calls] == ["down"]
    assert fake.calls == []


async def test_dropped_connection_is_retried_by_connection_error_handler(fake: FakeSlackWebAPI) -> None:
    fake.fail_next("chat.postMessage", drop_connection=True)
    client = client_for(fake, retry_handlers=[AsyncConnectionErrorRetryHandler(interval_calculator=FAST)])
    await client.chat_postMessage(channel="C1", text="once")
    assert [c.fault for c in fake.faulted_calls] == ["drop"]
    assert [m.text for m in fake.messages("C1")] == ["once"]


async def test_delay_makes_the_client_time_out_but_slack_still_processes_it(fake: FakeSlackWebAPI) -> None:
    fake.delay_next("chat.postMessage", 0.5)
    with pytest.raises(asyncio.TimeoutError):
        await client_for(fake, timeout=0.1).chat_postMessage(channel="C1", text="maybe")
    (late,) = await fake.wait_for("chat.postMessage")
    assert late.delay == 0.5
    assert [m.text for m in fake.messages("C1")] == ["maybe"]


async def test_wait_for_wakes_on_the_call_without_polling(fake: FakeSlackWebAPI) -> None:
    client = client_for(fake)
    waiter = asyncio.create_task(
        fake.wait_for("chat.postMessage", count=2, timeout=5.0, predicate=lambda c: c.args["channel"] == "C9")
    )
    await client.chat_postMessage(channel="C9", text="one")
    await client.chat_postMessage(channel="C1", text="elsewhere")
    assert not waiter.done()
    started = time.monotonic()
    await client.chat_postMessage(channel="C9", text="two")
    calls = await waiter
    assert time.monotonic() - started < 1.0
    assert [c.args["text"] for c in calls] == ["one", "two"]
    # Already satisfied: returns at once; unsatisfiable: a clear assertion after the timeout.
    assert len(await fake.wait_for("chat.postMessage", count=3, timeout=0.01)) == 3
    with pytest.raises(AssertionError, match="expected 1 matching call"):
        await fake.wait_for("chat.update", timeout=0.05)


async def test_views_open_update_publish(fake: FakeSlackWebAPI) -> None:
    client = client_for(fake)
    modal = {"type": "modal", "callback_id": "override", "title": {"type": "plain_text", "text": "Override"},
             "blocks": [{"type": "divider"}]}  # fmt: skip
    opened = (await client.views_open(trigger_id="123.456", view=modal))["view"]
    updated = (await client.views_update(view_id=opened["id"], hash=opened["hash"], view=modal))["view"]
    assert updated["id"] == opened["id"]
    with pytest.raises(SlackApiError) as err:
        await client.views_update(view_id=opened["id"], hash=opened["hash"], view=modal)
    assert err.value.response["error"] == "hash_conflict"
    home = {
        "type": "home",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Queue: empty"}}],
    }
    await client.views_publish(user_id="U1", view=home)
    assert fake.home_views["U1"]["blocks"] == home["blocks"]


async def test_response_url_replaces_the_original_message(fake: FakeSlackWebAPI) -> None:
    posted = await client_for(fake).chat_postMessage(channel="C1", text="Approve release?")
    url = fake.new_response_url(channel="C1", message_ts=posted["ts"], user_id="U7")
    resp = await AsyncWebhookClient(url).send(text="Approved by <@U7>", replace_original=True)
    assert resp.status_code == 200
    assert fake.message("C1", posted["ts"]).text == "Approved by <@U7>"
    await AsyncWebhookClient(url).send(text="only for you")
    assert [(e.user, e.text) for e in fake.ephemerals] == [("U7", "only for you")]
    first_use, second_use = await fake.wait_for("response_url", count=2)
    assert first_use.args["replace_original"] is True
    assert "replace_original" not in second_use.args


async def test_bolt_socket_mode_app_acks_a_slash_command(fake: FakeSlackWebAPI) -> None:
    async with FakeSocketModeServer() as socket_server:
        fake.attach_socket_mode(socket_server)
        app = AsyncApp(client=client_for(fake))
        seen: list[str] = []

        @app.command("/release")
        async def release(ack: AsyncAck, command: dict[str, Any]) -> None:
            seen.append(command["text"])
            await ack(f"Queued {command['text']}")

        handler = AsyncSocketModeHandler(app, "xapp-test")
        await handler.connect_async()  # type: ignore[no-untyped-call]
        try:
            ack = await socket_server.send_envelope(
                "slash_commands", slash_command_payload("/release", "deploy api", user_id="U7")
            )
        finally:
            await handler.close_async()  # type: ignore[no-untyped-call]
        assert ack["payload"] == {"text": "Queued deploy api"}
        assert seen == ["deploy api"]
        (conn_open,) = fake.calls_to("apps.connections.open")
        assert conn_open.headers["authorization"] == "Bearer xapp-test"
        assert fake.calls_to("auth.test")  # Bolt authorised the request against the fake


async def test_send_envelope_times_out_clearly_without_a_client() -> None:
    async with FakeSocketModeServer() as socket_server:
        with pytest.raises(TimeoutError, match="no ack for slash_commands envelope"):
            await socket_server.send_envelope("slash_commands", slash_command_payload(), timeout=0.05)


async def test_response_url_rejects_invalid_blocks_and_expires_after_five_uses(fake: FakeSlackWebAPI) -> None:
    url = fake.new_response_url(channel="C1", user_id="U7")
    bad = await AsyncWebhookClient(url).send(text="x", blocks=[{"type": "no-such-block"}])
    assert bad.status_code == 400
    for _ in range(4):
        assert (await AsyncWebhookClient(url).send(text="ok")).status_code == 200
    sixth = await AsyncWebhookClient(url).send(text="sixth")
    assert (sixth.status_code, json.loads(sixth.body)["error"]) == (404, "used_url")
    assert [e.text for e in fake.ephemerals] == ["ok"] * 4
