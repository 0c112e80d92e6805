"""The release checklist: each item evaluated to ✅/❌ with a reason, overrides recorded per item."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.config import ConfigError, Environment, parse_config
from bot.core.checklist import (
    ChecklistResult,
    Evidence,
    ItemResult,
    RollbackPlan,
    SuiteResult,
    apply_override,
    checklist_items,
    evaluate_checklist,
)
from bot.core.scan_summary import ClassSummary, MisconfigFinding, SecretFinding
from bot.core.trivy import Finding, ScanSummary, load_trivy_report
from bot.views.checklist import checklist_lines

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
DIGEST = "sha256:" + "ab" * 32
PROD_ITEMS = ["unit", "integration", "performance", "vulnerability_scan", "release_notes", "rollback_plan"]


def env(**overrides: Any) -> Environment:
    raw: dict[str, Any] = {"deploy": {"provider": "command", "run": ["./deploy.sh"]}, **overrides}
    return Environment.model_validate(raw)


def prod(block_on: list[str] | None = None, require_digest: bool = True) -> Environment:
    return env(
        checklist=PROD_ITEMS,
        vulnerability_scan={"block_on": block_on if block_on is not None else ["CRITICAL"]},
        images={"require_digest": require_digest},
    )


def scan(name: str) -> ScanSummary:
    return load_trivy_report((DATA / name).read_bytes())


def good_evidence(**changes: Any) -> Evidence:
    fields: dict[str, Any] = {
        "tests": {
            s: SuiteResult(s, "passed", f"https://ci.example/{s}") for s in ("unit", "integration", "performance")
        },
        "scan": scan("trivy_clean.json"),
        "components": {"api": f"ghcr.io/org/api:1.4.2@{DIGEST}", "worker": f"ghcr.io/org/worker@{DIGEST}"},
        "notes": "generated",
        "rollback_plan": RollbackPlan("1.4.1", "redeploy 1.4.1 with the command provider"),
        "expected_components": ("api", "worker"),
    }
    fields.update(changes)
    return Evidence(**fields)


def item(result: ChecklistResult, name: str) -> ItemResult:
    (found,) = [i for i in result.items if i.item == name]
    return found


def test_one_critical_in_a_real_trivy_report_blocks_prod_and_names_the_cve() -> None:
    result = evaluate_checklist(prod(), good_evidence(scan=scan("trivy_critical.json")))
    assert not result.passed
    assert [i.item for i in result.failed] == ["vulnerability_scan"]
    expected = (
        "vulnerability scan: 1 CRITICAL — vulnerabilities 1 CRITICAL: CVE-2024-45490 (libexpat1 2.5.0-1 → "
        "2.5.0-1+deb12u1); secrets 0; misconfigurations 0"
    )
    assert item(result, "vulnerability_scan").reason == expected
    assert f"❌ {expected}" in checklist_lines(result)


def test_zero_critical_passes_and_reports_what_does_not_block() -> None:
    result = evaluate_checklist(prod(), good_evidence())
    assert result.passed
    assert item(result, "vulnerability_scan") == ItemResult(
        "vulnerability_scan",
        True,
        "vulnerability scan: 0 CRITICAL in vulnerabilities, secrets, misconfigurations "
        "(not blocking: vulnerabilities 1 HIGH, 1 LOW)",
    )


def test_blocking_on_several_severities_names_the_worst_first() -> None:
    result = evaluate_checklist(prod(block_on=["HIGH", "CRITICAL"]), good_evidence(scan=scan("trivy_critical.json")))
    assert item(result, "vulnerability_scan").reason == (
        "vulnerability scan: 1 CRITICAL, 1 HIGH — vulnerabilities 1 CRITICAL, 1 HIGH: CVE-2024-45490 (libexpat1 "
        "2.5.0-1 → 2.5.0-1+deb12u1), CVE-2024-2961 (libc6 2.36-9+deb12u4 → 2.36-9+deb12u7); secrets 0; "
        "misconfigurations 0"
    )
    clean = evaluate_checklist(prod(block_on=["HIGH", "CRITICAL"]), good_evidence())
    assert item(clean, "vulnerability_scan").ok is False
    assert item(clean, "vulnerability_scan").reason == (
        "vulnerability scan: 1 HIGH — vulnerabilities 1 HIGH: CVE-2024-2961 (libc6 2.36-9+deb12u4 → 2.36-9+deb12u7); "
        "secrets 0; misconfigurations 0"
    )


def summary(
    *findings: Finding, secrets: tuple[SecretFinding, ...] = (), misconfigs: tuple[MisconfigFinding, ...] = ()
) -> ScanSummary:
    return ScanSummary(
        "app:1",
        "container_image",
        ClassSummary.of(list(findings), 10),
        ClassSummary.of(list(secrets), 10),
        ClassSummary.of(list(misconfigs), 10),
    )


def test_only_the_worst_three_are_named_and_the_rest_counted() -> None:
    findings = [Finding(f"CVE-2024-000{n}", "openssl", "3.0.1", "3.0.2", "CRITICAL") for n in range(1, 6)]
    findings.append(Finding("CVE-2023-1", "zlib", "1.2", None, "CRITICAL"))
    result = evaluate_checklist(prod(), good_evidence(scan=summary(*findings)))
    assert item(result, "vulnerability_scan").reason == (
        "vulnerability scan: 6 CRITICAL — vulnerabilities 6 CRITICAL: CVE-2023-1 (zlib 1.2, no fix yet), "
        "CVE-2024-0001 (openssl 3.0.1 → 3.0.2), CVE-2024-0002 (openssl 3.0.1 → 3.0.2), and 3 more; secrets 0; "
        "misconfigurations 0"
    )


def test_package_names_from_a_report_are_escaped_for_mrkdwn() -> None:
    hostile = Finding("CVE-1", "<!channel>&co", "1", "<2>", "CRITICAL")
    reason = item(evaluate_checklist(prod(), good_evidence(scan=summary(hostile))), "vulnerability_scan").reason
    assert reason == (
        "vulnerability scan: 1 CRITICAL — vulnerabilities 1 CRITICAL: CVE-1 (&lt;!channel&gt;&amp;co 1 → &lt;2&gt;); "
        "secrets 0; misconfigurations 0"
    )


def test_no_scan_and_no_blocking_severity() -> None:
    assert item(evaluate_checklist(prod(), good_evidence(scan=None)), "vulnerability_scan") == ItemResult(
        "vulnerability_scan", False, "no vulnerability scan reported"
    )
    nothing_blocks = evaluate_checklist(prod(block_on=[]), good_evidence(scan=scan("trivy_critical.json")))
    assert item(nothing_blocks, "vulnerability_scan") == ItemResult(
        "vulnerability_scan",
        True,
        "vulnerability scan: no blocking severity configured "
        "(not blocking: vulnerabilities 1 CRITICAL, 1 HIGH, 2 MEDIUM, 1 LOW)",
    )


# --- secrets and misconfigurations (Trivy's other finding classes) -------------------------------------------

SECRET_TEXT = ("****", "AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "n0tify-db-pa55", "BEGIN RSA")


def test_a_critical_leaked_key_blocks_and_is_named_by_rule_and_file_never_by_its_text() -> None:
    result = evaluate_checklist(prod(block_on=["CRITICAL", "HIGH"]), good_evidence(scan=scan("trivy_secrets.json")))
    reason = item(result, "vulnerability_scan").reason
    assert [i.item for i in result.failed] == ["vulnerability_scan"]
    assert reason == (
        "vulnerability scan: 2 CRITICAL, 1 HIGH — vulnerabilities 0; secrets 2 CRITICAL, 1 HIGH: "
        "secret aws-access-key-id in /app/config.env, secret aws-secret-access-key in /app/config.env, "
        "secret private-key in /app/tests/fixtures/dev-signing.pem; misconfigurations 0"
    )
    assert not [text for text in SECRET_TEXT if text in "\n".join(checklist_lines(result))]


def test_failed_checks_block_and_checks_that_held_do_not_count() -> None:
    result = evaluate_checklist(prod(block_on=["HIGH"]), good_evidence(scan=scan("trivy_misconfig.json")))
    assert item(result, "vulnerability_scan").reason == (
        "vulnerability scan: 4 HIGH — vulnerabilities 0; secrets 0; misconfigurations 4 HIGH: check DS-0002 in "
        "Dockerfile, check KSV-0014 in app/deploy/deployment.yaml, check KSV-0118 in app/deploy/deployment.yaml, "
        "and 1 more"
    )
    # DS-0001, DS-0005 and KSV-0009 held (PASS): only the LOW DS-0026 failure is left below the bar
    passing = evaluate_checklist(prod(block_on=["CRITICAL"]), good_evidence(scan=scan("trivy_misconfig.json")))
    assert item(passing, "vulnerability_scan") == ItemResult(
        "vulnerability_scan",
        True,
        "vulnerability scan: 0 CRITICAL in vulnerabilities, secrets, misconfigurations "
        "(not blocking: vulnerabilities 1 LOW; misconfigurations 4 HIGH, 1 LOW)",
    )


def test_classes_choose_what_is_judged() -> None:
    only_vulns = env(checklist=["vulnerability_scan"], vulnerability_scan={"classes": ["vulnerabilities"]})
    result = evaluate_checklist(only_vulns, Evidence(scan=scan("trivy_secrets.json")))
    assert result.items == (
        ItemResult(
            "vulnerability_scan",
            True,
            "vulnerability scan: 0 CRITICAL in vulnerabilities (not blocking: vulnerabilities 1 LOW)",
        ),
    )
    only_secrets = env(checklist=["vulnerability_scan"], vulnerability_scan={"classes": ["secrets"]})
    java = evaluate_checklist(only_secrets, Evidence(scan=scan("trivy_java.json")))
    assert java.items[0] == ItemResult("vulnerability_scan", True, "vulnerability scan: 0 CRITICAL in secrets")


def test_the_real_java_report_with_an_empty_target_is_judged() -> None:
    result = evaluate_checklist(prod(), good_evidence(scan=scan("trivy_java.json")))
    assert item(result, "vulnerability_scan").reason == (
        "vulnerability scan: 1 CRITICAL — vulnerabilities 1 CRITICAL: CVE-2022-22965 (org.springframework:spring-beans "
        "5.3.15 → 5.3.18); secrets 0; misconfigurations 0"
    )


def test_file_paths_and_ids_from_a_report_are_escaped() -> None:
    hostile = SecretFinding("<!channel>", "CRITICAL", "/app/<@U123>&.env", 3)
    check = MisconfigFinding("DS-<1>", "CRITICAL", "", None)
    reason = item(
        evaluate_checklist(prod(), good_evidence(scan=summary(secrets=(hostile,), misconfigs=(check,)))),
        "vulnerability_scan",
    ).reason
    assert reason == (
        "vulnerability scan: 2 CRITICAL — vulnerabilities 0; secrets 1 CRITICAL: secret &lt;!channel&gt; in "
        "/app/&lt;@U123&gt;&amp;.env; misconfigurations 1 CRITICAL: check DS-&lt;1&gt;"
    )


def stored_before_secrets_were_counted(critical: int) -> ScanSummary:
    """A summary exactly as an older release-bot stored it: vulnerabilities only."""
    top = [{"id": "CVE-2026-0001", "pkg": "openssl", "installed": "3.0.1", "fixed": "3.0.2", "severity": "CRITICAL"}]
    return ScanSummary.from_dict(
        {
            "artifact": "notify:1.2.3",
            "artifact_type": "container_image",
            "counts": {"CRITICAL": critical, "HIGH": 0, "MEDIUM": 1, "LOW": 0, "UNKNOWN": 0},
            "total": critical + 1,
            "top": top[:critical],
        }
    )


def test_an_old_summary_is_judged_on_its_vulnerabilities_and_says_what_it_did_not_count() -> None:
    clean = evaluate_checklist(prod(), good_evidence(scan=stored_before_secrets_were_counted(0)))
    assert item(clean, "vulnerability_scan") == ItemResult(
        "vulnerability_scan",
        True,
        "vulnerability scan: 0 CRITICAL in vulnerabilities (not blocking: vulnerabilities 1 MEDIUM); "
        "secrets, misconfigurations not counted (scan reported before release-bot counted them)",
    )
    blocked = evaluate_checklist(prod(), good_evidence(scan=stored_before_secrets_were_counted(1)))
    assert item(blocked, "vulnerability_scan").reason == (
        "vulnerability scan: 1 CRITICAL — vulnerabilities 1 CRITICAL: CVE-2026-0001 (openssl 3.0.1 → 3.0.2); "
        "secrets, misconfigurations not counted (scan reported before release-bot counted them)"
    )
    only_secrets = env(checklist=["vulnerability_scan"], vulnerability_scan={"classes": ["secrets"]})
    nothing = evaluate_checklist(only_secrets, Evidence(scan=stored_before_secrets_were_counted(0)))
    assert nothing.items == (
        ItemResult("vulnerability_scan", False, "vulnerability scan: secrets not counted; post the report again"),
    )


def config_with_classes(classes: object) -> dict[str, Any]:
    """The example config with prod's vulnerability_scan.classes set."""
    data: dict[str, Any] = yaml.safe_load((ROOT / "examples" / "releasebot.yml").read_text(encoding="utf-8"))
    data["calendar"]["subdivision"] = "ON"  # plain yaml.safe_load reads ON as True: the bot's loader does not
    data["environments"]["prod"]["vulnerability_scan"]["classes"] = classes
    return data


