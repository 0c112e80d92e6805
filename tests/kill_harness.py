"""The bot as a real subprocess that a test can SIGKILL and start again on the same SQLite file.

``KillBed`` owns one scenario: a fake Slack Web API and a fake Prometheus (real aiohttp servers in the
test process, shared by every run so the thread carries over), the config and database files, and the
bot process (``python -m bot serve``) driven with signed requests over real HTTP. ``HoldingSlack`` can
hold one Web API call in flight: the test learns the bot is *exactly* at that call (the ``arrived``
event), kills it there, and the held call is dropped, as a call cut off by a dying process is.

Waiting on the external process is bounded polling (its readiness, its database, its deploy log, the status
files its deploys leave); everything the fakes see is awaited through their own events. ``refuse_writes``
injects a real storage fault into the running bot: its RLIMIT_FSIZE is set to 0 from outside (prlimit), so
every write(2) it makes to a file fails with EFBIG, as on a full disk (SQLite reports a disk I/O error); the
deploy scripts it already started keep their own limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import resource
import signal
import socket
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

from bot.store import Store
from tests.fakes import FakeSlackWebAPI
from tests.fakes.prometheus import FakePrometheus
from tests.fakes.slack_signing import block_actions_body, signed_headers, slash_command_body
from tests.harness import API_TOKEN, CHANNEL, DIGEST, RELEASER, SECRET, buttons, config_dict, record_live

REPO = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 30.0  # a cold interpreter importing slack_bolt, aiohttp, pydantic… on a slow CI runner
WAIT = 15.0
RUNNING = ("queued", "deploying", "verifying")
ERROR_RATE = 'sum(rate(http_requests_total{service="{service}",code=~"5.."}[5m]))'


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def poll(what: str, probe: Callable[[], Any], timeout: float = WAIT) -> Any:
    """Bounded polling of the bot process's externally visible state (its DB, its deploy log)."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


# --- fakes -------------------------------------------------------------------------------------------


@dataclass
class Hold:
    method: str
    predicate: Callable[[dict[str, Any]], bool]
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


class HoldingSlack(FakeSlackWebAPI):
    """The fake Slack, plus: hold the first call matching a predicate until the fake stops, then drop it."""

    def __init__(self) -> None:
        super().__init__()
        self._holds: list[Hold] = []

    def hold(self, method: str, predicate: Callable[[dict[str, Any]], bool] = lambda args: True) -> Hold:
        held = Hold(method, predicate)
        self._holds.append(held)
        return held

    async def _fault_response(
        self, request: web.Request, method: str, args: dict[str, Any], headers: dict[str, str]
    ) -> tuple[web.StreamResponse | None, float]:
        held = next((h for h in self._holds if h.method == method and h.predicate(args)), None)
        if held is None:
            return await super()._fault_response(request, method, args, headers)
        self._holds.remove(held)
        held.arrived.set()
        await self._stopping.wait()  # the caller is killed meanwhile: this call never reaches "Slack"
        return web.Response(status=503), 0.0


def text_of(args: dict[str, Any]) -> str:
    return str(args.get("text", ""))


# --- the bed -------------------------------------------------------------------------------------------


def kill_config(log: Path, prometheus_url: str, **prod: Any) -> dict[str, Any]:
    """tests.harness's config with prod always open: the subprocess runs on the wall clock."""
    config = config_dict(log, window="always", **prod)
    config["freezes"] = []  # the wall clock must never meet the year-end freeze
    config.pop("summaries")  # nor a summary slot (it would post into the channel under test)
    config["metrics"] = {"prometheus_url": prometheus_url, "timeout": "20s", "retries": 0, "retry_delay": "0s"}
    return config


def error_rate_check(after: str) -> dict[str, Any]:
    return {"name": "error rate", "prometheus": ERROR_RATE, "pass_if": "< 0.01", "fail_if": ">= 0.05", "after": [after]}


