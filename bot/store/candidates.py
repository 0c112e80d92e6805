"""Release candidates and their evidence (tests, vulnerability scans), as reported by CI."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Literal

from bot.core.models import Candidate
from bot.store import rows
from bot.store.db import Sql

PutOutcome = Literal["created", "unchanged", "conflict"]


def body_hash(document: dict[str, Any]) -> str:
    """A stable fingerprint of a candidate document, to tell an identical re-post from a conflict."""
    return hashlib.sha256(json.dumps(document, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class CandidateStore:
    sql: Sql

    def put_candidate(
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
        """Register a candidate once; an identical re-post is ``unchanged``, a different one a ``conflict``."""
        fingerprint = body_hash(
            {
                "commit": commit,
                "committed_at": rows.ts(committed_at),
                "components": components,
                "tests": tests,
            }
        )
        with self.sql.transaction():
            existing = self.sql.one(
                "SELECT body_hash FROM candidates WHERE service = ? AND version = ?", (service, version)
            )
            if existing is not None:
                return "unchanged" if existing["body_hash"] == fingerprint else "conflict"
            self.sql.execute(
                "INSERT INTO candidates (service, version, commit_sha, committed_at, components, body_hash, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    service,
                    version,
                    commit,
                    rows.ts(committed_at),
                    json.dumps(components),
                    fingerprint,
                    rows.ts(now),
                ),
            )
            for suite, status in tests.items():
                self._put_test(service, version, suite, status, None, now)
        return "created"

    def get_candidate(self, service: str, version: str) -> Candidate | None:
        row = self.sql.one("SELECT * FROM candidates WHERE service = ? AND version = ?", (service, version))
        return rows.candidate(row) if row else None

    def candidates(self, service: str, limit: int = 20) -> list[Candidate]:
        found = self.sql.query(
            "SELECT * FROM candidates WHERE service = ? ORDER BY created_at DESC LIMIT ?", (service, limit)
        )
        return [rows.candidate(r) for r in found]

    def _put_test(self, service: str, version: str, suite: str, status: str, url: str | None, now: datetime) -> None:
        self.sql.execute(
            "INSERT INTO candidate_tests (service, version, suite, status, url, updated_at) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (service, version, suite) DO UPDATE SET status = excluded.status, url = excluded.url, "
            "updated_at = excluded.updated_at",
            (service, version, suite, status, url, rows.ts(now)),
        )

    def put_test(self, service: str, version: str, suite: str, status: str, url: str | None, now: datetime) -> bool:
        """Record a suite's result, replacing an earlier one; False when nothing changed (idempotent re-post)."""
        with self.sql.transaction():
            old = self.sql.one(
                "SELECT status, url FROM candidate_tests WHERE service = ? AND version = ? AND suite = ?",
                (service, version, suite),
            )
            if old is not None and old["status"] == status and old["url"] == url:
                return False
            self._put_test(service, version, suite, status, url, now)
        return True

    def tests(self, service: str, version: str) -> dict[str, dict[str, Any]]:
        found = self.sql.query(
            "SELECT suite, status, url FROM candidate_tests WHERE service = ? AND version = ?",
            (service, version),
        )
        return {r["suite"]: {"status": r["status"], "url": r["url"]} for r in found}

    def put_scan(self, service: str, version: str, component: str, summary: dict[str, Any], now: datetime) -> None:
        """Store the scan summary of one of the candidate's images, replacing that image's earlier one."""
        self.sql.execute(
            "INSERT INTO candidate_scans (service, version, component, summary, updated_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (service, version, component) DO UPDATE SET summary = excluded.summary, "
            "updated_at = excluded.updated_at",
            (service, version, component, json.dumps(summary, sort_keys=True), rows.ts(now)),
        )

    def scans(self, service: str, version: str) -> dict[str, dict[str, Any]]:
        """The candidate's scan summaries by component ('' for one stored before scans were per component)."""
        found = self.sql.query(
            "SELECT component, summary FROM candidate_scans WHERE service = ? AND version = ? ORDER BY component",
            (service, version),
        )
        return {r["component"]: json.loads(r["summary"]) for r in found}
