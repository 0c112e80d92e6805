"""The one place a user's rights are looked up: their roles (group membership is I/O) → the pure table.

Every command, button and modal path calls :meth:`Gatekeeper.require` with its action; the answer
comes from :func:`bot.policy.permissions.permit`, the words from :mod:`bot.views.refusals`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.config import Config
from bot.config.references import ONCALL_GROUP
from bot.engine.errors import NotPermitted
from bot.policy.permissions import Action, Role, needed_roles, permit
from bot.ports import Clock, Directory
from bot.views.refusals import Who, permission_refusal

log = logging.getLogger("release_bot.engine")


@dataclass(frozen=True)
class Context:
    """The people an action is relative to (absent when the action has none)."""

    requester: str | None = None
    lock_holder: str | None = None
    freezer: str | None = None
    approvers: Sequence[str] = ()  # groups the open approval names (empty: anyone but the requester)
    holders: Sequence[str] = ()  # a release train's `hold` groups (empty: nobody holds by this role)
    system: bool = False  # the bot acting on its own (auto-rollback, resuming after a crash)


class Gatekeeper:
    def __init__(self, config: Config, directory: Directory, clock: Clock, cache_ttl: timedelta) -> None:
        self._config = config
        self._directory = directory
        self._clock = clock
        self._ttl = cache_ttl
        self._cache: dict[str, tuple[datetime, frozenset[str]]] = {}

    async def members_of(self, group_id: str) -> frozenset[str]:
        """Members of a Slack user group, cached for a while (Slack rate-limits this call)."""
        now = self._clock.now()
        cached = self._cache.get(group_id)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        try:
            members = await self._directory.group_members(group_id)
        except Exception:
            log.exception("could not resolve user group %s", group_id)
            # Fail closed, but keep serving a recent answer rather than locking everyone out.
            return cached[1] if cached else frozenset()
        self._cache[group_id] = (now, members)
        return members

    async def in_groups(self, user: str, groups: Sequence[str]) -> bool:
        """True when ``user`` belongs to any of the named config groups (U… members or S… user groups)."""
        for name in groups:
            for member in self._config.groups.get(name, []):
                if member == user:
                    return True
                if member.startswith("S") and user in await self.members_of(member):
                    return True
        return False

    def who(self, env: str, ctx: Context = Context()) -> Who:
        environment = self._config.environments[env]
        return Who(
            env=env,
            releasers=list(environment.allowed or []),
            oncall=[ONCALL_GROUP] if ONCALL_GROUP in self._config.groups else [],
            rollback_approvers=list(environment.rollback.approvals.from_ or [ONCALL_GROUP]),
            approvers=list(ctx.approvers),
            train_holders=list(ctx.holders),
            lock_holder=ctx.lock_holder,
            freezer=ctx.freezer,
            requester=ctx.requester,
        )

    async def roles(self, user: str, who: Who, ctx: Context, wanted: frozenset[Role]) -> frozenset[Role]:
        """The roles ``user`` holds among ``wanted`` (only those memberships are looked up)."""
        held: set[Role] = set()
        if ctx.system:
            held.add(Role.SYSTEM)
        if ctx.requester is not None and user == ctx.requester:
            held.add(Role.REQUESTER)
        if ctx.lock_holder is not None and user == ctx.lock_holder:
            held.add(Role.LOCK_HOLDER)
        if ctx.freezer is not None and user == ctx.freezer:
            held.add(Role.FREEZER)
        if Role.RELEASER in wanted and (not who.releasers or await self.in_groups(user, who.releasers)):
            held.add(Role.RELEASER)  # an environment that names no releasers is open to everyone
        if Role.ONCALL in wanted and await self.in_groups(user, who.oncall):
            held.add(Role.ONCALL)
        if Role.ROLLBACK_APPROVER in wanted and await self.in_groups(user, who.rollback_approvers):
            held.add(Role.ROLLBACK_APPROVER)
        if Role.APPROVER in wanted and (not who.approvers or await self.in_groups(user, who.approvers)):
            held.add(Role.APPROVER)
        if Role.TRAIN_HOLDER in wanted and await self.in_groups(user, who.train_holders):
            held.add(Role.TRAIN_HOLDER)
        return frozenset(held)

    async def require(self, action: Action, user: str, env: str, ctx: Context = Context()) -> None:
        """Pass, or raise :class:`NotPermitted` with the words naming who may."""
        who = self.who(env, ctx)
        answer = permit(action, await self.roles(user, who, ctx, needed_roles(action)))
        if not answer.allowed:
            raise NotPermitted(permission_refusal(answer, who))
