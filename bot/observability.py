"""Prometheus metrics the bot exposes on GET /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)
SLACK_REQUESTS = Counter("releasebot_slack_requests", "Slack requests handled, by kind", ["kind"], registry=REGISTRY)
HTTP_LATENCY = Histogram(
    "releasebot_http_request_seconds",
    "Time to answer an HTTP request (the Slack ack for /slack/events)",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=REGISTRY,
)
RELEASES = Counter(
    "releasebot_releases", "Releases finished, by environment and state", ["env", "state"], registry=REGISTRY
)
BACKGROUND_TASKS = Gauge("releasebot_background_tasks", "Background tasks running now", registry=REGISTRY)


def exposition() -> bytes:
    """The metrics in Prometheus text format."""
    return bytes(generate_latest(REGISTRY))
