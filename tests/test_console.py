"""The console adapter: the same handlers as Slack mode, messages as text, buttons clicked by number."""

from __future__ import annotations

import json
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
from typing import Any

from bot.bootstrap import Runtime, build_runtime
from bot.config import parse_config
from bot.console_time import ConsoleClock, ConsoleScheduler
from bot.core.models import ApprovalState
from bot.settings import Settings
from bot.slack.console import Console, ConsoleDirectory, ConsoleNotifier
from bot.store import AsyncStore, Store
from tests.fakes.prometheus import FakePrometheus
from tests.harness import CHANNEL, ONCALL1, OUTSIDER, RELEASER, TUESDAY_10AM, config_dict, record_live
from tests.test_scenario_checks import THRESHOLDS, checks_config
from tests.test_scenario_trains import LEAD, candidate, train_config

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Session:
    console: Console
    runtime: Runtime
    out: StringIO
    log: Path
    clock: ConsoleClock

    async def type(self, line: str) -> str:
        """Type one line and then `wait` (as a person waits for the output to stop): all that was printed."""
        start = len(self.out.getvalue())
        assert await self.console.handle(line)
        if line.split()[0] not in {"wait", "advance"}:  # those wait themselves
            await self.console.wait()
        return self.out.getvalue()[start:]

    def live(self, env: str, version: str) -> None:
        record_live(self.runtime.store.sync, env, version, self.clock.now() - timedelta(days=1))

    def deploys(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


@asynccontextmanager
async def console_session(tmp_path: Path, config: dict[str, Any] | None = None) -> AsyncIterator[Session]:
    """The console as `release-bot console` builds it, on a clock that stands still until the test advances it."""
    log = tmp_path / "deploys.log"
    parsed = parse_config(config or config_dict(log))
    out = StringIO()
    notifier = ConsoleNotifier(out=out)
    clock = ConsoleClock(TUESDAY_10AM, speed=0)
    scheduler = ConsoleScheduler(clock)
    runtime = build_runtime(
        Settings(),
        parsed,
        store=AsyncStore(Store(tmp_path / "console.db")),
        notifier=notifier,
        directory=ConsoleDirectory(parsed, {"S01PLATFORM": frozenset({"U01PLATFORM"})}),
        config_dir=tmp_path,
        clock=clock,
        scheduler=scheduler,
        sleep=clock.sleep,
    )
    clock.attach()
    try:
        with clock.working():
            await runtime.start()
        try:
            console = Console(runtime.engine, notifier, scheduler, user=RELEASER, channel=CHANNEL)
            yield Session(console, runtime, out, log, clock)
        finally:
            await runtime.close()
    finally:
        clock.detach()


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
        session.clock.advance(timedelta(minutes=31))
        shown = await session.type(f"as {ONCALL1}")  # the clock moved past the expiry: the request expired
        assert "Expired" in shown
        assert "that request has expired; nothing was done" in await session.type(f"click {approve}")
        approvals = session.runtime.store.sync.sql.query("SELECT state FROM approvals")
        assert [a["state"] for a in approvals] == [ApprovalState.EXPIRED.value]
        assert session.deploys() == []


async def test_advancing_the_console_clock_past_a_requests_expiry_expires_it_without_a_click(tmp_path: Path) -> None:
    async with console_session(tmp_path) as session:
        session.live("prod", "1.2.2")
        session.live("prod", "1.2.3")
        assert "Approve" in await session.type("/release rollback prod")
        assert "Expired" not in await session.type("advance 29m")
        printed = await session.type("advance 2m")
        assert "Expired" in printed, printed  # the request's message, reprinted without its buttons
        approvals = session.runtime.store.sync.sql.query("SELECT state FROM approvals")
        assert [a["state"] for a in approvals] == [ApprovalState.EXPIRED.value]
        assert session.deploys() == []


async def test_a_train_departure_is_held_in_the_console_with_a_reason(tmp_path: Path) -> None:
    async with console_session(tmp_path, train_config(tmp_path / "deploys.log")) as session:
        session.live("prod", "1.2.2")
        session.live("staging", "1.2.3")
        candidate(session.runtime.store.sync, "notify", "1.2.3", TUESDAY_10AM)
        printed = await session.type("advance 3h45m")  # 13:45: the boarding call of the 14:00 departure
        hold = button(printed, "Hold")
        assert "Hold needs a reason" in await session.type(f"click {hold}")
        assert "you may not hold the prod train" in await session.type(f"click {hold} not today")  # a releaser
        await session.type(f"as {LEAD}")
        printed = await session.type(f"click {hold} the payments migration is still running")
        assert f"is held by @{LEAD}: the payments migration is still running" in printed, printed
        await session.type("advance 15m")
        assert session.deploys() == []  # the held departure did not leave
        departures = session.runtime.store.sync.sql.query("SELECT state, held_by FROM train_departures")
        assert departures[0] == {"state": "held", "held_by": LEAD}


def test_make_run_console_demo_releases_to_staging_then_prod(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "RELEASEBOT_"))}
    env["RELEASEBOT_CONFIG"] = str(tmp_path / "absent.yml")  # --demo uses the example config, never this
    env["RELEASEBOT_DB"] = str(tmp_path / "unused.db")
    # The prod canary pauses twice (1s each in the demo); `advance` ends each pause without waiting for it.
    lines = "/release status\n/release staging 1.4.2\nwait\n/release prod\nwait\nadvance 1s\nadvance 1s\nquit\n"
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
    assert out.startswith("demo: the example config ") and "RELEASEBOT_CONFIG and RELEASEBOT_DB are not used" in out
    assert "notify status" in out and "1.4.0" in out
    staging = out.index("notify 1.4.2 is live in staging")
    paused = out.index("(waiting for the clock until Tue 24 Nov 10:00:01 EST, in 1s: `advance 1s` gets there)")
    prod = out.index("notify 1.4.2 is live in prod")
    assert staging < paused < prod
    assert "Traceback" not in out + done.stderr
    assert not (tmp_path / "unused.db").exists(), "the demo has a database of its own"


