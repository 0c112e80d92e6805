"""A release checklist as the lines a person reads in Slack, and how to fix what it refuses. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bot.core.checklist import ChecklistResult
from bot.core.imageref import ImageRefError, parse_image_ref
from bot.views.mrkdwn import escape
from bot.views.render import user

__all__ = ["checklist_fixes", "checklist_lines"]
_SHOWN_IMAGES = 3  # --image options spelled out in the example command; the rest are "…"


def checklist_lines(result: ChecklistResult) -> list[str]:
    """One mrkdwn line per item: ``✅ reason``, ``❌ reason``, ``⚠️ overridden by <@U…> (why): reason``.

    Reasons are mrkdwn already (the checklist escapes what came from outside); the override's reason was
    typed by a person and is escaped here.
    """
    lines: list[str] = []
    for item in result.items:
        if item.ok:
            lines.append(f"✅ {item.reason}")
        elif item.overridden_by is not None:
            why = f" ({escape(item.override_reason)})" if item.override_reason else ""
            lines.append(f"⚠️ overridden by {user(item.overridden_by)}{why}: {item.reason}")
        else:
            lines.append(f"❌ {item.reason}")
    return lines


def checklist_fixes(
    result: ChecklistResult, service: str, images: Mapping[str, str], components: Sequence[str]
) -> list[str]:
    """How to fix the failed items that have one way to fix them (mrkdwn lines, one per item; none otherwise).

    ``images`` are the candidate's images by component, ``components`` the service's configured ones. Images
    not pinned by digest: a registered version never changes, so the fix is a new version registered with
    digests, and the line shows the command with the candidate's own images, each pinned.
    """
    failed = {item.item for item in result.items if not item.satisfied}
    if "images" not in failed:
        return []
    return [
        "To pin the images: a registered version cannot change, so register a new version with every image "
        "pinned by its digest — from CI with `POST /api/v1/candidates` (docs/api.md), or "
        f"`release-bot candidate add {escape(service)} VERSION --commit SHA {_pinned_options(images, components)}` "
        "(at the console too, without `release-bot`)."
    ]


def _pinned_options(images: Mapping[str, str], components: Sequence[str]) -> str:
    """``--image api=ghcr.io/acme/api:1.4.2@sha256:…`` for each component: its image as reported, pinned."""
    names = list(dict.fromkeys([*components, *images]))
    options = []
    for name in names[:_SHOWN_IMAGES]:
        try:
            ref = parse_image_ref(images.get(name, ""))
        except ImageRefError:
            shown = "IMAGE@sha256:…"  # none reported, or not an image reference: nothing of it to show
        else:
            text = images[name].strip()
            shown = text if ref.pinned else f"{text}@sha256:…"
        options.append(f"--image {escape(name)}={escape(shown)}")
    if len(names) > len(options):
        options.append("…")
    return " ".join(options)
