"""Release notes as a small, self-contained HTML page (what a signed notes link opens). Pure.

Every piece of text from a commit, an author or the store goes through ``html.escape``; the only
links are pull-request links built from the repository's http(s) address, so nothing a committer
wrote can add markup, a script or a link to the page.
"""

from __future__ import annotations

import re
from html import escape

from bot.core.notes import NoteEntry, ReleaseNotes

__all__ = ["markdown_page", "message_page", "notes_page"]

_HTTP_URL = re.compile(r"^https?://[^\s\"'<>]+$")
_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem;color:#1d1c1d}"
    "h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:1.5rem}code{font-size:.9em}"
    "pre{white-space:pre-wrap}.summary{color:#616061}"
)


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )


def _pr_ref(notes: ReleaseNotes, number: int) -> str:
    url = notes.pr_url(number)
    if url is None or not _HTTP_URL.match(url):
        return f"#{number}"
    return f'<a href="{escape(url)}">#{number}</a>'


def _entry(notes: ReleaseNotes, entry: NoteEntry, breaking_section: bool) -> str:
    scope = f"<strong>{escape(entry.scope)}:</strong> " if entry.scope else ""
    note = f" — <em>{escape(entry.breaking_note)}</em>" if breaking_section and entry.breaking_note else ""
    refs = [_pr_ref(notes, n) for n in entry.pr_numbers] + [f"<code>{escape(entry.short_sha)}</code>"]
    who = ", ".join(escape(p.name) for p in entry.authors)
    return f"<li>{scope}{escape(entry.description)}{note} ({', '.join(refs)}) — {who}</li>"


def notes_page(title: str, notes: ReleaseNotes) -> str:
    """The whole notes: every section and entry (no Slack budget here), then the contributors."""
    parts = [f"<h1>{escape(title)}</h1>", f'<p class="summary">{escape(notes.summary())}</p>']
    if not notes.sections:
        parts.append("<p>No changes in this range.</p>")
    for section in notes.sections:
        parts.append(f"<h2>{escape(section.title)} ({len(section.entries)})</h2>")
        items = [_entry(notes, e, section.key == "breaking") for e in section.entries]
        parts.append("<ul>\n" + "\n".join(items) + "\n</ul>")
    if notes.contributors:
        parts.append(f"<h2>Contributors ({len(notes.contributors)})</h2>")
        parts.append("<ul>\n" + "\n".join(f"<li>{escape(p.name)}</li>" for p in notes.contributors) + "\n</ul>")
    return _page(title, "\n".join(parts))


def markdown_page(title: str, markdown: str) -> str:
    """Notes stored as Markdown text: shown as written, in a preformatted block."""
    return _page(title, f"<h1>{escape(title)}</h1>\n<pre>{escape(markdown)}</pre>")


def message_page(title: str, text: str) -> str:
    """A one-paragraph page (notes not found)."""
    return _page(title, f"<h1>{escape(title)}</h1>\n<p>{escape(text)}</p>")