class KillBed:
    """One kill-and-restart scenario. Use ``async with KillBed(tmp_path, **prod) as bed``."""

    def __init__(self, tmp_path: Path, **prod: Any) -> None:
        self.tmp = tmp_path
        self.log = tmp_path / "deploys.log"
        self.db = tmp_path / "releasebot.db"
        self.slack = HoldingSlack()
        self.prometheus = FakePrometheus()
        self._prod = prod
        self.proc: asyncio.subprocess.Process | None = None
        self.base = ""
        self.runs = 0
        self._http: aiohttp.ClientSession | None = None
        self.seeded: set[int] = set()

    async def __aenter__(self) -> KillBed:
        await self.slack.start()
        await self.prometheus.start()
        config = kill_config(self.log, self.prometheus.url, **self._prod)
        (self.tmp / "releasebot.yml").write_text(yaml.safe_dump(config))
        self._http = aiohttp.ClientSession()
        self.seeded = seed(self.db)
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self.proc is not None and self.proc.returncode is None:
                self.proc.send_signal(signal.SIGTERM)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(10):
                        await self.proc.wait()
                if self.proc.returncode is None:
                    await self.kill()
            release_blocked_stubs(self.log)
        finally:
            if self._http is not None:
                await self._http.close()
            await self.prometheus.stop()
            await self.slack.stop()

    # --- the process ---------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start ``python -m bot serve`` on the shared DB and wait until it answers /healthz."""
        assert self.proc is None or self.proc.returncode is not None, "the previous run is still alive"
        self.runs += 1
        port = free_port()
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": self.slack.base_url,
            "RELEASEBOT_CONFIG": str(self.tmp / "releasebot.yml"),
            "RELEASEBOT_DB": str(self.db),
            "RELEASEBOT_API_TOKEN": API_TOKEN,
            "PORT": str(port),
        }
        output = (self.tmp / f"bot-run{self.runs}.log").open("wb")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "serve", cwd=self.tmp, env=env, stdout=output, stderr=output
        )
        output.close()
        self.base = f"http://127.0.0.1:{port}"
        await self._ready()

    async def _ready(self) -> None:
        assert self._http is not None and self.proc is not None
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.returncode is not None:
                raise AssertionError(f"the bot exited with {self.proc.returncode}:\n{self.output()}")
            with contextlib.suppress(aiohttp.ClientError):
                async with self._http.get(f"{self.base}/healthz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.05)
        raise AssertionError(f"the bot did not answer /healthz within {READY_TIMEOUT}s:\n{self.output()}")

    async def kill(self) -> None:
        """SIGKILL the bot (no shutdown code runs) and reap it."""
        assert self.proc is not None
        self.proc.kill()
        await self.proc.wait()
        assert self.proc.returncode == -signal.SIGKILL
        # What the dead process left on disk (database and WAL) is sound before anything recovers it.
        assert self.query("PRAGMA integrity_check") == [{"integrity_check": "ok"}]

    async def restart(self) -> None:
        await self.start()

    def output(self) -> str:
        return (self.tmp / f"bot-run{self.runs}.log").read_text(errors="replace")[-4000:]

    # --- storage faults ------------------------------------------------------------------------------
    def refuse_writes(self) -> None:
        """From now on every file write of the running bot fails (RLIMIT_FSIZE 0; Python ignores SIGXFSZ)."""
        assert self.proc is not None and self.proc.returncode is None
        _, hard = resource.prlimit(self.proc.pid, resource.RLIMIT_FSIZE)
        resource.prlimit(self.proc.pid, resource.RLIMIT_FSIZE, (0, hard))

    def allow_writes(self) -> None:
        assert self.proc is not None and self.proc.returncode is None
        _, hard = resource.prlimit(self.proc.pid, resource.RLIMIT_FSIZE)
        resource.prlimit(self.proc.pid, resource.RLIMIT_FSIZE, (hard, hard))

    async def health(self) -> tuple[int, dict[str, Any]]:
        """/healthz: its status and its JSON body."""
        assert self._http is not None
        async with self._http.get(f"{self.base}/healthz") as response:
            return response.status, await response.json()

    async def wait_health(self, status: int, containing: str = "") -> dict[str, Any]:
        """Bounded polling of /healthz until it answers ``status`` (with ``containing`` in its body); the body."""

        async def probe() -> dict[str, Any] | None:
            answered, body = await self.health()
            return body if answered == status and containing in json.dumps(body) else None

        deadline = time.monotonic() + WAIT
        while True:
            found = await probe()
            if found is not None:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"/healthz did not answer {status} within {WAIT}s: {await self.health()}")
            await asyncio.sleep(0.05)

    # --- Slack requests ------------------------------------------------------------------------------
    async def _post(self, body: bytes) -> None:
        assert self._http is not None
        async with self._http.post(
            f"{self.base}/slack/events", data=body, headers=signed_headers(SECRET, body)
        ) as response:
            assert response.status == 200, await response.text()
            assert not (await response.read()).strip(), "these requests are answered through response_url"

    async def send(self, text: str, *, user: str = RELEASER) -> None:
        """POST a signed `/release` command and return once acked (the answer may never come)."""
        url = self.slack.new_response_url(channel=CHANNEL, user_id=user)
        await self._post(slash_command_body("/release", text, user_id=user, channel_id=CHANNEL, response_url=url))

    async def command(self, text: str, *, user: str = RELEASER) -> str:
        """`/release …` and the bot's (ephemeral) answer to ``user``."""
        before = len(self.slack.calls_to("response_url"))
        await self.send(text, user=user)
        return await self._answer(before)

    async def click(self, action_id: str, value: str, *, user: str) -> str:
        """A signed button click and the bot's answer to ``user``."""
        url = self.slack.new_response_url(channel=CHANNEL, user_id=user)
        before = len(self.slack.calls_to("response_url"))
        await self._post(
            block_actions_body(user_id=user, action_id=action_id, value=value, channel_id=CHANNEL, response_url=url)
        )
        return await self._answer(before)

    async def _answer(self, before: int) -> str:
        """The bot's answer through response_url (ephemeral, or in the channel) to the request just sent."""
        calls = await self.slack.wait_for("response_url", count=before + 1, timeout=WAIT)
        args = calls[before].args
        return text_of(args) + "\n" + json.dumps(args.get("blocks", ""), ensure_ascii=False)

    async def posted(self, needle: str, count: int = 1) -> None:
        """Wait until ``count`` messages containing ``needle`` reached Slack."""
        await self.slack.wait_for("chat.postMessage", count, WAIT, lambda c: needle in text_of(c.args))

    async def replied(self, release: dict[str, Any], needle: str) -> None:
        """Wait until a reply containing ``needle`` reached the release's thread (work the bot does after the ack or
        after a start, such as recording a deploy it followed, tells its thread last)."""
        thread_ts = release["thread_ts"]
        assert thread_ts, f"release #{release['id']} has no message"

        def in_thread(call: Any) -> bool:
            return call.args.get("thread_ts") == thread_ts and needle in text_of(call.args)

        await self.slack.wait_for("chat.postMessage", 1, WAIT, in_thread)

    async def parent_shows(self, release_id: int, state: str) -> None:
        """Wait until the release's parent message was updated to ``state``."""

        def shows(call: Any) -> bool:
            return text_of(call.args).endswith(f": {state}") and f"release #{release_id}" in json.dumps(
                call.args.get("blocks", "")
            )

        await self.slack.wait_for("chat.update", 1, WAIT, shows)

    async def outbox_delivered(self) -> None:
        """Wait (bounded polling of the bot's database, another process's) until its Slack outbox has nothing
        pending: what the killed run queued and did not send is sent by the restarted one."""
        deadline = time.monotonic() + WAIT
        while self.query("SELECT count(*) AS n FROM outbox WHERE state = 'pending'")[0]["n"]:
            if time.monotonic() > deadline:
                raise AssertionError(f"the outbox still has pending rows after {WAIT}s:\n{self.output()}")
            await asyncio.sleep(0.05)

    # --- what the process left behind ---------------------------------------------------------------
    def deploys(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def overlaps(self) -> list[str]:
        """Deploy runs that started while another one held the stub's lock (none, ever)."""
        overlaps = Path(f"{self.log}.overlaps")
        return overlaps.read_text().splitlines() if overlaps.exists() else []

    def statuses(self) -> list[Path]:
        """The exit-status files deploy steps left in the data directory, one per step that ended by itself."""
        return sorted((self.tmp / "deploys").glob("*.status"))

    async def deploys_ended(self, count: int) -> list[Path]:
        """Bounded polling until ``count`` deploy steps have written their exit status."""
        found: list[Path] = await poll(
            f"{count} deploy exit statuses", lambda: len(self.statuses()) >= count and self.statuses()
        )
        return found

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Read the bot's database from outside (read-only; WAL lets it run beside the bot)."""
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5.0)
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute(sql, params)]
        finally:
            conn.close()

    def releases(self, env: str = "prod") -> list[dict[str, Any]]:
        return self.query("SELECT * FROM releases WHERE env = ? ORDER BY id", (env,))

    def release(self, release_id: int) -> dict[str, Any]:
        [row] = self.query("SELECT * FROM releases WHERE id = ?", (release_id,))
        return row

    async def wait_release(self, state: str, env: str = "prod", version: str | None = None) -> dict[str, Any]:
        """The latest release in ``env`` once it is in ``state`` (bounded polling of the bot's DB).

        A finished release is returned once its parent message was also updated to that state.
        """

        def probe() -> dict[str, Any] | None:
            found = [r for r in self.releases(env) if version is None or r["version"] == version]
            return found[-1] if found and found[-1]["state"] == state else None

        found: dict[str, Any] = await poll(f"a {env} release in state {state}", probe)
        if found["thread_ts"] is not None and state in ("succeeded", "failed"):
            await self.parent_shows(found["id"], state)  # and the channel says so, not only the store
        return found

    def thread(self, release: dict[str, Any]) -> list[Any]:
        assert release["thread_ts"], f"release #{release['id']} has no message"
        return self.slack.thread(CHANNEL, str(release["thread_ts"]))


