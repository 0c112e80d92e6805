"""The pure policy: the permission table (every command, button and modal × every role) and admission."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.core.checklist import ChecklistResult, ItemResult
from bot.core.grammar import SPECS
from bot.core.windows import Reason, WindowDecision
from bot.policy.admission import Code, Kind, LockFacts, PlanFacts, Stage, World, admit
from bot.policy.permissions import PERMISSIONS, Action, Role, Surface, permit, table_rows
from bot.views.permissions_table import replace_section
from commands.actions import ALL_ACTIONS

# What a user holding exactly one role may do. A change to the table must change this on purpose.
EXPECTED: dict[Action, set[Role]] = {
    Action.HELP: set(Role),
    Action.STATUS: set(Role),
    Action.WINDOW: set(Role),
    Action.NOTES: set(Role),
    Action.HISTORY: set(Role),
    Action.MANIFEST: set(Role),
    Action.SUMMARY: set(Role),
    Action.QUEUE: set(Role),
    Action.CANCEL: {Role.REQUESTER, Role.RELEASER},
    Action.HOME_OPENED: set(Role),
    Action.RELEASE: {Role.RELEASER},
    Action.DEPLOY: {Role.RELEASER},
    Action.PROMOTE: {Role.RELEASER, Role.SYSTEM},  # the bot, for a release train's departures
    Action.RELEASE_RETRY: {Role.RELEASER},
    Action.ROLLBACK: {Role.RELEASER, Role.ONCALL, Role.ROLLBACK_APPROVER, Role.SYSTEM},
    Action.RELEASE_ROLLBACK: {Role.RELEASER, Role.ONCALL, Role.ROLLBACK_APPROVER, Role.SYSTEM},
    Action.LOCK: {Role.RELEASER, Role.ONCALL},
    Action.UNLOCK: {Role.LOCK_HOLDER, Role.ONCALL},
    Action.FREEZE: {Role.RELEASER, Role.ONCALL},
    Action.UNFREEZE: {Role.FREEZER, Role.ONCALL},
    Action.APPROVAL_APPROVE: {Role.APPROVER},
    Action.APPROVAL_DENY: {Role.APPROVER},
    Action.APPROVAL_DENY_REASON: {Role.APPROVER},
    Action.CHECK_ROLLBACK: {Role.ONCALL, Role.ROLLBACK_APPROVER, Role.SYSTEM},
    Action.CHECK_DISMISS: {Role.ONCALL, Role.ROLLBACK_APPROVER},
    Action.CHECK_LOOKS_GOOD: {Role.ONCALL, Role.ROLLBACK_APPROVER},
    Action.ALERT_ACK: {Role.ONCALL, Role.ROLLBACK_APPROVER},
    Action.TRAINS: set(Role),
    Action.TRAIN_HOLD: {Role.TRAIN_HOLDER, Role.ONCALL},
    Action.TRAIN_HOLD_REASON: {Role.TRAIN_HOLDER, Role.ONCALL},
    Action.TRAIN_LEAVE_OFF: {Role.TRAIN_HOLDER, Role.RELEASER, Role.ONCALL},
}


def test_every_command_button_and_modal_has_a_rule() -> None:
    """A new grammar command or button without a rule here fails the suite."""
    commands = {a.value for a in PERMISSIONS if PERMISSIONS[a].surface is Surface.COMMAND}
    assert set(SPECS) == commands
    buttons = {a.value for a in PERMISSIONS if PERMISSIONS[a].surface is Surface.BUTTON}
    assert set(ALL_ACTIONS) | {"approval_deny"} == buttons
    assert set(EXPECTED) == set(PERMISSIONS)


@pytest.mark.parametrize(("action", "role"), list(itertools.product(list(Action), list(Role))))
def test_each_cell_of_the_table(action: Action, role: Role) -> None:
    assert permit(action, {role}).allowed is (role in EXPECTED[action])


@pytest.mark.parametrize("action", [Action.APPROVAL_APPROVE, Action.APPROVAL_DENY, Action.APPROVAL_DENY_REASON])
def test_a_requester_never_decides_their_own_request_even_as_an_approver(action: Action) -> None:
    answer = permit(action, {Role.APPROVER, Role.REQUESTER})
    assert not answer.allowed and answer.denied_by is Role.REQUESTER


def test_someone_in_no_group_may_only_read() -> None:
    allowed = {a for a in Action if permit(a, set()).allowed}
    assert allowed == {a for a, roles in EXPECTED.items() if Role.ANYONE in roles}
    assert Action.UNFREEZE not in allowed and Action.LOCK not in allowed


def test_unknown_actions_are_refused() -> None:
    assert not permit("drop_tables", set(Role)).allowed


def test_the_readme_rows_name_every_action_once() -> None:
    rows = table_rows()
    assert [r[1] for r in rows] == [a.value for a in PERMISSIONS]
    assert dict((r[1], r[2]) for r in rows)["unlock"] == "on-call, the lock holder"


# --- admission -------------------------------------------------------------------------------------

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
OPEN = WindowDecision("prod", NOW, open=True, reasons=(), next_open=None, next_close=None, always=False)
CLOSED = WindowDecision(
    "prod", NOW, open=False, reasons=(Reason("weekend", "Saturday"),), next_open=None, next_close=None, always=False
)
PASSED = ChecklistResult((ItemResult("unit", True, "passed"),))
FAILED = ChecklistResult((ItemResult("unit", False, "failed"),))


def plan(**kw: object) -> PlanFacts:
    base: dict[str, object] = dict(
        service="notify", env="prod", version="1.2.4", kind=Kind.FORWARD, replaces="1.2.3", requester="U1"
    )
    return PlanFacts(**(base | kw))  # type: ignore[arg-type]


def world(**kw: object) -> World:
    base: dict[str, object] = dict(
        runs="1.2.3",
        candidate_known=True,
        candidate_order=4,
        running_order=3,
        target_healthy=True,
        window=OPEN,
        locks=(),
        checklist=PASSED,
    )
    return World(**(base | kw))  # type: ignore[arg-type]


def codes(p: PlanFacts, w: World, stage: Stage = Stage.REQUEST) -> set[Code]:
    return {r.code for r in admit(p, w, stage).refusals}


def test_a_valid_plan_is_admitted() -> None:
    assert admit(plan(), world(), Stage.REQUEST).allowed


@pytest.mark.parametrize(
    ("w", "code"),
    [
        (world(candidate_known=False), Code.UNKNOWN_CANDIDATE),
        (world(runs="1.2.4"), Code.ALREADY_RUNS),
        (world(runs="1.2.1", running_order=1), Code.STALE),  # rolled back meanwhile
        (world(window=CLOSED), Code.WINDOW),
        (world(checklist=FAILED), Code.CHECKLIST),
        (world(locks=(LockFacts("U2", "incident", manual=True, release_id=None),)), Code.MANUAL_LOCK),
        (world(locks=(LockFacts("U2", "release #7", manual=False, release_id=7),)), Code.BUSY),
        (world(pending_duplicate=9), Code.DUPLICATE),
        (world(held_release=7, locks=(LockFacts("U2", "release #7", manual=False, release_id=7),)), Code.HELD),
        (world(deploy_left=7, locks=(LockFacts("U2", "release #7", manual=False, release_id=7),)), Code.DEPLOY_LEFT),
    ],
)
def test_each_refusal(w: World, code: Code) -> None:
    assert codes(plan(), w) == {code}


def test_a_deploy_a_restart_left_running_refuses_everything_there_even_a_rollback() -> None:
    """Never two deploys of one env at once: not a Retry, not a release, not a rollback (it waits for the left
    step to end; the bot stops it at its timeout)."""
    lock = (LockFacts("U2", "release #7", manual=False, release_id=7),)
    left = world(deploy_left=7, locks=lock)
    assert codes(plan(), left) == {Code.DEPLOY_LEFT}
    back = plan(version="1.2.2", kind=Kind.ROLLBACK)
    assert codes(back, world(deploy_left=7, locks=lock, candidate_order=2)) == {Code.DEPLOY_LEFT}
    assert admit(plan(own_release_id=7), left, Stage.START).allowed, "its own release is not refused by it"


def test_a_stale_plan_is_refused_when_it_would_start() -> None:
    """Break-glass for 1.2.3 then 1.2.4: approving 1.2.4 first makes the 1.2.3 plan stale (a downgrade too)."""
    old = plan(version="1.2.3", replaces="1.2.2", own_release_id=5)
    now = world(runs="1.2.4", candidate_order=3, running_order=4, locks=(LockFacts("bot", "", False, 5),))
    assert codes(old, now, Stage.START) == {Code.STALE, Code.DOWNGRADE}


def test_a_forward_release_of_an_older_candidate_is_a_downgrade() -> None:
    assert codes(plan(version="1.2.0", replaces="1.2.3"), world(candidate_order=1)) == {Code.DOWNGRADE}


def test_rollbacks_go_backwards_past_windows_and_checklists_but_only_to_healthy_versions() -> None:
    back = plan(version="1.2.2", kind=Kind.ROLLBACK)
    assert admit(back, world(candidate_order=2, window=CLOSED, checklist=FAILED), Stage.REQUEST).allowed
    assert codes(back, world(candidate_order=2, target_healthy=False)) == {Code.UNHEALTHY_TARGET}


def test_break_glass_covers_only_what_it_overrode() -> None:
    forced = plan(overridden=frozenset({"window"}))
    assert admit(forced, world(window=CLOSED), Stage.START).allowed
    assert codes(forced, world(window=CLOSED, checklist=FAILED)) == {Code.CHECKLIST}
    answer = admit(plan(), world(window=CLOSED, checklist=FAILED), Stage.REQUEST)
    assert answer.overridable
    assert not admit(plan(), world(window=CLOSED, runs="9"), Stage.REQUEST).overridable


def test_a_manual_lock_lets_its_holder_through_and_a_release_its_own_lock() -> None:
    mine = LockFacts("U1", "holding for a demo", manual=True, release_id=None)
    assert admit(plan(), world(locks=(mine,)), Stage.REQUEST).allowed
    own = LockFacts("U1", "release #5", manual=False, release_id=5)
    assert admit(plan(own_release_id=5), world(locks=(own,)), Stage.START).allowed


def test_a_duplicate_only_matters_when_asked_not_when_starting() -> None:
    assert admit(plan(own_release_id=9), world(pending_duplicate=9), Stage.START).allowed


def test_the_readme_table_is_generated_from_the_permission_table() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert replace_section(readme) == readme, "run `make docs` to regenerate README.md's permissions table"
