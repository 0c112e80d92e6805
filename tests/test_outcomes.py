"""How a release's outcome is read from its last deploy step when it could not be recorded as it happened (a
restart, a store refusing writes): the pure rule, and the words for how the step ended."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.core.models import DeployRun, ReleaseState, RunOutcome, RunRole
from bot.engine.outcomes import how_it_ended, settled_state
from bot.providers.base import StepResult, Unproven

AT = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def run(role: RunRole, outcome: RunOutcome | None = None, **fields: object) -> DeployRun:
    return DeployRun(
        id=1,
        release_id=7,
        step="deploy to 100% of traffic",
        action="deploy",
        role=role,
        provider="command",
        started_at=AT,
        deadline_at=AT + timedelta(minutes=15),
        outcome=outcome,
        **fields,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("role", "outcome", "state"),
    [
        (RunRole.FINAL, RunOutcome.SUCCEEDED, ReleaseState.SUCCEEDED),  # the rollout's last step: it is live
        (RunRole.FINAL, RunOutcome.FAILED, ReleaseState.FAILED),
        (RunRole.PARTIAL, RunOutcome.SUCCEEDED, ReleaseState.INTERRUPTED),  # more steps were to come: Retry/Roll back
        (RunRole.PARTIAL, RunOutcome.FAILED, ReleaseState.FAILED),
        (RunRole.UNDO, RunOutcome.SUCCEEDED, ReleaseState.FAILED),  # it was being undone after a failure
        (RunRole.UNDO, RunOutcome.FAILED, ReleaseState.FAILED),
        (RunRole.FINAL, RunOutcome.UNKNOWN, ReleaseState.INTERRUPTED),  # nothing proves it: people check
        (RunRole.FINAL, None, ReleaseState.INTERRUPTED),  # still open, nothing known
    ],
)
def test_the_last_step_decides_the_release(role: RunRole, outcome: RunOutcome | None, state: ReleaseState) -> None:
    assert settled_state(run(role, outcome), outcome) is state


def test_a_release_that_started_no_step_is_interrupted() -> None:
    assert settled_state(None, None) is ReleaseState.INTERRUPTED


def test_how_a_step_ended_in_words() -> None:
    step = run(RunRole.FINAL)
    assert how_it_ended(step, StepResult(ok=True, output_tail="", exit_status=0)) == "exit status 0"
    assert (
        how_it_ended(step, StepResult(ok=False, output_tail="", error="timed out after 15m")) == "timed out after 15m"
    )
    assert how_it_ended(step, StepResult(ok=True, output_tail="")) == "it succeeded"  # a remote step: no exit status
    assert how_it_ended(step, Unproven("no exit status was recorded")) == "no exit status was recorded"
    recorded = run(RunRole.FINAL, RunOutcome.FAILED, exit_status=3, error="exit status 3")
    assert how_it_ended(recorded, None) == "exit status 3", "from the step's record when nothing is in memory"
