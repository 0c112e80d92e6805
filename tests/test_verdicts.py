"""Verdict rules: thresholds, the grey zone, empty and NaN results, ±Inf, worst-of, and query rendering."""

from __future__ import annotations

import math
from typing import Any

import pytest

from bot.config import Check
from bot.core.verdicts import (
    Verdict,
    attempt_error,
    failed,
    format_value,
    judge,
    render_query,
    unavailable,
    worst,
)

INF = math.inf
NAN = math.nan


def prom(**fields: Any) -> Check:
    return Check.model_validate({"name": "error rate", "prometheus": "sum(x)", **fields})


BOTH = prom(pass_if="< 0.01", fail_if=">= 0.05")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.0, Verdict.PASS),
        (0.0031, Verdict.PASS),
        (0.00999, Verdict.PASS),
        (0.01, Verdict.INCONCLUSIVE),  # pass_if is strict: the boundary is in the grey zone
        (0.03, Verdict.INCONCLUSIVE),
        (0.04999, Verdict.INCONCLUSIVE),
        (0.05, Verdict.FAIL),  # fail_if is inclusive
        (0.9, Verdict.FAIL),
        (INF, Verdict.FAIL),
        (-INF, Verdict.PASS),
        (-1.0, Verdict.PASS),
    ],
)
def test_pass_and_fail_thresholds(value: float, expected: Verdict) -> None:
    assert judge(BOTH, value).verdict is expected


def test_fail_if_is_checked_before_pass_if() -> None:
    overlapping = prom(pass_if="< 10", fail_if="> 5")
    assert judge(overlapping, 7).verdict is Verdict.FAIL
    assert judge(overlapping, 3).verdict is Verdict.PASS


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.5, Verdict.PASS), (0.99, Verdict.PASS), (1.0, Verdict.FAIL), (INF, Verdict.FAIL)],
)
def test_only_pass_if_not_passing_is_fail(value: float, expected: Verdict) -> None:
    assert judge(prom(pass_if="< 1"), value).verdict is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(250, Verdict.PASS), (499.9, Verdict.PASS), (500, Verdict.FAIL), (-INF, Verdict.PASS)],
)
def test_only_fail_if_not_failing_is_pass(value: float, expected: Verdict) -> None:
    assert judge(prom(fail_if=">= 500"), value).verdict is expected


@pytest.mark.parametrize(
    ("on_empty", "expected"),
    [("inconclusive", Verdict.INCONCLUSIVE), ("pass", Verdict.PASS), ("fail", Verdict.FAIL)],
)
def test_empty_result_follows_on_empty(on_empty: str, expected: Verdict) -> None:
    result = judge(prom(pass_if="< 0.01", fail_if=">= 0.05", on_empty=on_empty), None)
    assert result.verdict is expected
    assert result.value is None
    assert result.summary == "error rate: no data (pass if < 0.01, fail if >= 0.05)"
    assert result.detail == f"empty result; on_empty: {on_empty}"


@pytest.mark.parametrize(
    ("on_nan", "expected"),
    [("inconclusive", Verdict.INCONCLUSIVE), ("pass", Verdict.PASS), ("fail", Verdict.FAIL)],
)
def test_nan_follows_on_nan_not_the_thresholds(on_nan: str, expected: Verdict) -> None:
    # NaN satisfies no comparison, so "only pass_if" would otherwise turn it into FAIL.
    result = judge(prom(pass_if="< 0.01", on_nan=on_nan), NAN)
    assert result.verdict is expected
    assert result.summary == "error rate = NaN (pass if < 0.01)"


def test_defaults_make_empty_and_nan_inconclusive() -> None:
    check = prom(pass_if="< 0.01")
    assert judge(check, None).verdict is Verdict.INCONCLUSIVE
    assert judge(check, NAN).verdict is Verdict.INCONCLUSIVE


def test_summary_shows_value_against_condition_and_the_query() -> None:
    result = judge(BOTH, 0.0031, query='sum(rate(x{service="notify"}[5m]))')
    assert result.summary == "error rate = 0.0031 (pass if < 0.01, fail if >= 0.05)"
    assert result.query == 'sum(rate(x{service="notify"}[5m]))'
    text = result.text()
    assert text.startswith("PASS: error rate = 0.0031 (pass if < 0.01, fail if >= 0.05)")
    assert text.endswith('[query: sum(rate(x{service="notify"}[5m]))]')


def test_grey_zone_explains_itself() -> None:
    result = judge(BOTH, 0.02)
    assert result.detail == "between the pass and fail thresholds"
    assert "INCONCLUSIVE: error rate = 0.02" in result.text()