# --- the console as a workbench: candidates, a clock of its own, work in the background ----------------------

DIGESTS = {"api": "sha256:" + "a1" * 32, "worker": "sha256:" + "b2" * 32}
COMMIT = "4f0c" * 10


def image(component: str, version: str) -> str:
    return f"ghcr.io/example/{component}:{version}@{DIGESTS[component]}"


def trivy_report(path: Path, ref: str, *severities: str) -> Path:
    """Trivy's JSON report of the image ``ref`` (by its name and, as Trivy records it, its digest)."""
    repo, digest = ref.split(":", 1)[0], ref.split("@", 1)[1]
    vulns = [
        {"VulnerabilityID": f"CVE-2026-{i:04d}", "PkgName": "openssl", "InstalledVersion": "3.0.1", "Severity": s}
        for i, s in enumerate(severities)
    ]
    report = {
        "SchemaVersion": 2,
        "ArtifactName": ref,
        "ArtifactType": "container_image",
        "Metadata": {"RepoDigests": [f"{repo}@{digest}"]},
        "Results": [{"Target": "debian 12.5", "Class": "os-pkgs", "Type": "debian", "Vulnerabilities": vulns}],
    }
    path.write_text(json.dumps(report))
    return path


async def register(session: Session, tmp_path: Path, version: str) -> str:
    """Register ``version`` with passing tests and clean scans of both images, at the console's prompt."""
    images = " ".join(f"--image {c}={image(c, version)}" for c in ("api", "worker"))
    printed = await session.type(f"candidate add notify {version} --commit {COMMIT} {images} --test unit=passed")
    for component in ("api", "worker"):
        report = trivy_report(tmp_path / f"{component}-{version}.json", image(component, version), "LOW")
        printed += await session.type(f"candidate scan notify {version} {report}")
    return printed


CANARY = {"type": "canary", "steps": [10, 50, 100], "pause": "5m"}
ERROR_RATE = {"name": "error rate", "prometheus": "errors", "after": ["5m", "15m"], **THRESHOLDS}