# --- seeding and teardown --------------------------------------------------------------------------------


def seed(db: Path) -> set[int]:
    """Candidates 1.2.2 and 1.2.3 (pinned, tested, scanned); staging runs 1.2.3, prod runs 1.2.2.

    Returns the ids of these history releases (they predate the bot's threads).
    """
    now = datetime.now(UTC)
    store = Store(db)
    ids = set()
    try:
        for version in ("1.2.2", "1.2.3"):
            _candidate(store, version, now)
        for env, version in (("staging", "1.2.2"), ("prod", "1.2.2"), ("staging", "1.2.3")):
            ids.add(record_live(store, env, version, now - timedelta(days=1)))
    finally:
        store.close()
    return ids


def seed_staged(bed: KillBed, versions: list[str]) -> None:
    """More candidates, newest last, each already released to staging (so prod may take any of them in order)."""
    store = Store(bed.db)
    try:
        for version in versions:
            now = datetime.now(UTC)
            _candidate(store, version, now)
            bed.seeded.add(record_live(store, "staging", version, now - timedelta(hours=1)))
    finally:
        store.close()


def _candidate(store: Store, version: str, now: datetime) -> None:
    store.put_candidate(
        service="notify",
        version=version,
        commit=(version.replace(".", "") + "a" * 40)[:40],
        committed_at=now - timedelta(hours=6),
        components={c: f"ghcr.io/example/{c}:{version}@{DIGEST}" for c in ("api", "worker")},
        tests={"unit": "passed"},
        now=now,
    )
    counts = {"CRITICAL": 0, "HIGH": 0, "MEDIUM": 0, "LOW": 0, "UNKNOWN": 0}
    summary = {"artifact": f"notify:{version}", "artifact_type": "container_image", "counts": counts}
    for component in ("api", "worker"):
        store.put_scan("notify", version, component, {**summary, "total": 0, "top": []}, now)


