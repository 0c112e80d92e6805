"""`GET /api/v1/manifest` with `service` and `env`, with one of them, or with neither, over a real server.

Both: that one manifest, as it always was (404 naming `env` when nothing was released there). One or
neither: `{"manifests": [...]}`, one document per service and environment that has had a release —
services by name, environments in config order — and an empty list when nothing has been released.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.api import API_PREFIX, mount_api
from bot.config import parse_config
from bot.core.models import ReleaseKind, ReleaseState
from bot.store import AsyncStore

TOKEN = "ci-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
CONFIG: dict[str, Any] = {
    "timezone": "America/Toronto",
    "services": {
        "notify": {"channel": "C01RELEASES", "components": ["api", "worker"], "pipeline": ["staging", "prod"]},
        "billing": {"channel": "C02BILLING", "components": ["api"], "pipeline": ["staging", "prod"]},
        "search": {"channel": "C03SEARCH", "components": ["api"], "pipeline": ["staging", "prod"]},
    },
    # prod before staging: the order the answer lists environments in is the config's, not the alphabet's
    "environments": {
        "prod": {"window": "always", "deploy": {"provider": "command", "run": ["true"]}},
        "staging": {"window": "always", "deploy": {"provider": "command", "run": ["true"]}},
    },
}
Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def client(db: AsyncStore) -> AsyncIterator[Client]:
    app = web.Application()
    assert mount_api(app, db=db, config=parse_config(CONFIG), token=TOKEN, clock=lambda: NOW)
    client: Client = TestClient(TestServer(app))
    await client.start_server()
    yield client
    await client.close()


def commit_of(service: str, version: str) -> str:
    return (service.encode().hex() + version.replace(".", "") * 40)[:40]


def digest_of(service: str, component: str) -> str:
    return "sha256:" + (service.encode().hex() + component.encode().hex() * 64)[:64]


def released(db: AsyncStore, service: str, env: str, version: str, *, hours_ago: int) -> int:
    """``version`` of ``service`` (with its candidate) released to ``env``; the release id."""
    store, when = db.sync, NOW - timedelta(hours=hours_ago)
    components = ["api", "worker"] if service == "notify" else ["api"]
    store.put_candidate(
        service=service,
        version=version,
        commit=commit_of(service, version),
        committed_at=when - timedelta(hours=1),
        components={c: f"ghcr.io/example/{service}-{c}:{version}@{digest_of(service, c)}" for c in components},
        tests={"unit": "passed"},
        now=when,
    )
    release = store.create_release(
        service=service,
        env=env,
        version=version,
        kind=ReleaseKind.DEPLOY,
        state=ReleaseState.QUEUED,
        requested_by="U01RELEASE",
        now=when,
        take_lock=True,
    )
    store.transition(release.id, ReleaseState.SUCCEEDED, actor="U01RELEASE", detail="live", now=when)
    return release.id


def manifest(service: str, env: str, version: str, release_id: int, *, hours_ago: int) -> dict[str, Any]:
    """The document the API answers for one live release."""
    components = ["api", "worker"] if service == "notify" else ["api"]
    return {
        "service": service,
        "env": env,
        "version": version,
        "commit": commit_of(service, version),
        "released_at": (NOW - timedelta(hours=hours_ago)).isoformat(),
        "released_by": "U01RELEASE",
        "release_id": release_id,
        "components": {
            c: {
                "image": f"ghcr.io/example/{service}-{c}:{version}@{digest_of(service, c)}",
                "digest": digest_of(service, c),
            }
            for c in components
        },
    }


async def get(client: Client, **params: str) -> tuple[int, Any]:
    response = await client.get(f"{API_PREFIX}/manifest", params=params, headers=AUTH)
    assert response.content_type == "application/json"
    return response.status, await response.json()


@pytest.fixture
def history(db: AsyncStore) -> dict[str, dict[str, Any]]:
    """notify in staging (1.4.1) and prod (1.4.0, then 1.4.1 failed there), billing in prod only, search nowhere."""
    notify_staging = released(db, "notify", "staging", "1.4.1", hours_ago=5)
    notify_prod = released(db, "notify", "prod", "1.4.0", hours_ago=30)
    failed = db.sync.create_release(
        service="notify",
        env="prod",
        version="1.4.1",
        kind=ReleaseKind.DEPLOY,
        state=ReleaseState.QUEUED,
        requested_by="U01RELEASE",
        now=NOW - timedelta(hours=2),
        take_lock=True,
    )
    db.sync.transition(failed.id, ReleaseState.FAILED, actor="release-bot", detail="deploy exited 1", now=NOW)
    billing_prod = released(db, "billing", "prod", "7.2.0", hours_ago=10)
    return {
        "notify/staging": manifest("notify", "staging", "1.4.1", notify_staging, hours_ago=5),
        "notify/prod": manifest("notify", "prod", "1.4.0", notify_prod, hours_ago=30),
        "billing/prod": manifest("billing", "prod", "7.2.0", billing_prod, hours_ago=10),
    }


async def test_with_service_and_env_the_one_manifest(client: Client, history: dict[str, dict[str, Any]]) -> None:
    assert await get(client, service="notify", env="prod") == (200, history["notify/prod"])


async def test_with_only_a_service_every_environment_it_runs_in(
    client: Client, history: dict[str, dict[str, Any]]
) -> None:
    assert await get(client, service="notify") == (
        200,
        {"manifests": [history["notify/prod"], history["notify/staging"]]},
    )


async def test_with_only_an_env_every_service_released_there(
    client: Client, history: dict[str, dict[str, Any]]
) -> None:
    assert await get(client, env="prod") == (200, {"manifests": [history["billing/prod"], history["notify/prod"]]})


async def test_with_neither_what_runs_everywhere(client: Client, history: dict[str, dict[str, Any]]) -> None:
    assert await get(client) == (
        200,
        {"manifests": [history["billing/prod"], history["notify/prod"], history["notify/staging"]]},
    )


async def test_a_service_never_released_has_an_empty_list_but_a_missing_single_manifest_is_404(
    client: Client, history: dict[str, dict[str, Any]]
) -> None:
    assert await get(client, service="search") == (200, {"manifests": []})
    assert await get(client, env="staging", service="billing") == (
        404,
        {"error": "env: nothing has been released to billing staging yet", "field": "env"},
    )


async def test_before_any_release_the_list_is_empty(client: Client) -> None:
    assert await get(client) == (200, {"manifests": []})


@pytest.mark.parametrize(
    ("params", "field", "error"),
    [
        ({"service": "payroll"}, "service", "service: unknown service 'payroll' (known: billing, notify, search)"),
        ({"env": "qa"}, "env", "env: unknown environment 'qa' (known: prod, staging)"),
        ({"service": "notify", "env": "qa"}, "env", "env: unknown environment 'qa' (known: prod, staging)"),
    ],
)
async def test_an_unknown_service_or_env_is_still_400_naming_it(
    client: Client, history: dict[str, dict[str, Any]], params: dict[str, str], field: str, error: str
) -> None:
    assert await get(client, **params) == (400, {"error": error, "field": field})
