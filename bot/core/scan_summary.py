"""What a Trivy scan found, per class (vulnerabilities, secrets, misconfigurations), and how it is stored.

Pure: no I/O. ``bot.core.trivy`` builds a ``ScanSummary`` from a report; the checklist judges it; the
store keeps ``to_dict()`` as JSON and reads it back with ``from_dict``.

The stored form keeps the vulnerability fields where they were before secrets and misconfigurations
were counted (``counts``, ``total``, ``top`` at the top level) and adds ``secrets`` and
``misconfigurations`` beside them. So a summary stored by an older release-bot still reads (its other
classes are ``None``: not counted), and an older release-bot still reads a new one.

A secret is kept as its rule ID, file and line only: never ``Match`` or ``Code``, which carry the
secret's text (Trivy masks the match, not always the lines around it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Generic, TypeVar

__all__ = [
    "CLASSES",
    "AnyFinding",
    "SEVERITIES",
    "ClassSummary",
    "Finding",
    "MisconfigFinding",
    "ScanReportError",
    "ScanSummary",
    "SecretFinding",
    "severity_rank",
]

SEVERITIES: tuple[str, ...] = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN")  # worst first
CLASSES: tuple[str, ...] = ("vulnerabilities", "secrets", "misconfigurations")
_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}


class ScanReportError(ValueError):
    """A report that is not a usable Trivy JSON report; the message starts with the JSON path."""


def severity_rank(value: object, path: str) -> str:
    """``value`` if it is one of SEVERITIES, else ScanReportError naming ``path``."""
    if not isinstance(value, str) or value not in _RANK:
        raise ScanReportError(f"{path}: expected one of {', '.join(SEVERITIES)}, got {value!r}")
    return value


@dataclass(frozen=True)
class Finding:
    """One vulnerability in one installed package."""

    vulnerability_id: str
    pkg_name: str
    installed_version: str
    fixed_version: str | None
    severity: str
    title: str | None = None
    url: str | None = None

    @property
    def key(self) -> tuple[str, ...]:
        """Identity used to dedupe the same finding reported under several targets."""
        return (self.vulnerability_id, self.pkg_name, self.installed_version)

    def sort_key(self) -> tuple[int, str, str, str]:
        """Worst severity first, then by ID, package and version for a stable order."""
        return (_RANK[self.severity], self.vulnerability_id, self.pkg_name, self.installed_version)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for storage."""
        return {
            "id": self.vulnerability_id,
            "pkg": self.pkg_name,
            "installed": self.installed_version,
            "fixed": self.fixed_version,
            "severity": self.severity,
            "title": self.title,
            "url": self.url,
        }

    @classmethod
    def from_dict(cls, item: Mapping[str, Any]) -> Finding:
        """Read back ``to_dict``."""
        return cls(
            vulnerability_id=str(item["id"]),
            pkg_name=str(item["pkg"]),
            installed_version=str(item["installed"]),
            fixed_version=_opt(item["fixed"]),
            severity=severity_rank(item["severity"], "top[].severity"),
            title=_opt(item.get("title")),
            url=_opt(item.get("url")),
        )