# --- a deploy left running by a kill ------------------------------------------------------------------------

# How the deploy a kill leaves running ends: after the restart (the new bot follows it), or while the bot is down
# (its exit status file tells the restart), with success or failure.
ENDS_AFTER_THE_RESTART = "ends-after-the-restart"
ENDS_WHILE_DOWN = "ends-while-down"
FAILS_WHILE_DOWN = "fails-while-down"
MODES = (ENDS_AFTER_THE_RESTART, ENDS_WHILE_DOWN, FAILS_WHILE_DOWN)


@dataclass
class LeftDeploy:
    """One kill loop: the release, what the restarted bot recorded, what it said, and how long it took."""

    release_id: int
    state: str
    restart_s: float  # the new process started → /healthz answered 200
    recorded_s: float  # the deploy ended (or the bot restarted, when it ended while down) → its outcome stored
    refusals: list[str] = field(default_factory=list)  # what Retry and a new request were told meanwhile


async def kill_during_a_deploy(bed: KillBed, version: str, mode: str, *, retry_as: str) -> LeftDeploy:
    """Release ``version`` to prod, SIGKILL the bot while its deploy script runs (blocked on the FIFO), let the
    script end as ``mode`` says, restart, and wait until the outcome is recorded. While the left deploy still
    runs (``ENDS_AFTER_THE_RESTART``), Retry and a new request for prod are tried: both must be refused."""
    fifo = Path(f"{bed.log}.block")
    fail = Path(f"{bed.log}.fail")
    os.mkfifo(fifo)
    try:
        answer = await bed.command(f"prod {version}")
        assert "has started" in answer, answer
        writer = await fifo_reader_waiting(fifo)
        [release] = [r for r in bed.releases() if r["version"] == version]
        ended = len(bed.statuses())
        await bed.kill()
        if mode == FAILS_WHILE_DOWN:
            fail.write_text("migration failed\n")
        if mode != ENDS_AFTER_THE_RESTART:
            os.close(writer)
            await bed.deploys_ended(ended + 1)
        started = time.monotonic()
        await bed.restart()
        restart_s = time.monotonic() - started
        refusals = []
        if mode == ENDS_AFTER_THE_RESTART:
            assert bed.release(release["id"])["state"] == "deploying", "the left deploy still runs: not interrupted"
            assert [lock["release_id"] for lock in bed.query("SELECT * FROM release_locks WHERE env = 'prod'")] == [
                release["id"]
            ], "prod stays locked by it"
            refusals.append(await bed.click("release_retry", str(release["id"]), user=retry_as))
            refusals.append(await bed.command(f"prod {version}"))
            started = time.monotonic()
            os.write(writer, b"go\n")
            os.close(writer)

        def recorded() -> dict[str, Any] | None:
            found = bed.release(release["id"])
            return found if found["state"] not in RUNNING else None

        done: dict[str, Any] = await poll("the left deploy's outcome", recorded)
        recorded_s = time.monotonic() - started
        await bed.parent_shows(release["id"], done["state"])
        await bed.replied(done, f"The release is recorded *{done['state']}*")
        return LeftDeploy(release["id"], done["state"], restart_s, recorded_s, refusals)
    finally:
        release_blocked_stubs(bed.log)
        fifo.unlink()
        fail.unlink(missing_ok=True)


