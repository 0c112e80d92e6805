"""``GET /notes/{service}?from=&to=&expires=&sig=``: the full release notes behind a signed link.

The release story links here (see :mod:`bot.notes_link`). No bearer token is asked for — the
signature is the permission — so a Slack user who clicks the link reads the notes as a web page. A
missing, altered or expired signature is a 403 with one plain sentence saying what to do; nothing is
looked up before the signature holds. The bearer-token API (``GET /api/v1/notes``) is unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web

from bot.config import Config
from bot.core.notes import ReleaseNotes, notes_title
from bot.notes_link import NOTES_PATH, LinkProblem, NotesLink, verify_notes_link
from bot.store import AsyncStore
from bot.views.notes_html import markdown_page, message_page, notes_page

__all__ = ["NOTES_PAGE", "NotesPageContext", "mount_notes_page"]

log = logging.getLogger(__name__)

_MAX_EXPIRES_DIGITS = 11  # Unix seconds to the year 5000: anything longer is not a link we made
# The page has no scripts, frames, forms or remote resources; the URL carries the signature, so it
# must not leak to a pull-request page through the Referer header either.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "private, no-store",
}


@dataclass(frozen=True)
class NotesPageContext:
    db: AsyncStore
    config: Config
    key: bytes
    clock: Callable[[], datetime]


NOTES_PAGE: web.AppKey[NotesPageContext] = web.AppKey("notes_page", NotesPageContext)


def _link_of(request: web.Request) -> NotesLink | None:
    """The link's parameters, or None when one is missing or is not what the bot puts there."""
    query = request.query
    version, expires = query.get("to", ""), query.get("expires", "")
    if not version or not expires.isdigit() or len(expires) > _MAX_EXPIRES_DIGITS:
        return None
    return NotesLink(request.match_info["service"], query.get("from", ""), version, int(expires))


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8", headers=_HEADERS)


async def _notes(request: web.Request) -> web.Response:
    ctx = request.app[NOTES_PAGE]
    link = _link_of(request)
    try:
        verify_notes_link(ctx.key, link, request.query.get("sig", ""), ctx.clock())
    except LinkProblem as problem:
        return web.Response(
            text=f"{problem}\n", status=403, content_type="text/plain", charset="utf-8", headers=_HEADERS
        )
    assert link is not None  # verify_notes_link refuses a missing link
    service, to, previous = link.service, link.version, link.previous or None
    title = notes_title(service, previous, to)
    if service not in ctx.config.services:  # signed, but the service has since left the configuration
        return _html(message_page(title, f"{service} is no longer a configured service."), 404)
    release = await ctx.db.release_with_notes(service, to, previous)
    if release is None or release.notes is None:
        return _html(message_page(title, "No release notes are stored for this release."), 404)
    stored = release.notes.get("markdown")
    if isinstance(stored, str):
        return _html(markdown_page(title, stored))
    title = notes_title(service, release.previous_version, to)
    return _html(notes_page(title, ReleaseNotes.from_dict(release.notes)))


def mount_notes_page(
    app: web.Application,
    *,
    db: AsyncStore,
    config: Config,
    key: bytes | None,
    clock: Callable[[], datetime],
) -> bool:
    """Serve signed notes links on ``app`` when there is a link key; False (nothing mounted) otherwise."""
    if not key:
        log.info("no notes link key (RELEASEBOT_LINK_SECRET or RELEASEBOT_API_TOKEN): %s is disabled", NOTES_PATH)
        return False
    app[NOTES_PAGE] = NotesPageContext(db=db, config=config, key=key, clock=clock)
    app.router.add_get(NOTES_PATH + "/{service}", _notes)
    return True
