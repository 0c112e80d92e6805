"""Demo data for `release-bot console --demo`: a real git history, candidates with evidence, a past release.

The demo config is the example config with two changes a fresh machine needs: the service's repository
is a git repository made here (so release notes are real), and prod's metric checks are dropped
(no Prometheus runs on a fresh machine) with short canary pauses so a demo release finishes in seconds.
"""

from __future__ import annotations

import os
import subprocess  # noqa: S404 - argv-only calls to git, once at demo start
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.config import Config
from bot.core.models import ReleaseKind, ReleaseState
from bot.store import Store

DIGEST = "sha256:" + "ab" * 32
COMMITS = [
    ("feat(api): send SMS in batches", "Ada Lovelace", "ada@example.com"),
    ("fix(worker): retry on 429 from the carrier", "Grace Hopper", "grace@example.com"),
    ("docs: explain the retry policy", "Ada Lovelace", "ada@example.com"),
    (
        "feat(admin)!: new template editor\n\nBREAKING CHANGE: templates need a name",
        "Alan Turing",
        "alan@example.com",
    ),
    ("perf(api): cache the provider list", "Grace Hopper", "grace@example.com"),
]
DEMO_VERSIONS = ("1.4.0", "1.4.1", "1.4.2")


def _git(repo: Path, *args: str, when: datetime | None = None) -> str:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(repo)}
    if when is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = when.isoformat()
    done = subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True)  # noqa: S603,S607
    return done.stdout.strip()


def make_repo(path: Path, start: datetime, commits: Sequence[tuple[str, str, str]] = COMMITS) -> list[str]:
    """A repository of ``commits`` (message, author name, email), an hour apart from ``start``; each changes
    one file. Returns the commit shas, oldest first. The default is a few conventional commits."""
    path.mkdir(parents=True, exist_ok=True)
    _git(path, "init", "-q", "-b", "main")
    shas = []
    for i, (message, name, email) in enumerate(commits):
        (path / "CHANGES").write_text(f"{i}\n", encoding="utf-8")
        _git(path, "add", "CHANGES")
        _git(
            path,
            "-c",
            f"user.name={name}",
            "-c",
            f"user.email={email}",
            "commit",
            "-q",
            "-m",
            message,
            when=start + timedelta(hours=i),
        )
        shas.append(_git(path, "rev-parse", "HEAD"))
    return shas


def demo_config(config: Config, repo: Path) -> Config:
    """The example config adjusted for a machine with no Prometheus (see module docstring)."""
    data = config.model_dump(by_alias=True, exclude_none=True)
    for name in data["services"]:
        data["services"][name]["repo"] = {"path": str(repo)}
    for env in data["environments"].values():
        env["checks"] = []
        if env.get("strategy", {}).get("type") == "canary":
            env["strategy"]["pause"] = timedelta(seconds=1)
    return Config.model_validate(data)


def seed(store: Store, config: Config, shas: list[str], now: datetime) -> None:
    """Candidates 1.4.0–1.4.2 with passing evidence; 1.4.0 already live in staging and prod."""
    service = next(iter(config.services))
    components = {c: f"ghcr.io/example/{service}-{c}:{{v}}@{DIGEST}" for c in config.services[service].components}
    picks = {"1.4.0": shas[1], "1.4.1": shas[3], "1.4.2": shas[4]}
    for i, (version, sha) in enumerate(picks.items()):
        registered = now - timedelta(hours=6 - i)  # in version order: the newest candidate is 1.4.2
        store.put_candidate(
            service=service,
            version=version,
            commit=sha,
            committed_at=now - timedelta(days=1),
            components={c: ref.replace("{v}", version) for c, ref in components.items()},
            tests={"unit": "passed", "integration": "passed", "performance": "passed"},
            now=registered,
        )
        for component, ref in components.items():  # one scan per image, as CI reports them
            store.put_scan(
                service,
                version,
                component,
                {
                    "artifact": ref.replace("{v}", version),
                    "artifact_type": "container_image",
                    "counts": {"CRITICAL": 0, "HIGH": 0, "MEDIUM": 2, "LOW": 5, "UNKNOWN": 0},
                    "total": 7,
                    "top": [],
                },
                now,
            )
    for env in config.services[service].pipeline:
        release = store.create_release(
            service=service,
            env=env,
            version="1.4.0",
            kind=ReleaseKind.DEPLOY,
            state=ReleaseState.QUEUED,
            requested_by="U01RELEASE",
            now=now - timedelta(hours=3),
            take_lock=True,
        )
        store.transition(
            release.id,
            ReleaseState.SUCCEEDED,
            actor="U01RELEASE",
            detail="demo history",
            now=now - timedelta(hours=2),
        )


def demo_now() -> datetime:
    return datetime.now(UTC)