def release_blocked_stubs(log: Path) -> None:
    """Unblock a deploy stub a killed bot left waiting on the FIFO (it outlives the bot: own session)."""
    fifo = Path(f"{log}.block")
    if not fifo.exists():
        return
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # nobody is reading: no stub is waiting
            return
        raise
    with contextlib.suppress(BrokenPipeError):
        os.write(fd, b"go\n")
    os.close(fd)


async def fifo_reader_waiting(fifo: Path) -> int:
    """A write end of the stub's FIFO, once a deploy script is blocked reading it (bounded polling)."""

    def probe() -> int | None:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                return None
            raise

    fd: int = await poll("the deploy script to block on its FIFO", probe)
    return fd


async def refuse_writes_after_a_deploy(bed: KillBed, version: str) -> dict[str, Any]:
    """Release ``version`` to prod; while its script runs, make the store refuse writes, then let the script
    succeed. Returns the release once /healthz says the store cannot write and the release's outcome waits."""
    fifo = Path(f"{bed.log}.block")
    os.mkfifo(fifo)
    try:
        answer = await bed.command(f"prod {version}")
        assert "has started" in answer, answer
        writer = await fifo_reader_waiting(fifo)
        [release] = [r for r in bed.releases() if r["version"] == version]
        ended = len(bed.statuses())
        bed.refuse_writes()
        os.close(writer)  # the deploy succeeds; the bot cannot record it
        await bed.deploys_ended(ended + 1)
        body = await bed.wait_health(503, containing=f"release #{release['id']}")
        assert any(p.startswith("the store cannot write: disk I/O error") for p in body["problems"]), body
        assert bed.release(release["id"])["state"] == "deploying", "nothing recorded: the store refused it"
        return release
    finally:
        fifo.unlink()


