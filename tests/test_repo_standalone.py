"""The repository stands alone: no test, script, bench, CI step or bot module reads a path outside it.

A clone with nothing beside it must pass `make test`. What breaks that is a path that leaves the checkout:
``ROOT.parent / "specs"``, ``Path(__file__).parents[3]``, ``open("../data.json")``, a Makefile's
``cp ../x``, or an absolute path from someone's machine (a home directory, a CI workspace). Data a test
needs is vendored under tests/data/ with its source and licence (see tests/data/slack/README.md).

The scan reads every tracked (and untracked, not ignored) file under the directories below. Python is
read through its syntax tree, so that a hostile test input such as ``version="../etc"`` is not mistaken
for a path while ``Path(__file__).resolve().parents[2]`` is followed to where it points.
"""

from __future__ import annotations

import ast
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parent.parent
# What runs when someone types `make test`, `make bench` or `.ci/run`, and the code those run.
SCANNED = re.compile(r"^(tests|scripts|bench|bot|commands|\.ci)/|^Makefile$")

# Absolute paths into a person's or a CI machine's directories (never part of a checkout).
MACHINE_PATH = re.compile(r"(?<![\w.~:/-])(/(?:work|home|Users|root|mnt|srv)/|[A-Za-z]:\\Users\\)")
# Shell/Makefile: a relative path with a `..` segment (`../x`, `a/../../x`); `1.2.3..1.2.4` is not one.
RELATIVE_DOTDOT = re.compile(r"(?<![\w./~$@+-])((?:[\w@+-][\w.@+-]*/|\./)*\.\.(?![\w.@+-])(?:/[\w.@+-]*)*)")
# Shell: `..` after a base: the script's own directory (resolved from the file), or a variable (unknown).
ANCHORED_DOTDOT = re.compile(
    r"(?P<base>\$\(dirname\s+\"?\$\{?(?:0|BASH_SOURCE(?:\[0\])?)\}?\"?\)|\$\{BASH_SOURCE(?:\[0\])?%/\*\}"
    r"|\$\{0%/\*\}|\$\{?\w+\}?|\$\(\w+\))(?P<path>(?:/\.\.(?![\w.@+-]))+(?:/[\w.@+-]*)*)"
)
FILE_DIR_BASES = re.compile(r"\$\(dirname|BASH_SOURCE|\$\{0%")
ROOT_BASES = {"$(CURDIR)", "$PWD", "${PWD}", "$(PWD)"}

PATH_CALLS = {"Path", "PurePath", "PosixPath", "PurePosixPath", "open", "fspath", "abspath", "realpath", "normpath"}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    why: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.why}"


def _descend(depth: int, relative: str) -> tuple[int, int]:
    """(the depth below the root after walking ``relative`` from ``depth``, the lowest depth on the way)."""
    lowest = depth
    for part in relative.split("/"):
        if part in ("", "."):
            continue
        depth += -1 if part == ".." else 1
        lowest = min(lowest, depth)
    return depth, lowest


