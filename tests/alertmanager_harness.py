"""A real Alertmanager for tests, and a real Prometheus that evaluates an alerting rule and sends it there.

``RealAlertmanager`` runs the ``prometheus-alertmanager`` binary (Debian package ``prometheus-alertmanager``) on a
free loopback port, clustering off, with one route to one webhook receiver: the bot's ``/api/v1/alerts`` with
the bearer token (``http_config.authorization``) and ``send_resolved``, and grouping timers of a second so a test
sees a notification within seconds. ``AlertingPrometheus`` is tests/prometheus_harness.py's ``RealPrometheus``
with a rule file and an ``alerting`` block pointing at that Alertmanager, evaluating every second.

Like tests/prometheus_harness.py: skipped where the binaries are absent, a failure when ``CI=true``.
"""

from __future__ import annotations

import json
from typing import Any

from tests.processes import ServerProcess, free_port, require_binary
from tests.prometheus_harness import RealPrometheus

ALERTMANAGER = "prometheus-alertmanager"  # Debian's name for the binary (upstream: alertmanager)


def require_alertmanager() -> str:
    """The binary (Debian's name first, then upstream's), or skip (laptop) — but under ``CI=true`` fail."""
    return require_binary(ALERTMANAGER, "alertmanager", package=ALERTMANAGER, tests="the Alertmanager integration test")


class RealAlertmanager(ServerProcess):
    """``prometheus-alertmanager`` on a free loopback port, posting every group to ``webhook_url`` with ``token``."""

    name = "alertmanager"
    ready_path = "/-/ready"

    def __init__(self, webhook_url: str, token: str, *, binary: str | None = None) -> None:
        super().__init__(binary or require_alertmanager())
        self.webhook_url = webhook_url
        self.token = token

    async def start(self) -> None:
        # JSON is YAML: no quoting to get wrong. Group by the labels the bot reads, so one service's alerts
        # are one notification; a second of group_wait/group_interval shows a firing and its resolve quickly.
        config = {
            "route": {
                "receiver": "release-bot",
                "group_by": ["alertname", "service", "env"],
                "group_wait": "1s",
                "group_interval": "1s",
                "repeat_interval": "1h",
            },
            "receivers": [
                {
                    "name": "release-bot",
                    "webhook_configs": [
                        {
                            "url": self.webhook_url,
                            "send_resolved": True,
                            "http_config": {"authorization": {"type": "Bearer", "credentials": self.token}},
                        }
                    ],
                }
            ],
        }
        (self.root / "alertmanager.yml").write_text(json.dumps(config))
        self.port = free_port()
        await self._spawn(
            f"--config.file={self.root / 'alertmanager.yml'}",
            f"--storage.path={self.root / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",  # no gossip port: one instance, nothing else bound
            "--log.level=warn",
        )


class AlertingPrometheus(RealPrometheus):
    """Prometheus scraping ``targets`` and evaluating ``rules`` (a rule file's YAML/JSON text) every
    ``scrape_interval``, sending what fires to the Alertmanager at ``alertmanager`` (``host:port``)."""

    def __init__(self, targets: list[str], *, rules: str, alertmanager: str, scrape_interval: str = "1s") -> None:
        super().__init__(targets, scrape_interval=scrape_interval)
        self.rules = rules
        self.alertmanager = alertmanager

    def config(self) -> dict[str, Any]:
        (self.root / "rules.yml").write_text(self.rules)
        return {
            **super().config(),
            "rule_files": [str(self.root / "rules.yml")],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [self.alertmanager]}]}]},
        }
