"""The documented HTTP API, run as written: `release-bot serve`'s app with the example config on a free port,
and the shell code blocks of README.md and docs/api.md run by bash with a real `curl` against it.

Only what the docs say comes from the environment changes: `$RELEASEBOT_URL` (this server) and
`$RELEASEBOT_API_TOKEN` (its token). The one program the docs use that cannot run here is `trivy` (it
downloads a vulnerability database): a stand-in on PATH answers `trivy image -f json IMAGE` with a report
of IMAGE in Trivy's format.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.bootstrap import http_app
from bot.config import load_config
from bot.core.commits import Person
from bot.core.models import ReleaseKind, ReleaseState
from bot.core.notes import NoteEntry, NoteSection, ReleaseNotes
from bot.server import RUNTIME
from bot.store import Store
from tests.fakes import FakeSlackWebAPI
from tests.harness import API_TOKEN, RELEASER, TUESDAY_10AM, MutableClock, harness_settings

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
API_DOC = ROOT / "docs" / "api.md"
EXAMPLE_CONFIG = ROOT / "examples" / "releasebot.yml"
COMPONENTS = ("api", "admin", "worker")  # notify's, in examples/releasebot.yml
MIN_CURL = (7, 76)  # --fail-with-body

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)

# `trivy image -f json IMAGE`: a report of IMAGE as Trivy writes one (digest in RepoDigests, one finding).
TRIVY_STAND_IN = r"""#!/bin/sh
set -eu
[ "$1" = image ] || { echo "this stand-in only does: trivy image -f json IMAGE" >&2; exit 2; }
shift
format=""
while [ $# -gt 1 ]; do
  case "$1" in -f|--format) format="$2"; shift 2 ;; *) shift ;; esac
done
[ "$format" = json ] || { echo "this stand-in only writes -f json" >&2; exit 2; }
image="$1"
case "$image" in
  *@sha256:*) repo="${image%@*}"; repo="${repo%:*}"; digests="[\"$repo@${image#*@}\"]" ;;
  *) digests="[]" ;;
esac
cat <<EOF
{"SchemaVersion": 2, "ArtifactName": "$image", "ArtifactType": "container_image",
 "Metadata": {"OS": {"Family": "debian", "Name": "12.8"}, "RepoDigests": $digests},
 "Results": [{"Target": "$image (debian 12.8)", "Class": "os-pkgs", "Type": "debian",
   "Vulnerabilities": [{"VulnerabilityID": "CVE-2024-2511", "PkgName": "libssl3", "InstalledVersion": "3.0.11-1",
                        "FixedVersion": "3.0.13-1~deb12u1", "Severity": "LOW"}]}]}
EOF
"""


def code_blocks(text: str) -> list[tuple[str, str]]:
    """Every fenced code block as (language, body), in order."""
    return [(m.group(1), m.group(2)) for m in _FENCE.finditer(text)]


def curl_version() -> tuple[int, int] | None:
    """The installed curl's (major, minor), or None without curl."""
    path = shutil.which("curl")
    if path is None:
        return None
    first = subprocess.run([path, "--version"], capture_output=True, text=True, check=True).stdout.split()
    major, minor = first[1].split(".")[:2]
    return int(major), int(minor)


def curl_missing() -> str | None:
    """Why the curl tests cannot run here, or None when they can."""
    version = curl_version()
    if version is None:
        return "needs curl: the docs' commands run with a real curl (apt-get install curl; .ci/run installs it)"
    if version < MIN_CURL:
        return f"needs curl {MIN_CURL[0]}.{MIN_CURL[1]}+ for --fail-with-body, the docs' flag (found {version})"
    return None


