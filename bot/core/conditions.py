"""The fixed comparator grammar of check conditions (``pass_if: "< 0.01"``): no eval, ever."""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_GRAMMAR = re.compile(r"^\s*(<=|>=|==|!=|<|>)\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class Condition:
    """A comparison of a measured value against a threshold."""

    op: str
    threshold: float

    def holds(self, value: float) -> bool:
        """True when ``value <op> threshold``; NaN never satisfies a condition."""
        if math.isnan(value):
            return False
        return _OPS[self.op](value, self.threshold)

    def __str__(self) -> str:
        return f"{self.op} {self.threshold:g}"


def parse_condition(text: str) -> Condition:
    """Parse ``"< 0.01"``, ``">= 5"``, ``"== 200"``; raise ValueError naming the grammar otherwise."""
    match = _GRAMMAR.match(text)
    if not match:
        raise ValueError(f"bad condition {text!r}: use an operator (<, <=, >, >=, ==, !=) and a number, e.g. '< 0.01'")
    return Condition(op=match.group(1), threshold=float(match.group(2)))
