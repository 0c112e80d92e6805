"""Slack mrkdwn escaping: the one place text becomes safe to show in Slack. Pure.

Slack turns `<!channel>`, `<@U123>`, `<#C123>` and `<http://x|y>` into mentions and links only when
the `<` `>` reach it raw; escaping `&`, `<`, `>` as Slack documents makes any text inert.
"""

from __future__ import annotations

import re

__all__ = ["escape", "link", "linkable"]

# Characters that would end or split a `<url|label>` link if they appeared in the URL.
_SAFE_URL = re.compile(r"https?://[^\s<>|]+")


def escape(text: str) -> str:
    """Escape `&`, `<` and `>` so the text can't mention, ping or link (`&` first, or it double-escapes)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def linkable(url: str | None) -> bool:
    """Whether ``url`` is a plain http(s) URL that cannot break out of the `<url|label>` syntax."""
    return url is not None and _SAFE_URL.fullmatch(url) is not None


def link(url: str | None, label: str) -> str:
    """A `<url|label>` link, label escaped; only the escaped label unless the URL is plain http(s)."""
    if url is None or not linkable(url):
        return escape(label)
    return f"<{url.replace('&', '&amp;')}|{escape(label)}>"