# --- the invariants every restart must leave --------------------------------------------------------------


def consistency_problems(bed: KillBed, *, may_repeat: Counter[str] | None = None) -> list[str]:
    """Everything wrong with the state a restart left, as sentences (empty: consistent).

    The database is sound and says nothing impossible (no running release after a start, no lock
    held by a release that is not running, env_state names a release that succeeded there, every
    release waiting for approval has an open request); no deploy step ran twice unless ``may_repeat``
    allows it (a Retry); and each release's parent message in Slack shows the state the store holds,
    an interrupted one offering Retry / Roll back in its thread.
    """
    problems: list[str] = []
    [integrity] = bed.query("PRAGMA integrity_check")
    if next(iter(integrity.values())) != "ok":
        problems.append(f"integrity_check: {integrity}")
    problems += [f"foreign key violation: {row}" for row in bed.query("PRAGMA foreign_key_check")]
    releases = {r["id"]: r for r in bed.query("SELECT * FROM releases")}
    open_runs = bed.query("SELECT * FROM deploy_runs WHERE ended_at IS NULL")
    followed = {run["release_id"] for run in open_runs if run["adopted_at"] is not None}
    problems += [
        f"release #{i} is still {r['state']} after a start"
        for i, r in releases.items()
        if r["state"] in RUNNING and i not in followed  # a deploy left running is waited for, lock held
    ]
    problems += [
        f"release #{run['release_id']} is {releases[run['release_id']]['state']} with its step {run['step']!r} open"
        for run in open_runs
        if releases[run["release_id"]]["state"] not in RUNNING
    ]
    envs = Counter((releases[run["release_id"]]["service"], releases[run["release_id"]]["env"]) for run in open_runs)
    problems += [f"{env} has {n} deploy steps running at once" for env, n in envs.items() if n > 1]
    problems += [f"a deploy ran while another held the lock: {line!r}" for line in bed.overlaps()]
    for lock in bed.query("SELECT * FROM release_locks"):
        holder = releases[lock["release_id"]]
        if holder["state"] not in RUNNING:
            problems.append(f"{lock['env']} is locked by release #{holder['id']}, which is {holder['state']}")
    for state in bed.query("SELECT * FROM env_state"):
        source = releases[state["release_id"]]
        if source["state"] not in ("succeeded", "rolled_back") or source["version"] != state["version"]:
            problems.append(f"{state['env']} runs {state['version']} per release #{source['id']} ({source['state']})")
    pending = {
        json.loads(a["subject"]).get("release_id")
        for a in bed.query("SELECT subject FROM approvals WHERE state = 'pending'")
    }
    for release_id, release in releases.items():
        if release["state"] == "awaiting_approval" and release_id not in pending:
            problems.append(f"release #{release_id} waits for an approval that is no longer open: it can never run")
    allowed = may_repeat or Counter()
    for line, n in Counter(bed.deploys()).items():
        if n > 1 + allowed[line]:
            problems.append(f"deploy step {line!r} ran {n} times")
    problems += _story_problems(bed, list(releases.values()))
    return problems


def _story_problems(bed: KillBed, releases: list[dict[str, Any]]) -> list[str]:
    problems = []
    for release in releases:
        if release["id"] in bed.seeded:
            continue  # history from before the bot ran: no thread
        if release["thread_ts"] is None:
            problems.append(f"release #{release['id']} ({release['state']}) has no message in the channel")
            continue
        parent, *replies = bed.thread(release)
        if not parent.text.endswith(f": {release['state']}"):
            problems.append(f"release #{release['id']} is {release['state']} but its message says {parent.text!r}")
        if release["state"] == "interrupted":
            offered = [buttons(m.blocks) for m in replies]
            wanted = {"release_retry": str(release["id"]), "release_rollback": str(release["id"])}
            if wanted not in offered:
                problems.append(f"interrupted release #{release['id']} offers no Retry / Roll back in its thread")
    return problems