async def test_a_canary_pauses_on_the_console_clock_and_the_console_answers_meanwhile(tmp_path: Path) -> None:
    config = config_dict(tmp_path / "deploys.log", window="always", strategy=CANARY)
    async with console_session(tmp_path, config) as session:
        session.live("prod", "1.2.2")
        await register(session, tmp_path, "1.3.0")
        assert "notify 1.3.0 is live in staging" in await session.type("/release staging 1.3.0")

        printed = await session.type("/release prod")
        assert "canary 10%" in printed
        assert "(waiting for the clock until Tue 24 Nov 10:05:00 EST, in 5m: `advance 5m` gets there)" in printed
        assert session.deploys()[-1] == "notify 1.3.0 prod 10"
        assert "prod" in await session.type("/release status"), "the console answers while the rollout waits"

        printed = await session.type("advance 5m")
        assert printed.startswith("(the clock is now Tue 24 Nov 10:05:00 EST)")
        assert "canary 50%" in printed and "live in prod" not in printed
        assert session.deploys()[-1] == "notify 1.3.0 prod 50"

        printed = await session.type("advance 5m")
        assert "notify 1.3.0 is live in prod" in printed
        assert "waiting for the clock" not in printed
        assert session.deploys()[-1] == "notify 1.3.0 prod 100"


async def test_the_checks_after_a_release_come_due_when_the_clock_gets_there(tmp_path: Path) -> None:
    async with FakePrometheus(value=0.002) as prometheus:
        config = checks_config(tmp_path / "deploys.log", prometheus.url, checks=[ERROR_RATE])
        async with console_session(tmp_path, config) as session:
            session.live("prod", "1.2.2")
            await register(session, tmp_path, "1.3.0")
            await session.type("/release staging 1.3.0")
            printed = await session.type("/release prod")
            assert "notify 1.3.0 is live in prod" in printed
            assert "(waiting for the clock until Tue 24 Nov 10:05:00 EST, in 5m: `advance 5m` gets there)" in printed
            assert prometheus.queries == []

            printed = await session.type("advance 4m")
            assert "error rate" not in printed and prometheus.queries == []
            printed = await session.type("advance 1m")
            assert "✅ *error rate* (+5m): error rate = 0.002 (pass if < 0.01" in printed
            assert len(prometheus.queries) == 1
            assert "in 10m: `advance 10m` gets there" in printed, "the next measurement is at +15m"


async def test_candidate_commands_at_the_console_answer_and_refuse_as_the_api_does(tmp_path: Path) -> None:
    async with console_session(tmp_path) as session:
        api, worker = image("api", "1.3.0"), image("worker", "1.3.0")
        add = f"candidate add notify 1.3.0 --commit {COMMIT} --image api={api}"
        assert await session.type(add) == "components.worker: missing: notify needs an image for worker\n"
        printed = await session.type("candidate add notify 1.3.0 --commit abc123 --image api=x --image worker=y")
        assert printed == "commit: 'abc123' is not a commit: use the full id, 40 or 64 hexadecimal characters\n"
        assert "is not COMPONENT=IMAGE" in await session.type(f"{add} --image worker")
        assert await session.type("candidate tests notify 1.3.0 unit passed") == (
            "version: no candidate notify 1.3.0; register it first "
            "(POST /api/v1/candidates, or `release-bot candidate add`)\n"
        )

        printed = await session.type(f"{add} --image worker={worker} --test unit=failed")
        assert printed.splitlines() == [
            f"registered notify 1.3.0 (commit {COMMIT[:12]})",
            f"  api: {api}",
            f"  worker: {worker}",
            "  tests: unit failed",
        ]
        [audit] = session.runtime.store.sync.audit_since(None)
        assert (audit.actor, audit.action, audit.subject) == (RELEASER, "candidate.created", "notify/1.3.0")
        assert "nothing changed" in await session.type(f"{add} --image worker={worker} --test unit=failed")
        other_commit = add.replace(COMMIT, "5" * 40)
        assert await session.type(f"{other_commit} --image worker={worker} --test unit=failed") == (
            "commit: notify 1.3.0 is already registered with a different commit; "
            "a version is immutable, publish a new one\n"
        )

        url = "https://ci.example.com/runs/42"
        assert await session.type(f"candidate tests notify 1.3.0 unit passed --url {url}") == (
            "notify 1.3.0: unit passed (recorded)\n"
        )
        again = await session.type(f"candidate tests notify 1.3.0 unit passed --url {url}")
        assert again == "notify 1.3.0: unit passed (already recorded: nothing changed)\n"
        foreign = trivy_report(tmp_path / "other.json", "ghcr.io/example/other:1.0.0@" + "sha256:" + "c3" * 32)
        assert (await session.type(f"candidate scan notify 1.3.0 {foreign}")).startswith(
            "ArtifactName: the report is of 'ghcr.io/example/other:1.0.0@sha256:c3"
        )
        assert "0 critical, 1 high" in await session.type(
            f"candidate scan notify 1.3.0 {trivy_report(tmp_path / 'api.json', api, 'HIGH')}"
        )
        assert "Usage: candidate add [OPTIONS] SERVICE VERSION" in await session.type("candidate add --help")
        assert await session.type("candidate remove notify 1.3.0") == (
            "candidate: candidate add | tests | scan …  (`candidate add --help` shows how)\n"
        )
        assert "cannot read" in await session.type(f"candidate scan notify 1.3.0 {tmp_path / 'missing.json'}")


