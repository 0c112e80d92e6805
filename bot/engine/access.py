"""Who may do what: config groups of Slack users (U…) and user groups (S…, resolved through Slack)."""

from __future__ import annotations

from collections.abc import Sequence

from bot.engine.base import EngineBase, log


class AccessMixin(EngineBase):
    async def members_of(self, group_id: str) -> frozenset[str]:
        """Members of a Slack user group, cached for ``group_cache_ttl`` (Slack rate-limits this call)."""
        now = self.now()
        cached = self._group_cache.get(group_id)
        if cached is not None and now - cached[0] < self.deps.group_cache_ttl:
            return cached[1]
        try:
            members = await self.deps.directory.group_members(group_id)
        except Exception:
            log.exception("could not resolve user group %s", group_id)
            # Fail closed, but keep serving a recent answer rather than locking everyone out.
            return cached[1] if cached else frozenset()
        self._group_cache[group_id] = (now, members)
        return members

    async def in_groups(self, user: str, groups: Sequence[str]) -> bool:
        """True when ``user`` belongs to any of the named config groups."""
        for name in groups:
            for member in self.config.groups.get(name, []):
                if member == user:
                    return True
                if member.startswith("S") and user in await self.members_of(member):
                    return True
        return False
