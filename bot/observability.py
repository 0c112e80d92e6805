"""Prometheus metrics the bot exposes on GET /metrics.

Counters and histograms are updated where things happen (the engine, the outbox, the HTTP and Socket
Mode front doors). The store-derived gauges — pending approvals and the outbox backlog — are read at
scrape time by :func:`scrape`: the store is their only truth (a restart, another process or a crash
cannot make them drift), and the read runs on the store's thread, so the event loop only awaits it.
Both queries are answered from partial/composite indexes over the pending rows alone.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.context_managers import Timer

from bot.store import AsyncStore, Store
from bot.store import rows as row_values
from bot.store.events import label_of, pending_by_target

__all__ = [
    "BACKGROUND_TASKS",
    "CHECK_VERDICTS",
    "DEPLOY_SECONDS",
    "EVENT_DELIVERIES_GIVEN_UP",
    "EVENT_DELIVERIES_PENDING",
    "EVENT_DELIVERY_OLDEST",
    "HTTP_LATENCY",
    "OUTBOX_GIVEN_UP",
    "OUTBOX_OLDEST",
    "OUTBOX_PENDING",
    "PENDING_APPROVALS",
    "REGISTRY",
    "RELEASES",
    "SLACK_REQUESTS",
    "Timer",
    "check_measured",
    "deploy_timer",
    "exposition",
    "release_finished",
    "scrape",
]

log = logging.getLogger("release_bot.metrics")

REGISTRY = CollectorRegistry(auto_describe=True)
SLACK_REQUESTS = Counter("releasebot_slack_requests", "Slack requests handled, by kind", ["kind"], registry=REGISTRY)
HTTP_LATENCY = Histogram(
    "releasebot_http_request_seconds",
    "Time to ack a Slack request: route /slack/events over HTTP, route socket_mode over Socket Mode",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=REGISTRY,
)
RELEASES = Counter(
    "releasebot_releases",
    "Releases that reached a final state, by environment and state (a release later rolled back counts "
    "again, as rolled_back)",
    ["env", "state"],
    registry=REGISTRY,
)
DEPLOY_SECONDS = Histogram(
    "releasebot_deploy_seconds",
    "Time the deploy provider took for one step (deploy, shift, switch, rollback), by environment and provider",
    ["env", "provider", "action"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600),
    registry=REGISTRY,
)
CHECK_VERDICTS = Counter(
    "releasebot_check_verdicts",
    "Check measurements (post-release and between rollout steps), by environment and final verdict",
    ["env", "verdict"],
    registry=REGISTRY,
)
PENDING_APPROVALS = Gauge(
    "releasebot_pending_approvals", "Approval requests waiting for a decision (read at scrape time)", registry=REGISTRY
)
OUTBOX_PENDING = Gauge(
    "releasebot_outbox_pending", "Slack writes waiting in the outbox (read at scrape time)", registry=REGISTRY
)
OUTBOX_OLDEST = Gauge(
    "releasebot_outbox_oldest_pending_seconds",
    "Age of the oldest Slack write waiting in the outbox; 0 when none waits (read at scrape time)",
    registry=REGISTRY,
)
OUTBOX_GIVEN_UP = Counter(
    "releasebot_outbox_given_up", "Slack writes the outbox gave up on (never delivered)", registry=REGISTRY
)
BACKGROUND_TASKS = Gauge("releasebot_background_tasks", "Background tasks running now", registry=REGISTRY)
# Outbound events (docs/events.md). `target` is a webhook's configured name, else its URL's scheme, host and
# port (never its path or query, where a receiver may take a token), or `github`.
EVENT_DELIVERIES_PENDING = Gauge(
    "releasebot_event_deliveries_pending",
    "Outbound events waiting to be delivered, by target (read at scrape time)",
    ["target"],
    registry=REGISTRY,
)
EVENT_DELIVERY_OLDEST = Gauge(
    "releasebot_event_delivery_oldest_pending_seconds",
    "Age of the oldest outbound event waiting for a target; 0 when none waits (read at scrape time)",
    ["target"],
    registry=REGISTRY,
)
EVENT_DELIVERIES_GIVEN_UP = Counter(
    "releasebot_event_deliveries_given_up",
    "Outbound event deliveries given up (never delivered: too old, refused for good, or the target removed)",
    ["target"],
    registry=REGISTRY,
)


def release_finished(env: str, state: str) -> None:
    """Count a release that reached a final state (call only when the transition actually happened)."""
    RELEASES.labels(env=env, state=state).inc()


def deploy_timer(env: str, provider: str, action: str) -> Timer:
    """Times one provider call: ``with deploy_timer(...): await provider.deploy(ctx)``."""
    return DEPLOY_SECONDS.labels(env=env, provider=provider, action=action).time()


def check_measured(env: str, verdict: str) -> None:
    """Count a check's final verdict (failed attempts that were retried are not verdicts)."""
    CHECK_VERDICTS.labels(env=env, verdict=verdict).inc()


