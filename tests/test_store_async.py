"""AsyncStore mirrors Store: one typed coroutine per public Store method, checked by inspection so the two
cannot drift; a few of them against real SQLite; and the round-trip counter and tally."""

from __future__ import annotations

import inspect
import threading
import typing
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.core.models import ReleaseKind, ReleaseState
from bot.store import AsyncStore, Store
from bot.store.async_store import RoundTrip

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
# Store's plumbing, not state: AsyncStore closes the store itself and has no counterpart to these.
NOT_MIRRORED = {"close"}
# AsyncStore's own API beside the mirrored methods.
ASYNC_ONLY = {"run", "read", "unit", "close", "tally", "claim_now"}

STORE_METHODS = sorted(
    name
    for name, member in inspect.getmembers(Store, inspect.isfunction)
    if not name.startswith("_") and name not in NOT_MIRRORED
)


def test_the_mirror_covers_every_mixin() -> None:
    """A sanity check on the inspection itself: methods of each mixin and Store's own are found."""
    assert {"put_candidate", "get_release", "vote", "audit", "outbox_enqueue", "all_locks", "claim_request"} <= set(
        STORE_METHODS
    )
    assert "status_snapshot" in STORE_METHODS and len(STORE_METHODS) > 60


@pytest.mark.parametrize("name", STORE_METHODS)
def test_every_store_method_has_a_typed_coroutine_with_the_same_signature(name: str) -> None:
    sync_method = getattr(Store, name)
    async_method = getattr(AsyncStore, name, None)
    assert async_method is not None, f"AsyncStore has no {name}"
    assert inspect.iscoroutinefunction(async_method), f"AsyncStore.{name} is not a coroutine function"

    def shape(fn: Any) -> list[tuple[str, Any, Any]]:
        return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]

    assert shape(async_method) == shape(sync_method)
    # Resolved types, so mypy checks callers of the coroutine exactly as it checks callers of Store.
    assert typing.get_type_hints(async_method) == typing.get_type_hints(sync_method)


def test_async_store_has_nothing_store_lacks() -> None:
    extra = {
        name
        for name, member in inspect.getmembers(AsyncStore, inspect.isfunction)
        if not name.startswith("_") and name not in ASYNC_ONLY
    }
    assert extra <= set(STORE_METHODS), f"AsyncStore methods with no Store method: {sorted(extra - set(STORE_METHODS))}"


class _Recorder:
    """Stands in for the sync store: every method call is recorded, on whichever thread makes it."""

    RESULT = object()

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        def record(*args: Any, **kwargs: Any) -> object:
            with self._lock:
                self.calls.append((name, args, kwargs))
            return self.RESULT

        return record


@pytest.mark.parametrize("name", STORE_METHODS)
async def test_each_coroutine_hands_its_arguments_to_the_store_method_of_its_name(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A distinct value for every parameter (defaults included) must reach the same-named Store method."""
    db = AsyncStore(Store(":memory:"))  # no reader connection: read() goes to the (recorded) store too
    recorder = _Recorder()
    monkeypatch.setattr(db, "sync", recorder)
    args: list[object] = []
    kwargs: dict[str, object] = {}
    for param in list(inspect.signature(getattr(Store, name)).parameters.values())[1:]:
        value = object()
        if param.kind is param.POSITIONAL_OR_KEYWORD:
            args.append(value)
        elif param.kind is param.KEYWORD_ONLY:
            kwargs[param.name] = value
        elif param.kind is param.VAR_KEYWORD:
            kwargs["extra_field"] = value
    try:
        result = await getattr(db, name)(*args, **kwargs)
    finally:
        monkeypatch.undo()
        db.close()

    [(called, called_args, called_kwargs)] = recorder.calls
    assert called == name
    signature = inspect.signature(getattr(Store, name))
    assert (
        signature.bind(None, *called_args, **called_kwargs).arguments == signature.bind(None, *args, **kwargs).arguments
    )
    returns_nothing = typing.get_type_hints(getattr(Store, name))["return"] is type(None)
    assert result is (None if returns_nothing else _Recorder.RESULT)


async def test_a_candidate_and_a_release_round_trip_through_real_sqlite(db: AsyncStore) -> None:
    async def put() -> str:
        return await db.put_candidate(
            service="notify",
            version="1.2.3",
            commit="a" * 40,
            committed_at=NOW,
            components={"api": "ghcr.io/example/api:1.2.3"},
            tests={"unit": "passed"},
            now=NOW,
        )

    assert await put() == "created"
    assert await put() == "unchanged"
    found = await db.get_candidate("notify", "1.2.3")
    assert found is not None and found.commit == "a" * 40 and found.components == {"api": "ghcr.io/example/api:1.2.3"}
    assert await db.tests("notify", "1.2.3") == {"unit": {"status": "passed", "url": None}}

    release = await db.create_release(
        service="notify",
        env="staging",
        version="1.2.3",
        kind=ReleaseKind.DEPLOY,
        state=ReleaseState.QUEUED,
        requested_by="U01RELEASE",
        now=NOW,
        take_lock=True,
    )
    lock = await db.lock_of("notify", "staging")
    assert lock is not None and lock.release_id == release.id
    assert await db.transition(release.id, ReleaseState.SUCCEEDED, actor="U01RELEASE", detail="done", now=NOW)
    assert not await db.transition(
        release.id, ReleaseState.FAILED, actor="U01RELEASE", detail="late", now=NOW, only_from={ReleaseState.QUEUED}
    )
    # status_snapshot reads through the reader connection: it sees what the writer committed.
    states, locks, freezes = await db.status_snapshot("notify")
    assert [(s.env, s.version) for s in states] == [("staging", "1.2.3")]
    assert locks == () and freezes == ()
    fetched = await db.get_release(release.id)
    assert fetched is not None and fetched.state is ReleaseState.SUCCEEDED


async def test_every_run_and_read_counts_one_round_trip(db: AsyncStore) -> None:
    before = db.round_trips
    await db.get_release(1)  # a typed method: one run()
    await db.run(db.sync.history, "notify")
    await db.read(lambda store: store.all_locks())
    await db.status_snapshot("notify")  # one read(), however many queries it makes
    assert db.round_trips - before == 4


async def test_a_tally_names_each_method_and_who_asked(db: AsyncStore) -> None:
    async def helper() -> None:
        await db.env_state("notify", "prod")

    with db.tally() as outer:
        await db.get_release(1)
        await db.get_release(2)
        with db.tally() as inner:
            await helper()
        await db.run(db.sync.history, "notify")
        await db.status_snapshot("notify")  # through read(), on the reader connection
    await db.get_release(3)  # after the block: counted, not tallied

    here = f"{__name__}:test_a_tally_names_each_method_and_who_asked"
    assert inner == {RoundTrip("env_state", f"{here}.<locals>.helper"): 1}
    assert outer == {
        RoundTrip("get_release", here): 2,
        RoundTrip("history", here): 1,
        RoundTrip("status_snapshot", here): 1,
        RoundTrip("env_state", f"{here}.<locals>.helper"): 1,
    }
