"""May this plan run now? One pure function, asked when a release is requested and again right
before the provider is called (after an approval, a queue, a retry): a plan that was valid when
asked can be stale by the time it would run.

The caller gathers the facts (:class:`World`) from the store and the window policy; this module
only decides, and says why in :class:`Refusal` records that a view turns into words.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.core.checklist import ChecklistResult
from bot.core.windows import WindowDecision


class Stage(StrEnum):
    REQUEST = "request"  # the user just asked
    START = "start"  # the provider is about to be called


class Code(StrEnum):
    """Why a plan may not run. ``OVERRIDABLE`` codes yield to an approved break-glass."""

    UNKNOWN_CANDIDATE = "unknown_candidate"
    ALREADY_RUNS = "already_runs"
    STALE = "stale"  # the environment no longer runs what the plan replaces
    DOWNGRADE = "downgrade"  # older than what runs, and not a rollback
    UNHEALTHY_TARGET = "unhealthy_target"  # a rollback to a version that was never healthy there
    DUPLICATE = "duplicate"  # the same (service, env, version) is already waiting
    BUSY = "busy"  # another release holds the environment
    MANUAL_LOCK = "manual_lock"  # someone locked it by hand
    HELD = "held"  # a canary is on hold: its own buttons decide
    DEPLOY_LEFT = "deploy_left"  # a deploy step from before the bot restarted still runs there
    WINDOW = "window"  # outside the window, or frozen
    CHECKLIST = "checklist"


OVERRIDABLE = frozenset({Code.WINDOW, Code.CHECKLIST})
WINDOW_ITEM = "window"  # the checklist item a break-glass outside the window records, so its approval covers it


class Kind(StrEnum):
    FORWARD = "forward"  # deploy / promote / retry
    ROLLBACK = "rollback"


@dataclass(frozen=True)
class PlanFacts:
    """What a request asks for, and what it assumed about the world when it was made."""

    service: str
    env: str
    version: str
    kind: Kind
    replaces: str | None  # what the env ran when the plan was made (None: nothing yet)
    requester: str  # a manual lock lets its own holder through
    # The items an approved break-glass overrode (WINDOW_ITEM for a closed window): it covers those, not items
    # that failed since it was approved.
    overridden: frozenset[str] = frozenset()
    own_release_id: int | None = None  # the release this plan is (at START it may hold the lock itself)
    undoes_release: bool = False  # a rollback of a given release: the record may say the target runs already


@dataclass(frozen=True)
class LockFacts:
    holder: str
    reason: str
    manual: bool
    release_id: int | None  # the release holding it, when not manual


@dataclass(frozen=True)
class World:
    """What is true now, gathered by the caller."""

    runs: str | None  # the version the env runs now
    candidate_known: bool
    candidate_order: float | None  # registration time of the plan's version (for "is it older?")
    running_order: float | None  # … and of what runs now
    target_healthy: bool  # for a rollback: the version succeeded there and was never rolled back / failed a check
    window: WindowDecision | None  # None: not asked (rollbacks never wait for a window)
    locks: tuple[LockFacts, ...]  # the running release's lock and the manual lock, when held
    checklist: ChecklistResult | None  # None: the env has no checklist to pass (rollbacks skip it)
    pending_duplicate: int | None = None  # id of a pending request for the same service, env and version
    held_release: int | None = None  # id of a release whose canary is on hold in this env
    deploy_left: int | None = None  # id of a release whose deploy step, left by a restart, still runs in this env


@dataclass(frozen=True)
class Refusal:
    code: Code
    release_id: int | None = None  # the release the refusal points at (pending duplicate, held canary, lock)

    @property
    def overridable(self) -> bool:
        return self.code in OVERRIDABLE


@dataclass(frozen=True)
class Admission:
    refusals: tuple[Refusal, ...]

    @property
    def allowed(self) -> bool:
        return not self.refusals

    @property
    def overridable(self) -> bool:
        """Only window/checklist stand in the way: break-glass (with approvals) may carry it."""
        return bool(self.refusals) and all(r.overridable for r in self.refusals)

    @property
    def hard(self) -> tuple[Refusal, ...]:
        """What break-glass cannot carry."""
        return tuple(r for r in self.refusals if not r.overridable)

    def has(self, code: Code) -> bool:
        return any(r.code is code for r in self.refusals)


def admit(plan: PlanFacts, world: World, stage: Stage) -> Admission:
    """Every reason ``plan`` may not run now, hard ones first; empty means it may."""
    refusals: list[Refusal] = []
    # A rollback returns to what ran there (it may predate the bot's candidate records); forward needs one.
    if not world.candidate_known and plan.kind is Kind.FORWARD:
        refusals.append(Refusal(Code.UNKNOWN_CANDIDATE))
    if world.runs == plan.version:
        if not plan.undoes_release:
            refusals.append(Refusal(Code.ALREADY_RUNS))
    elif world.runs != plan.replaces:
        refusals.append(Refusal(Code.STALE))
    if plan.kind is Kind.FORWARD and _older(world):
        refusals.append(Refusal(Code.DOWNGRADE))
    if plan.kind is Kind.ROLLBACK and not world.target_healthy:
        refusals.append(Refusal(Code.UNHEALTHY_TARGET))
    if stage is Stage.REQUEST and world.pending_duplicate is not None:
        refusals.append(Refusal(Code.DUPLICATE, world.pending_duplicate))
    if world.held_release is not None and world.held_release != plan.own_release_id:
        refusals.append(Refusal(Code.HELD, world.held_release))
    # Never two deploys of one environment at once: not even a Retry of the release whose step still runs.
    if world.deploy_left is not None and world.deploy_left != plan.own_release_id:
        refusals.append(Refusal(Code.DEPLOY_LEFT, world.deploy_left))
    for lock in world.locks:
        if lock.manual:
            # A manual lock stops everyone but its holder; restoring service never waits for a lock note.
            if lock.holder != plan.requester and plan.kind is Kind.FORWARD:
                refusals.append(Refusal(Code.MANUAL_LOCK))
        elif lock.release_id not in (plan.own_release_id, world.held_release, world.deploy_left):
            refusals.append(Refusal(Code.BUSY, lock.release_id))
    # Rolling back is the safe direction: windows, freezes and the checklist never stand in its way.
    if plan.kind is Kind.FORWARD:
        if world.window is not None and not world.window.open and WINDOW_ITEM not in plan.overridden:
            refusals.append(Refusal(Code.WINDOW))
        failing = {item.item for item in world.checklist.failed} if world.checklist is not None else set()
        if failing - plan.overridden:
            refusals.append(Refusal(Code.CHECKLIST))
    return Admission(tuple(refusals))


def _older(world: World) -> bool:
    if world.candidate_order is None or world.running_order is None:
        return False
    return world.candidate_order < world.running_order
