"""Release trains in ``releasebot.yml``: per environment, when it departs, what it carries and who may hold it.

``trains.<env>`` is keyed by the environment the train releases to. Its structure (slots, durations, lists) is
checked by the model; its names (the environment, ``from``, ``services``, ``hold``) by :func:`train_problems`,
which ``references`` runs over the document as written so they are reported beside every other problem.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, Field, field_validator

from bot.config.source import Loc
from bot.config.types import Duration, Model
from bot.core.trains import Slot, parse_slot, slots_of

MAX_NOTICE = timedelta(days=1)


def _departure(text: str) -> str:
    parse_slot(text)  # ValueError says what is wrong with it
    return text


DepartureText = Annotated[str, AfterValidator(_departure)]


class Train(Model):
    departs: list[DepartureText] = Field(min_length=1)
    """When it departs, in the configured time zone: `'<days> HH:MM'`, days as `Mon-Thu`, `Fri` or `Mon,Wed`."""
    from_: str | None = Field(default=None, alias="from")
    """The stage whose running version it carries, per service; must be the stage before this environment in
    the pipeline of every service it carries (default: that stage)."""
    services: list[str] | None = None
    """The services it carries (default: every service with this environment in its pipeline)."""
    notice: Duration = timedelta(minutes=15)
    """How long before departure the boarding call is posted in each service's channel."""
    hold: list[str] = Field(min_length=1)
    """Groups whose members may hold a departure (on-call may too); releasers of the environment and these
    groups may leave a service off."""

    @field_validator("notice")
    @classmethod
    def _notice(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0) or value > MAX_NOTICE:
            raise ValueError("notice must be more than 0 and at most 1 day, e.g. 15m")
        return value

    def slots(self) -> tuple[Slot, ...]:
        """The parsed ``departs`` entries."""
        return slots_of(self.departs)


def carried(train: Train, env: str, pipelines: dict[str, list[str]]) -> list[str]:
    """The services ``train`` (to ``env``) carries: its ``services``, else every one with ``env`` in its pipeline."""
    if train.services is not None:
        return list(train.services)
    return [name for name, pipeline in pipelines.items() if env in pipeline]


# --- cross-references, on the raw document -----------------------------------------------------------------
Found = list[tuple[Loc, str]]


def train_problems(
    trains: Any, services: dict[Any, Any] | None, environments: dict[Any, Any] | None, groups: dict[Any, Any] | None
) -> Found:
    """Every name a ``trains`` section gets wrong, each at its path. ``None`` arguments had the wrong shape
    (reported as such elsewhere), so nothing is checked against them."""
    if not isinstance(trains, dict):
        return []
    found: Found = []
    for env, train in trains.items():
        if not isinstance(train, dict):
            continue
        here: Loc = ("trains", env)
        if environments is not None and env not in environments:
            found.append((here, f"undefined environment {env!r}"))
            continue
        if groups is not None:
            for i, group in enumerate(_items(train.get("hold"))):
                if isinstance(group, str) and group not in groups:
                    found.append(((*here, "hold", i), f"undefined group {group!r}"))
        if services is not None:
            found += _carried(here, env, train, services)
    return found


def _carried(here: Loc, env: Any, train: dict[Any, Any], services: dict[Any, Any]) -> Found:
    found: Found = []
    pipelines = {
        name: [str(e) for e in _items((svc if isinstance(svc, dict) else {}).get("pipeline"))]
        for name, svc in services.items()
    }
    named = train.get("services")
    if isinstance(named, list):
        chosen: list[tuple[Loc, Any]] = [((*here, "services", i), name) for i, name in enumerate(named)]
    else:
        chosen = [((*here, "services"), name) for name, pipeline in pipelines.items() if env in pipeline]
        if not chosen:
            return [(here, f"no service has {env!r} in its pipeline, so this train would carry nothing")]
    source = train.get("from")
    for where, name in chosen:
        if not isinstance(name, str):
            continue
        pipeline = pipelines.get(name)
        if pipeline is None:
            found.append((where, f"undefined service {name!r}"))
            continue
        if env not in pipeline:
            found.append((where, f"{env!r} is not in the pipeline of {name} ({', '.join(pipeline)})"))
            continue
        index = pipeline.index(env)
        previous = pipeline[index - 1] if index > 0 else None
        if previous is None:
            found.append((where, f"{env!r} is the first stage of {name}: a train needs a stage to carry from"))
        elif isinstance(source, str) and source != previous:
            stage = "not in the pipeline" if source not in pipeline else f"not the stage before {env}"
            found.append(
                (
                    (*here, "from"),
                    f"{source!r} is {stage} of {name} ({' → '.join(pipeline)}): a train carries what the "
                    f"previous stage runs",
                )
            )
    return found


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