def test_classes_default_to_all_three_and_repeat_once() -> None:
    assert env().vulnerability_scan.classes == ["vulnerabilities", "secrets", "misconfigurations"]
    config = parse_config(config_with_classes(["secrets", "secrets", "vulnerabilities"]))
    assert config.environments["prod"].vulnerability_scan.classes == ["secrets", "vulnerabilities"]


@pytest.mark.parametrize(
    ("classes", "error"),
    [
        (
            ["secrets", "licenses"],
            "environments.prod.vulnerability_scan.classes[1]: Input should be 'vulnerabilities', 'secrets' or "
            "'misconfigurations'",
        ),
        (
            [],
            "environments.prod.vulnerability_scan.classes: must name at least one of vulnerabilities, secrets, "
            "misconfigurations (to judge no scan, drop vulnerability_scan from the checklist)",
        ),
        ("secrets", "environments.prod.vulnerability_scan.classes: Input should be a valid list"),
    ],
)
def test_a_bad_class_is_a_config_error_naming_its_path(classes: object, error: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(config_with_classes(classes))
    assert caught.value.errors == [error]


@pytest.mark.parametrize(
    ("tests", "ok", "reason"),
    [
        ({}, False, "unit tests: no result reported by CI"),
        ({"unit": SuiteResult("unit", "passed", None)}, True, "unit tests passed"),
        (
            {"unit": SuiteResult("unit", "failed", "https://ci.example/run/7?job=unit&try=2")},
            False,
            "unit tests failed (<https://ci.example/run/7?job=unit&amp;try=2|report>)",
        ),
        ({"unit": SuiteResult("unit", "failed", None)}, False, "unit tests failed"),
        # a URL that would break out of <url|label> is not linked
        ({"unit": SuiteResult("unit", "failed", "https://x.example/a|<!here>")}, False, "unit tests failed"),
        ({"unit": SuiteResult("unit", "failed", "javascript:alert(1)")}, False, "unit tests failed"),
        # another suite's result does not satisfy this one
        ({"integration": SuiteResult("integration", "passed", None)}, False, "unit tests: no result reported by CI"),
    ],
)
def test_test_suite_items(tests: dict[str, SuiteResult], ok: bool, reason: str) -> None:
    result = evaluate_checklist(env(checklist=["unit"]), Evidence(tests=tests))
    assert result.items == (ItemResult("unit", ok, reason),)


def test_which_suite_failed_is_named() -> None:
    tests = {
        "unit": SuiteResult("unit", "passed", None),
        "integration": SuiteResult("integration", "failed", "https://ci.example/i"),
    }
    result = evaluate_checklist(prod(), good_evidence(tests=tests))
    assert [(i.item, i.reason) for i in result.failed] == [
        ("integration", "integration tests failed (<https://ci.example/i|report>)"),
        ("performance", "performance tests: no result reported by CI"),
    ]


def test_images_item_is_added_when_digests_are_required_even_if_not_listed() -> None:
    assert checklist_items(prod()) == (*PROD_ITEMS, "images")
    assert checklist_items(env(checklist=["images", "unit", "images"], images={"require_digest": True})) == (
        "images",
        "unit",
    )
    assert checklist_items(prod(require_digest=False)) == tuple(PROD_ITEMS)
    assert checklist_items(env()) == ()


@pytest.mark.parametrize(
    ("components", "expected", "ok", "reason"),
    [
        ({"api": f"ghcr.io/org/api@{DIGEST}"}, ("api",), True, "images: all pinned by digest (api)"),
        ({"api": "ghcr.io/org/api:1.2"}, ("api",), False, "images: api: ghcr.io/org/api:1.2 is not pinned by digest"),
        ({"api": "nginx"}, (), False, "images: api: nginx is not pinned by digest"),
        (
            {"api": "a@sha256:short"},
            (),
            False,
            "images: api: a@sha256:short is not a valid image reference (digest 'sha256:short' must be sha256: "
            "followed by 64 lowercase hex digits)",
        ),
        (
            {"api": f"ghcr.io/org/api@{DIGEST}"},
            ("api", "worker"),
            False,
            "images: worker: no image reported by CI",
        ),
        ({}, (), False, "images: no component images reported by CI"),
        (
            {f"c{n}": f"app:{n}" for n in range(7)},
            (),
            False,
            "images: c0: app:0 is not pinned by digest; c1: app:1 is not pinned by digest; c2: app:2 is not pinned "
            "by digest; c3: app:3 is not pinned by digest; c4: app:4 is not pinned by digest; and 2 more",
        ),
        ({"<b>": "x<y"}, (), False, "images: &lt;b&gt;: x&lt;y is not a valid image reference"),
    ],
)
def test_images_item(components: dict[str, str], expected: tuple[str, ...], ok: bool, reason: str) -> None:
    result = evaluate_checklist(
        env(images={"require_digest": True}), Evidence(components=components, expected_components=expected)
    )
    (only,) = result.items
    assert only.item == "images"
    assert only.ok is ok
    assert only.reason.startswith(reason)


@pytest.mark.parametrize(
    ("notes", "ok", "reason"),
    [
        ("generated", True, "release notes generated"),
        ("pending", False, "release notes: not generated yet"),
        ("unavailable: GitHub answered 502", False, "release notes unavailable: GitHub answered 502"),
        ("unavailable", False, "release notes unavailable: no reason given"),
        ("unavailable: <@U1> & co", False, "release notes unavailable: &lt;@U1&gt; &amp; co"),
    ],
)
def test_release_notes_item(notes: str, ok: bool, reason: str) -> None:
    result = evaluate_checklist(env(checklist=["release_notes"]), Evidence(notes=notes))
    assert result.items == (ItemResult("release_notes", ok, reason),)


@pytest.mark.parametrize(
    ("plan", "ok", "reason"),
    [
        (None, False, "no rollback plan: no previous healthy release or method known"),
        (
            RollbackPlan("1.4.1", "redeploy 1.4.1 with the command provider"),
            True,
            "rollback plan: back to 1.4.1 (redeploy 1.4.1 with the command provider)",
        ),
        (RollbackPlan("1.4.1", "switch back to blue"), True, "rollback plan: back to 1.4.1 (switch back to blue)"),
        (RollbackPlan(None, ""), True, "rollback plan: first release, nothing to roll back to"),
    ],
)
def test_rollback_plan_item(plan: RollbackPlan | None, ok: bool, reason: str) -> None:
    result = evaluate_checklist(env(checklist=["rollback_plan"]), Evidence(rollback_plan=plan))
    assert result.items == (ItemResult("rollback_plan", ok, reason),)


def test_everything_satisfied_renders_all_green_in_order() -> None:
    result = evaluate_checklist(prod(), good_evidence())
    assert result.passed and result.failed == ()
    assert checklist_lines(result) == [
        "✅ unit tests passed",
        "✅ integration tests passed",
        "✅ performance tests passed",
        "✅ vulnerability scan: 0 CRITICAL in vulnerabilities, secrets, misconfigurations "
        "(not blocking: vulnerabilities 1 HIGH, 1 LOW)",
        "✅ release notes generated",
        "✅ rollback plan: back to 1.4.1 (redeploy 1.4.1 with the command provider)",
        "✅ images: all pinned by digest (api, worker)",
    ]


def test_an_empty_checklist_passes() -> None:
    result = evaluate_checklist(env(), Evidence())
    assert result.items == () and result.passed


def test_override_marks_each_failed_item_and_is_rendered() -> None:
    evidence = good_evidence(scan=scan("trivy_critical.json"), notes="pending")
    blocked = evaluate_checklist(prod(), evidence)
    assert [i.item for i in blocked.failed] == ["vulnerability_scan", "release_notes"]

    forced = apply_override(blocked, "U0ONCALL", "  outage fix, CVE not reachable  ")
    assert forced.passed
    assert forced.failed == ()
    assert [(i.item, i.overridden_by, i.override_reason) for i in forced.overridden] == [
        ("vulnerability_scan", "U0ONCALL", "outage fix, CVE not reachable"),
        ("release_notes", "U0ONCALL", "outage fix, CVE not reachable"),
    ]
    assert all(i.overridden_by is None for i in forced.items if i.ok)  # passed items are not "overridden"
    assert not item(forced, "vulnerability_scan").ok  # the failure itself stays on record
    lines = checklist_lines(forced)
    assert lines[3] == (
        "⚠️ overridden by <@U0ONCALL> (outage fix, CVE not reachable): vulnerability scan: 1 CRITICAL — "
        "vulnerabilities 1 CRITICAL: CVE-2024-45490 (libexpat1 2.5.0-1 → 2.5.0-1+deb12u1); secrets 0; "
        "misconfigurations 0"
    )
    assert lines[4] == "⚠️ overridden by <@U0ONCALL> (outage fix, CVE not reachable): release notes: not generated yet"
    assert lines[0] == "✅ unit tests passed"


def test_override_requires_approver_and_reason_and_escapes_them() -> None:
    blocked = evaluate_checklist(env(checklist=["unit"]), Evidence())
    with pytest.raises(ValueError, match="reason"):
        apply_override(blocked, "U1", "  ")
    with pytest.raises(ValueError, match="approver"):
        apply_override(blocked, "", "why")
    lines = checklist_lines(apply_override(blocked, "console<user>", "a <!channel> b"))
    assert lines == ["⚠️ overridden by console&lt;user&gt; (a &lt;!channel&gt; b): unit tests: no result reported by CI"]


def test_a_second_override_does_not_replace_the_first_approver() -> None:
    blocked = evaluate_checklist(env(checklist=["unit", "rollback_plan"]), Evidence())
    first = apply_override(blocked, "U1", "first")
    assert apply_override(first, "U2", "second") == first


def test_result_round_trips_through_json_storage() -> None:
    forced = apply_override(evaluate_checklist(prod(), good_evidence(notes="pending")), "U1", "why")
    stored = json.loads(json.dumps(forced.to_dict()))
    assert ChecklistResult.from_dict(stored) == forced
    assert stored[4] == {
        "item": "release_notes",
        "ok": False,
        "reason": "release notes: not generated yet",
        "overridden_by": "U1",
        "override_reason": "why",
    }


def test_each_image_needs_its_own_scan() -> None:
    """A candidate ships two images: a scan of one is no evidence about the other."""
    only_api = good_evidence(scan=None, scans={"api": scan("trivy_clean.json")})
    result = item(evaluate_checklist(prod(), only_api), "vulnerability_scan")
    assert not result.ok
    assert result.reason == "no vulnerability scan reported for worker"

    both = good_evidence(scan=None, scans={"api": scan("trivy_clean.json"), "worker": scan("trivy_clean.json")})
    clean = item(evaluate_checklist(prod(), both), "vulnerability_scan")
    single = item(evaluate_checklist(prod(), good_evidence()), "vulnerability_scan")
    assert clean.ok and clean.reason == single.reason, "images judged alike read as one line, as one image does"


def test_a_blocking_image_is_named_and_a_clean_one_is_not() -> None:
    scans = {"api": scan("trivy_clean.json"), "worker": scan("trivy_critical.json")}
    result = item(evaluate_checklist(prod(), good_evidence(scan=None, scans=scans)), "vulnerability_scan")
    assert not result.ok
    assert result.reason.startswith("vulnerability scan: 1 CRITICAL"), result.reason
    assert result.reason.endswith("(in worker)") and "(in api)" not in result.reason


def test_a_scan_stored_for_the_whole_candidate_still_stands_for_each_image() -> None:
    """Scans stored before they were kept per image (component '') cover every image, as they did."""
    legacy = item(evaluate_checklist(prod(), good_evidence(scan=scan("trivy_critical.json"))), "vulnerability_scan")
    assert not legacy.ok and legacy.reason.startswith("vulnerability scan: 1 CRITICAL")
    newer = good_evidence(scan=scan("trivy_critical.json"), scans={"api": scan("trivy_clean.json")})
    result = item(evaluate_checklist(prod(), newer), "vulnerability_scan")
    assert not result.ok and result.reason.startswith("vulnerability scan: 1 CRITICAL"), result.reason
    assert result.reason.endswith("(in worker)"), result.reason
