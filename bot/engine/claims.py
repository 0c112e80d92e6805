"""The at-most-once keys of the buttons that ask for a rollback of a release.

A click claims its key (bot.engine.story.Story.once) so that a double click asks once. When the rollback
it asked for ends without running (its approval was denied or expired), the keys are given back: the
button must work again, not answer "already requested" forever.
"""

from __future__ import annotations


def check_rollback(release_id: int) -> str:
    """ "Roll back now" under a check result of ``release_id``."""
    return f"check-rollback:{release_id}"


def interrupted_rollback(release_id: int) -> str:
    """ "Roll back" under ``release_id`` when a restart interrupted it."""
    return f"interrupted-rollback:{release_id}"


def rollback_of(release_id: int) -> tuple[str, ...]:
    """Every key a click asking to roll back ``release_id`` may hold."""
    return check_rollback(release_id), interrupted_rollback(release_id)
