"""Signed, expiring links to the full release notes page. Pure, but outside bot/core: it needs
urllib.parse, and the core-purity check refuses every urllib import.

The release story links to ``/notes/{service}?from=&to=&expires=&sig=``. A Slack user who clicks it has
no API bearer token, so the link carries its own proof: ``sig`` is HMAC-SHA256, keyed by the bot's link
key, over the link's path and query up to and including ``expires``. Changing the service, either
version or the expiry breaks the signature; a link past ``expires`` is refused even when it is intact.

What is signed is rebuilt from the decoded values (not taken from the raw URL), so a proxy or browser
that re-encodes the query differently cannot break a good link, and the signature never depends on
one spelling of the same request.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlencode

__all__ = [
    "LINK_TTL",
    "NOTES_PATH",
    "LinkProblem",
    "NotesLink",
    "derive_link_key",
    "notes_link",
    "verify_notes_link",
]

NOTES_PATH = "/notes"
# Long enough that a link in last month's release thread still opens when someone reads back; short
# enough that a link pasted somewhere public stops working on its own.
LINK_TTL = timedelta(days=30)
_KEY_LABEL = b"release-bot notes link v1"  # domain separation: the link key is never the secret itself
_SIG_LEN = 64  # hex digits of a SHA-256 MAC


def derive_link_key(secret: str) -> bytes:
    """The MAC key for notes links, derived from a configured secret.

    Deriving (instead of using the secret as is) means a link's signature reveals nothing usable as the
    API bearer token, and rotating that secret invalidates every outstanding link.
    """
    return hmac.new(secret.encode("utf-8"), _KEY_LABEL, hashlib.sha256).digest()


@dataclass(frozen=True)
class NotesLink:
    """What a notes link asks for: ``previous`` is "" when the release replaced nothing."""

    service: str
    previous: str
    version: str
    expires: int  # Unix seconds


def _signed_part(link: NotesLink) -> str:
    """The app-relative path and query that the signature covers (everything but ``sig``)."""
    query = urlencode(
        [("from", link.previous), ("to", link.version), ("expires", str(link.expires))],
        quote_via=quote,  # `+` in a version is %2B, never a space
    )
    return f"{NOTES_PATH}/{quote(link.service, safe='')}?{query}"


def _sign(key: bytes, link: NotesLink) -> str:
    return hmac.new(key, _signed_part(link).encode("utf-8"), hashlib.sha256).hexdigest()


def notes_link(base_url: str, key: bytes, *, service: str, previous: str | None, version: str, now: datetime) -> str:
    """The absolute, signed link to the notes of ``service`` ``previous``..``version``, valid for LINK_TTL."""
    link = NotesLink(service, previous or "", version, int((now + LINK_TTL).timestamp()))
    return f"{base_url.rstrip('/')}{_signed_part(link)}&sig={_sign(key, link)}"


class LinkProblem(Exception):
    """Why a notes link is refused; the message is one sentence a person can act on."""


def verify_notes_link(key: bytes, link: NotesLink | None, sig: str, now: datetime) -> None:
    """Raise LinkProblem unless ``sig`` is this key's signature of ``link`` and the link has not expired.

    ``link`` None means its parameters were missing or malformed. The signature is checked before the
    expiry, so an altered link is called altered even when its (altered) expiry has passed.
    """
    if link is None or len(sig) != _SIG_LEN:
        raise LinkProblem("This link is incomplete: copy the whole link from the release thread.")
    # Constant-time comparison: response timing must not tell a forger how much of a guess was right.
    if not hmac.compare_digest(_sign(key, link).encode("ascii"), sig.encode("ascii", "replace")):
        raise LinkProblem(
            "This link is not valid: it was changed after the bot made it, or the bot's link key has "
            "changed since. Open the link from the release thread again."
        )
    if now.timestamp() >= link.expires:
        expired_at = datetime.fromtimestamp(link.expires, UTC)  # in the past, so always representable
        raise LinkProblem(
            f"This link expired on {expired_at:%Y-%m-%d %H:%M} UTC: links to the full notes work for "
            f"{LINK_TTL.days} days. Run `/release notes {link.version}` in Slack to see these notes there."
        )