@dataclass
class Served:
    """The running app, its base URL, its store and every request it answered (method, path, status)."""

    app: web.Application
    url: str
    store: Store
    clock: MutableClock
    bin_dir: Path
    answered: list[tuple[str, str, int]] = field(default_factory=list)

    async def run(self, script: str, cwd: Path) -> tuple[subprocess.CompletedProcess[str], list[tuple[str, str, int]]]:
        """Run a shell block as a reader would paste it (bash, errexit, pipefail); what it printed and the requests
        the server answered meanwhile."""
        before = len(self.answered)
        env = {
            "PATH": f"{self.bin_dir}:{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(cwd),  # no ~/.curlrc, and no proxy variables from the machine running the tests
            "LANG": "C.UTF-8",
            "RELEASEBOT_URL": self.url,
            "RELEASEBOT_API_TOKEN": API_TOKEN,
        }
        done = await asyncio.to_thread(
            subprocess.run,
            ["bash", "-euo", "pipefail", "-c", script],
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return done, self.answered[before:]


def _recorder(answered: list[tuple[str, str, int]]) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def record(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            answered.append((request.method, request.path, exc.status))
            raise
        answered.append((request.method, request.path, response.status))
        return response

    return record


@asynccontextmanager
async def serve_example(tmp_path: Path) -> AsyncIterator[Served]:
    """`release-bot serve`'s app (bot.bootstrap.http_app) with examples/releasebot.yml on 127.0.0.1, port 0."""
    config = load_config(EXAMPLE_CONFIG)
    clock = MutableClock(TUESDAY_10AM)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    trivy = bin_dir / "trivy"
    trivy.write_text(TRIVY_STAND_IN)
    trivy.chmod(0o755)
    async with FakeSlackWebAPI() as slack:
        app = http_app(harness_settings(slack, tmp_path / "releasebot.db"), config, EXAMPLE_CONFIG.parent, clock=clock)
        served = Served(app=app, url="", store=app[RUNTIME].store.sync, clock=clock, bin_dir=bin_dir)
        app.middlewares.append(_recorder(served.answered))
        async with TestServer(app, host="127.0.0.1") as server:
            served.url = str(server.make_url("")).rstrip("/")
            yield served
            await app[RUNTIME].engine.drain()


def released_history(store: Store, clock: MutableClock) -> None:
    """notify 1.4.0 and then 1.4.1 released to staging and prod, 1.4.1 with its notes: what docs/api.md's
    read examples assume has happened."""
    for version, at in (("1.4.0", clock.now() - timedelta(days=2)), ("1.4.1", clock.now() - timedelta(hours=20))):
        store.put_candidate(
            service="notify",
            version=version,
            commit=hashlib.sha1(f"notify {version}".encode()).hexdigest(),  # a made-up, full commit id
            committed_at=at - timedelta(hours=1),
            components={c: f"ghcr.io/example/notify-{c}:{version}@{_digest(c, version)}" for c in COMPONENTS},
            tests={"unit": "passed", "integration": "passed"},
            now=at,
        )
        for env, later in (("staging", timedelta(0)), ("prod", timedelta(hours=2))):
            when = at + later
            release = store.create_release(
                service="notify",
                env=env,
                version=version,
                kind=ReleaseKind.DEPLOY,
                state=ReleaseState.QUEUED,
                requested_by=RELEASER,
                now=when,
                take_lock=True,
            )
            store.transition(release.id, ReleaseState.DEPLOYING, actor="release-bot", detail="deploying", now=when)
            notes = _notes() if version == "1.4.1" else None
            store.transition(
                release.id,
                ReleaseState.SUCCEEDED,
                actor=RELEASER,  # as the engine does: the release's requester
                detail="live",
                now=when + timedelta(minutes=4),
                notes=notes,
            )


def _digest(component: str, version: str) -> str:
    return "sha256:" + hashlib.sha256(f"{component} {version}".encode()).hexdigest()


def _notes() -> dict[str, object]:
    ada = Person("Ada Lovelace", "ada@example.org")
    grace = Person("Grace Hopper", "grace@example.org")
    fix = NoteEntry(
        sha="3b9d2f1e0a7c6b5d4e3f2a1b0c9d8e7f6a5b4c3d",
        type="fix",
        scope="api",
        description="retry SMS sends on a provider timeout",
        breaking=False,
        breaking_note=None,
        pr_numbers=(812,),
        authors=(ada,),
    )
    perf = NoteEntry(
        sha="7e6d5c4b3a2918f7e6d5c4b3a2918f7e6d5c4b3a",
        type="perf",
        scope="worker",
        description="batch template renders",
        breaking=False,
        breaking_note=None,
        pr_numbers=(815,),
        authors=(grace,),
    )
    return ReleaseNotes(
        sections=(NoteSection("fixes", "Fixes", (fix,)), NoteSection("performance", "Performance", (perf,))),
        contributors=(ada, grace),
        commit_count=2,
        merge_count=0,
        reverted_count=0,
    ).to_dict()
