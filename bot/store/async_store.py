"""AsyncStore: the store as the event loop uses it, one typed coroutine per Store method.

Every call is one round trip to the store (a hand-off to the store's thread, or a read on the reader
connection). ``round_trips`` counts them cheaply; :meth:`AsyncStore.tally` breaks them down by method and
caller for diagnostics (bench/round_trips.py).

The typed methods mirror Store's public methods exactly (tests/test_store_async.py checks names, parameters
and types), so mypy checks every caller; they are grouped by the mixin they come from.
"""

from __future__ import annotations

import sqlite3
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple, ParamSpec, TypeVar

from bot.alerts_models import CheckedAlert, Incident, StoredAlert
from bot.core.models import (
    Approval,
    ApprovalKind,
    ApprovalState,
    AuditEntry,
    Candidate,
    DeployRun,
    EnvState,
    Lock,
    Release,
    ReleaseKind,
    ReleaseState,
    RunOutcome,
    RunRole,
)
from bot.core.scheduling import Scheduled
from bot.core.trains import Boarding, TrainDeparture
from bot.core.watch import Planned
from bot.core.windows import AdhocFreeze
from bot.store.alerts import IncidentNews
from bot.store.approvals import VoteResult
from bot.store.candidates import PutOutcome
from bot.store.db import Runner, busy
from bot.store.events import Replay, StoredEvent
from bot.store.outbox import OutboxKind, OutboxRow
from bot.store.reports import StatusRows

if TYPE_CHECKING:  # bot.store imports this module to export AsyncStore beside Store
    from bot.store import Store

P = ParamSpec("P")
T = TypeVar("T")

_STORE_PACKAGE = __name__.rpartition(".")[0]


class RoundTrip(NamedTuple):
    """One kind of round trip in a tally: what ran in the store, and the code that asked for it."""

    method: str  # the Store method's name (or the function's, for ``run(fn, ...)`` with a helper)
    caller: str  # "module:qualified.function" of the nearest frame outside bot.store


def _caller() -> str:
    """Where the current round trip came from: the nearest frame outside bot.store (the typed wrappers,
    run and read are skipped). Walking the stack is slow, so only a tally pays for it."""
    frame = sys._getframe(1)
    while frame.f_back is not None:
        module = str(frame.f_globals.get("__name__", ""))
        if module != _STORE_PACKAGE and not module.startswith(_STORE_PACKAGE + "."):
            break
        frame = frame.f_back
    return f"{frame.f_globals.get('__name__')}:{frame.f_code.co_qualname}"


