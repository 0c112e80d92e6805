"""Verdicts of post-release checks: one measured value against a check's conditions, and the worst of many.

Rules (SPEC §5 "Post-release checks"):

- ``fail_if`` is evaluated first, then ``pass_if``. With both given and neither holding the value is in
  the grey zone between the thresholds → INCONCLUSIVE.
- With only ``pass_if``, a value that does not pass is a FAIL (the user named the only healthy range).
  With only ``fail_if``, a value that does not fail is a PASS (the user named the only unhealthy range).
- An ``http`` check without ``json_field`` measures the status code; without conditions it passes when
  the status equals ``expect_status`` (default 200) and fails otherwise.
- An empty result (no series, JSON field absent or null) follows ``on_empty``; NaN follows ``on_nan``;
  both default to INCONCLUSIVE. ±Inf are ordinary numbers: ``+Inf < 0.01`` is false, ``+Inf >= 0.05`` true.
- ERROR is the verdict of one failed *attempt* (backend unreachable, timeout, non-2xx, ``status: error``).
  It never ends a check: after the retries the check becomes INCONCLUSIVE "metrics unavailable" via
  :func:`unavailable`, so an unreachable backend can never cause a FAIL or an automatic rollback.
- The release verdict is :func:`worst`: FAIL > INCONCLUSIVE > PASS; a stray ERROR counts as INCONCLUSIVE.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from bot.core.conditions import Condition

if TYPE_CHECKING:
    from bot.config import Check

__all__ = [
    "Measurement",
    "Sample",
    "Verdict",
    "attempt_error",
    "failed",
    "fill_sides",
    "format_value",
    "judge",
    "judge_ratio",
    "render_query",
    "unavailable",
    "worst",
]


class Verdict(StrEnum):
    """The outcome of one measurement."""

    PASS = "pass"  # noqa: S105 - a verdict, not a password
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    ERROR = "error"


# Higher is worse. ERROR ranks with INCONCLUSIVE: both mean "we could not tell", never "it is broken".
_SEVERITY = {Verdict.PASS: 0, Verdict.ERROR: 1, Verdict.INCONCLUSIVE: 1, Verdict.FAIL: 2}


@dataclass(frozen=True)
class Sample:
    """One value read from a backend; ``value`` is None when the result was empty."""

    value: float | None


@dataclass(frozen=True)
class Measurement:
    """A judged check: the verdict, the value, a human summary and the query/URL that produced it."""

    check: str
    verdict: Verdict
    value: float | None
    summary: str  # e.g. "error rate = 0.0031 (pass if < 0.01, fail if >= 0.05)"
    query: str | None
    detail: str | None = None
    attempts: int = 1
    error: str | None = None  # set when the backend could not be read: a failed attempt, or "metrics unavailable"

    def text(self) -> str:
        """One plain-text line for a thread or a log: verdict, summary and the query behind the value."""
        line = f"{self.verdict.upper()}: {self.summary}"
        if self.detail:
            line += f" — {self.detail}"
        if self.query:
            line += f" [query: {self.query}]"
        return line


def format_value(value: float | None) -> str:
    """A value as people read it: 6 significant digits, ``NaN``, ``+Inf``/``-Inf``, ``no data``."""
    if value is None:
        return "no data"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:.6g}"


def _conditions(check: Check) -> tuple[Condition | None, Condition | None]:
    """The (pass_if, fail_if) that apply, including the implicit status condition of plain http checks."""
    if check.http is not None and check.json_field is None and check.pass_if is None and check.fail_if is None:
        return Condition("==", float(check.expect_status or 200)), None
    return check.pass_if, check.fail_if


def _describe(pass_if: Condition | None, fail_if: Condition | None) -> str:
    parts = []
    if pass_if is not None:
        parts.append(f"pass if {pass_if}")
    if fail_if is not None:
        parts.append(f"fail if {fail_if}")
    return ", ".join(parts) if parts else "no condition"


_MISSING = {"inconclusive": Verdict.INCONCLUSIVE, "pass": Verdict.PASS, "fail": Verdict.FAIL}


def _template(check: Check) -> str | None:
    return check.prometheus or check.loki or check.http


def judge(check: Check, value: float | None, *, query: str | None = None) -> Measurement:
    """Apply the check's rules to one value (None = empty result); ``query`` defaults to the template."""
    query = query if query is not None else _template(check)
    pass_if, fail_if = _conditions(check)
    rule = _describe(pass_if, fail_if)
    if value is None:
        verdict = _MISSING[check.on_empty]
        detail = f"empty result; on_empty: {check.on_empty}"
        return Measurement(check.name, verdict, None, f"{check.name}: no data ({rule})", query, detail)
    summary = f"{check.name} = {format_value(value)} ({rule})"
    if math.isnan(value):
        verdict = _MISSING[check.on_nan]
        return Measurement(check.name, verdict, value, summary, query, f"value is NaN; on_nan: {check.on_nan}")
    if fail_if is not None and fail_if.holds(value):
        return Measurement(check.name, Verdict.FAIL, value, summary, query, None)
    if pass_if is not None and pass_if.holds(value):
        return Measurement(check.name, Verdict.PASS, value, summary, query, None)
    if pass_if is not None and fail_if is not None:
        detail = "between the pass and fail thresholds"
        return Measurement(check.name, Verdict.INCONCLUSIVE, value, summary, query, detail)
    if pass_if is not None:
        return Measurement(check.name, Verdict.FAIL, value, summary, query, "does not meet pass_if")
    if fail_if is not None:
        return Measurement(check.name, Verdict.PASS, value, summary, query, None)
    # Only an http check with json_field and no conditions gets here: the status matched, the value is
    # reported for information.
    return Measurement(check.name, Verdict.PASS, value, summary, query, "status matched; value not judged")


