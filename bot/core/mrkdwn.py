"""Slack mrkdwn escaping. Pure.

Slack turns `<!channel>`, `<@U123>`, `<#C123>` and `<http://x|y>` into mentions and links only when
the `<` `>` reach it raw; escaping `&`, `<`, `>` as Slack documents makes any text inert.
"""

from __future__ import annotations

import re

__all__ = ["escape", "link"]

# Characters that would end or split a `<url|label>` link if they appeared in the URL.
_SAFE_URL = re.compile(r"^https?://[^\s<>|]+$")


def escape(text: str) -> str:
    """Escape `&`, `<` and `>` so the text can't mention, ping or link (`&` first, or it double-escapes)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link(url: str | None, label: str) -> str:
    """A `<url|label>` link, label escaped; only the escaped label unless the URL is plain http(s)."""
    if url is None or not _SAFE_URL.match(url):
        return escape(label)
    return f"<{url.replace('&', '&amp;')}|{escape(label)}>"