def _store_gauges(store: Store) -> tuple[int, int, str | None]:
    """(pending approvals, pending outbox rows, created_at of the oldest) — on the store thread."""
    approvals = store.sql.one("SELECT count(*) AS n FROM approvals WHERE state = 'pending'")
    outbox = store.sql.one("SELECT count(*) AS n, min(created_at) AS oldest FROM outbox WHERE state = 'pending'")
    return (
        int(approvals["n"]) if approvals else 0,
        int(outbox["n"]) if outbox else 0,
        outbox["oldest"] if outbox else None,
    )


async def scrape(db: AsyncStore, now: datetime) -> bytes:
    """Refresh the store-derived gauges as of ``now`` (the bot's clock), then render every metric."""
    try:
        approvals, pending, oldest = await db.run(_store_gauges, db.sync)
    except Exception:
        # The other metrics are still worth serving; NaN says "unknown" rather than a stale number.
        log.exception("could not read the store for /metrics")
        for gauge in (PENDING_APPROVALS, OUTBOX_PENDING, OUTBOX_OLDEST):
            gauge.set(math.nan)
    else:
        PENDING_APPROVALS.set(approvals)
        OUTBOX_PENDING.set(pending)
        created = row_values.dt(oldest)
        OUTBOX_OLDEST.set(max((now - created).total_seconds(), 0.0) if created is not None else 0.0)
    await _event_gauges(db, now)
    return exposition()


async def _event_gauges(db: AsyncStore, now: datetime) -> None:
    """The outbound-event backlog per target label; every configured target shows, 0 when nothing waits. Labels
    may be shared (two webhooks on one host without a name): their counts add up, the oldest is the oldest."""
    targets = db.sync.event_targets
    for gauge in (EVENT_DELIVERIES_PENDING, EVENT_DELIVERY_OLDEST):
        gauge.clear()  # a target removed from the config leaves no stale series behind
    try:
        pending = await db.run(pending_by_target, db.sync)
    except Exception:
        log.exception("could not read the event deliveries for /metrics")
        for target in targets:
            for gauge in (EVENT_DELIVERIES_PENDING, EVENT_DELIVERY_OLDEST):
                gauge.labels(target=label_of(targets, target.name)).set(math.nan)
        return
    counts: dict[str, int] = {label_of(targets, target.name): 0 for target in targets}
    ages: dict[str, float] = dict.fromkeys(counts, 0.0)
    for row in pending:
        label = label_of(targets, row.target)
        counts[label] = counts.get(label, 0) + row.count
        ages[label] = max(ages.get(label, 0.0), (now - row.oldest).total_seconds())
    for label, count in counts.items():
        EVENT_DELIVERIES_PENDING.labels(target=label).set(count)
        EVENT_DELIVERY_OLDEST.labels(target=label).set(ages[label])


def exposition() -> bytes:
    """The metrics in Prometheus text format."""
    return bytes(generate_latest(REGISTRY))
