"""Generate docs/config.md from the pydantic models of releasebot.yml (a test checks it is current).

Run: python scripts/gen_config_docs.py > docs/config.md   (or `make docs`)
"""

from __future__ import annotations

import sys
import types
import typing
from datetime import time, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.config import Config  # noqa: E402
from bot.core.durations import format_duration  # noqa: E402

HEADER = """# Configuration reference (`releasebot.yml`)

Generated from the pydantic models in `bot/config/` by `scripts/gen_config_docs.py`; a test fails when
this file and the models disagree. Validate a file with `release-bot check-config FILE`: every error is
printed with its line, column and path (e.g. `releasebot.yml:20:9 environments.prod.checks[0].fail_if: …`).
The file is YAML 1.2: only `true`/`false` are booleans, and a key given twice is an error. Durations are written
`30s`, `5m`, `1h30m`, `2d`; times `HH:MM` in the configured zone. Paths (deploy programs and `cwd`, `repo.path`,
`manifest.repo`, `ca_file`) are relative to the config file, wherever the bot is started. An example is in
`examples/releasebot.yml`.

| key | type | default | meaning |
|---|---|---|---|
"""


# How the keys of a nested map are named where `<name>` is taken by its parent's.
_KEY_NAMES = {"services.<name>.environments": "<env>"}


def _models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found += _models(arg)
    return found


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _type_name(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_name(a) for a in typing.get_args(annotation))
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in typing.get_args(annotation))
    if origin is list:
        return f"list of {_type_name(typing.get_args(annotation)[0])}"
    if origin is dict:
        key, value = typing.get_args(annotation)
        return f"map of {_type_name(key)} → {_type_name(value)}"
    if annotation is type(None):
        return "null"
    if annotation is timedelta:
        return "duration"
    if annotation is time:
        return "HH:MM"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if value is None or value is PydanticUndefined:
        return "—"
    if isinstance(value, BaseModel) and value.model_dump(exclude_defaults=True) == {}:
        return "see below"
    return f"`{_yaml(value)}`"


def _yaml(value: Any) -> str:
    """A default as a user writes it in ``releasebot.yml`` (YAML flow style): `5m`, `[mon, tue]`, `false`."""
    if isinstance(value, BaseModel):
        return _yaml(value.model_dump(by_alias=True, exclude_none=True))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, time):
        return f"{value:%H:%M}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {_yaml(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_yaml(item) for item in value) + "]"
    return str(value)


def rows(model: type[BaseModel], prefix: str, seen: set[str]) -> list[str]:
    out: list[str] = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        path = f"{prefix}{key}"
        description = (field.description or "").replace("\n", " ").replace("    ", " ")
        out.append(f"| `{path}` | {_type_name(field.annotation)} | {_default(field)} | {description} |")
        subs = _models(field.annotation)
        for sub in subs:
            origin = typing.get_origin(field.annotation)
            inner = typing.get_args(field.annotation)
            if origin is dict:
                child = f"{path}.{_KEY_NAMES.get(path, '<name>')}."
            elif origin is list or (inner and typing.get_origin(inner[0]) is list):
                child = f"{path}[]."
            else:
                child = f"{path}."
            if f"{child}{sub.__name__}" in seen:
                continue
            seen.add(f"{child}{sub.__name__}")
            if len(subs) > 1:
                tag = next(iter(sub.model_fields))
                value = typing.get_args(sub.model_fields[tag].annotation)[0]
                out.append(f"| *`{path}` with `{tag}: {value}`* | | | |")
            out += rows(sub, child, seen)
    return out


def generate() -> str:
    return HEADER + "\n".join(rows(Config, "", set())) + "\n"


if __name__ == "__main__":
    sys.stdout.write(generate())
