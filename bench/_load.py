"""Servers for the ack-latency benchmark, each in its own process, plus the helpers the driver shares.

Five roles, started by `bench/ack.py` as `python bench/_load.py ROLE ...`:

- ``slack``: the fake Slack Web API (tests.fakes) and a control server that hands out response URLs
  and serves a health endpoint for the bot's HTTP checks;
- ``bot``: the bot in HTTP mode (`bot.bootstrap.http_app`, real SQLite, APScheduler, SystemClock) with
  50 services, and a control server on a second port that arms scheduled checks, unblocks the deploys
  and reports state and RSS;
- ``bare``: a slack-bolt AsyncApp as Bolt configures it by default, whose `/release` listener only acks,
  behind the same aiohttp adapter;
- ``bare-on-return``: the same app answering when its listener returns (``process_before_response``, as
  the bot's app does): the best a Bolt app can do, so what the bot adds on top of Bolt shows;
- ``raw``: a plain aiohttp handler that reads the body, checks its Slack signature and answers an empty 200:
  the least any Slack endpoint does, the floor under the other two.

Separate processes keep the comparison fair: the bot's background work (respond(), deploys, checks)
runs on the bot's own event loop and never on the bare app's or the load generator's, while machine
noise still hits all of them. Each child prints one JSON line with its URLs, serves until its stdin
closes, then prints a final JSON line (RSS) and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import sys
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aiohttp import web  # noqa: E402

SECRET = "bench-signing-secret"
TOKEN = "xoxb-bench"
RELEASER = "U01RELEASE"
SERVICES = 50
CANDIDATE = "1.0.0"
DIGEST = "sha256:" + "c0ffee00" * 8
STUB = ROOT / "tests" / "data" / "deploy_stub.sh"


def channel_of(index: int) -> str:
    """The release channel of service ``index`` (a valid Slack channel ID)."""
    return f"C0SVC{index:04d}"


def service_of(index: int) -> str:
    return f"svc{index:02d}"


def usage() -> dict[str, Any]:
    """This process: current resident set (VmRSS) and its peak (ru_maxrss) in KiB, CPU seconds used."""
    current = 0
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                current = int(line.split()[1])
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {"rss_kb": current, "peak_rss_kb": int(ru.ru_maxrss), "cpu_s": ru.ru_utime + ru.ru_stime}


class GcPauses:
    """Times every garbage collection of this process (a pause of the event loop the bot cannot avoid)."""

    def __init__(self) -> None:
        self.longest = 0.0
        self.count = 0
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.longest = max(self.longest, time.perf_counter() - self._started)
            self.count += 1

    def take(self) -> dict[str, float]:
        """The longest pause and the number of collections since the last take."""
        out = {"gc_longest_ms": round(self.longest * 1000, 1), "gc_collections": self.count}
        self.longest, self.count = 0.0, 0
        return out


async def usage_route(request: web.Request) -> web.Response:
    return web.json_response(usage())


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    """Serve ``app`` on 127.0.0.1, a free port; returns the runner and the base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server  # aiohttp exposes the bound port only through the asyncio server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    return runner, f"http://127.0.0.1:{port}"


def bench_config(logs: Path, health_url: str, services: int = SERVICES) -> dict[str, Any]:
    """50 services, each in its own channel, shipping staging (always open) then prod (business hours).

    Deploys run the tests' stub script with a log per service in ``logs`` (the stub takes a lock per log to
    catch two deploys at once, and the 50 services deploy side by side); each blocks on ``<log>.block``
    (a FIFO) until released. Prod has an HTTP post-release check against the slack process's health endpoint.
    """
    run = [str(STUB), str(logs / "{service}.log"), "{service}", "{version}", "{environment}", "{weight}"]
    deploy = {"provider": "command", "run": run, "timeout": "10m"}
    return {
        "timezone": "America/Toronto",
        "calendar": {"country": "CA", "subdivision": "ON"},
        "groups": {"releasers": [RELEASER], "oncall": ["U01ONCALL1"]},
        "services": {
            service_of(i): {"channel": channel_of(i), "components": ["api"], "pipeline": ["staging", "prod"]}
            for i in range(services)
        },
        "environments": {
            "staging": {"window": "always", "deploy": deploy},
            "prod": {
                "window": "business_hours",
                "allowed": ["releasers"],
                "deploy": deploy,
                "checks": [{"name": "health", "http": health_url, "after": ["5m"]}],
                "on_check_failure": "notify",
            },
        },
    }


# --------------------------------------------------------------------------------------- roles


async def _until_stdin_closes() -> None:
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


def _announce(info: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(info) + "\n")
    sys.stdout.flush()


