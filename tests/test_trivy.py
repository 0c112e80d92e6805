"""Trivy JSON reports: schema validation with JSON paths, per-class dedupe and counts, worst findings, size guard."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.core.trivy import (
    MAX_REPORT_BYTES,
    ReportTooLargeError,
    ScanReportError,
    ScanSummary,
    SecretFinding,
    load_trivy_report,
    parse_trivy_report,
)

DATA = Path(__file__).parent / "data"


def report(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / name).read_text(encoding="utf-8"))
    return data


def vuln(vid: str, severity: str, pkg: str = "openssl", installed: str = "3.0.1") -> dict[str, Any]:
    return {"VulnerabilityID": vid, "PkgName": pkg, "InstalledVersion": installed, "Severity": severity}


def minimal(*results: dict[str, Any]) -> dict[str, Any]:
    return {
        "SchemaVersion": 2,
        "ArtifactName": "app:1",
        "ArtifactType": "container_image",
        "Metadata": {},
        "Results": list(results),
    }


def test_real_format_report_with_one_critical() -> None:
    summary = load_trivy_report((DATA / "trivy_critical.json").read_bytes())
    assert summary.artifact == "ghcr.io/cds-snc/notify-api:1.4.2"
    assert summary.artifact_type == "container_image"
    # requests CVE-2024-35195 appears under two targets and counts once
    assert dict(summary.counts) == {"CRITICAL": 1, "HIGH": 1, "MEDIUM": 2, "LOW": 1, "UNKNOWN": 0}
    assert summary.total == 5
    assert [(f.severity, f.vulnerability_id) for f in summary.top] == [
        ("CRITICAL", "CVE-2024-45490"),
        ("HIGH", "CVE-2024-2961"),
        ("MEDIUM", "CVE-2024-35195"),
        ("MEDIUM", "CVE-2024-6119"),
        ("LOW", "CVE-2011-3374"),
    ]
    worst = summary.top[0]
    assert (worst.pkg_name, worst.installed_version, worst.fixed_version) == ("libexpat1", "2.5.0-1", "2.5.0-1+deb12u1")
    assert worst.url == "https://avd.aquasec.com/nvd/cve-2024-45490"
    assert worst.title is not None and "libexpat" in worst.title
    unfixed = summary.top[-1]
    assert unfixed.fixed_version is None


def test_real_java_image_report_with_an_empty_target_is_read() -> None:
    """trivy_java.json is Trivy's own golden output for `trivy image` of a Tomcat/Java image.

    From aquasecurity/trivy, integration/testdata/spring4shell-jre11.json.golden (Apache-2.0), unchanged:
    its third result is the "custom" class (CustomResources from the spring4shell module) with Target "".
    """
    data = report("trivy_java.json")
    assert (data["Results"][2]["Target"], data["Results"][2]["Class"]) == ("", "custom")
    summary = parse_trivy_report(data)
    assert dict(summary.counts) == {"CRITICAL": 1, "HIGH": 0, "MEDIUM": 0, "LOW": 0, "UNKNOWN": 0}
    [spring] = summary.top
    assert (spring.vulnerability_id, spring.pkg_name, spring.fixed_version) == (
        "CVE-2022-22965",
        "org.springframework:spring-beans",
        "5.3.18",
    )
    assert summary.secrets is not None and summary.secrets.total == 0
    assert summary.misconfigurations is not None and summary.misconfigurations.total == 0


def test_secrets_count_by_rule_and_file_and_their_text_is_never_kept() -> None:
    summary = load_trivy_report((DATA / "trivy_secrets.json").read_bytes())
    assert summary.secrets is not None
    assert dict(summary.secrets.counts) == {"CRITICAL": 2, "HIGH": 1, "MEDIUM": 0, "LOW": 0, "UNKNOWN": 0}
    assert summary.secrets.top == (
        SecretFinding("aws-access-key-id", "CRITICAL", "/app/config.env", 3, "AWS"),
        SecretFinding("aws-secret-access-key", "CRITICAL", "/app/config.env", 4, "AWS"),
        SecretFinding("private-key", "HIGH", "/app/tests/fixtures/dev-signing.pem", 2, "AsymmetricPrivateKey"),
    )
    assert dict(summary.counts) == {"CRITICAL": 0, "HIGH": 0, "MEDIUM": 0, "LOW": 1, "UNKNOWN": 0}
    stored = json.dumps(summary.to_dict())
    # Match and Code: the masked key, and an unmasked password on a context line Trivy did not match
    for text in ("****", "AWS_ACCESS_KEY_ID=", "n0tify-db-pa55", "BEGIN RSA", "Offset"):
        assert text in (DATA / "trivy_secrets.json").read_text(encoding="utf-8")
        assert text not in stored


def test_only_failed_misconfiguration_checks_count() -> None:
    summary = parse_trivy_report(report("trivy_misconfig.json"))
    assert summary.misconfigurations is not None
    # 5 FAIL entries: DS-0002, DS-0026, KSV-0014, and KSV-0118 on two resources (lines 17 and 19);
    # DS-0001, DS-0005 and KSV-0009 are PASS (the report was made with --include-non-failures)
    assert dict(summary.misconfigurations.counts) == {"CRITICAL": 0, "HIGH": 4, "MEDIUM": 0, "LOW": 1, "UNKNOWN": 0}
    assert [(f.check_id, f.file, f.line) for f in summary.misconfigurations.top] == [
        ("DS-0002", "Dockerfile", None),
        ("KSV-0014", "app/deploy/deployment.yaml", 19),
        ("KSV-0118", "app/deploy/deployment.yaml", 17),
        ("KSV-0118", "app/deploy/deployment.yaml", 19),
        ("DS-0026", "Dockerfile", None),
    ]
    worst = summary.misconfigurations.top[0]
    assert (worst.file_type, worst.title) == ("dockerfile", "Image user should not be 'root'")
    assert worst.url == "https://avd.aquasec.com/misconfig/ds-0002"


def check(status: str | None, check_id: str = "DS-0002", **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"ID": check_id, "Severity": "HIGH", **extra}
    if status is not None:
        entry["Status"] = status
    return entry


def test_a_check_counts_only_when_it_failed_and_is_named_even_without_an_id() -> None:
    statuses = [check("PASS"), check("EXCEPTION"), check(None), check("SKIPPED-IN-A-LATER-TRIVY"), check("FAIL")]
    unnamed = [
        {"AVDID": "AVD-DS-0026", "Severity": "LOW", "Status": "FAIL"},  # Trivy before ID replaced AVDID
        {"Namespace": "user.custom.no_root", "Severity": "CRITICAL", "Status": "FAIL"},
        {"Severity": "MEDIUM", "Status": "FAIL", "CauseMetadata": {"StartLine": 0}},
    ]
    summary = parse_trivy_report(
        minimal(
            {"Target": "Dockerfile", "Class": "config", "Type": "dockerfile", "Misconfigurations": statuses},
            {"Target": "policy.rego", "Class": "config", "Misconfigurations": unnamed},
        )
    )
    assert summary.misconfigurations is not None
    assert [(f.check_id, f.severity, f.line) for f in summary.misconfigurations.top] == [
        ("user.custom.no_root", "CRITICAL", None),
        ("DS-0002", "HIGH", None),
        ("(unnamed check)", "MEDIUM", None),
        ("AVD-DS-0026", "LOW", None),
    ]


def test_a_custom_secret_rule_without_an_id_is_named_by_its_title() -> None:
    secrets = [
        {"RuleID": "", "Category": "Custom", "Severity": "HIGH", "Title": "Notify API key", "StartLine": 2},
        {"RuleID": "", "Severity": "UNKNOWN"},  # Trivy writes UNKNOWN for a custom rule's unknown severity
    ]
    summary = parse_trivy_report(minimal({"Target": "/app/settings.py", "Class": "secret", "Secrets": secrets}))
    assert summary.secrets is not None
    assert [(f.rule_id, f.severity) for f in summary.secrets.top] == [
        ("Notify API key", "HIGH"),
        ("(unnamed rule)", "UNKNOWN"),
    ]


def test_the_same_secret_in_two_layers_counts_once_at_its_worst() -> None:
    def secret(severity: str, line: int = 3) -> dict[str, Any]:
        return {"RuleID": "github-pat", "Category": "GitHub", "Severity": severity, "StartLine": line}

    summary = parse_trivy_report(
        minimal(
            {"Target": "/app/.env", "Class": "secret", "Secrets": [secret("HIGH"), secret("MEDIUM", line=9)]},
            {"Target": "/app/.env", "Class": "secret", "Secrets": [secret("CRITICAL")]},
            {"Target": "/app/worker/.env", "Class": "secret", "Secrets": [secret("LOW")]},
        )
    )
    assert summary.secrets is not None
    assert [(f.file, f.line, f.severity) for f in summary.secrets.top] == [
        ("/app/.env", 3, "CRITICAL"),
        ("/app/.env", 9, "MEDIUM"),
        ("/app/worker/.env", 3, "LOW"),
    ]


@pytest.mark.parametrize(
    ("result", "message"),
    [
        ({"Target": "/a", "Secrets": {"RuleID": "x"}}, "Results[0].Secrets: expected an array or null, got object"),
        ({"Target": "/a", "Secrets": ["aws"]}, "Results[0].Secrets[0]: expected an object, got string"),
        (
            {"Target": "/a", "Secrets": [{"RuleID": "aws-access-key-id", "Severity": "critical"}]},
            "Results[0].Secrets[0].Severity: expected one of CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN, got 'critical'",
        ),
        ({"Target": "/a", "Secrets": [{"RuleID": 7, "Severity": "LOW"}]}, "Results[0].Secrets[0].RuleID: expected a"),
        ({"Target": "/a", "Secrets": [{"Severity": "LOW"}]}, "Results[0].Secrets[0].RuleID: required"),
        (
            {"Target": "/a", "Secrets": [{"RuleID": "x", "Severity": "LOW", "StartLine": "3"}]},
            "Results[0].Secrets[0].StartLine: expected an integer, got string",
        ),
        ({"Target": "D", "Misconfigurations": "FAIL"}, "Results[0].Misconfigurations: expected an array or null"),
        ({"Target": "D", "Misconfigurations": [check(None, Status=1)]}, "Misconfigurations[0].Status: expected a"),
        (
            {"Target": "D", "Misconfigurations": [check("FAIL", Severity="SEVERE")]},
            "Results[0].Misconfigurations[0].Severity: expected one of",
        ),
        (
            {"Target": "D", "Misconfigurations": [check("FAIL", CauseMetadata={"StartLine": True})]},
            "Results[0].Misconfigurations[0].CauseMetadata.StartLine: expected an integer, got boolean",
        ),
        (
            {"Target": "D", "Misconfigurations": [check("FAIL", CauseMetadata=[])]},
            "Results[0].Misconfigurations[0].CauseMetadata: expected an object, got array",
        ),
    ],
)
def test_wrong_secret_or_misconfiguration_shape_names_the_json_path(result: dict[str, Any], message: str) -> None:
    with pytest.raises(ScanReportError) as info:
        parse_trivy_report(minimal(result))
    assert message in str(info.value)


def test_real_format_clean_report() -> None:
    summary = parse_trivy_report(report("trivy_clean.json"))
    assert dict(summary.counts) == {"CRITICAL": 0, "HIGH": 1, "MEDIUM": 0, "LOW": 1, "UNKNOWN": 0}
    assert summary.count("CRITICAL") == 0


def test_top_is_the_worst_n_sorted_by_severity_then_id() -> None:
    vulns = [vuln(f"CVE-2024-{n:04d}", sev) for n, sev in [(9, "LOW"), (3, "HIGH"), (7, "CRITICAL"), (1, "HIGH")]]
    vulns += [vuln("GHSA-xxxx", "UNKNOWN"), vuln("CVE-2024-0002", "MEDIUM")]
    summary = parse_trivy_report(minimal({"Target": "t", "Vulnerabilities": vulns}), top_n=3)
    assert [f.vulnerability_id for f in summary.top] == ["CVE-2024-0007", "CVE-2024-0001", "CVE-2024-0003"]
    assert summary.total == 6
    assert parse_trivy_report(minimal({"Target": "t", "Vulnerabilities": vulns}), top_n=0).top == ()


def test_dedupe_is_per_id_package_and_version_and_keeps_the_worst_severity() -> None:
    summary = parse_trivy_report(
        minimal(
            {"Target": "a", "Vulnerabilities": [vuln("CVE-1", "MEDIUM"), vuln("CVE-1", "MEDIUM", installed="3.0.2")]},
            {"Target": "b", "Vulnerabilities": [vuln("CVE-1", "HIGH"), vuln("CVE-1", "MEDIUM", pkg="libssl3")]},
        )
    )
    assert dict(summary.counts) == {"CRITICAL": 0, "HIGH": 1, "MEDIUM": 2, "LOW": 0, "UNKNOWN": 0}
    assert [(f.pkg_name, f.installed_version, f.severity) for f in summary.top] == [
        ("openssl", "3.0.1", "HIGH"),
        ("libssl3", "3.0.1", "MEDIUM"),
        ("openssl", "3.0.2", "MEDIUM"),
    ]


def test_fields_trivy_omits_when_empty_are_optional_and_unknown_keys_are_ignored() -> None:
    bare = {"VulnerabilityID": "CVE-9", "PkgName": "lib", "Severity": "LOW", "NewTrivyField": {"x": 1}}
    data = minimal(
        {"Target": "secrets", "Class": "secret", "Secrets": []},  # no Type, no Vulnerabilities
        {"Target": "os", "Class": "os-pkgs", "Type": "debian", "Vulnerabilities": None},
        {"Target": "jar", "Vulnerabilities": [bare]},
    )
    data["ReportID"] = "0198a3f2"
    summary = parse_trivy_report(data)
    assert summary.total == 1
    assert summary.top[0].installed_version == ""
    assert summary.top[0].fixed_version is None
    no_results = minimal()
    del no_results["Results"]  # Trivy omits Results when nothing was detected
    assert parse_trivy_report(no_results).total == 0


def _set(path: list[str | int], value: object) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        target: Any = doc
        for key in path[:-1]:
            target = target[key]
        if value is _DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = value

    return mutate


_DELETE = object()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            _set(["Results", 0, "Vulnerabilities", 3, "Severity"], "SEVERE"),
            "Results[0].Vulnerabilities[3].Severity: expected one of CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN, "
            "got 'SEVERE'",
        ),
        (_set(["Results", 0, "Vulnerabilities", 0, "Severity"], "critical"), "Results[0].Vulnerabilities[0].Severity"),
        (_set(["Results", 0, "Vulnerabilities", 1, "Severity"], _DELETE), "got None"),
        (_set(["SchemaVersion"], 1), "SchemaVersion: expected 2, got 1"),
        (_set(["SchemaVersion"], True), "SchemaVersion: expected 2, got True"),
        (_set(["SchemaVersion"], "2"), "SchemaVersion: expected 2, got '2'"),
        (_set(["SchemaVersion"], _DELETE), "SchemaVersion: required"),
        (_set(["ArtifactName"], _DELETE), "ArtifactName: required"),
        (_set(["ArtifactType"], 3), "ArtifactType: expected a string, got number"),
        (_set(["Metadata"], []), "Metadata: expected an object, got array"),
        (_set(["Results"], {"Target": "x"}), "Results: expected an array, got object"),
        (_set(["Results", 1], "Python"), "Results[1]: expected an object, got string"),
        (_set(["Results", 2, "Target"], _DELETE), "Results[2].Target: required"),
        (_set(["Results", 2, "Target"], None), "Results[2].Target: required"),
        (_set(["Results", 2, "Target"], 7), "Results[2].Target: expected a string, got number"),
        (_set(["Results", 0, "Class"], ["os-pkgs"]), "Results[0].Class: expected a string, got array"),
        (
            _set(["Results", 1, "Vulnerabilities"], {"CVE": 1}),
            "Results[1].Vulnerabilities: expected an array or null, got object",
        ),
        (
            _set(["Results", 0, "Vulnerabilities", 2], None),
            "Results[0].Vulnerabilities[2]: expected an object, got null",
        ),
        (
            _set(["Results", 0, "Vulnerabilities", 0, "VulnerabilityID"], 45490),
            "Results[0].Vulnerabilities[0].VulnerabilityID: expected a string, got number",
        ),
        (
            _set(["Results", 0, "Vulnerabilities", 0, "PkgName"], ""),
            "Results[0].Vulnerabilities[0].PkgName: must not be empty",
        ),
        (
            _set(["Results", 0, "Vulnerabilities", 0, "FixedVersion"], 2.5),
            "Results[0].Vulnerabilities[0].FixedVersion: expected a string, got number",
        ),
        (
            _set(["Results", 0, "Vulnerabilities", 0, "InstalledVersion"], False),
            "Results[0].Vulnerabilities[0].InstalledVersion: expected a string, got boolean",
        ),
    ],
)
def test_wrong_shape_names_the_json_path(mutate: Callable[[dict[str, Any]], None], message: str) -> None:
    doc = copy.deepcopy(report("trivy_critical.json"))
    mutate(doc)
    with pytest.raises(ScanReportError) as info:
        parse_trivy_report(doc)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "(report): expected a JSON object, got array"),
        ("report", "(report): expected a JSON object, got string"),
        (None, "(report): expected a JSON object, got null"),
        ({"bomFormat": "CycloneDX", "specVersion": "1.5"}, "SchemaVersion: required (is this a `trivy image -f json`"),
    ],
)
def test_not_a_trivy_report(data: object, message: str) -> None:
    with pytest.raises(ScanReportError) as info:
        parse_trivy_report(data)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"<html>502 Bad Gateway</html>", "(report): not JSON: Expecting value at line 1 column 1"),
        (b'{"SchemaVersion": 2,', "(report): not JSON"),
        (b"\xff\xfe{}", "(report): not UTF-8 text"),
        (b"", "(report): not JSON"),
    ],
)
def test_load_rejects_bodies_that_are_not_json(raw: bytes, message: str) -> None:
    with pytest.raises(ScanReportError) as info:
        load_trivy_report(raw)
    assert message in str(info.value)
    assert not isinstance(info.value, ReportTooLargeError)


def test_size_guard_at_exactly_five_mebibytes() -> None:
    body = (DATA / "trivy_clean.json").read_bytes().rstrip()
    at_limit = body + b" " * (MAX_REPORT_BYTES - len(body))  # trailing whitespace is valid JSON
    assert len(at_limit) == 5 * 1024 * 1024
    assert load_trivy_report(at_limit).count("HIGH") == 1
    with pytest.raises(ReportTooLargeError) as info:
        load_trivy_report(at_limit + b" ")
    assert str(info.value) == "(report): 5242881 bytes is over the 5 MiB limit"


def test_summary_round_trips_through_json_storage() -> None:
    summary = parse_trivy_report(report("trivy_critical.json"))
    stored = json.loads(json.dumps(summary.to_dict()))
    assert stored["counts"] == {"CRITICAL": 1, "HIGH": 1, "MEDIUM": 2, "LOW": 1, "UNKNOWN": 0}
    assert stored["total"] == 5
    assert ScanSummary.from_dict(stored) == summary


@pytest.mark.parametrize("name", ["trivy_secrets.json", "trivy_misconfig.json", "trivy_java.json"])
def test_every_class_round_trips_through_json_storage(name: str) -> None:
    summary = parse_trivy_report(report(name))
    assert ScanSummary.from_dict(json.loads(json.dumps(summary.to_dict()))) == summary


def test_a_summary_stored_before_secrets_were_counted_still_reads() -> None:
    new = parse_trivy_report(report("trivy_critical.json")).to_dict()
    old = {key: new[key] for key in ("artifact", "artifact_type", "counts", "total", "top")}  # the old shape
    summary = ScanSummary.from_dict(old)
    assert (summary.secrets, summary.misconfigurations) == (None, None)
    assert summary.count("CRITICAL") == 1 and summary.top[0].vulnerability_id == "CVE-2024-45490"
    assert summary.to_dict() == old


def test_from_dict_rejects_a_bad_stored_shape() -> None:
    stored = parse_trivy_report(report("trivy_critical.json")).to_dict()
    stored["top"][0]["severity"] = "BAD"
    with pytest.raises(ScanReportError, match="expected one of"):
        ScanSummary.from_dict(stored)
    with pytest.raises(ScanReportError, match="bad shape"):
        ScanSummary.from_dict({"artifact": "x"})
    secrets = parse_trivy_report(report("trivy_secrets.json")).to_dict()
    secrets["secrets"]["top"][0]["severity"] = "SEVERE"
    with pytest.raises(ScanReportError, match=r"secrets\.top\[\]\.severity: expected one of"):
        ScanSummary.from_dict(secrets)
    secrets["secrets"] = {"counts": {}}
    with pytest.raises(ScanReportError, match="bad shape"):
        ScanSummary.from_dict(secrets)
