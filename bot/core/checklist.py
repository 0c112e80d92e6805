"""The release checklist: evidence about a candidate evaluated into ✅/❌ items with reasons.

Pure: no I/O. The engine gathers ``Evidence`` (CI test results, the Trivy summary, component
images, release-notes state, the rollback plan) and calls ``evaluate_checklist`` for the target
environment; the result is shown in the release's parent message and in ``/release`` refusals.

Decisions worth knowing:
- ``images`` is evaluated whenever ``images.require_digest`` is true, even if not listed.
- ``images`` with no components at all fails ("no component images reported by CI"): with a
  digest requirement, an empty candidate is more likely a CI mistake than an image-less service.
- ``rollback_plan`` fails only when there is no plan at all. A first release has a plan whose
  ``target_version`` is None: nothing to return to, which is not a reason to block.
- ``vulnerability_scan`` judges the Trivy classes in ``vulnerability_scan.classes`` (vulnerabilities,
  secrets, failed misconfiguration checks) against ``block_on``; the line names every judged class and,
  for each one that blocks, its worst findings by ID and file. A secret is named by rule and file only.
- Reasons are Slack mrkdwn, stored with the release and shown as they are: every piece of text that
  came from outside (package names, versions, image refs, URLs) is escaped with ``bot.views.mrkdwn``, so
  a hostile package name cannot ping a channel or forge a link. That import is the core's one listed
  exception to the layer contracts (pyproject.toml) until reasons are stored as data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from bot.core.imageref import ImageRefError, parse_image_ref
from bot.core.scan_summary import (
    CLASSES,
    SEVERITIES,
    AnyFinding,
    ClassSummary,
    MisconfigFinding,
    ScanSummary,
    SecretFinding,
)
from bot.views.mrkdwn import escape, link, linkable

if TYPE_CHECKING:
    from bot.config import Environment

__all__ = [
    "TEST_SUITES",
    "ChecklistResult",
    "Evidence",
    "ItemResult",
    "RollbackPlan",
    "SuiteResult",
    "apply_override",
    "checklist_items",
    "evaluate_checklist",
]

TEST_SUITES = ("unit", "integration", "performance")
_SHOWN_FINDINGS = 3
_SHOWN_IMAGE_PROBLEMS = 5


@dataclass(frozen=True)
class SuiteResult:
    """A CI test suite's outcome for a candidate."""

    suite: str
    status: Literal["passed", "failed"]
    url: str | None = None


@dataclass(frozen=True)
class RollbackPlan:
    """How to undo this release: ``target_version`` None means a first release, nothing to return to."""

    target_version: str | None
    method: str  # e.g. "redeploy 1.4.1 with the command provider", "switch back to blue"


@dataclass(frozen=True)
class Evidence:
    """Everything known about a candidate that the checklist judges.

    ``notes`` is ``"generated"``, ``"pending"`` or ``"unavailable: <why>"``. ``expected_components``
    are the service's configured components, so one the candidate forgot is named.
    """

    tests: Mapping[str, SuiteResult] = field(default_factory=dict)
    scan: ScanSummary | None = None  # a scan standing for the whole candidate (stored before scans were per image)
    scans: Mapping[str, ScanSummary] = field(default_factory=dict)  # component name -> the scan of its image
    components: Mapping[str, str] = field(default_factory=dict)  # name -> image reference text
    notes: str = "pending"
    rollback_plan: RollbackPlan | None = None
    expected_components: Sequence[str] = ()


@dataclass(frozen=True)
class ItemResult:
    """One evaluated checklist item; an override keeps ``ok`` False and records who and why."""

    item: str
    ok: bool
    reason: str
    overridden_by: str | None = None
    override_reason: str | None = None

    @property
    def satisfied(self) -> bool:
        """Passed, or failed and overridden."""
        return self.ok or self.overridden_by is not None


@dataclass(frozen=True)
class ChecklistResult:
    """All items for one environment, in configured order."""

    items: tuple[ItemResult, ...]

    @property
    def passed(self) -> bool:
        """True when nothing blocks: every item passed or was overridden."""
        return all(item.satisfied for item in self.items)

    @property
    def failed(self) -> tuple[ItemResult, ...]:
        """Items that block the release (failed and not overridden)."""
        return tuple(item for item in self.items if not item.satisfied)

    @property
    def overridden(self) -> tuple[ItemResult, ...]:
        """Items that failed but were overridden with --force."""
        return tuple(item for item in self.items if not item.ok and item.overridden_by is not None)

    def to_dict(self) -> list[dict[str, Any]]:
        """JSON-ready form for storage; ``from_dict`` reads it back."""
        return [
            {
                "item": i.item,
                "ok": i.ok,
                "reason": i.reason,
                "overridden_by": i.overridden_by,
                "override_reason": i.override_reason,
            }
            for i in self.items
        ]

    @classmethod
    def from_dict(cls, data: Sequence[Mapping[str, Any]]) -> ChecklistResult:
        """Rebuild a result stored with ``to_dict``."""
        return cls(
            tuple(
                ItemResult(
                    item=str(row["item"]),
                    ok=bool(row["ok"]),
                    reason=str(row["reason"]),
                    overridden_by=row.get("overridden_by"),
                    override_reason=row.get("override_reason"),
                )
                for row in data
            )
        )


