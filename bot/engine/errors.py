"""What a user is told when the engine refuses: the reason and the way forward. Nothing changed."""

from __future__ import annotations


class UserError(Exception):
    """A refusal the user sees (ephemerally) with the reason and the way forward. Nothing changed."""


class NotPermitted(UserError):
    """The permission table refused the action; the message names who may take it."""
