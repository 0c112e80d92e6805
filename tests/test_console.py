"""The console adapter: the same handlers as Slack mode, messages as text, buttons clicked by number."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from io import StringIO
from pathlib import Path

from bot.bootstrap import Runtime, build_runtime
from bot.config import parse_config
from bot.core.models import ApprovalState
from bot.settings import Settings
from bot.slack.console import Console, ConsoleDirectory, ConsoleNotifier
from bot.store import AsyncStore, Store
from tests.harness import CHANNEL, ONCALL1, OUTSIDER, RELEASER, TUESDAY_10AM, MutableClock, config_dict, record_live

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Session:
    console: Console
    runtime: Runtime
    out: StringIO
    log: Path
    clock: MutableClock

    async def type(self, line: str) -> str:
        """Type one line; what the console printed in answer (everything the work after it produced)."""
        start = len(self.out.getvalue())
        assert await self.console.handle(line)
        return self.out.getvalue()[start:]

    def live(self, env: str, version: str) -> None:
        record_live(self.runtime.store.sync, env, version, self.clock.now() - timedelta(days=1))

    def deploys(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


@asynccontextmanager
async def console_session(tmp_path: Path) -> AsyncIterator[Session]:
    log = tmp_path / "deploys.log"
    config = parse_config(config_dict(log))
    out = StringIO()
    notifier = ConsoleNotifier(out=out)
    clock = MutableClock(TUESDAY_10AM)
    runtime = build_runtime(
        Settings(),
        config,
        store=AsyncStore(Store(tmp_path / "console.db")),
        notifier=notifier,
        directory=ConsoleDirectory(config, {"S01PLATFORM": frozenset({"U01PLATFORM"})}),
        config_dir=tmp_path,
        clock=clock,
        schedule=False,
    )
    await runtime.start()
    try:
        console = Console(runtime.engine, notifier, user=RELEASER, channel=CHANNEL)
        yield Session(console, runtime, out, log, clock)
    finally:
        await runtime.close()


def button(printed: str, label: str) -> str:
    """The number the console gave the (last) button labelled ``label``."""
    numbers = re.findall(r"\[(\d+)\] " + re.escape(label), printed)
    assert numbers, f"no {label} button in:\n{printed}"
    return str(numbers[-1])


async def test_an_approval_is_decided_by_clicking_buttons_by_number(tmp_path: Path) -> None:
    async with console_session(tmp_path) as session:
        session.live("prod", "1.2.2")
        session.live("prod", "1.2.3")
        printed = await session.type("/release rollback prod")
        assert "Roll back notify prod from 1.2.3 to 1.2.2" in printed
        assert "waiting for on-call approval" in printed
        approve, deny = button(printed, "Approve"), button(printed, "Deny")
        assert approve != deny

        assert "you cannot approve it" in await session.type(f"click {approve}")
        await session.type(f"as {OUTSIDER}")
        assert "you are not in oncall" in await session.type(approve)  # a bare number clicks too
        assert session.deploys() == []

        await session.type(f"as {ONCALL1}")
        printed = await session.type(f"click {approve}")
        assert "Approved. On it." in printed
        assert f"Approved by @{ONCALL1}" in printed, "the approval message is shown updated"
        assert "back on 1.2.2" in printed
        assert session.deploys() == ["notify 1.2.2 prod 100"]
        # The approval message is reprinted decided, with no buttons left to number.
        updated = printed.split("updated)", 1)[1].split("(only", 1)[0]
        assert f"Approved by @{ONCALL1}" in updated and "] Approve" not in updated and "] Deny" not in updated
        assert "already approved" in await session.type(f"click {approve}")
        assert session.deploys() == ["notify 1.2.2 prod 100"]


async def test_deny_in_the_console_needs_a_reason(tmp_path: Path) -> None:
    async with console_session(tmp_path) as session:
        session.live("prod", "1.2.2")
        session.live("prod", "1.2.3")
        deny = button(await session.type("/release rollback prod"), "Deny")
        await session.type(f"as {ONCALL1}")
        assert "Deny needs a reason" in await session.type(f"click {deny}")
        printed = await session.type(f"click {deny} the alert was noise")
        assert "Denied" in printed and f"Denied by @{ONCALL1}: the alert was noise" in printed
        [approval] = session.runtime.store.sync.pending_approvals() or [None]
        assert approval is None
        assert session.deploys() == []
        assert "no button 99" in await session.type("click 99")


async def test_an_expired_request_in_the_console(tmp_path: Path) -> None:
    async with console_session(tmp_path) as session:
        session.live("prod", "1.2.2")
        session.live("prod", "1.2.3")
        approve = button(await session.type("/release rollback prod"), "Approve")
        session.clock.advance(minutes=31)
        await session.type(f"as {ONCALL1}")
        printed = await session.type(f"click {approve}")
        assert "expired" in printed and "Expired" in printed
        approvals = session.runtime.store.sync.sql.query("SELECT state FROM approvals")
        assert [a["state"] for a in approvals] == [ApprovalState.EXPIRED.value]
        assert session.deploys() == []


def test_make_run_console_demo_releases_to_staging_then_prod(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "RELEASEBOT_"))}
    env["RELEASEBOT_CONFIG"] = str(tmp_path / "absent.yml")  # falls back to the example config
    env["RELEASEBOT_DB"] = str(tmp_path / "unused.db")
    lines = "/release status\n/release staging 1.4.2\n/release prod\nquit\n"
    done = subprocess.run(  # noqa: S603 - fixed argv, our own CLI
        [sys.executable, "-m", "bot", "console", "--demo", "--now", "2026-11-24T10:00:00-05:00"],
        input=lines,
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "notify status" in out and "1.4.0" in out
    staging = out.index("notify 1.4.2 is live in staging")
    prod = out.index("notify 1.4.2 is live in prod")
    assert staging < prod
    assert "Traceback" not in out + done.stderr
