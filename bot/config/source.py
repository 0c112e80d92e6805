"""Reading ``releasebot.yml`` with the position of every key, and config errors that point at a line.

ruamel.yaml reads YAML 1.2 natively: only ``true``/``false`` are booleans, so ``ON`` (Ontario), ``NO``
(Norway), ``yes`` and ``off`` stay strings and ``09:00`` is not sexagesimal. The document is composed once;
the node tree gives the line and column of every mapping key and sequence item (and the duplicate keys,
which the constructor would silently drop), and the safe constructor turns the same tree into the plain
dicts and lists pydantic validates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, StreamMark, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError

Loc = tuple[str | int, ...]
"""A path into the document: mapping keys and sequence indices, as pydantic reports them."""
Position = tuple[int, int]
"""1-based line and column."""

_MERGE_TAG = "tag:yaml.org,2002:merge"
# pydantic names the union member it chose after these keys; the user's file has no such level.
_UNION_PARENTS = {"deploy", "strategy"}
_UNION_TAGS = {"command", "http", "github_actions", "canary", "blue_green", "all_at_once"}
# pydantic's marker for a bad mapping key; the key itself is the node to point at.
_KEY_MARKER = "[key]"


@dataclass(frozen=True)
class Problem:
    """One config error: where (a dotted path and, when read from a file, a line and column) and what."""

    path: str | None
    message: str
    position: Position | None = None

    def __str__(self) -> str:
        return self.message if self.path is None else f"{self.path}: {self.message}"

    def located(self, source: str) -> str:
        """``file:line:col path: message`` (``file: path: message`` when the position is unknown)."""
        if self.position is None:
            return f"{source}: {self}"
        line, column = self.position
        return f"{source}:{line}:{column} {self}"


class ConfigError(Exception):
    """A config file that cannot be used.

    ``errors`` holds one ``path: message`` line per problem; ``located`` the same lines prefixed with
    ``file:line:col`` for a terminal or an editor to jump to.
    """

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        self.errors = [str(problem) for problem in problems]
        super().__init__(f"{source}: {len(problems)} error(s)\n" + "\n".join(f"  {line}" for line in self.located))

    @property
    def located(self) -> list[str]:
        return [problem.located(self.source) for problem in self.problems]


@dataclass
class Document:
    """A parsed YAML file: plain data, the position of every key and item, and its duplicate keys."""

    data: Any
    positions: dict[Loc, Position] = field(default_factory=dict)
    duplicates: list[Problem] = field(default_factory=list)


def read_yaml(text: str, source: str) -> Document:
    """Parse YAML 1.2 text; raise ConfigError with the line and column of a syntax error."""
    yaml = YAML(typ="safe", pure=True)  # the pure loader: the C one keeps no marks
    yaml.allow_duplicate_keys = True  # found below with both lines, and reported alongside every other error
    try:
        node = yaml.compose(text)
        document = Document(None)
        if node is not None:
            _Walker(document).walk(node, ())
            document.data = yaml.constructor.construct_document(node)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise ConfigError(source, [Problem("(yaml)", _syntax_message(exc), _position(mark))]) from None
    except ReaderError as exc:  # a character YAML does not allow; it carries an offset, not a mark
        reason = f"unacceptable character #x{exc.character:04x}: {exc.reason}"
        raise ConfigError(source, [Problem("(yaml)", reason, _offset_position(text, exc.position))]) from None
    except YAMLError as exc:
        raise ConfigError(source, [Problem("(yaml)", " ".join(str(exc).split()))]) from None
    return document


class _Walker:
    """Records the position of every key and item, and the duplicate keys, of a composed YAML document.

    It must walk the tree before the constructor does: constructing flattens merge keys in place.
    """

    def __init__(self, document: Document) -> None:
        self.positions = document.positions
        self.duplicates = document.duplicates
        self.checked: set[int] = set()  # mappings already checked for duplicates (an alias repeats a mapping)
        self.ancestors: list[int] = []  # an alias of an enclosing node would recurse forever

    def walk(self, node: Node, loc: Loc) -> None:
        self.positions.setdefault(loc, _position(node.start_mark) or (1, 1))
        if id(node) in self.ancestors:
            return
        self.ancestors.append(id(node))
        if isinstance(node, MappingNode):
            self._mapping(node, loc)
        elif isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                self.positions[(*loc, index)] = _position(item.start_mark) or self.positions[loc]
                self.walk(item, (*loc, index))
        self.ancestors.pop()

    def _mapping(self, node: MappingNode, loc: Loc) -> None:
        first: dict[str, Position] = {}
        merged: list[Node] = []
        report = id(node) not in self.checked
        self.checked.add(id(node))
        for key, value in node.value:
            if isinstance(key, ScalarNode) and key.tag == _MERGE_TAG:
                merged.extend(value.value if isinstance(value, SequenceNode) else [value])
                continue
            if not isinstance(key, ScalarNode):
                continue  # a non-scalar key names no config field: pydantic reports it at this mapping
            here, position = (*loc, key.value), _position(key.start_mark) or self.positions[loc]
            if key.value in first:
                if report:
                    line, column = first[key.value]
                    why = f"duplicate key (first defined at line {line}, column {column})"
                    self.duplicates.append(Problem(_dotted(here), why, position))
                continue  # the constructor keeps the first value, so the first position is the one to report
            first[key.value] = position
            self.positions[here] = position
            self.walk(value, here)
        # ``<<: *base`` keys are reported where the merged mapping defines them; explicit keys win, then the
        # first mapping merged, as the constructor decides.
        for source in merged:
            for key, value in source.value if isinstance(source, MappingNode) else []:
                here = (*loc, key.value)
                if isinstance(key, ScalarNode) and key.tag != _MERGE_TAG and here not in self.positions:
                    self.positions[here] = _position(key.start_mark) or self.positions[loc]
                    self.walk(value, here)


def validation_problems(error: ValidationError, positions: Mapping[Loc, Position]) -> list[Problem]:
    """One Problem per pydantic error, at the deepest node of its path that exists in the file."""
    problems = []
    for item in error.errors():
        loc = _user_loc(tuple(item["loc"]))
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        if loc:
            problems.append(problem_at(loc, message, positions))
        else:
            problems.append(Problem(None, message, positions.get(())))
    return problems


def problem_at(loc: Loc, message: str, positions: Mapping[Loc, Position]) -> Problem:
    """A problem with the node at ``loc``, at that node's line and column (or its nearest existing parent's)."""
    return Problem(_dotted(loc), message, _locate(loc, positions))


def sort_problems(problems: list[Problem]) -> list[Problem]:
    """In file order, so the list reads top to bottom like the file; problems with no position last."""
    return sorted(problems, key=lambda p: p.position or (float("inf"), 0))


def _user_loc(loc: Loc) -> Loc:
    out: list[str | int] = []
    for part in loc:
        if (part in _UNION_TAGS and out and out[-1] in _UNION_PARENTS) or part == _KEY_MARKER:
            continue
        out.append(part)
    return tuple(out)


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out


def _locate(loc: Loc, positions: Mapping[Loc, Position]) -> Position | None:
    """The position of the deepest existing node on ``loc`` (a missing key is reported at its parent)."""
    for depth in range(len(loc), -1, -1):
        if (position := positions.get(loc[:depth])) is not None:
            return position
    return None


def _syntax_message(exc: MarkedYAMLError) -> str:
    """The parser's problem on one line, with what it was reading and where that started."""
    problem = exc.problem or "invalid YAML"
    if not exc.context:
        return problem
    start, here = _position(exc.context_mark), _position(exc.problem_mark)
    if start is not None and here is not None and start[0] != here[0]:
        return f"{problem} ({exc.context} at line {start[0]})"
    return f"{problem} ({exc.context})"


def _position(mark: StreamMark | None) -> Position | None:
    return None if mark is None else (mark.line + 1, mark.column + 1)


def _offset_position(text: str, offset: int) -> Position:
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1
