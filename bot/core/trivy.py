"""Trivy JSON reports (``trivy image -f json``) validated and summarised per class as severity counts.

Pure: no I/O. The schema followed is Trivy's own (``pkg/types/report.go``, ``result.go``,
``pkg/fanal/types/secret.go``, ``misconf.go``; SchemaVersion 2)::

    {SchemaVersion: 2, CreatedAt?, ArtifactName, ArtifactType, Metadata{…},
     Results?: [{Target, Class?, Type?,
                 Vulnerabilities?: [{VulnerabilityID, PkgName, InstalledVersion?, FixedVersion?, Severity, …}],
                 Secrets?: [{RuleID, Category?, Severity, Title?, StartLine?, EndLine?, Code, Match, …}],
                 Misconfigurations?: [{ID?, AVDID?, Title?, Severity?, Status?, CauseMetadata?{StartLine?}, …}],
                 CustomResources?, Licenses?, Packages?, …}]}

``Target`` is a plain string and may be empty: the "custom" result class (CustomResources from
modules, e.g. Java images) has none. Trivy omits empty fields (``omitempty``): ``Results`` is absent
when nothing was detected, each findings list when a target has none of that kind. Three classes
are counted: vulnerabilities, secrets (the file is the result's ``Target``) and misconfigurations
whose ``Status`` is ``FAIL`` (``PASS`` and ``EXCEPTION`` are checks that held). Licences and custom
resources are not judged. Unknown keys are ignored, because Trivy adds fields between releases;
known keys that are read must have the right type. Every error names the JSON path of the problem.
A secret's ``Match`` and ``Code`` are never read: they carry the secret's text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.core.scan_summary import (
    CLASSES,
    SEVERITIES,
    ClassSummary,
    Finding,
    MisconfigFinding,
    ScanReportError,
    ScanSummary,
    SecretFinding,
    severity_rank,
)

__all__ = [
    "CLASSES",
    "MAX_REPORT_BYTES",
    "SEVERITIES",
    "Finding",
    "MisconfigFinding",
    "ReportTooLargeError",
    "ScanReportError",
    "ScanSummary",
    "SecretFinding",
    "load_trivy_report",
    "parse_trivy_report",
]

MAX_REPORT_BYTES = 5 * 1024 * 1024
DEFAULT_TOP = 10
_FAIL = "FAIL"  # types.MisconfStatusFailure; PASS and EXCEPTION are checks that held


class ReportTooLargeError(ScanReportError):
    """A report over MAX_REPORT_BYTES (an HTTP layer answers 413 for this one)."""


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
    value = _string(obj, key, path)
    if value is None:
        raise ScanReportError(f"{_where(path, key)}: required")
    if not value:
        raise ScanReportError(f"{_where(path, key)}: must not be empty")
    return value


def _line(obj: Mapping[str, object], key: str, path: str) -> int | None:
    """An optional line number; Trivy omits it (or writes 0) when it has none."""
    value = obj.get(key)
    if value is None:
        return None
    if type(value) is not int:
        raise ScanReportError(f"{_where(path, key)}: expected an integer, got {_kind(value)}")
    return value if value > 0 else None


def _object(value: object, path: str) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise ScanReportError(f"{path}: expected an object, got {_kind(value)}")
    return value


def _array(result: Mapping[str, object], key: str, path: str) -> list[object]:
    """A findings list: absent and null are empty (Trivy's omitempty)."""
    value = result.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ScanReportError(f"{path}.{key}: expected an array or null, got {_kind(value)}")
    return value


def _vulnerability(raw: object, path: str) -> Finding:
    obj = _object(raw, path)
    return Finding(
        vulnerability_id=_required(obj, "VulnerabilityID", path),
        pkg_name=_required(obj, "PkgName", path),
        installed_version=_string(obj, "InstalledVersion", path) or "",
        fixed_version=_string(obj, "FixedVersion", path) or None,
        severity=severity_rank(obj.get("Severity"), f"{path}.Severity"),
        title=_string(obj, "Title", path) or None,
        url=_string(obj, "PrimaryURL", path) or None,
    )


def _secret(raw: object, path: str, target: str) -> SecretFinding:
    obj = _object(raw, path)
    rule_id = _string(obj, "RuleID", path)
    if rule_id is None:  # written even when empty (no omitempty)
        raise ScanReportError(f"{path}.RuleID: required")
    # A custom rule without an `id` is still a leaked secret: its title names it.
    rule_id = rule_id or _string(obj, "Title", path) or "(unnamed rule)"
    # Match and Code are deliberately not read: they hold the secret's text, masked or not.
    return SecretFinding(
        rule_id=rule_id,
        severity=severity_rank(obj.get("Severity"), f"{path}.Severity"),
        file=target,
        line=_line(obj, "StartLine", path),
        category=_string(obj, "Category", path) or None,
    )


def _misconfiguration(raw: object, path: str, target: str, file_type: str | None) -> MisconfigFinding | None:
    """A FAIL check as a finding; None for one that held (PASS, EXCEPTION) or a status Trivy may add."""
    obj = _object(raw, path)
    if _string(obj, "Status", path) != _FAIL:
        return None
    # ID is the check's ID; AVDID the deprecated name older releases wrote. A custom Rego check may have
    # neither: its namespace names it, and a failed check is never dropped for want of a name.
    names = (_string(obj, key, path) for key in ("ID", "AVDID", "Namespace"))
    check_id = next((name for name in names if name), "(unnamed check)")
    cause = obj.get("CauseMetadata")
    where = f"{path}.CauseMetadata"
    line = None if cause is None else _line(_object(cause, where), "StartLine", where)
    return MisconfigFinding(
        check_id=check_id,
        severity=severity_rank(obj.get("Severity"), f"{path}.Severity"),
        file=target,
        file_type=file_type,
        line=line,
        title=_string(obj, "Title", path) or None,
        url=_string(obj, "PrimaryURL", path) or None,
    )


@dataclass
class _Found:
    vulnerabilities: list[Finding] = field(default_factory=list)
    secrets: list[SecretFinding] = field(default_factory=list)
    misconfigurations: list[MisconfigFinding] = field(default_factory=list)


def _result(result: Mapping[str, object], path: str, found: _Found) -> None:
    target = _string(result, "Target", path)
    if target is None:  # `json:"Target"` has no omitempty: Trivy always writes it, "" included
        raise ScanReportError(f"{path}.Target: required")
    _string(result, "Class", path)
    file_type = _string(result, "Type", path) or None
    for j, raw in enumerate(_array(result, "Vulnerabilities", path)):
        found.vulnerabilities.append(_vulnerability(raw, f"{path}.Vulnerabilities[{j}]"))
    for j, raw in enumerate(_array(result, "Secrets", path)):
        found.secrets.append(_secret(raw, f"{path}.Secrets[{j}]", target))
    for j, raw in enumerate(_array(result, "Misconfigurations", path)):
        failed = _misconfiguration(raw, f"{path}.Misconfigurations[{j}]", target, file_type)
        if failed is not None:
            found.misconfigurations.append(failed)


def _findings(results: object) -> _Found:
    found = _Found()
    if results is None:
        return found  # Trivy omits Results when nothing was detected
    if not isinstance(results, list):
        raise ScanReportError(f"Results: expected an array, got {_kind(results)}")
    for i, result in enumerate(results):
        _result(_object(result, f"Results[{i}]"), f"Results[{i}]", found)
    return found


def parse_trivy_report(data: object, *, top_n: int = DEFAULT_TOP) -> ScanSummary:
    """Validate a decoded Trivy JSON report and summarise each class; ScanReportError names the bad path.

    A finding reported under several targets counts once, at its worst reported severity:
    a vulnerability by (ID, package, installed version), a secret by (rule, file, line), a failed
    check by (check ID, file, line).
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
    found = _findings(data.get("Results"))
    return ScanSummary(
        artifact=artifact,
        artifact_type=artifact_type,
        vulnerabilities=ClassSummary.of(found.vulnerabilities, top_n),
        secrets=ClassSummary.of(found.secrets, top_n),
        misconfigurations=ClassSummary.of(found.misconfigurations, top_n),
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