def test_query_defaults_to_the_template() -> None:
    assert judge(BOTH, 0.0).query == "sum(x)"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "no data"),
        (NAN, "NaN"),
        (INF, "+Inf"),
        (-INF, "-Inf"),
        (0.00312345678, "0.00312346"),
        (200.0, "200"),
    ],
)
def test_format_value(value: float | None, text: str) -> None:
    assert format_value(value) == text


def http(**fields: Any) -> Check:
    return Check.model_validate({"name": "health", "http": "https://notify.example/health", **fields})


@pytest.mark.parametrize(
    ("fields", "status", "expected"),
    [
        ({}, 200, Verdict.PASS),
        ({}, 503, Verdict.FAIL),
        ({"expect_status": 204}, 204, Verdict.PASS),
        ({"expect_status": 204}, 200, Verdict.FAIL),
        ({"pass_if": "< 400"}, 302, Verdict.PASS),
        ({"pass_if": "< 400"}, 404, Verdict.FAIL),
    ],
)
def test_http_status_checks(fields: dict[str, Any], status: int, expected: Verdict) -> None:
    result = judge(http(**fields), float(status))
    assert result.verdict is expected
    assert str(status) in result.summary


def test_http_status_summary_names_the_expected_status() -> None:
    assert judge(http(), 503).summary == "health = 503 (pass if == 200)"


def test_http_json_field_without_conditions_reports_the_value() -> None:
    result = judge(http(json_field="checks.db.latency_ms"), 12.5)
    assert result.verdict is Verdict.PASS
    assert result.summary == "health = 12.5 (no condition)"


def test_unavailable_is_inconclusive_never_fail() -> None:
    result = unavailable(BOTH, "cannot connect to Prometheus", attempts=4)
    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.summary == "metrics unavailable: cannot connect to Prometheus"
    assert result.attempts == 4
    assert result.query == "sum(x)"


def test_attempt_error_and_failed() -> None:
    error = attempt_error(BOTH, "timed out", query="q", attempt=2, of=4)
    assert error.verdict is Verdict.ERROR
    assert error.summary == "error rate: attempt 2/4 failed: timed out"
    assert failed(http(), "HTTP 503").verdict is Verdict.FAIL


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        ([], None),
        ([Verdict.PASS], Verdict.PASS),
        ([Verdict.PASS, Verdict.INCONCLUSIVE], Verdict.INCONCLUSIVE),
        ([Verdict.INCONCLUSIVE, Verdict.FAIL, Verdict.PASS], Verdict.FAIL),
        ([Verdict.ERROR], Verdict.INCONCLUSIVE),  # an ERROR never stays ERROR
        ([Verdict.ERROR, Verdict.PASS], Verdict.INCONCLUSIVE),
        ([Verdict.ERROR, Verdict.FAIL], Verdict.FAIL),
    ],
)
def test_worst(verdicts: list[Verdict], expected: Verdict | None) -> None:
    assert worst(verdicts) is expected


def test_worst_accepts_a_generator() -> None:
    assert worst(v for v in (Verdict.PASS, Verdict.FAIL)) is Verdict.FAIL


SPEC_QUERY = (
    'sum(rate(http_requests_total{service="{service}",code=~"5.."}[5m]))'
    ' / sum(rate(http_requests_total{service="{service}"}[5m]))'
)


def test_render_query_keeps_label_braces() -> None:
    assert render_query(SPEC_QUERY, "notify", "prod", "1.4.2") == (
        'sum(rate(http_requests_total{service="notify",code=~"5.."}[5m]))'
        ' / sum(rate(http_requests_total{service="notify"}[5m]))'
    )


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ('up{env="{environment}",version="{version}"}', 'up{env="prod",version="1.4.2+build.7"}'),
        ("{service}{service}", "notifynotify"),
        ('x{job="{job}"}', 'x{job="{job}"}'),  # unknown placeholders are left alone
        ('x{service="{ service }"}', 'x{service="{ service }"}'),
        ("{{service}}", "{notify}"),  # no format-style escaping: only the exact token is replaced
        ("https://{service}.example/{environment}/health", "https://notify.example/prod/health"),
        ("sum(rate(x[5m]))", "sum(rate(x[5m]))"),
    ],
)
def test_render_query_replaces_exact_tokens_only(template: str, expected: str) -> None:
    assert render_query(template, "notify", "prod", "1.4.2+build.7") == expected


def test_values_with_braces_are_not_reexpanded() -> None:
    assert render_query("{service}/{version}", "{version}", "prod", "1.0") == "{version}/1.0"


@pytest.mark.parametrize("bad", ['1.0"} or vector(1) #', "1.0\\", "a\nb", "a`b"])
def test_render_query_refuses_label_breaking_values(bad: str) -> None:
    with pytest.raises(ValueError, match="unsafe"):
        render_query('x{version="{version}"}', "notify", "prod", bad)