async def slack_role() -> None:
    from tests.fakes import FakeSlackWebAPI

    async with FakeSlackWebAPI() as fake:

        async def response_urls(request: web.Request) -> web.Response:
            n = int(request.query.get("n", "1"))
            channel, user = request.query.get("channel"), request.query.get("user")
            return web.json_response([fake.new_response_url(channel=channel, user_id=user) for _ in range(n)])

        async def health(request: web.Request) -> web.Response:
            return web.json_response({"status": "ok"})

        async def stats(request: web.Request) -> web.Response:
            answered = [c for c in fake.calls_to("response_url") if c.status == 200]
            sample = fake.ephemerals[-1].text if fake.ephemerals else ""
            return web.json_response(
                {
                    "response_url_ok": len(answered),
                    "response_url_failed": len(fake.calls_to("response_url")) - len(answered),
                    "chat_post": len(fake.calls_to("chat.postMessage")),
                    "chat_update": len(fake.calls_to("chat.update")),
                    "last_ephemeral": sample,
                }
            )

        control = web.Application()
        control.router.add_get("/_bench/response_urls", response_urls)
        control.router.add_get("/_bench/health", health)
        control.router.add_get("/_bench/stats", stats)
        control.router.add_get("/_bench/usage", usage_route)
        runner, url = await serve(control)
        _announce({"api_url": fake.base_url, "control": url, "health_url": f"{url}/_bench/health"})
        await _until_stdin_closes()
        await runner.cleanup()
    _announce(usage())


def bare_app(api_url: str, *, ack_on_return: bool = False) -> web.Application:
    """A slack-bolt AsyncApp that only acks `/release`, behind the aiohttp adapter the bot uses."""
    from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
    from slack_bolt.async_app import AsyncAck, AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    # The token rides on the client, as in the bot's app (bot.slack.app.build_app); everything else is
    # Bolt's default unless ``ack_on_return``. By default (process_before_response=False) the listener
    # runs as a task and Bolt polls for its ack every 10 ms (slack_bolt/listener/asyncio_runner.py).
    bolt = AsyncApp(
        signing_secret=SECRET,
        client=AsyncWebClient(token=TOKEN, base_url=api_url),
        process_before_response=ack_on_return,
    )

    @bolt.command("/release")
    async def release(ack: AsyncAck) -> None:
        await ack()

    async def events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    app = web.Application()
    app.router.add_post("/slack/events", events)
    return app


def raw_app() -> web.Application:
    """A plain aiohttp handler: read the body, check its signature (as the bot's server does), answer 200."""
    from slack_sdk.signature import SignatureVerifier

    verifier = SignatureVerifier(SECRET)

    async def events(request: web.Request) -> web.Response:
        body = await request.read()
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        if not verifier.is_valid(body, timestamp, request.headers.get("X-Slack-Signature", "")):
            return web.Response(status=401)
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/slack/events", events)
    return app


async def server_role(build: Callable[[], web.Application]) -> None:
    """Serve a comparison app (bare Bolt or raw aiohttp), built on the loop, and a usage endpoint until
    stdin closes."""
    runner, url = await serve(build())
    control = web.Application()
    control.router.add_get("/_bench/usage", usage_route)
    control_runner, control_url = await serve(control)
    _announce({"url": url, "control": control_url})
    await _until_stdin_closes()
    await control_runner.cleanup()
    await runner.cleanup()
    _announce(usage())


