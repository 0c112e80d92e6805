"""Check that requirements.lock matches pyproject.toml and is installable with `pip --require-hashes`.

Every requirement of ``[project].dependencies`` and ``[build-system].requires`` must appear in the
lock pinned with ``==`` to a version its specifier allows, and every requirement line in the lock must
be such a pin carrying at least one ``--hash=sha256:``. Problems are printed one per line and the exit
status is 1; a matching lock prints one summary line and exits 0.

Run: `python scripts/check_lock.py [--lock requirements.lock] [--pyproject pyproject.toml]`
(regenerate the lock with `make lock` after changing dependencies).
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})\b")
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


@dataclass
class Pin:
    """One requirement of the lock: name==version and its sha256 hashes."""

    name: str
    version: str
    hashes: list[str] = field(default_factory=list)
    line: int = 0


@dataclass
class Lock:
    pins: dict[str, Pin]
    problems: list[str]


def logical_lines(text: str) -> list[tuple[int, str]]:
    """Join backslash continuations and drop comments: (first physical line number, content)."""
    out: list[tuple[int, str]] = []
    buffer, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not buffer:
            start = number
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        buffer += line
        if buffer.strip():
            out.append((start, buffer.strip()))
        buffer = ""
    if buffer.strip():
        out.append((start, buffer.strip()))
    return out


def parse_lock(text: str) -> Lock:
    """Read the pins of a pip-compile lock; anything that is not a hashed ``==`` pin is a problem."""
    pins: dict[str, Pin] = {}
    problems: list[str] = []
    for number, line in logical_lines(text):
        if line.startswith("-"):
            problems.append(f"line {number}: option {line.split()[0]!r} in the lock (generate it without it)")
            continue
        match = PIN.match(line)
        if match is None:
            problems.append(f"line {number}: {line.split()[0]!r} is not pinned with == (every line must be)")
            continue
        name = canonicalize_name(match.group(1))
        pin = Pin(name=name, version=match.group(2), hashes=HASH.findall(line), line=number)
        if not pin.hashes:
            problems.append(f"line {number}: {name}=={pin.version} has no --hash=sha256: (pip --require-hashes)")
        if name in pins:
            problems.append(f"line {number}: {name} is pinned twice (also on line {pins[name].line})")
        pins[name] = pin
    return Lock(pins=pins, problems=problems)


def declared(pyproject: dict[str, Any]) -> list[tuple[str, Requirement]]:
    """The requirements the lock must cover, with where they are declared."""
    wanted: list[tuple[str, Requirement]] = []
    sources = (
        ("[project].dependencies", pyproject.get("project", {}).get("dependencies", [])),
        ("[build-system].requires", pyproject.get("build-system", {}).get("requires", [])),
    )
    for where, requirements in sources:
        for text in requirements:
            wanted.append((where, Requirement(text)))
    return wanted


def check(lock_text: str, pyproject: dict[str, Any]) -> list[str]:
    """All the ways the lock fails to match ``pyproject``; empty when it matches."""
    lock = parse_lock(lock_text)
    problems = list(lock.problems)
    try:
        wanted = declared(pyproject)
    except InvalidRequirement as exc:
        return [*problems, f"pyproject.toml: {exc}"]
    for where, requirement in wanted:
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue  # not for this platform / Python, so pip-compile rightly left it out
        name = canonicalize_name(requirement.name)
        pin = lock.pins.get(name)
        if pin is None:
            problems.append(f"{requirement} ({where}) is missing from the lock: run `make lock`")
            continue
        try:
            allowed = requirement.specifier.contains(Version(pin.version), prereleases=True)
        except InvalidVersion:
            problems.append(f"line {pin.line}: {name}=={pin.version} is not a valid version")
            continue
        if not allowed:
            problems.append(
                f"line {pin.line}: {name}=={pin.version} does not satisfy {requirement} ({where}): run `make lock`"
            )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lock", type=Path, default=Path("requirements.lock"))
    parser.add_argument("--pyproject", type=Path, default=Path("pyproject.toml"))
    args = parser.parse_args(argv)
    try:
        lock_text = args.lock.read_text()
        pyproject = tomllib.loads(args.pyproject.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        print(f"check_lock: {exc}", file=sys.stderr)
        return 1
    problems = check(lock_text, pyproject)
    for problem in problems:
        print(f"{args.lock}: {problem}", file=sys.stderr)
    if problems:
        print(f"check_lock: {len(problems)} problem(s); the lock does not match {args.pyproject}", file=sys.stderr)
        return 1
    pins = parse_lock(lock_text).pins
    print(f"check_lock: {args.lock} matches {args.pyproject}: {len(pins)} pins, all hashed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