async def test_a_refusal_for_an_unpinned_image_says_how_to_pin_it(tmp_path: Path) -> None:
    async with console_session(tmp_path) as session:
        tagged = "ghcr.io/example/api:1.3.0"
        images = f"--image api={tagged} --image worker={image('worker', '1.3.0')}"
        await session.type(f"candidate add notify 1.3.0 --commit {COMMIT} {images} --test unit=passed")
        assert "notify 1.3.0 is live in staging" in await session.type("/release staging 1.3.0")

        refusal = await session.type("/release prod")

        assert f"❌ images: api: {tagged} is not pinned by digest" in refusal
        assert (
            "To pin the images: a registered version cannot change, so register a new version with every image "
            "pinned by its digest — from CI with `POST /api/v1/candidates` (docs/api.md), or `release-bot candidate "
            f"add notify VERSION --commit SHA --image api={tagged}@sha256:… --image worker={image('worker', '1.3.0')}` "
            "(at the console too, without `release-bot`)."
        ) in refusal
        assert refusal.index("To pin the images") < refusal.index("Break-glass: add `--force <reason>`")
        assert session.deploys() == ["notify 1.3.0 staging 100"], "nothing ran in prod"


async def test_the_console_suggests_users_channels_and_versions_from_the_loaded_config(tmp_path: Path) -> None:
    config = config_dict(tmp_path / "deploys.log")
    config["groups"] = {"releasers": [RELEASER, "S01PLATFORM"], "oncall": ["U07ALICE"], "leads": ["U07BOB"]}
    config["services"]["billing"] = {"channel": "C07BILLING", "components": ["app"], "pipeline": ["staging"]}
    async with console_session(tmp_path, config) as session:
        printed = await session.type("help")
        assert "Type a slash command, e.g. `/release status`, `/release staging 1.0.0`, `/release prod`." in printed
        assert f"  {'as U07ALICE':<20}act as another Slack user (oncall)" in printed
        assert f"  {'in C07BILLING':<20}type in billing's channel" in printed
        assert "candidate add notify VERSION --commit SHA --image api=IMAGE --image worker=IMAGE" in printed
        assert "U01ONCALL1" not in printed and "C01RELEASES" not in printed, "nothing from the example config"

        await register(session, tmp_path, "1.3.0")
        await session.type("as U07ALICE")
        printed = await session.type("help")
        assert "`/release staging 1.3.0`" in printed, "the newest candidate"
        assert f"  {'as U01RELEASE':<20}act as another Slack user (releasers)" in printed, "someone else"


async def test_one_advance_plays_a_whole_canary_through(tmp_path: Path) -> None:
    """`advance 1h` lets the hour pass: each pause ends in turn and the steps after it run, not only the first."""
    config = config_dict(tmp_path / "deploys.log", window="always", strategy=CANARY)
    async with console_session(tmp_path, config) as session:
        session.live("prod", "1.2.2")
        await register(session, tmp_path, "1.3.0")
        await session.type("/release staging 1.3.0")
        await session.type("/release prod")
        printed = await session.type("advance 1h")
        assert printed.startswith("(the clock is now Tue 24 Nov 11:00:00 EST)")
        assert "notify 1.3.0 is live in prod" in printed and "waiting for the clock" not in printed
        assert [d for d in session.deploys() if " prod " in d] == [
            "notify 1.3.0 prod 10",
            "notify 1.3.0 prod 50",
            "notify 1.3.0 prod 100",
        ]
