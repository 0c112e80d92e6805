"""Trivy JSON reports (``trivy image -f json``) validated and summarised as severity counts.

Pure: no I/O. The schema followed is Trivy's own (``pkg/types/report.go``, SchemaVersion 2)::

    {SchemaVersion: 2, CreatedAt?, ArtifactName, ArtifactType, Metadata{…},
     Results?: [{Target, Class?, Type?, Vulnerabilities?: [{VulnerabilityID, PkgName,
                 InstalledVersion?, FixedVersion?, Severity, Title?, PrimaryURL?, …}] | null}]}

Trivy omits empty fields (``omitempty``): ``Results`` is absent when nothing was detected,
``Vulnerabilities`` when a target is clean, ``InstalledVersion``/``FixedVersion`` when unknown.
Unknown keys are ignored, because Trivy adds fields between releases; known keys must have the
right type. Every error names the JSON path of the problem.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

__all__ = [
    "MAX_REPORT_BYTES",
    "SEVERITIES",
    "Finding",
    "ReportTooLargeError",
    "ScanReportError",
    "ScanSummary",
    "load_trivy_report",
    "parse_trivy_report",
]

MAX_REPORT_BYTES = 5 * 1024 * 1024
SEVERITIES: tuple[str, ...] = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN")  # worst first
_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}
DEFAULT_TOP = 10


class ScanReportError(ValueError):
    """A report that is not a usable Trivy JSON report; the message starts with the JSON path."""


class ReportTooLargeError(ScanReportError):
    """A report over MAX_REPORT_BYTES (an HTTP layer answers 413 for this one)."""


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
    def key(self) -> tuple[str, str, str]:
        """Identity used to dedupe the same finding reported under several targets."""
        return (self.vulnerability_id, self.pkg_name, self.installed_version)

    def sort_key(self) -> tuple[int, str, str, str]:
        """Worst severity first, then by ID, package and version for a stable order."""
        return (_RANK[self.severity], self.vulnerability_id, self.pkg_name, self.installed_version)

    def to_dict(self) -> dict[str, str | None]:
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


@dataclass(frozen=True)
class ScanSummary:
    """Severity counts (all five keys, deduped findings) and the worst findings of one report."""

    artifact: str
    artifact_type: str
    counts: Mapping[str, int]
    top: tuple[Finding, ...]

    @property
    def total(self) -> int:
        """Number of distinct findings."""
        return sum(self.counts.values())

    def count(self, severity: str) -> int:
        """Findings of one severity."""
        return self.counts.get(severity, 0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for storage; ``from_dict`` reads it back."""
        return {
            "artifact": self.artifact,
            "artifact_type": self.artifact_type,
            "counts": {severity: self.count(severity) for severity in SEVERITIES},
            "total": self.total,
            "top": [finding.to_dict() for finding in self.top],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScanSummary:
        """Rebuild a summary stored with ``to_dict``; ScanReportError if it was tampered with."""
        try:
            counts = {severity: int(data["counts"][severity]) for severity in SEVERITIES}
            top = tuple(
                Finding(
                    vulnerability_id=str(item["id"]),
                    pkg_name=str(item["pkg"]),
                    installed_version=str(item["installed"]),
                    fixed_version=None if item["fixed"] is None else str(item["fixed"]),
                    severity=_severity(item["severity"], "top[].severity"),
                    title=None if item.get("title") is None else str(item["title"]),
                    url=None if item.get("url") is None else str(item["url"]),
                )
                for item in data["top"]
            )
            return cls(
                artifact=str(data["artifact"]),
                artifact_type=str(data["artifact_type"]),
                counts=MappingProxyType(counts),
                top=top,
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ScanReportError):
                raise
            raise ScanReportError(f"stored scan summary: bad shape ({exc!r})") from None


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _severity(value: object, path: str) -> str:
    if not isinstance(value, str) or value not in _RANK:
        raise ScanReportError(f"{path}: expected one of {', '.join(SEVERITIES)}, got {value!r}")
    return value


def _where(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _string(obj: Mapping[str, object], key: str, path: str) -> str | None:
    """An optional string field: None when absent or null."""
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise ScanReportError(f"{_where(path, key)}: expected a string, got {_kind(value)}")
    return value


def _required(obj: Mapping[str, object], key: str, path: str) -> str:
    """A required, non-empty string field."""
    value = obj.get(key)
    if value is None:
        raise ScanReportError(f"{_where(path, key)}: required")
    if not isinstance(value, str):
        raise ScanReportError(f"{_where(path, key)}: expected a string, got {_kind(value)}")
    if not value:
        raise ScanReportError(f"{_where(path, key)}: must not be empty")
    return value


def _finding(raw: object, path: str) -> Finding:
    if not isinstance(raw, dict):
        raise ScanReportError(f"{path}: expected an object, got {_kind(raw)}")
    fixed = _string(raw, "FixedVersion", path)
    return Finding(
        vulnerability_id=_required(raw, "VulnerabilityID", path),
        pkg_name=_required(raw, "PkgName", path),
        installed_version=_string(raw, "InstalledVersion", path) or "",
        fixed_version=fixed or None,
        severity=_severity(raw.get("Severity"), f"{path}.Severity"),
        title=_string(raw, "Title", path) or None,
        url=_string(raw, "PrimaryURL", path) or None,
    )


def _findings(results: object) -> list[Finding]:
    if results is None:
        return []  # Trivy omits Results when nothing was detected
    if not isinstance(results, list):
        raise ScanReportError(f"Results: expected an array, got {_kind(results)}")
    out: list[Finding] = []
    for i, result in enumerate(results):
        path = f"Results[{i}]"
        if not isinstance(result, dict):
            raise ScanReportError(f"{path}: expected an object, got {_kind(result)}")
        _required(result, "Target", path)
        _string(result, "Class", path)
        _string(result, "Type", path)
        vulns = result.get("Vulnerabilities")
        if vulns is None:
            continue
        if not isinstance(vulns, list):
            raise ScanReportError(f"{path}.Vulnerabilities: expected an array or null, got {_kind(vulns)}")
        out.extend(_finding(raw, f"{path}.Vulnerabilities[{j}]") for j, raw in enumerate(vulns))
    return out


def parse_trivy_report(data: object, *, top_n: int = DEFAULT_TOP) -> ScanSummary:
    """Validate a decoded Trivy JSON report and summarise it; ScanReportError names the bad path.

    The same (VulnerabilityID, PkgName, InstalledVersion) reported under several targets counts
    once, at its worst reported severity.
    """
    if not isinstance(data, dict):
        raise ScanReportError(f"(report): expected a JSON object, got {_kind(data)}")
    version = data.get("SchemaVersion")
    if version is None:
        raise ScanReportError("SchemaVersion: required (is this a `trivy image -f json` report?)")
    if type(version) is not int or version != 2:
        raise ScanReportError(f"SchemaVersion: expected 2, got {version!r}")
    artifact = _required(data, "ArtifactName", "")
    artifact_type = _required(data, "ArtifactType", "")
    metadata = data.get("Metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise ScanReportError(f"Metadata: expected an object, got {_kind(metadata)}")
    unique: dict[tuple[str, str, str], Finding] = {}
    for finding in _findings(data.get("Results")):
        seen = unique.get(finding.key)
        if seen is None or finding.sort_key() < seen.sort_key():
            unique[finding.key] = finding
    counts = dict.fromkeys(SEVERITIES, 0)
    for finding in unique.values():
        counts[finding.severity] += 1
    ordered = sorted(unique.values(), key=Finding.sort_key)
    return ScanSummary(
        artifact=artifact,
        artifact_type=artifact_type,
        counts=MappingProxyType(counts),
        top=tuple(ordered[: max(top_n, 0)]),
    )


def load_trivy_report(raw: bytes, *, top_n: int = DEFAULT_TOP) -> ScanSummary:
    """Size-check, decode and parse a report body: ReportTooLargeError over 5 MiB, else ScanReportError."""
    if len(raw) > MAX_REPORT_BYTES:
        raise ReportTooLargeError(
            f"(report): {len(raw)} bytes is over the {MAX_REPORT_BYTES // (1024 * 1024)} MiB limit"
        )
    try:
        # JSON on the wire is UTF-8 (RFC 8259); json.loads(bytes) would also guess UTF-16/32.
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ScanReportError("(report): not UTF-8 text") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScanReportError(f"(report): not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    return parse_trivy_report(data, top_n=top_n)
