"""Run a document's terminal sessions as written, and check that they print what the document shows.

A document marks what a reader types and sees in ```` ```console ```` blocks:

- ``$ command`` is typed at the shell (a line ending in ``\\`` goes on with the next line);
- ``> text`` is typed at the prompt of the program the last ``$`` command started (the console), one line each;
- every other line is what the reader sees: an excerpt, in order, where ``…`` stands for anything left out
  (a line of its own: lines left out; inside a line: part of it, such as a path or a time).

A file the reader writes is a block whose info string names it: ```` ```yaml file=my.yml ````.

All the blocks of a document are one reader's session: one ``bash`` runs every command in order (so ``cd``,
``export`` and ``. .venv/bin/activate`` carry on to the commands after them), with its input typed from the
``>`` lines and its files written where the reader is when the document shows them. Each command must exit 0,
except one the document shows refusing (a line ``N error(s)``, or one starting ``release-bot: ``), which must
not.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

_FENCE = re.compile(r"^( *)```([^\n]*)\n(.*?)^\1```$", re.MULTILINE | re.DOTALL)  # also in a list item
_STEP = re.compile(r"\n?@@doc-step (\d+) start@@\n(.*?)\n?@@doc-step \1 exit (\d+)@@\n", re.DOTALL)
_WHERE = re.compile(r"@@doc-where (.*)@@\n")
_ERRORS = re.compile(r"^\d+ error\(s\)$")
ELIDED = "…"


@dataclass
class Command:
    """One ``$`` command with the lines typed at its prompt and the lines the document shows it print."""

    text: str
    typed: list[str] = field(default_factory=list)
    shown: list[str] = field(default_factory=list)

    @property
    def fails(self) -> bool:
        """The document shows it refuse: its output ends ``N error(s)`` or says ``release-bot: …`` (a refusal)."""
        return any(_ERRORS.match(line.strip()) or line.startswith("release-bot: ") for line in self.shown)


@dataclass(frozen=True)
class File:
    name: str
    text: str


Step = Command | File


def fenced_blocks(markdown: str) -> list[tuple[str, str]]:
    """Every fenced block as (info string, body), in order; a block indented in a list item, unindented."""
    blocks = []
    for match in _FENCE.finditer(markdown):
        indent, info, body = match.groups()
        lines = body.splitlines(keepends=True)
        blocks.append((info.strip(), "".join(line.removeprefix(indent) for line in lines)))
    return blocks


def steps(markdown: str) -> list[Step]:
    """The session the document's console and file blocks describe, in order. A console block that starts
    with ``>`` goes on typing at the program the block before it started."""
    found: list[Step] = []
    for info, body in fenced_blocks(markdown):
        words = info.split()
        named = [w.removeprefix("file=") for w in words[1:] if w.startswith("file=")]
        if named:
            found.append(File(named[0], body))
        elif words[:1] == ["console"]:
            _console_block(body, found)
    return found


def _console_block(body: str, found: list[Step]) -> None:
    current = found[-1] if found and isinstance(found[-1], Command) else None
    lines = iter(body.splitlines())
    for line in lines:
        if line.startswith("$ "):
            text = line[2:]
            while text.endswith("\\"):
                text += "\n" + next(lines)
            current = Command(text)
            found.append(current)
        elif line.startswith("> "):
            assert current is not None, f"typed before any command: {line!r}"
            current.typed.append(line[2:])
        elif line.strip():
            assert current is not None, f"shown before any command: {line!r}"
            current.shown.append(line)


def script(session: list[Step]) -> str:
    """The session as one bash script; each command's output (its stderr too) between numbered markers."""
    parts = []
    for number, step in enumerate(session):
        if isinstance(step, File):
            parts.append(f"cat > {step.name} <<'__DOC_FILE__'\n{step.text}__DOC_FILE__\n")
            continue
        typed = "".join(f"{line}\n" for line in step.typed)
        stdin = f"<<'__DOC_TYPED__'\n{typed}__DOC_TYPED__" if step.typed else "</dev/null"
        parts.append(
            f"printf '\\n@@doc-step {number} start@@\\n'\n"
            f"{{ {step.text}\n}} 2>&1 {stdin}\n"
            f"printf '\\n@@doc-step {number} exit %d@@\\n' \"$?\"\n"
        )
    parts.append('printf "@@doc-where %s@@\\n" "$PWD"\n')
    return "".join(parts)


@dataclass
class Ran:
    """What each command printed (by its index in the session), its exit status, and where the reader ended."""

    output: dict[int, str]
    status: dict[int, int]
    where: Path


def run_session(session: list[Step], *, cwd: Path, env: dict[str, str], timeout: float = 300) -> Ran:
    done = subprocess.run(  # noqa: S603 - bash running the document's own commands
        ["bash", "-c", script(session)],  # noqa: S607
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    where = _WHERE.search(done.stdout)
    assert where is not None, f"the session stopped early (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
    found = {int(m.group(1)): m for m in _STEP.finditer(done.stdout)}
    return Ran(
        output={n: m.group(2) for n, m in found.items()},
        status={n: int(m.group(3)) for n, m in found.items()},
        where=Path(where.group(1)),
    )


def missing(shown: list[str], printed: str) -> str | None:
    """None when ``printed`` has every line of ``shown``, in order (``…`` as above); else what is missing."""
    lines = printed.splitlines()
    at = 0
    for expected in shown:
        parts = [part.strip() for part in expected.strip().split(ELIDED)]
        if not any(parts):
            continue
        for index in range(at, len(lines)):
            if _matches(parts, lines[index]):
                at = index + 1
                break
        else:
            rest = "\n".join(lines[at:])
            return f"{expected.strip()!r} is not printed (in order); what follows the last line found:\n{rest}"
    return None


def _matches(parts: list[str], line: str) -> bool:
    """The parts appear in ``line`` in order (a part left empty, at an end, matches anything there)."""
    at = 0
    for part in parts:
        found = line.find(part, at)
        if found < 0:
            return False
        at = found + len(part)
    return True
