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
# An optional ``ratio`` names what a ``compare`` check judges (canary / stable); it reads better than a bare
# "> 1.5" there, and a check that compares nothing refuses it (bot/config/rollout.py).
_GRAMMAR = re.compile(r"^\s*(?:(ratio)\s*)?(<=|>=|==|!=|<|>)\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class Condition:
    """A comparison of a measured value against a threshold."""

    op: str
    threshold: float
    subject: str | None = None  # "ratio": written "ratio > 1.5" (a compare check's canary / stable)

    def holds(self, value: float) -> bool:
        """True when ``value <op> threshold``; NaN never satisfies a condition."""
        if math.isnan(value):
            return False
        return _OPS[self.op](value, self.threshold)

    def __str__(self) -> str:
        subject = f"{self.subject} " if self.subject else ""
        return f"{subject}{self.op} {self.threshold:g}"


def parse_condition(text: str) -> Condition:
    """Parse ``"< 0.01"``, ``">= 5"``, ``"== 200"``, ``"ratio > 1.5"``; raise ValueError naming the grammar."""
    match = _GRAMMAR.match(text)
    if not match:
        raise ValueError(
            f"bad condition {text!r}: use an operator (<, <=, >, >=, ==, !=) and a number, e.g. '< 0.01' "
            "(a compare check may write 'ratio > 1.5')"
        )
    return Condition(op=match.group(2), threshold=float(match.group(3)), subject=match.group(1))
