"""Who may do what: one table over every command, button and modal action. Pure: no I/O.

The services find out which roles the acting user holds (group membership is I/O) and ask
:func:`permit`; nothing else decides who may act. The README's "Who may do what" table is
rendered from :data:`PERMISSIONS` (``scripts/gen_permissions_table.py``), and a test checks that
every grammar command, button and modal has a rule here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """A way of being entitled to act, always relative to one environment (and one request)."""

    ANYONE = "anyone"
    RELEASER = "releaser"  # a member of the environment's `allowed` groups (everyone when it names none)
    ONCALL = "oncall"  # a member of `groups.oncall`
    ROLLBACK_APPROVER = "rollback_approver"  # a member of the environment's `rollback.approvals.from`
    APPROVER = "approver"  # a member of the groups the open approval request names
    REQUESTER = "requester"  # who asked for the release or request at hand
    LOCK_HOLDER = "lock_holder"  # who placed the manual lock at hand
    FREEZER = "freezer"  # who declared the ad-hoc freeze at hand
    SYSTEM = "system"  # the bot itself: auto-rollback after a failed check, resuming after a crash
    TRAIN_HOLDER = "train_holder"  # a member of the release train's `hold` groups


ROLE_WORDS: dict[Role, str] = {
    Role.ANYONE: "anyone",
    Role.RELEASER: "releasers of the environment",
    Role.ONCALL: "on-call",
    Role.ROLLBACK_APPROVER: "the environment's rollback approvers",
    Role.APPROVER: "the approvers the request names",
    Role.REQUESTER: "the requester",
    Role.LOCK_HOLDER: "the lock holder",
    Role.FREEZER: "who declared the freeze",
    Role.SYSTEM: "the bot",
    Role.TRAIN_HOLDER: "the train's `hold` groups",
}


class Action(StrEnum):
    """Every command, button and modal a user can act through."""

    # `/release` commands (the names of bot.core.grammar.SPECS)
    HELP = "help"
    STATUS = "status"
    RELEASE = "release"
    DEPLOY = "deploy"
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    WINDOW = "window"
    NOTES = "notes"
    HISTORY = "history"
    MANIFEST = "manifest"
    LOCK = "lock"
    UNLOCK = "unlock"
    FREEZE = "freeze"
    UNFREEZE = "unfreeze"
    SUMMARY = "summary"
    QUEUE = "queue"
    CANCEL = "cancel"
    TRAINS = "trains"
    # buttons (their Block Kit action_id)
    APPROVAL_APPROVE = "approval_approve"
    APPROVAL_DENY = "approval_deny"  # opens the reason modal
    RELEASE_RETRY = "release_retry"
    RELEASE_ROLLBACK = "release_rollback"
    CHECK_ROLLBACK = "check_rollback"
    CHECK_DISMISS = "check_dismiss"
    CHECK_LOOKS_GOOD = "check_looks_good"
    ALERT_ACK = "alert_ack"  # Acknowledge under an Alertmanager incident (its Roll back now is check_rollback)
    TRAIN_HOLD = "train_hold"  # opens the reason modal
    TRAIN_LEAVE_OFF = "train_leave_off"
    # modals (their callback_id) and surfaces
    APPROVAL_DENY_REASON = "approval_deny_reason"
    TRAIN_HOLD_REASON = "train_hold_reason"
    HOME_OPENED = "app_home_opened"


class Surface(StrEnum):
    COMMAND = "command"
    BUTTON = "button"
    MODAL = "modal"
    EVENT = "event"


@dataclass(frozen=True)
class Rule:
    """Who may take an action: anyone holding one of ``allow``, unless they hold one of ``deny``."""

    surface: Surface
    allow: frozenset[Role]
    deny: frozenset[Role] = frozenset()
    why: str = ""  # one line for the README table: the reasoning a reader needs

    def permits(self, roles: Iterable[Role]) -> bool:
        held = frozenset(roles) | {Role.ANYONE}
        return not (held & self.deny) and bool(held & self.allow)


def _rule(surface: Surface, *allow: Role, deny: Iterable[Role] = (), why: str = "") -> Rule:
    return Rule(surface, frozenset(allow), frozenset(deny), why)


_C, _B, _M, _E = Surface.COMMAND, Surface.BUTTON, Surface.MODAL, Surface.EVENT
_READ = "reading changes nothing"
_SHIP = "changes what runs: only the environment's releasers"
_BACK = "the safe direction: releasers, on-call and rollback approvers (approvals per `rollback.approvals`)"
_DECIDE = "two-person rule: an approver named by the request, never its requester"
_CHECK = "acting on a production signal: on-call and the rollback approvers"
_HOLD = "stops a whole train departure: the train's `hold` groups and on-call"

PERMISSIONS: dict[Action, Rule] = {
    Action.HELP: _rule(_C, Role.ANYONE, why=_READ),
    Action.STATUS: _rule(_C, Role.ANYONE, why=_READ),
    Action.WINDOW: _rule(_C, Role.ANYONE, why=_READ),
    Action.NOTES: _rule(_C, Role.ANYONE, why=_READ),
    Action.HISTORY: _rule(_C, Role.ANYONE, why=_READ),
    Action.MANIFEST: _rule(_C, Role.ANYONE, why=_READ),
    Action.SUMMARY: _rule(_C, Role.ANYONE, why=_READ),
    Action.RELEASE: _rule(_C, Role.RELEASER, why=_SHIP),
    Action.DEPLOY: _rule(_C, Role.RELEASER, why=_SHIP),
    Action.PROMOTE: _rule(
        _C, Role.RELEASER, Role.SYSTEM, why=_SHIP + "; the bot for a configured release train's departures"
    ),
    Action.QUEUE: _rule(_C, Role.ANYONE, why=_READ),
    Action.CANCEL: _rule(
        _C, Role.REQUESTER, Role.RELEASER, why="a scheduled release: who scheduled it, or the environment's releasers"
    ),
    Action.ROLLBACK: _rule(_C, Role.RELEASER, Role.ONCALL, Role.ROLLBACK_APPROVER, Role.SYSTEM, why=_BACK),
    Action.LOCK: _rule(_C, Role.RELEASER, Role.ONCALL, why="holds the environment for everyone else"),
    Action.UNLOCK: _rule(_C, Role.LOCK_HOLDER, Role.ONCALL, why="only who placed the lock, or on-call"),
    Action.FREEZE: _rule(_C, Role.RELEASER, Role.ONCALL, why="stops releases: releasers and on-call"),
    Action.UNFREEZE: _rule(_C, Role.FREEZER, Role.ONCALL, why="who declared the freeze, or on-call (incident freezes)"),
    Action.APPROVAL_APPROVE: _rule(_B, Role.APPROVER, deny=[Role.REQUESTER], why=_DECIDE),
    Action.APPROVAL_DENY: _rule(_B, Role.APPROVER, deny=[Role.REQUESTER], why=_DECIDE),
    Action.APPROVAL_DENY_REASON: _rule(_M, Role.APPROVER, deny=[Role.REQUESTER], why=_DECIDE),
    Action.RELEASE_RETRY: _rule(_B, Role.RELEASER, why="a retry is a new release through the same gates"),
    Action.RELEASE_ROLLBACK: _rule(_B, Role.RELEASER, Role.ONCALL, Role.ROLLBACK_APPROVER, Role.SYSTEM, why=_BACK),
    Action.CHECK_ROLLBACK: _rule(_B, Role.ONCALL, Role.ROLLBACK_APPROVER, Role.SYSTEM, why=_CHECK),
    Action.CHECK_DISMISS: _rule(_B, Role.ONCALL, Role.ROLLBACK_APPROVER, why=_CHECK),
    Action.CHECK_LOOKS_GOOD: _rule(_B, Role.ONCALL, Role.ROLLBACK_APPROVER, why=_CHECK),
    Action.ALERT_ACK: _rule(_B, Role.ONCALL, Role.ROLLBACK_APPROVER, why=_CHECK),
    Action.HOME_OPENED: _rule(_E, Role.ANYONE, why="each user sees their own App Home"),
    Action.TRAINS: _rule(_C, Role.ANYONE, why=_READ),
    Action.TRAIN_HOLD: _rule(_B, Role.TRAIN_HOLDER, Role.ONCALL, why=_HOLD),
    Action.TRAIN_HOLD_REASON: _rule(_M, Role.TRAIN_HOLDER, Role.ONCALL, why=_HOLD),
    Action.TRAIN_LEAVE_OFF: _rule(
        _B,
        Role.TRAIN_HOLDER,
        Role.RELEASER,
        Role.ONCALL,
        why="one service off one departure: releasers and who may hold",
    ),
}


@dataclass(frozen=True)
class Permission:
    """The answer: allowed, or refused naming the roles that would have been allowed."""

    action: Action
    allowed: bool
    allow: frozenset[Role]
    denied_by: Role | None = None  # set when a held role forbids it (the requester of their own approval)


def permit(action: Action | str, roles: Iterable[Role]) -> Permission:
    """May someone holding ``roles`` take ``action``? Unknown actions are refused (fail closed)."""
    try:
        key = Action(action)
    except ValueError:
        return Permission(Action.HELP, False, frozenset())
    rule = PERMISSIONS[key]
    held = frozenset(roles)
    denied = next((r for r in sorted(rule.deny) if r in held), None)
    return Permission(key, rule.permits(held), rule.allow, denied)


def needed_roles(action: Action | str) -> frozenset[Role]:
    """The roles a rule allows (for asking only the membership questions that matter)."""
    return PERMISSIONS[Action(action)].allow


def table_rows() -> list[tuple[str, str, str, str]]:
    """(surface, action, who may, why) rows for the README, in table order."""
    rows = []
    for action, rule in PERMISSIONS.items():
        who = ", ".join(ROLE_WORDS[r] for r in Role if r in rule.allow)
        if rule.deny:
            who += " — not " + ", ".join(ROLE_WORDS[r] for r in Role if r in rule.deny)
        rows.append((rule.surface.value, action.value, who, rule.why))
    return rows