@dataclass(frozen=True)
class SecretFinding:
    """One secret rule matched in one file; where it is, never what it is."""

    rule_id: str
    severity: str
    file: str  # the Result's Target: the file the secret is in ("" if Trivy named none)
    line: int | None = None
    category: str | None = None

    @property
    def key(self) -> tuple[str, ...]:
        """The same rule at the same place, reported twice (e.g. from two layers), counts once."""
        return (self.rule_id, self.file, str(self.line))

    def sort_key(self) -> tuple[int, str, str, int]:
        """Worst severity first, then by rule, file and line."""
        return (_RANK[self.severity], self.rule_id, self.file, self.line or 0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for storage."""
        return {
            "rule": self.rule_id,
            "severity": self.severity,
            "file": self.file,
            "line": self.line,
            "category": self.category,
        }

    @classmethod
    def from_dict(cls, item: Mapping[str, Any]) -> SecretFinding:
        """Read back ``to_dict``."""
        return cls(
            rule_id=str(item["rule"]),
            severity=severity_rank(item["severity"], "secrets.top[].severity"),
            file=str(item["file"]),
            line=None if item.get("line") is None else int(item["line"]),
            category=_opt(item.get("category")),
        )


@dataclass(frozen=True)
class MisconfigFinding:
    """One failed configuration check in one file."""

    check_id: str
    severity: str
    file: str  # the Result's Target: the config file (Dockerfile, manifest, …)
    file_type: str | None = None
    line: int | None = None
    title: str | None = None
    url: str | None = None

    @property
    def key(self) -> tuple[str, ...]:
        """The same check failing at the same place counts once."""
        return (self.check_id, self.file, str(self.line))

    def sort_key(self) -> tuple[int, str, str, int]:
        """Worst severity first, then by check, file and line."""
        return (_RANK[self.severity], self.check_id, self.file, self.line or 0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for storage."""
        return {
            "id": self.check_id,
            "severity": self.severity,
            "file": self.file,
            "type": self.file_type,
            "line": self.line,
            "title": self.title,
            "url": self.url,
        }

    @classmethod
    def from_dict(cls, item: Mapping[str, Any]) -> MisconfigFinding:
        """Read back ``to_dict``."""
        return cls(
            check_id=str(item["id"]),
            severity=severity_rank(item["severity"], "misconfigurations.top[].severity"),
            file=str(item["file"]),
            file_type=_opt(item.get("type")),
            line=None if item.get("line") is None else int(item["line"]),
            title=_opt(item.get("title")),
            url=_opt(item.get("url")),
        )


AnyFinding = Finding | SecretFinding | MisconfigFinding
F = TypeVar("F", Finding, SecretFinding, MisconfigFinding)


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class ClassSummary(Generic[F]):
    """Severity counts of one class's distinct findings (all five keys) and its worst findings."""

    counts: Mapping[str, int]
    top: tuple[F, ...]

    @property
    def total(self) -> int:
        """Number of distinct findings."""
        return sum(self.counts.values())

    def count(self, severity: str) -> int:
        """Findings of one severity."""
        return self.counts.get(severity, 0)

    @classmethod
    def of(cls, findings: list[F], top_n: int) -> ClassSummary[F]:
        """Dedupe by ``key`` keeping the worst severity reported, count, and keep the ``top_n`` worst."""
        unique: dict[tuple[str, ...], F] = {}
        for finding in findings:
            seen = unique.get(finding.key)
            if seen is None or finding.sort_key() < seen.sort_key():
                unique[finding.key] = finding
        counts = dict.fromkeys(SEVERITIES, 0)
        for finding in unique.values():
            counts[finding.severity] += 1
        ordered = sorted(unique.values(), key=lambda f: f.sort_key())
        return cls(MappingProxyType(counts), tuple(ordered[: max(top_n, 0)]))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for storage."""
        return {
            "counts": {severity: self.count(severity) for severity in SEVERITIES},
            "total": self.total,
            "top": [finding.to_dict() for finding in self.top],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], read: Callable[[Mapping[str, Any]], F]) -> ClassSummary[F]:
        """Read back ``to_dict``, each finding with ``read``."""
        counts = {severity: int(data["counts"][severity]) for severity in SEVERITIES}
        return cls(MappingProxyType(counts), tuple(read(item) for item in data["top"]))


@dataclass(frozen=True)
class ScanSummary:
    """One report's findings per class. A class that is None was not counted (an older stored summary)."""

    artifact: str
    artifact_type: str
    vulnerabilities: ClassSummary[Finding]
    secrets: ClassSummary[SecretFinding] | None = None
    misconfigurations: ClassSummary[MisconfigFinding] | None = None

    @property
    def counts(self) -> Mapping[str, int]:
        """Vulnerability counts by severity (the meaning ``counts`` always had)."""
        return self.vulnerabilities.counts

    @property
    def top(self) -> tuple[Finding, ...]:
        """The worst vulnerabilities."""
        return self.vulnerabilities.top

    @property
    def total(self) -> int:
        """Number of distinct vulnerabilities."""
        return self.vulnerabilities.total

    def count(self, severity: str) -> int:
        """Vulnerabilities of one severity."""
        return self.vulnerabilities.count(severity)

    def by_class(self) -> dict[str, ClassSummary[Any] | None]:
        """Every class in CLASSES order; None for one this summary did not count."""
        return {
            "vulnerabilities": self.vulnerabilities,
            "secrets": self.secrets,
            "misconfigurations": self.misconfigurations,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for storage; ``from_dict`` reads it back."""
        data = {"artifact": self.artifact, "artifact_type": self.artifact_type, **self.vulnerabilities.to_dict()}
        for name, summary in (("secrets", self.secrets), ("misconfigurations", self.misconfigurations)):
            if summary is not None:
                data[name] = summary.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScanSummary:
        """Rebuild a summary stored with ``to_dict`` (or by an older release-bot, vulnerabilities only).

        ScanReportError if it was tampered with.
        """
        try:
            secrets = data.get("secrets")
            misconfigs = data.get("misconfigurations")
            return cls(
                artifact=str(data["artifact"]),
                artifact_type=str(data["artifact_type"]),
                vulnerabilities=ClassSummary.from_dict(data, Finding.from_dict),
                secrets=None if secrets is None else ClassSummary.from_dict(secrets, SecretFinding.from_dict),
                misconfigurations=(
                    None if misconfigs is None else ClassSummary.from_dict(misconfigs, MisconfigFinding.from_dict)
                ),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, ScanReportError):
                raise
            raise ScanReportError(f"stored scan summary: bad shape ({exc!r})") from None
