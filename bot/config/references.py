"""Cross-references of ``releasebot.yml`` (names, pipelines, groups) and settings that can never work.

They are read off the document as written, not off the validated models, so they are reported in the same
pass as every structural error: a pipeline typo and an undefined group show up beside a bad duration, not
after it is fixed. Whatever has the wrong shape is skipped here; its structural error is reported anyway.
"""

from __future__ import annotations

from typing import Any

from bot.config.source import Loc
from bot.config.trains import train_problems
from bot.config.types import NAME

ONCALL_GROUP = "oncall"
"""The group that approves rollbacks (and break-glass releases) when an environment names none."""

Found = list[tuple[Loc, str]]


def reference_problems(data: Any) -> Found:
    """Every cross-reference problem of the raw document ``data``, each with the path of the node it names."""
    if not isinstance(data, dict):
        return []
    found: Found = []
    # None: missing or the wrong shape (reported as such), so nothing is checked against it. No groups is none.
    services, environments = _mapping(data.get("services")), _mapping(data.get("environments"))
    groups = _mapping(data.get("groups", {}))
    for section, names in (("services", services), ("environments", environments), ("groups", groups)):
        for name in names or {}:
            if not isinstance(name, str) or not NAME.match(name):
                found.append(((section,), f"{name!r}: names are lowercase letters, digits, '-' and '_'"))
    for name, service in (services or {}).items():
        found += _service(name, _mapping(service) or {}, environments)
    for name, environment in (environments or {}).items():
        found += _environment(name, _mapping(environment) or {}, groups)
    found += train_problems(data.get("trains"), services, environments, groups)
    found += _compare_needs_a_canary(services, environments)
    for i, freeze in enumerate(_items(data.get("freezes"))):
        for j, env in enumerate(_items((_mapping(freeze) or {}).get("environments"))):
            if environments is not None and env not in environments:
                found.append((("freezes", i, "environments", j), f"undefined environment {env!r}"))
    return found


def _service(name: str, service: dict[Any, Any], environments: dict[Any, Any] | None) -> Found:
    here: Loc = ("services", name)
    found: Found = []
    pipeline = _items(service.get("pipeline"))
    if environments is not None:
        for i, env in enumerate(pipeline):
            if _hashable(env) and env not in environments:
                found.append(((*here, "pipeline", i), f"undefined environment {env!r}"))
    if len({str(env) for env in pipeline}) != len(pipeline):
        found.append(((*here, "pipeline"), "an environment appears twice"))
    for env in _mapping(service.get("environments")) or {}:
        if environments is not None and env not in environments:
            found.append(((*here, "environments", env), f"undefined environment {env!r}"))
        elif isinstance(service.get("pipeline"), list) and env not in pipeline:
            found.append(((*here, "environments", env), f"{env!r} is not in the pipeline of {name}"))
    if environments is not None:
        production = [env for env in pipeline if _hashable(env) and _production(environments.get(env))]
        if len(production) > 1:
            found.append(
                (
                    (*here, "pipeline"),
                    f"has {len(production)} production environments ({', '.join(map(str, production))}): "
                    "DORA and the summaries count one per service",
                )
            )
    return found


def _environment(name: str, environment: dict[Any, Any], groups: dict[Any, Any] | None) -> Found:
    here: Loc = ("environments", name)
    found: Found = []
    if groups is None:
        return found  # `groups` has the wrong shape: nothing here can be checked against it
    for i, group in enumerate(_items(environment.get("allowed"))):
        if _hashable(group) and group not in groups:
            found.append(((*here, "allowed", i), f"undefined group {group!r}"))
    rollback = _mapping(environment.get("rollback")) or {}
    policies = (
        ((*here, "approvals"), _mapping(environment.get("approvals")) or {}, None),
        ((*here, "rollback", "approvals"), _mapping(rollback.get("approvals")) or {}, ONCALL_GROUP),
    )
    for where, policy, default in policies:
        named = _items(policy.get("from"))
        undefined = False
        for i, group in enumerate(named):
            if _hashable(group) and group not in groups:
                found.append(((*where, "from", i), f"undefined group {group!r}"))
                undefined = True
        if not undefined:
            found += _enough_approvers(where, policy, [str(g) for g in named], default, groups)
    return found


def _enough_approvers(
    where: Loc, policy: dict[Any, Any], named: list[str], default: str | None, groups: dict[Any, Any]
) -> Found:
    """``required`` must not exceed the people who may approve, when their number is known."""
    required = policy.get("required", 0)
    if not isinstance(required, int) or isinstance(required, bool) or required <= 0:
        return []
    approvers = named or ([default] if default is not None else [])
    if not approvers:
        return []  # anyone but the requester may approve
    if not named and default not in groups:
        why = f"needs {required} approval(s) but names no groups (`from`) and no {default!r} group is defined"
        return [((*where, "required"), f"{why}: nobody could approve")]
    members: set[str] = set()
    for group in approvers:
        for member in _items(groups.get(group)):
            if not isinstance(member, str) or member.startswith("S"):
                return []  # a Slack user group: its size is only known in Slack
            members.add(member)
    if required <= len(members):
        return []
    which = ", ".join(approvers)
    return [
        (
            (*where, "required"),
            f"needs {required} approvals but {which} {'has' if len(approvers) == 1 else 'have'} only "
            f"{len(members)} member(s): it could never be approved",
        )
    ]


def _compare_needs_a_canary(services: dict[Any, Any] | None, environments: dict[Any, Any] | None) -> Found:
    """A ``compare: canary_to_stable`` check needs a canary (or blue/green) to compare: one a service would run
    under an all_at_once strategy is an error at the check's ``compare``, once however many services share it."""
    found: dict[Loc, str] = {}
    for name, service in (services or {}).items():
        own_envs = _mapping((_mapping(service) or {}).get("environments")) or {}
        for env in _items((_mapping(service) or {}).get("pipeline")):
            if not _hashable(env) or env not in (environments or {}):
                continue
            shared, own = _mapping((environments or {})[env]) or {}, _mapping(own_envs.get(env)) or {}
            where: Loc = (
                ("services", name, "environments", env) if own.get("checks") is not None else ("environments", env)
            )
            checks = own.get("checks") if own.get("checks") is not None else shared.get("checks")
            strategy = _mapping(own.get("strategy") if own.get("strategy") is not None else shared.get("strategy"))
            kind = (strategy or {}).get("type", "all_at_once")
            if kind in ("canary", "blue_green"):
                continue
            for i, check in enumerate(_items(checks)):
                if (_mapping(check) or {}).get("compare") is not None:
                    found[(*where, "checks", i, "compare")] = (
                        f"compare needs a canary or blue_green strategy: {name} rolls out {kind} in {env}"
                    )
    return list(found.items())


def _production(environment: Any) -> bool:
    return (_mapping(environment) or {}).get("production") is True


def _mapping(value: Any) -> dict[Any, Any] | None:
    return value if isinstance(value, dict) else None


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _hashable(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)
