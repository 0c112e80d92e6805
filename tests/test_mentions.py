"""Pings reach whoever may act: users as ``<@U…>``, Slack user groups as ``<!subteam^S…>``.

The failed-check ping names the environment's rollback approvers (``rollback.approvals.from``, on-call when
omitted); a group member that is not a Slack ID is never echoed into a mention.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.views.render import group_mentions, member_mention
from tests.fakes.prometheus import FakePrometheus
from tests.harness import ONCALL1, ONCALL2, RELEASER, running_bot
from tests.test_scenario_checks import checks_config, measure_at, release_to_prod, thread, wall_clock


@pytest.mark.parametrize(
    ("member", "ping"),
    [
        ("U0ONCALL1", "<@U0ONCALL1>"),
        ("W012ENTERPRISE", "<@W012ENTERPRISE>"),
        ("S01PLATFORM", "<!subteam^S01PLATFORM>"),
        ("C01CHANNEL", None),
        ("here", None),
        ("!channel", None),
        ("S01|x", None),
        ("U0ONCALL1>", None),
        ("u0lower", None),
        ("", None),
    ],
)
def test_member_mention(member: str, ping: str | None) -> None:
    assert member_mention(member) == ping


def test_group_mentions_cover_every_named_group_once_in_order() -> None:
    groups = {"oncall": ["U1", "S2", "U1"], "leads": ["S2", "U3", "<!channel>"], "other": ["U9"]}
    assert group_mentions(groups, ["oncall", "leads"]) == "<@U1> <!subteam^S2> <@U3>"
    assert group_mentions(groups, ["missing"]) == ""


async def failed_check_ping(tmp_path: Path, **prod: object) -> str:
    async with FakePrometheus(value=0.3) as prometheus:
        config = checks_config(tmp_path / "deploys.log", prometheus.url, **prod)
        config["groups"]["oncall"] = [ONCALL1, "S0ONCALLGRP", ONCALL2]
        async with running_bot(tmp_path, clock=wall_clock(), config=config) as bot:
            release = await release_to_prod(bot, "1.3.0")
            await measure_at(bot, release, timedelta(minutes=5))
            return next(t for t in thread(bot, release) if "post-release check failed" in t)


async def test_the_failed_check_ping_mentions_on_call_users_and_user_groups(tmp_path: Path) -> None:
    ping = await failed_check_ping(tmp_path)
    assert f"<@{ONCALL1}>" in ping and f"<@{ONCALL2}>" in ping and "<!subteam^S0ONCALLGRP>" in ping


async def test_the_failed_check_ping_names_the_envs_rollback_approvers(tmp_path: Path) -> None:
    ping = await failed_check_ping(tmp_path, rollback={"approvals": {"required": 1, "from": ["releasers"]}})
    assert f"<@{RELEASER}>" in ping and "<!subteam^S01PLATFORM>" in ping
    assert f"<@{ONCALL1}>" not in ping and "S0ONCALLGRP" not in ping