def _link(url: str | None, label: str) -> str:
    """`` (<url|label>)`` for a URL that can be linked safely; nothing for any other."""
    return f" ({link(url, label)})" if linkable(url) else ""


def checklist_items(env: Environment) -> tuple[str, ...]:
    """The items evaluated for an environment: its checklist, plus ``images`` when digests are required."""
    items = list(dict.fromkeys(env.checklist))
    if env.images.require_digest and "images" not in items:
        items.append("images")
    return tuple(items)


def _suite(item: str, evidence: Evidence) -> ItemResult:
    result = evidence.tests.get(item)
    if result is None:
        return ItemResult(item, False, f"{item} tests: no result reported by CI")
    if result.status == "passed":
        return ItemResult(item, True, f"{item} tests passed")
    return ItemResult(item, False, f"{item} tests failed{_link(result.url, 'report')}")


def _finding_text(finding: AnyFinding) -> str:
    """A finding by ID and where it is; a secret by rule and file only, never its (masked) text."""
    if isinstance(finding, SecretFinding):
        where = f" in {finding.file}" if finding.file else ""
        return escape(f"secret {finding.rule_id}{where}")
    if isinstance(finding, MisconfigFinding):
        where = f" in {finding.file}" if finding.file else ""
        return escape(f"check {finding.check_id}{where}")
    installed = f" {finding.installed_version}" if finding.installed_version else ""
    fix = f" → {finding.fixed_version}" if finding.fixed_version else ", no fix yet"
    return escape(f"{finding.vulnerability_id} ({finding.pkg_name}{installed}{fix})")


def _tally(summary: ClassSummary[Any], severities: Sequence[str]) -> str:
    return ", ".join(f"{summary.count(s)} {s}" for s in severities if summary.count(s))


def _blocking_part(name: str, summary: ClassSummary[Any], blocking: Sequence[str]) -> str:
    """``secrets 1 CRITICAL: secret aws-access-key-id in /app/config.env`` (the worst few, then a count)."""
    blocked = sum(summary.count(s) for s in blocking)
    if blocked == 0:
        return f"{name} 0"
    # `top` is sorted worst first, so the first blocking ones are the worst.
    worst = [f for f in summary.top if f.severity in blocking][:_SHOWN_FINDINGS]
    if not worst:
        return f"{name} {_tally(summary, blocking)}"
    more = blocked - len(worst)
    tail = f", and {more} more" if more > 0 else ""
    return f"{name} {_tally(summary, blocking)}: {', '.join(_finding_text(f) for f in worst)}{tail}"


def _scan(env: Environment, scan: ScanSummary | None) -> ItemResult:
    item = "vulnerability_scan"
    if scan is None:
        return ItemResult(item, False, "no vulnerability scan reported")
    policy = env.vulnerability_scan
    blocking = [s for s in SEVERITIES if s in policy.block_on]
    every = scan.by_class()
    counted = {c: summary for c in CLASSES if c in policy.classes and (summary := every[c]) is not None}
    missing = [c for c in CLASSES if c in policy.classes and every[c] is None]
    # A summary stored before secrets and misconfigurations were counted says nothing about them. The line
    # says so and the rest is judged: otherwise upgrading would block every candidate scanned before it.
    unknown = f"; {', '.join(missing)} not counted (scan reported before release-bot counted them)" if missing else ""
    if not counted:
        return ItemResult(item, False, f"vulnerability scan: {', '.join(missing)} not counted; post the report again")
    others = [
        f"{c} {t}"
        for c, summary in counted.items()
        if (t := _tally(summary, [s for s in SEVERITIES if s not in blocking]))
    ]
    not_blocking = f" (not blocking: {'; '.join(others)})" if others else ""
    if not blocking:
        return ItemResult(item, True, f"vulnerability scan: no blocking severity configured{not_blocking}{unknown}")
    totals = {s: sum(summary.count(s) for summary in counted.values()) for s in blocking}
    if not any(totals.values()):
        head = ", ".join(f"0 {s}" for s in blocking)
        return ItemResult(item, True, f"vulnerability scan: {head} in {', '.join(counted)}{not_blocking}{unknown}")
    head = ", ".join(f"{n} {s}" for s, n in totals.items() if n)
    parts = "; ".join(_blocking_part(c, summary, blocking) for c, summary in counted.items())
    return ItemResult(item, False, f"vulnerability scan: {head} — {parts}{unknown}")


