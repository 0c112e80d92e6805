"""Paths in ``releasebot.yml`` are relative to the file itself, wherever the bot is started from.

``load_config`` validates with the file's directory in the validation context (:data:`BASE_DIR`); the path
fields then hold absolute paths, so nothing that uses them later depends on the bot's working directory. A
config validated without a file (``parse_config`` of a dict, as tests do) keeps its paths as written:
relative to the bot's working directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, ValidationInfo

BASE_DIR = "base_dir"
"""Key of the config file's directory in the validation context."""


def base_dir(info: ValidationInfo) -> Path | None:
    """The directory relative paths are taken against, or None when the config has no file."""
    context = info.context if isinstance(info.context, dict) else {}
    found = context.get(BASE_DIR)
    return found if isinstance(found, Path) else None


def _against_base(value: Path, info: ValidationInfo) -> Path:
    base = base_dir(info)
    return value if base is None or value.is_absolute() else base / value


def resolve_program(argv: list[str], info: ValidationInfo) -> list[str]:
    """``argv`` with a relative program path (one with a ``/``) made relative to the config file's directory.

    A bare name (``kubectl``) is left to be looked up on ``PATH``, as exec does.
    """
    base = base_dir(info)
    program = argv[0] if argv else ""
    if base is None or "/" not in program or Path(program).is_absolute():
        return argv
    return [str(base / program), *argv[1:]]


ConfigPath = Annotated[Path, AfterValidator(_against_base)]
"""A path relative to the config file's directory (absolute once loaded from a file)."""