class BotControl:
    """Bench-only controls over a running bot (a second port, so the measured app is untouched)."""

    def __init__(self, app: web.Application, logs: Path, services: int) -> None:
        from bot.server import RUNTIME

        self.runtime = app[RUNTIME]
        self.logs = logs  # a deploy log (and its FIFO) per service
        self.services = services
        self.history: dict[str, int] = {}
        self.gc = GcPauses()

    async def seed(self) -> None:
        """A candidate per service, and one earlier prod release (with its Slack thread) per service."""
        from tests.harness import record_live

        store, engine = self.runtime.store.sync, self.runtime.engine
        now = engine.now()
        for i in range(self.services):
            service = service_of(i)
            store.put_candidate(
                service=service,
                version=CANDIDATE,
                commit=f"{i:02d}" + "a" * 38,
                committed_at=now - timedelta(hours=3),
                components={"api": f"ghcr.io/example/{service}:{CANDIDATE}@{DIGEST}"},
                tests={"unit": "passed"},
                now=now,
            )
            release_id = record_live(store, "prod", "0.9.0", now - timedelta(days=1), service=service)
            found = store.get_release(release_id)
            assert found is not None
            await engine.story.post_parent(found)
            self.history[service] = release_id

    async def state(self, request: web.Request | None = None) -> web.Response:
        def counts() -> dict[str, Any]:
            sql = self.runtime.store.sync.sql
            checks = {r["state"]: r["n"] for r in sql.query("SELECT state, count(*) AS n FROM measurements GROUP BY 1")}
            releases = {
                r["state"]: r["n"]
                for r in sql.query("SELECT state, count(*) AS n FROM releases WHERE env = 'staging' GROUP BY 1")
            }
            return {"checks": checks, "staging_releases": releases}

        body = await self.runtime.store.run(counts)
        deploys = [line for log in self.logs.glob("*.log") for line in log.read_text().splitlines()]
        scheduler = self.runtime.scheduler
        body.update(
            deploys_started=len(deploys),
            scheduler_jobs=len(scheduler.job_ids()) if scheduler is not None else 0,
            background_tasks=len(self.runtime.engine.tasks._tasks),
            **usage(),
            **(self.gc.take() if request is not None and request.query.get("gc") else {}),
        )
        return web.json_response(body)

    async def arm(self, request: web.Request) -> web.Response:
        """Persist ``count`` pending measurements, due over the next ``spread`` seconds, and arm them."""
        args = await request.json()
        count, spread = int(args["count"]), float(args["spread"])
        now = datetime.now(UTC)
        planned: dict[int, list[tuple[str, int, datetime]]] = {}
        for k in range(count):
            release_id = self.history[service_of(k % self.services)]
            offset_s = 300 * (k // self.services + 1)
            due = now + timedelta(seconds=spread * (k + 1) / count)
            planned.setdefault(release_id, []).append(("health", offset_s, due))
        for release_id, rows in planned.items():
            await self.runtime.store.run(self.runtime.store.sync.schedule_measurements, release_id, rows)
        # The engine's own arming path (what start() and Checks.scheduled use), awaited here so the
        # driver knows every job is in APScheduler before it measures.
        await self.runtime.engine.checks._arm_pending()
        return await self.state()

    async def unblock(self, request: web.Request) -> web.Response:
        """Let every blocked deploy script finish: open the FIFO's write end, unlink it, close it."""

        for fifo in self.logs.glob("*.log.block"):
            try:  # non-blocking: fails with ENXIO when no script has the FIFO open
                fd: int | None = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                fd = None
            fifo.unlink()  # scripts that had not opened it yet now skip the wait
            if fd is not None:
                os.close(fd)  # EOF for every reader: `read` returns and the scripts finish
        return await self.state()

    async def drain(self, request: web.Request) -> web.Response:
        await self.runtime.engine.drain()
        return await self.state()

    def app(self) -> web.Application:
        control = web.Application()
        control.router.add_get("/_bench/state", self.state)
        control.router.add_get("/_bench/usage", usage_route)
        control.router.add_post("/_bench/arm", self.arm)
        control.router.add_post("/_bench/unblock", self.unblock)
        control.router.add_post("/_bench/drain", self.drain)
        return control


async def bot_role(tmp: Path, api_url: str, health_url: str, services: int) -> None:
    import logging

    from pydantic import SecretStr

    from bot.bootstrap import http_app
    from bot.config import parse_config
    from bot.settings import Settings

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logs = tmp / "deploys"
    logs.mkdir()
    for i in range(services):
        os.mkfifo(logs / f"{service_of(i)}.log.block")
    config = parse_config(bench_config(logs, health_url, services))
    settings = Settings(
        slack_api_url=api_url,
        db_path=tmp / "releasebot.db",
        slack_bot_token=SecretStr(TOKEN),
        slack_signing_secret=SecretStr(SECRET),
    )
    app = http_app(settings, config, tmp)
    runner, url = await serve(app)
    control = BotControl(app, logs, services)
    await control.seed()
    control_runner, control_url = await serve(control.app())
    _announce({"url": url, "control": control_url, **usage()})
    await _until_stdin_closes()
    await control.unblock(None)  # type: ignore[arg-type]  # scripts still blocked finish
    await control_runner.cleanup()
    await runner.cleanup()
    _announce(usage())


# --------------------------------------------------------------------------------------- driver side


class Child:
    """One server process: its announced URLs, then a final report when its stdin is closed."""

    def __init__(self, proc: asyncio.subprocess.Process, info: dict[str, Any]) -> None:
        self.proc = proc
        self.info = info

    @classmethod
    async def start(cls, role: str, *args: str) -> Child:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(Path(__file__).resolve()),
            role,
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=str(ROOT),
        )
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
        if not line:
            raise RuntimeError(f"the {role} server did not start (exit {await proc.wait()})")
        return cls(proc, json.loads(line))

    async def stop(self) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout=60)
        await asyncio.wait_for(self.proc.wait(), timeout=60)
        return json.loads(line) if line else {}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="a server role of bench/ack.py")
    parser.add_argument("role", choices=["slack", "bot", "bare", "bare-on-return", "raw"])
    parser.add_argument("--slack", default="")
    parser.add_argument("--health", default="")
    parser.add_argument("--tmp", default="")
    parser.add_argument("--services", type=int, default=SERVICES)
    args = parser.parse_args(argv)
    roles: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
        "slack": slack_role,
        "bare": lambda: server_role(lambda: bare_app(args.slack)),
        "bare-on-return": lambda: server_role(lambda: bare_app(args.slack, ack_on_return=True)),
        "raw": lambda: server_role(raw_app),
        "bot": lambda: bot_role(Path(args.tmp), args.slack, args.health, args.services),
    }
    asyncio.run(roles[args.role]())


if __name__ == "__main__":
    main()