class AsyncStore:
    """The store as the event loop uses it: every call runs on the store's own thread."""

    def __init__(self, store: Store) -> None:
        self.sync = store
        self._runner = Runner()
        # A second, read-only connection for the hottest reads (`/release status`): with WAL it never waits
        # for the writer, and an indexed read (~0.1 ms) costs less than handing work to the store thread and
        # back (measured at ~0.15 ms of GIL hand-off under load). In-memory databases cannot share a reader.
        self._reader = None if str(store.path) == ":memory:" else type(store)(store.path, read_only=True)
        # And a second writer for the edge's replay claim, one INSERT per Slack request, written on the loop
        # (claim_now): handing it to the store thread and back costs several times the write itself.
        self._quick = None if str(store.path) == ":memory:" else type(store)(store.path, nowait=True)
        # Every run() and read() so far. Only the event loop calls them, so a plain int needs no lock.
        self.round_trips = 0
        self._tally: Counter[RoundTrip] | None = None

    async def read(self, fn: Callable[[Store], T]) -> T:
        """A fast indexed read, on the loop thread through the reader connection when there is one.

        Only for reads measured well under a millisecond; anything heavier goes through :meth:`run`.
        """
        self._count(fn)
        if self._reader is None:
            return await self._runner.run(fn, self.sync)
        return fn(self._reader)

    def claim_now(self, keys: Sequence[str], now: float) -> bool | None:
        """A Slack request's replay claim written right here on the event loop, or None when it cannot be at
        once: the store thread holds the write lock, old keys are due to be pruned (the store thread does
        that), or the database is in memory. On None the caller claims through :meth:`unit` as before.

        One indexed INSERT appended to the WAL (no fsync at synchronous=NORMAL, no checkpoint here), never a
        wait for a lock: measured at a fraction of a store-thread round trip (bench/ack.py).
        """
        if self._quick is None or self.sync.prune_due(now):
            return None
        try:
            with self._quick.sql.transaction():
                return self._quick.claim_request(keys, now, prune=False)
        except sqlite3.Error as exc:
            if busy(exc):
                return None
            raise

    async def unit(self, fn: Callable[[Store], T]) -> T:
        """Several store calls as one round trip and one transaction: all of them happen, or none.

        For the engine's hot paths: e.g. a state change with its audit entry, or every read a decision needs.
        """

        def in_transaction(store: Store) -> T:
            with store.sql.transaction():
                return fn(store)

        return await self.run(in_transaction, self.sync)

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn(*args, **kwargs)`` run on the store thread, e.g. ``run(db.sync.history, "notify")``."""
        self._count(fn)
        return await self._runner.run(fn, *args, **kwargs)

    def _count(self, fn: Callable[..., object]) -> None:
        self.round_trips += 1
        if self._tally is not None:
            self._tally[RoundTrip(getattr(fn, "__name__", repr(fn)), _caller())] += 1

    @contextmanager
    def tally(self) -> Iterator[Counter[RoundTrip]]:
        """Count round trips by method and caller while the block runs (for diagnostics: each call then
        walks the stack). An enclosing tally still gets the calls made inside a nested one."""
        outer, self._tally = self._tally, Counter()
        try:
            yield self._tally
        finally:
            if outer is not None:
                outer.update(self._tally)
            self._tally = outer

    def close(self) -> None:
        self._runner.shutdown()
        if self._reader is not None:
            self._reader.close()
        if self._quick is not None:
            self._quick.close()
        self.sync.close()

    # --- candidates and their evidence (bot/store/candidates.py) ----------------------------------
    async def put_candidate(
        self,
        *,
        service: str,
        version: str,
        commit: str,
        committed_at: datetime | None,
        components: dict[str, str],
        tests: dict[str, str],
        now: datetime,
    ) -> PutOutcome:
        return await self.run(
            self.sync.put_candidate,
            service=service,
            version=version,
            commit=commit,
            committed_at=committed_at,
            components=components,
            tests=tests,
            now=now,
        )

    async def get_candidate(self, service: str, version: str) -> Candidate | None:
        return await self.run(self.sync.get_candidate, service, version)

    async def candidates(self, service: str, limit: int = 20) -> list[Candidate]:
        return await self.run(self.sync.candidates, service, limit)

    async def put_test(
        self, service: str, version: str, suite: str, status: str, url: str | None, now: datetime
    ) -> bool:
        return await self.run(self.sync.put_test, service, version, suite, status, url, now)

    async def tests(self, service: str, version: str) -> dict[str, dict[str, Any]]:
        return await self.run(self.sync.tests, service, version)

    async def put_scan(
        self, service: str, version: str, component: str, summary: dict[str, Any], now: datetime
    ) -> None:
        await self.run(self.sync.put_scan, service, version, component, summary, now)

    async def scans(self, service: str, version: str) -> dict[str, dict[str, Any]]:
        return await self.run(self.sync.scans, service, version)

    # --- releases, environment state and locks (bot/store/releases.py) ----------------------------
    async def create_release(
        self,
        *,
        service: str,
        env: str,
        version: str,
        kind: ReleaseKind,
        state: ReleaseState,
        requested_by: str,
        now: datetime,
        take_lock: bool,
        source_env: str | None = None,
        rollback_of: int | None = None,
        **fields: Any,
    ) -> Release:
        return await self.run(
            self.sync.create_release,
            service=service,
            env=env,
            version=version,
            kind=kind,
            state=state,
            requested_by=requested_by,
            now=now,
            take_lock=take_lock,
            source_env=source_env,
            rollback_of=rollback_of,
            **fields,
        )

    async def queue_approved(self, release_id: int, *, actor: str, detail: str, now: datetime) -> Release | None:
        return await self.run(self.sync.queue_approved, release_id, actor=actor, detail=detail, now=now)

    async def approved_but_waiting(self) -> list[tuple[int, int]]:
        return await self.run(self.sync.approved_but_waiting)

    async def update_release(self, release_id: int, **fields: Any) -> Release:
        return await self.run(self.sync.update_release, release_id, **fields)

    async def transition(
        self,
        release_id: int,
        to: ReleaseState,
        *,
        actor: str,
        detail: str,
        now: datetime,
        only_from: set[ReleaseState] | None = None,
        **fields: Any,
    ) -> Release | None:
        return await self.run(
            self.sync.transition, release_id, to, actor=actor, detail=detail, now=now, only_from=only_from, **fields
        )

    async def get_release(self, release_id: int) -> Release | None:
        return await self.run(self.sync.get_release, release_id)

    async def record_event(self, release_id: int, detail: str, *, actor: str, now: datetime) -> None:
        await self.run(self.sync.record_event, release_id, detail, actor=actor, now=now)

    async def succeeded_without_after_steps(self) -> list[Release]:
        return await self.run(self.sync.succeeded_without_after_steps)

    async def mark_after_success(self, release_id: int, now: datetime) -> None:
        await self.run(self.sync.mark_after_success, release_id, now)

    async def release_with_notes(self, service: str, version: str, previous: str | None = None) -> Release | None:
        return await self.run(self.sync.release_with_notes, service, version, previous)

    async def release_events(self, release_id: int) -> list[dict[str, Any]]:
        return await self.run(self.sync.release_events, release_id)

    async def history(self, service: str, env: str | None = None, limit: int = 10) -> list[Release]:
        return await self.run(self.sync.history, service, env, limit)

    async def running_releases(self) -> list[Release]:
        return await self.run(self.sync.running_releases)

    async def env_states(self, service: str) -> list[EnvState]:
        return await self.run(self.sync.env_states, service)

    async def env_state(self, service: str, env: str) -> EnvState | None:
        return await self.run(self.sync.env_state, service, env)

    async def env_colour(self, service: str, env: str) -> str | None:
        return await self.run(self.sync.env_colour, service, env)

    async def succeeded_in(self, service: str, env: str, version: str) -> bool:
        return await self.run(self.sync.succeeded_in, service, env, version)

    async def last_healthy(
        self, service: str, env: str, *, before_id: int | None, not_version: str | None
    ) -> Release | None:
        return await self.run(self.sync.last_healthy, service, env, before_id=before_id, not_version=not_version)

    async def healthy_in(self, service: str, env: str, version: str) -> bool:
        return await self.run(self.sync.healthy_in, service, env, version)

    async def awaiting_approval(self, service: str, env: str, version: str) -> Release | None:
        return await self.run(self.sync.awaiting_approval, service, env, version)

    async def lock_of(self, service: str, env: str) -> Lock | None:
        return await self.run(self.sync.lock_of, service, env)

    async def manual_lock(self, service: str, env: str) -> Lock | None:
        return await self.run(self.sync.manual_lock, service, env)

    async def set_manual_lock(self, service: str, env: str, holder: str, reason: str, now: datetime) -> Lock | None:
        return await self.run(self.sync.set_manual_lock, service, env, holder, reason, now)

    async def clear_manual_lock(self, service: str, env: str) -> Lock | None:
        return await self.run(self.sync.clear_manual_lock, service, env)

    async def interrupt_running(self, now: datetime) -> list[Release]:
        return await self.run(self.sync.interrupt_running, now)

    # --- approvals and votes (bot/store/approvals.py) ---------------------------------------------
    async def create_approval(
        self,
        *,
        kind: ApprovalKind,
        service: str,
        env: str,
        requester: str,
        required: int,
        eligible_groups: list[str],
        subject: dict[str, Any],
        now: datetime,
        expires_at: datetime,
    ) -> Approval:
        return await self.run(
            self.sync.create_approval,
            kind=kind,
            service=service,
            env=env,
            requester=requester,
            required=required,
            eligible_groups=eligible_groups,
            subject=subject,
            now=now,
            expires_at=expires_at,
        )

    async def get_approval(self, approval_id: int) -> Approval | None:
        return await self.run(self.sync.get_approval, approval_id)

    async def set_approval_message(self, approval_id: int, channel: str, ts: str) -> None:
        await self.run(self.sync.set_approval_message, approval_id, channel, ts)

    async def vote(self, approval_id: int, user: str, now: datetime) -> VoteResult:
        return await self.run(self.sync.vote, approval_id, user, now)

    async def close_approval(
        self, approval_id: int, to: ApprovalState, *, by: str | None, reason: str | None, now: datetime
    ) -> bool:
        return await self.run(self.sync.close_approval, approval_id, to, by=by, reason=reason, now=now)

    async def due_expiries(self, now: datetime) -> list[Approval]:
        return await self.run(self.sync.due_expiries, now)

    async def approvals_of_release(self, release_id: int) -> list[Approval]:
        return await self.run(self.sync.approvals_of_release, release_id)

    async def pending_approvals(self, service: str | None = None) -> list[Approval]:
        return await self.run(self.sync.pending_approvals, service)

    # --- freezes, audit, idempotency, measurements (bot/store/records.py) -------------------------
    async def set_freeze(self, service: str, env: str, until: datetime, reason: str, by: str, now: datetime) -> None:
        await self.run(self.sync.set_freeze, service, env, until, reason, by, now)

    async def clear_freeze(self, service: str, env: str) -> bool:
        return await self.run(self.sync.clear_freeze, service, env)

    async def adhoc_freezes(self, service: str | None = None) -> dict[str, list[AdhocFreeze]]:
        return await self.run(self.sync.adhoc_freezes, service)

    async def audit(
        self,
        *,
        actor: str,
        action: str,
        subject: str,
        now: datetime,
        detail: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> None:
        await self.run(
            self.sync.audit, actor=actor, action=action, subject=subject, now=now, detail=detail, request_id=request_id
        )

    async def audit_since(self, since: datetime | None, limit: int = 1000) -> list[AuditEntry]:
        return await self.run(self.sync.audit_since, since, limit)

    async def claim(self, key: str, now: datetime) -> bool:
        return await self.run(self.sync.claim, key, now)

    async def unclaim(self, key: str) -> None:
        await self.run(self.sync.unclaim, key)

    async def mark_job_done(self, key: str, now: datetime) -> bool:
        return await self.run(self.sync.mark_job_done, key, now)

    async def schedule_measurements(
        self, release_id: int, planned: Sequence[tuple[str, int, datetime] | Planned]
    ) -> None:
        await self.run(self.sync.schedule_measurements, release_id, planned)

    async def pending_measurements(self, release_id: int | None = None) -> list[dict[str, Any]]:
        return await self.run(self.sync.pending_measurements, release_id)

    async def due_measurements(self, now: datetime, limit: int = 500) -> list[dict[str, Any]]:
        return await self.run(self.sync.due_measurements, now, limit)

    async def claim_measurement(self, release_id: int, check_name: str, offset_s: int) -> bool:
        return await self.run(self.sync.claim_measurement, release_id, check_name, offset_s)

    async def requeue_running_measurements(self) -> int:
        return await self.run(self.sync.requeue_running_measurements)

    async def record_measurement(
        self,
        release_id: int,
        check_name: str,
        offset_s: int,
        *,
        verdict: str,
        value: float | None,
        summary: str,
        query: str | None,
        now: datetime,
        outage_ts: str | None = None,
        reply_ts: str | None = None,
    ) -> None:
        await self.run(
            self.sync.record_measurement,
            release_id,
            check_name,
            offset_s,
            verdict=verdict,
            value=value,
            summary=summary,
            query=query,
            now=now,
            outage_ts=outage_ts,
            reply_ts=reply_ts,
        )

    async def cancel_measurements(
        self, *, release_id: int | None = None, superseded_in: tuple[str, str, int] | None = None
    ) -> list[dict[str, Any]]:
        return await self.run(self.sync.cancel_measurements, release_id=release_id, superseded_in=superseded_in)

    async def measurements(self, release_id: int) -> list[dict[str, Any]]:
        return await self.run(self.sync.measurements, release_id)

    # --- the Slack outbox (bot/store/outbox.py) ---------------------------------------------------
    async def outbox_enqueue(
        self,
        *,
        lane: str,
        channel: str | None,
        kind: OutboxKind,
        payload: dict[str, Any],
        now: datetime,
        thread_ref: int | None = None,
        message_ref: int | None = None,
        coalesce_key: str | None = None,
    ) -> tuple[int, list[int]]:
        return await self.run(
            self.sync.outbox_enqueue,
            lane=lane,
            channel=channel,
            kind=kind,
            payload=payload,
            now=now,
            thread_ref=thread_ref,
            message_ref=message_ref,
            coalesce_key=coalesce_key,
        )

    async def outbox_row(self, row_id: int) -> OutboxRow | None:
        return await self.run(self.sync.outbox_row, row_id)

    async def outbox_next(self, lane: str) -> OutboxRow | None:
        return await self.run(self.sync.outbox_next, lane)

    async def outbox_lanes(self) -> list[str]:
        return await self.run(self.sync.outbox_lanes)

    async def outbox_counts(self) -> dict[str, int]:
        return await self.run(self.sync.outbox_counts)

    async def outbox_begin_attempt(self, row_id: int, *, in_doubt: bool) -> None:
        await self.run(self.sync.outbox_begin_attempt, row_id, in_doubt=in_doubt)

    async def outbox_retry(self, row_id: int, *, next_attempt_at: datetime, error: str, in_doubt: bool) -> None:
        await self.run(self.sync.outbox_retry, row_id, next_attempt_at=next_attempt_at, error=error, in_doubt=in_doubt)

    async def outbox_sent(self, row_id: int, ts: str | None, now: datetime, note: str | None = None) -> None:
        await self.run(self.sync.outbox_sent, row_id, ts, now, note)

    async def outbox_dead(self, row_id: int, error: str, now: datetime) -> None:
        await self.run(self.sync.outbox_dead, row_id, error, now)

    async def outbox_hand_out(self, row_id: int) -> str | None:
        return await self.run(self.sync.outbox_hand_out, row_id)

    async def outbox_last_sent_ts(self, lane: str, before_id: int) -> str | None:
        return await self.run(self.sync.outbox_last_sent_ts, lane, before_id)

    async def outbox_resolve_placeholders(self) -> int:
        return await self.run(self.sync.outbox_resolve_placeholders)

    async def outbox_prune(self, before: datetime) -> int:
        return await self.run(self.sync.outbox_prune, before)

    # --- reporting reads (bot/store/reports.py) ---------------------------------------------------
    async def production_outcomes(self, envs: dict[str, str], start: datetime, end: datetime) -> list[dict[str, Any]]:
        return await self.run(self.sync.production_outcomes, envs, start, end)

    async def counts_by_env(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        return await self.run(self.sync.counts_by_env, start, end)

    async def unmark_job_done(self, key: str) -> None:
        await self.run(self.sync.unmark_job_done, key)

    async def all_env_states(self) -> list[EnvState]:
        return await self.run(self.sync.all_env_states)

    async def all_locks(self, service: str | None = None) -> list[Lock]:
        return await self.run(self.sync.all_locks, service)

    # --- Slack requests already seen (bot/store/replays.py) ---------------------------------------
    async def prune_due(self, now: float) -> bool:
        return await self.run(self.sync.prune_due, now)

    async def claim_request(self, keys: Sequence[str], now: float, *, prune: bool = True) -> bool:
        return await self.run(self.sync.claim_request, keys, now, prune=prune)

    async def prune_requests(self, before: float) -> int:
        return await self.run(self.sync.prune_requests, before)

    # --- deploy runs and the write probe (bot/store/deploy_runs.py) --------------------------------
    async def start_deploy_run(
        self,
        *,
        release_id: int,
        step: str,
        action: str,
        role: RunRole,
        provider: str,
        started_at: datetime,
        deadline_at: datetime,
        weight: int | None = None,
        colour: str | None = None,
        output_path: str | None = None,
        pgid: int | None = None,
        proc_start: int | None = None,
        boot_id: str | None = None,
    ) -> int:
        return await self.run(
            self.sync.start_deploy_run,
            release_id=release_id,
            step=step,
            action=action,
            role=role,
            provider=provider,
            started_at=started_at,
            deadline_at=deadline_at,
            weight=weight,
            colour=colour,
            output_path=output_path,
            pgid=pgid,
            proc_start=proc_start,
            boot_id=boot_id,
        )

    async def identify_deploy_run(self, run_id: int, remote_id: str) -> None:
        await self.run(self.sync.identify_deploy_run, run_id, remote_id)

    async def end_deploy_run(
        self, run_id: int, *, outcome: RunOutcome, exit_status: int | None, error: str | None, now: datetime
    ) -> bool:
        return await self.run(
            self.sync.end_deploy_run, run_id, outcome=outcome, exit_status=exit_status, error=error, now=now
        )

    async def adopt_deploy_run(self, run_id: int, now: datetime) -> None:
        await self.run(self.sync.adopt_deploy_run, run_id, now)

    async def last_deploy_run(self, release_id: int) -> DeployRun | None:
        return await self.run(self.sync.last_deploy_run, release_id)

    async def left_deploy_run(self, service: str, env: str) -> DeployRun | None:
        return await self.run(self.sync.left_deploy_run, service, env)

    async def probe_write(self, now: datetime) -> None:
        await self.run(self.sync.probe_write, now)

    # --- Store's own ------------------------------------------------------------------------------
    async def status_snapshot(self, service: str) -> StatusRows:
        """Through :meth:`read`: the hot `/release status` read, answered inside the ack."""

        def status_snapshot(store: Store) -> StatusRows:
            return store.status_snapshot(service)  # a named function, so a tally names the read

        return await self.read(status_snapshot)

    # --- scheduled releases (bot/store/scheduled.py) -------------------------------------------------
    async def add_scheduled(
        self,
        *,
        service: str,
        env: str,
        version: str | None,
        source_env: str | None,
        command: str,
        requested_by: str,
        at: datetime,
        now: datetime,
    ) -> Scheduled:
        return await self.run(
            self.sync.add_scheduled,
            service=service,
            env=env,
            version=version,
            source_env=source_env,
            command=command,
            requested_by=requested_by,
            at=at,
            now=now,
        )

    async def get_scheduled(self, scheduled_id: int) -> Scheduled | None:
        return await self.run(self.sync.get_scheduled, scheduled_id)

    async def scheduled_in(self, states: list[str], service: str | None = None) -> list[Scheduled]:
        return await self.run(self.sync.scheduled_in, states, service)

    async def claim_scheduled(self, scheduled_id: int, *, to: str, reason: str | None = None) -> bool:
        return await self.run(self.sync.claim_scheduled, scheduled_id, to=to, reason=reason)

    async def settle_scheduled(
        self, scheduled_id: int, *, state: str, reason: str | None, release_id: int | None
    ) -> None:
        await self.run(self.sync.settle_scheduled, scheduled_id, state=state, reason=reason, release_id=release_id)

    async def release_of_request(self, request_id: str) -> int | None:
        return await self.run(self.sync.release_of_request, request_id)

    # --- release trains (bot/store/trains.py) ----------------------------------------------------------------
    async def add_departure(self, *, env: str, at: datetime, boards_at: datetime, now: datetime) -> TrainDeparture:
        return await self.run(self.sync.add_departure, env=env, at=at, boards_at=boards_at, now=now)

    async def get_departure(self, departure_id: int) -> TrainDeparture | None:
        return await self.run(self.sync.get_departure, departure_id)

    async def departures_in(self, states: list[str], env: str | None = None) -> list[TrainDeparture]:
        return await self.run(self.sync.departures_in, states, env)

    async def unsettled_departures(self) -> list[TrainDeparture]:
        return await self.run(self.sync.unsettled_departures)

    async def last_departure(self, env: str) -> TrainDeparture | None:
        return await self.run(self.sync.last_departure, env)

    async def move_departure(
        self,
        departure_id: int,
        *,
        frm: str,
        to: str,
        now: datetime,
        reason: str | None = None,
        held_by: str | None = None,
    ) -> bool:
        return await self.run(
            self.sync.move_departure, departure_id, frm=frm, to=to, now=now, reason=reason, held_by=held_by
        )

    async def add_boarding(
        self,
        *,
        departure_id: int,
        env: str,
        service: str,
        version: str | None,
        state: str,
        reason: str | None = None,
        checklist_ok: bool | None = None,
        notes: str | None = None,
    ) -> Boarding:
        return await self.run(
            self.sync.add_boarding,
            departure_id=departure_id,
            env=env,
            service=service,
            version=version,
            state=state,
            reason=reason,
            checklist_ok=checklist_ok,
            notes=notes,
        )

    async def boardings(self, departure_id: int) -> list[Boarding]:
        return await self.run(self.sync.boardings, departure_id)

    async def add_missed(
        self, *, env: str, instants: list[tuple[datetime, datetime]], reason: str, now: datetime
    ) -> list[TrainDeparture]:
        return await self.run(self.sync.add_missed, env=env, instants=instants, reason=reason, now=now)

    async def set_call(self, boarding_id: int, *, channel: str, ts: str) -> bool:
        return await self.run(self.sync.set_call, boarding_id, channel=channel, ts=ts)

    async def get_boarding(self, boarding_id: int) -> Boarding | None:
        return await self.run(self.sync.get_boarding, boarding_id)

    async def already_boarded(self, env: str, service: str, version: str) -> bool:
        return await self.run(self.sync.already_boarded, env, service, version)

    async def move_boarding(
        self, boarding_id: int, *, frm: str, to: str, reason: str | None = None, by: str | None = None
    ) -> bool:
        return await self.run(self.sync.move_boarding, boarding_id, frm=frm, to=to, reason=reason, by=by)

    async def settle_boarding(
        self, boarding_id: int, *, state: str, reason: str | None, release_id: int | None
    ) -> None:
        await self.run(self.sync.settle_boarding, boarding_id, state=state, reason=reason, release_id=release_id)

    async def train_counts(self, since: datetime, until: datetime) -> dict[str, int]:
        return await self.run(self.sync.train_counts, since, until)

    # --- alerts and incidents (bot/store/alerts.py) -------------------------------------------------
    async def ingest_alerts(
        self, alerts: Iterable[CheckedAlert], watch: Mapping[str, timedelta], now: datetime
    ) -> list[IncidentNews]:
        return await self.run(self.sync.ingest_alerts, alerts, watch, now)

    async def incident(self, incident_id: int) -> Incident | None:
        return await self.run(self.sync.incident, incident_id)

    async def incident_alerts(self, incident_id: int) -> list[StoredAlert]:
        return await self.run(self.sync.incident_alerts, incident_id)

    async def unshown_incidents(self, since: datetime) -> list[Incident]:
        return await self.run(self.sync.unshown_incidents, since)

    async def rollbacks_unasked(self, envs: Iterable[str], since: datetime) -> list[Incident]:
        return await self.run(self.sync.rollbacks_unasked, envs, since)

    async def set_rollback_asked(self, incident_id: int, now: datetime) -> None:
        await self.run(self.sync.set_rollback_asked, incident_id, now)

    async def set_incident_message(self, incident_id: int, channel: str, ts: str, thread_ts: str | None) -> None:
        await self.run(self.sync.set_incident_message, incident_id, channel, ts, thread_ts)

    async def acknowledge_incident(self, incident_id: int, by: str, now: datetime) -> bool:
        return await self.run(self.sync.acknowledge_incident, incident_id, by, now)

    async def release_incidents(self, start: datetime, end: datetime) -> list[Incident]:
        return await self.run(self.sync.release_incidents, start, end)

    # --- outbound events (bot/store/events.py) -------------------------------------------------------
    async def emit_event(self, type_: str, subject: str, data: dict[str, Any], now: datetime) -> int:
        return await self.run(self.sync.emit_event, type_, subject, data, now)

    async def events_since(self, since: int, limit: int) -> list[StoredEvent]:
        return await self.run(self.sync.events_since, since, limit)

    async def event_replay(self, since: int, limit: int) -> Replay:
        return await self.run(self.sync.event_replay, since, limit)