def _scans(env: Environment, evidence: Evidence) -> ItemResult:
    """Every image the candidate ships needs its own scan: one image's scan says nothing about another's.

    Images judged alike read as one line, as a single image does. Otherwise each image's line is named
    (``… (in worker)``): all of them when they pass, only the ones that block or have no scan when not.
    """
    names = sorted(evidence.components)
    if not names:
        return _scan(env, evidence.scan or next(iter(evidence.scans.values()), None))
    judged = {name: (evidence.scans.get(name) or evidence.scan) for name in names}
    results = {name: _scan(env, summary) for name, summary in judged.items()}
    if len({result.reason for result in results.values()}) == 1:
        return results[names[0]]
    ok = all(result.ok for result in results.values())
    shown = [
        f"no vulnerability scan reported for {name}" if judged[name] is None else f"{result.reason} (in {name})"
        for name, result in results.items()
        if ok or not result.ok
    ]
    return ItemResult("vulnerability_scan", ok, "; ".join(shown))


def _images(evidence: Evidence) -> ItemResult:
    names = sorted(set(evidence.components) | set(evidence.expected_components))
    if not names:
        return ItemResult("images", False, "images: no component images reported by CI")
    problems: list[str] = []
    for name in names:
        text = evidence.components.get(name)
        if text is None:
            problems.append(f"{escape(name)}: no image reported by CI")
            continue
        try:
            ref = parse_image_ref(text)
        except ImageRefError as exc:
            why = escape(exc.problem)
            problems.append(f"{escape(name)}: {escape(text.strip())} is not a valid image reference ({why})")
            continue
        if not ref.pinned:
            problems.append(f"{escape(name)}: {escape(text.strip())} is not pinned by digest")
    if not problems:
        return ItemResult("images", True, f"images: all pinned by digest ({escape(', '.join(names))})")
    shown = problems[:_SHOWN_IMAGE_PROBLEMS]
    if len(problems) > len(shown):
        shown.append(f"and {len(problems) - len(shown)} more")
    return ItemResult("images", False, "images: " + "; ".join(shown))


def _notes(notes: str) -> ItemResult:
    if notes == "generated":
        return ItemResult("release_notes", True, "release notes generated")
    if notes == "pending":
        return ItemResult("release_notes", False, "release notes: not generated yet")
    if notes.startswith("unavailable"):
        why = notes.removeprefix("unavailable").lstrip(": ").strip() or "no reason given"
        return ItemResult("release_notes", False, f"release notes unavailable: {escape(why)}")
    return ItemResult("release_notes", False, f"release notes: unknown state {escape(notes)!r}")


def _rollback(plan: RollbackPlan | None) -> ItemResult:
    if plan is None:
        return ItemResult("rollback_plan", False, "no rollback plan: no previous healthy release or method known")
    if plan.target_version is None:  # the method has nothing to say then (it says "nothing to roll back to")
        return ItemResult("rollback_plan", True, "rollback plan: first release, nothing to roll back to")
    method = f" ({escape(plan.method)})" if plan.method.strip() else ""
    return ItemResult("rollback_plan", True, f"rollback plan: back to {escape(plan.target_version)}{method}")


def evaluate_checklist(env: Environment, evidence: Evidence) -> ChecklistResult:
    """Evaluate every checklist item of ``env`` against the evidence; nothing is skipped silently."""
    results: list[ItemResult] = []
    for item in checklist_items(env):
        if item in TEST_SUITES:
            results.append(_suite(item, evidence))
        elif item == "vulnerability_scan":
            results.append(_scans(env, evidence))
        elif item == "images":
            results.append(_images(evidence))
        elif item == "release_notes":
            results.append(_notes(evidence.notes))
        elif item == "rollback_plan":
            results.append(_rollback(evidence.rollback_plan))
        else:  # config.ChecklistItem is a closed Literal; a new item must be taught here
            results.append(ItemResult(item, False, f"{escape(item)}: unknown checklist item"))
    return ChecklistResult(tuple(results))


def apply_override(result: ChecklistResult, approver: str, reason: str) -> ChecklistResult:
    """Mark every blocking item as overridden by ``approver`` (break-glass ``--force <reason>``)."""
    if not approver.strip():
        raise ValueError("an override needs an approver")
    if not reason.strip():
        raise ValueError("an override needs a reason")
    return ChecklistResult(
        tuple(
            item if item.satisfied else replace(item, overridden_by=approver, override_reason=reason.strip())
            for item in result.items
        )
    )