def attempt_error(check: Check, error: str, *, query: str | None, attempt: int, of: int) -> Measurement:
    """The ERROR of one failed attempt, for showing retries as they happen (never a final verdict)."""
    summary = f"{check.name}: attempt {attempt}/{of} failed: {error}"
    return Measurement(check.name, Verdict.ERROR, None, summary, query, None, attempts=attempt, error=error)


def unavailable(check: Check, error: str, *, query: str | None = None, attempts: int = 1) -> Measurement:
    """The final word when the backend could not be read: INCONCLUSIVE "metrics unavailable"."""
    query = query if query is not None else _template(check)
    summary = f"metrics unavailable: {error}"
    detail = f"{check.name}: gave up after {attempts} attempt(s)"
    return Measurement(check.name, Verdict.INCONCLUSIVE, None, summary, query, detail, attempts=attempts, error=error)


def failed(check: Check, reason: str, *, query: str | None = None, attempts: int = 1) -> Measurement:
    """A FAIL decided by the backend's answer itself (a reachable endpoint with the wrong status)."""
    query = query if query is not None else _template(check)
    return Measurement(check.name, Verdict.FAIL, None, f"{check.name}: {reason}", query, None, attempts=attempts)


def worst(verdicts: Iterable[Verdict]) -> Verdict | None:
    """The release verdict: FAIL > INCONCLUSIVE > PASS (ERROR counts as INCONCLUSIVE); None if empty."""
    found = [Verdict.INCONCLUSIVE if v is Verdict.ERROR else v for v in verdicts]
    if not found:
        return None
    return max(found, key=_SEVERITY.__getitem__)


_PLACEHOLDER = re.compile(r"\{(service|environment|version)\}")
_UNSAFE = re.compile(r'["\\\n\r`]')


def render_query(template: str, service: str, environment: str, version: str) -> str:
    """Substitute exactly ``{service}``, ``{environment}``, ``{version}``; every other brace is kept.

    PromQL uses braces for label matchers, so ``str.format`` is unusable. Values are refused when they
    contain a quote, a backslash, a backtick or a newline: they would break out of a label string.
    """
    values = {"service": service, "environment": environment, "version": version}
    for name, value in values.items():
        if _UNSAFE.search(value):
            raise ValueError(f"{name} {value!r} contains a character that is unsafe in a query")
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


# --- compare: canary_to_stable -------------------------------------------------------------------------

_SIDES = re.compile(r"\{(canary|stable)\}")


def fill_sides(template: str, *, side: str, stable: str) -> str:
    """A compare query for one side: ``{canary}`` → ``side`` (the canary's version or colour, then the
    stable's), ``{stable}`` → the stable's; every other brace is left for :func:`render_query`."""
    values = {"canary": side, "stable": stable}
    for name, value in values.items():
        if _UNSAFE.search(value):
            raise ValueError(f"{name} {value!r} contains a character that is unsafe in a query")
    return _SIDES.sub(lambda match: values[match.group(1)], template)


def _ratio(canary: float, stable: float) -> float:
    if stable == 0:
        # x/0: any canary value over a stable that has none is infinitely worse; 0/0 says nothing (NaN).
        return math.nan if canary == 0 else math.copysign(math.inf, canary)
    return canary / stable


def judge_ratio(check: Check, canary: float | None, stable: float | None, *, query: str | None) -> Measurement:
    """Judge a ``compare: canary_to_stable`` check: its conditions hold for ``canary / stable``.

    Either side empty follows ``on_empty``, NaN (including 0/0) ``on_nan``. With ``min_value``, both sides
    below that floor PASS without comparing: a ratio of two tiny numbers (0.0002 vs 0.0001) is noise.
    """
    rule = _describe(check.pass_if, check.fail_if)
    sides = f"canary {format_value(canary)} vs stable {format_value(stable)}"
    if canary is None or stable is None:
        verdict = _MISSING[check.on_empty]
        detail = f"empty result; on_empty: {check.on_empty}"
        return Measurement(check.name, verdict, None, f"{check.name}: {sides} ({rule})", query, detail)
    floor = check.min_value
    if floor is not None and canary < floor and stable < floor:
        summary = f"{check.name}: {sides} ({rule})"
        detail = f"both below min_value {floor:g}: passed without comparing"
        return Measurement(check.name, Verdict.PASS, None, summary, query, detail)
    ratio = _ratio(canary, stable)
    judged = judge(check, ratio, query=query)
    return replace(judged, summary=f"{check.name}: {sides} → ratio {format_value(ratio)} ({rule})")