class _PathWalk(ast.NodeVisitor):
    """Follows path expressions as a depth below the repository root; reports those that climb above it.

    ``__file__`` is the file's own depth (tests/test_x.py: 2); a relative string given to ``Path()`` or
    ``open()`` starts at the root (pytest, make and CI run there). ``.parent``, ``.parents[n]``,
    ``os.path.dirname`` climb; ``/ "a/.."``, ``joinpath`` and ``os.path.join`` walk their segments. Names
    assigned a path (``ROOT = …``) keep it; a name ending in ROOT that is not assigned here (imported) is the
    root. Anything else (a variable segment, an absolute path) counts as
    one level down: the machine-path check covers absolute ones.
    """

    def __init__(self, relative: PurePosixPath) -> None:
        self.file_depth = len(relative.parts)
        self.names: dict[str, int] = {}
        self.memo: dict[int, int | None] = {}
        self.escapes: dict[int, str] = {}  # line → why (one report a line)

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        depth = self.depth(node.value)
        for target in node.targets:
            if isinstance(target, ast.Name) and depth is not None:
                self.names[target.id] = depth
            self.visit(target)

    def generic_visit(self, node: ast.AST) -> None:
        if isinstance(node, ast.expr):
            self.depth(node)
        super().generic_visit(node)

    def depth(self, node: ast.expr) -> int | None:
        if id(node) not in self.memo:
            self.memo[id(node)] = self._depth(node)
        return self.memo[id(node)]

    def _walk(self, node: ast.expr, depth: int | None, parts: list[ast.expr]) -> int | None:
        """``depth`` joined with ``parts`` (string constants walked segment by segment)."""
        if depth is None:
            return None
        for part in parts:
            if isinstance(part, ast.Constant) and isinstance(part.value, str):
                if part.value.startswith("/"):
                    return None
                depth, lowest = _descend(depth, part.value)
                self._check(node, lowest)
            else:
                depth += 1
        return depth

    def _check(self, node: ast.expr, depth: int) -> None:
        if depth < 0:
            levels = "level" if depth == -1 else "levels"
            self.escapes.setdefault(node.lineno, f"path climbs {-depth} {levels} above the repository root")

    def _depth(self, node: ast.expr) -> int | None:
        match node:
            case ast.Name(id="__file__"):
                return self.file_depth
            case ast.Name(id=name):
                # An imported ROOT / REPO_ROOT (not assigned in this file) is taken at its word.
                return self.names.get(name, 0 if name.endswith("ROOT") else None)
            case ast.Attribute(value=inner, attr="parent"):
                return self._climb(node, self.depth(inner), 1)
            case ast.Subscript(value=ast.Attribute(value=inner, attr="parents"), slice=ast.Constant(value=int(n))):
                return self._climb(node, self.depth(inner), n + 1)
            case ast.BinOp(left=left, op=ast.Div(), right=right):
                return self._walk(node, self.depth(left), [right])
            case ast.Call(func=ast.Attribute(value=ast.Name(id="Path"), attr="home")):
                self.escapes.setdefault(node.lineno, "Path.home() is outside the repository")
                return None
            case ast.Call(func=ast.Attribute(attr="cwd" | "getcwd"), args=[]):
                return 0
            case ast.Call(func=ast.Attribute(value=inner, attr="resolve" | "absolute")):
                return self.depth(inner)
            case ast.Call(func=ast.Attribute(value=inner, attr="joinpath"), args=args):
                return self._walk(node, self.depth(inner), args)
            case ast.Call(func=func, args=[first, *rest]):
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name == "dirname" and not rest:
                    return self._climb(node, self.depth(first), 1)
                if name == "join" and isinstance(func, ast.Attribute) and ast.unparse(func) == "os.path.join":
                    return self._walk(node, self._start(first), rest)
                if name in PATH_CALLS:
                    return self._walk(node, self._start(first), rest)
        return None

    def _start(self, node: ast.expr) -> int | None:
        """Where a path argument starts: a relative string at the root, else wherever the expression is."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return self._walk(node, 0, [node])
        return self.depth(node)

    def _climb(self, node: ast.expr, depth: int | None, levels: int) -> int | None:
        if depth is None:
            return None
        self._check(node, depth - levels)
        return depth - levels


def _python_findings(path: str, source: str) -> list[Finding]:
    tree = ast.parse(source, filename=path)
    walk = _PathWalk(PurePosixPath(path))
    walk.visit(tree)
    found = [Finding(path, line, why) for line, why in walk.escapes.items()]
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and (match := MACHINE_PATH.search(node.value))
        ):
            found.append(Finding(path, node.lineno, f"absolute machine path {match.group(1)!r}"))
    return found


def _text_findings(path: str, text: str) -> list[Finding]:
    file_depth = len(PurePosixPath(path).parts) - 1  # the file's directory
    found: list[Finding] = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("#!"):
            continue
        if match := MACHINE_PATH.search(line):
            found.append(Finding(path, number, f"absolute machine path {match.group(1)!r}"))
        anchored: set[int] = set()
        for match in ANCHORED_DOTDOT.finditer(line):
            anchored.update(range(*match.span("path")))
            base = match.group("base")
            if FILE_DIR_BASES.search(base):
                start = file_depth
            elif base in ROOT_BASES:
                start = 0
            else:
                found.append(Finding(path, number, f"`..` after {base}, which may be anywhere"))
                continue
            if _descend(start, match.group("path"))[1] < 0:
                found.append(Finding(path, number, f"{match.group(0)!r} climbs above the repository root"))
        for match in RELATIVE_DOTDOT.finditer(line):
            if match.start(1) not in anchored and _descend(0, match.group(1))[1] < 0:
                found.append(Finding(path, number, f"{match.group(1)!r} climbs above the repository root"))
    return found


def findings(path: str, text: str) -> list[Finding]:
    """What in ``text`` (the file at ``path``, relative to the root) points outside the repository."""
    return _python_findings(path, text) if path.endswith(".py") else _text_findings(path, text)


def scanned_files() -> list[str]:
    """The repository's files that the scan covers: git's view (tracked plus untracked, not ignored)."""
    top = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--show-toplevel"], capture_output=True, text=True)
    if top.returncode == 0 and Path(top.stdout.strip()).resolve() == ROOT:
        listed = subprocess.run(
            ["git", "-C", str(ROOT), "ls-files", "-co", "--exclude-standard"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.splitlines()
    else:  # an exported copy without .git: the same directories, minus caches
        listed = [
            str(p.relative_to(ROOT))
            for p in ROOT.rglob("*")
            if p.is_file() and not {"__pycache__", ".venv", ".hypothesis"} & set(p.relative_to(ROOT).parts)
        ]
    return sorted(p for p in listed if SCANNED.match(p) and (ROOT / p).is_file())


def test_no_file_reaches_outside_the_repository() -> None:
    files = scanned_files()
    assert {"Makefile", ".ci/run", "tests/test_contract.py", "scripts/trim_slack_openapi.py"} <= set(files)
    problems: list[Finding] = []
    for name in files:
        try:
            text = (ROOT / name).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary test data
        problems += findings(name, text)
    assert not problems, "paths outside the repository:\n" + "\n".join(map(str, problems))


# Split so that this file's own scan does not see machine paths in its examples.
MACHINE, HOME = "/" + "work", "/" + "home"

ESCAPES = [
    ("tests/test_x.py", 'SPECS = ROOT.parent / "specs" / "slack"', 1),
    ("tests/test_x.py", 'from tests.harness import REPO_ROOT\nDATA = REPO_ROOT / ".." / "specs"', 2),
    ("tests/test_x.py", 'ROOT = Path(__file__).resolve().parent.parent\nDATA = ROOT.parent / "specs"', 2),
    ("tests/test_x.py", 'DATA = Path(__file__).resolve().parents[2] / "specs"', 1),
    ("tests/test_x.py", 'DATA = Path(__file__).parent / "../../specs/slack"', 1),
    ("tests/test_x.py", 'DATA = Path(__file__).parent.joinpath("..", "..", "specs")', 1),
    ("tests/test_x.py", 'DATA = os.path.join(os.path.dirname(os.path.dirname(__file__)), "..", "x")', 1),
    ("tests/test_x.py", 'spec = json.loads(open("../specs/slack/spec.json").read())', 1),
    ("tests/test_x.py", 'spec = Path("data/../../spec.json").read_text()', 1),
    ("tests/test_x.py", "CACHE = Path.home() / '.cache' / 'slack'", 1),
    ("tests/test_x.py", "DATA = Path.cwd().parent / 'specs'", 1),
    ("scripts/x.py", f'SPEC = "{MACHINE}/specs/slack/web-api.openapi.json"', 1),
    ("scripts/x.py", f'SPEC = "{HOME}/alice/slack.json"', 1),
    ("Makefile", "test:\n\tcp -r ../specs/slack tests/data\n\tpytest", 2),
    ("Makefile", "data:\n\tcp $(CURDIR)/../specs/x.json tests/data", 2),
    (".ci/run", 'cd "$(dirname "$0")/../.."', 1),
    (".ci/run", 'cp "$SPECS/../slack.json" tests/data', 1),
    (".ci/run", f"ls {MACHINE}/specs/slack", 1),
    ("bench/run.sh", "python bench/ack.py --out ../results.json", 1),
]


@pytest.mark.parametrize(("path", "source", "line"), ESCAPES, ids=[f"{p}:{s[:40]}" for p, s, _ in ESCAPES])
def test_the_detector_catches_a_path_outside_the_repository(path: str, source: str, line: int) -> None:
    assert [f.line for f in findings(path, source)] == [line], findings(path, source)


INSIDE = [
    ("tests/test_x.py", "ROOT = Path(__file__).resolve().parent.parent"),
    ("tests/test_x.py", 'DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "slack"'),
    ("tests/fakes/x.py", "ROOT = Path(__file__).parents[2]\nDATA = ROOT / 'tests' / 'data'"),
    ("scripts/x.py", "sys.path.insert(0, str(Path(__file__).resolve().parent.parent))"),
    ("tests/test_x.py", 'DATA = os.path.join(os.path.dirname(__file__), "data", "..", "fakes")'),
    ("tests/test_x.py", 'candidate(version="../etc")  # a hostile input, not a path we read'),
    ("tests/test_x.py", 'bad = ["../outside.json", "/tmp/outside.json", "manifests/../../outside.json"]'),
    ("tests/test_x.py", 'assert text.startswith("# notify 1.3.0..1.4.0\\n")'),
    ("tests/test_x.py", "link = 'https://example.com/home/u/x'"),
    (".ci/run", '#!/usr/bin/env bash\ncd "$(dirname "$0")/.."'),
    ("Makefile", "lock-check:\n\tgit ls-files -co | tar -cf - -T - | tar -xf - -C .lockcheck/src"),
    ("bench/run.sh", 'echo "range 1.2.3..1.2.4" ... done'),
]


@pytest.mark.parametrize(("path", "source"), INSIDE, ids=[f"{p}:{s[:40]}" for p, s in INSIDE])
def test_the_detector_accepts_paths_inside_the_repository(path: str, source: str) -> None:
    assert findings(path, source) == []
