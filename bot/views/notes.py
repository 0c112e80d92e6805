"""Release notes as Block Kit blocks, within Slack's limits. Pure.

One mrkdwn section block per chunk of a notes section (a section's text stays ≤ 3000 characters),
then a summary context line. Past `max_per_section` entries in a section, or when the blocks or the
character budget run out, the rest is counted on "…and N more changes — full notes: <url|link>".
All commit text goes through `escape`, so a subject like `<!channel>` reaches Slack as inert text.
"""

from __future__ import annotations

from typing import Any

from bot.core.notes import NoteEntry, NoteSection, ReleaseNotes
from bot.views.mrkdwn import escape, link

__all__ = ["SECTION_TEXT_LIMIT", "notes_blocks"]

SECTION_TEXT_LIMIT = 3000
# Slack's own limit is 50 blocks; the default leaves room for the caller's header blocks.
DEFAULT_MAX_BLOCKS = 45
# Past ~12k characters a message is unreadable in a channel, and Slack rejects very long ones.
DEFAULT_MAX_CHARS = 12_000
DEFAULT_MAX_PER_SECTION = 15
_MAX_LINE = 400
_MAX_AUTHORS_SHOWN = 3
_CONTEXT_LIMIT = 2000
_ICONS = {"breaking": ":warning:", "security": ":lock:"}


def _clip(text: str, limit: int) -> str:
    """Shorten raw text (before escaping) so one entry can't fill a block."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _entry_line(notes: ReleaseNotes, section: NoteSection, entry: NoteEntry) -> str:
    """One bullet: scope, description, breaking note, PR links (or short sha), authors."""
    scope = f"*{escape(_clip(entry.scope, 40))}:* " if entry.scope else ""
    text = escape(_clip(entry.description, 200))
    if section.key == "breaking" and entry.breaking_note:
        text += f" — _{escape(_clip(entry.breaking_note, 200))}_"
    refs = [link(notes.pr_url(n), f"#{n}") for n in entry.pr_numbers] or [f"`{entry.short_sha}`"]
    names = [escape(_clip(p.name, 40)) for p in entry.authors[:_MAX_AUTHORS_SHOWN]]
    if len(entry.authors) > _MAX_AUTHORS_SHOWN:
        names.append(f"+{len(entry.authors) - _MAX_AUTHORS_SHOWN}")
    line = f"• {scope}{text} ({', '.join(refs)}) — {', '.join(names)}"
    # The pieces are clipped already; this guards the whole line, escaping included.
    return line if len(line) <= _MAX_LINE * 3 else line[: _MAX_LINE * 3 - 1] + "…"


def _section_block(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context_block(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:_CONTEXT_LIMIT]}]}


def _overflow_text(hidden: int, full_notes_url: str | None) -> str:
    text = f"…and {hidden} more change{'s' * (hidden != 1)}"
    if full_notes_url:
        text += f" — full notes: {link(full_notes_url, 'link')}"
    return text


def _chunks(heading: str, lines: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """Split (line, sha) pairs into section-sized chunks, the heading first; sha "" marks the heading."""
    chunks: list[list[tuple[str, str]]] = [[(heading, "")]]
    size = len(heading)
    for line, sha in lines:
        if size + 1 + len(line) > SECTION_TEXT_LIMIT:
            chunks.append([])
            size = -1
        chunks[-1].append((line, sha))
        size += 1 + len(line)
    return chunks


def notes_blocks(
    notes: ReleaseNotes,
    *,
    full_notes_url: str | None,
    max_blocks: int = DEFAULT_MAX_BLOCKS,
    max_chars: int = DEFAULT_MAX_CHARS,
    max_per_section: int | None = DEFAULT_MAX_PER_SECTION,
) -> list[dict[str, Any]]:
    """Block Kit dicts for the notes: ≤ `max_blocks` blocks, each section ≤ 3000 characters.

    Breaking changes are listed in full (budget permitting); other sections show at most
    `max_per_section` entries so one busy section can't hide the rest. Whatever is left out is
    counted on an "…and N more changes" line linking `full_notes_url`
    (e.g. `…/api/v1/notes?service=&from=&to=`).
    """
    if max_blocks < 3:
        raise ValueError("max_blocks must leave room for a section, the summary and the overflow line")
    summary = _context_block(escape(notes.summary()))
    if not notes.sections:
        return [_section_block("No changes in this range."), summary]

    # Reserve the summary and the overflow line; whatever fits in the rest is shown.
    budget_blocks, budget_chars = max_blocks - 2, max_chars
    blocks: list[dict[str, Any]] = []
    shown: set[str] = set()
    for section in notes.sections:
        entries = section.entries
        if section.key != "breaking" and max_per_section is not None:
            entries = entries[:max_per_section]
        heading = f"{_ICONS.get(section.key, '')} *{section.title}* ({len(section.entries)})".strip()
        lines = [(_entry_line(notes, section, e), e.sha) for e in entries]
        out_of_room = False
        for chunk in _chunks(heading, lines):
            # Keep the longest prefix of the chunk that fits the remaining character budget.
            fitting: list[tuple[str, str]] = []
            size = -1
            for line, sha in chunk:
                if size + 1 + len(line) > budget_chars:
                    out_of_room = True
                    break
                fitting.append((line, sha))
                size += 1 + len(line)
            if not budget_blocks or not any(sha for _, sha in fitting):
                out_of_room = True
                break
            blocks.append(_section_block("\n".join(line for line, _ in fitting)))
            shown.update(sha for _, sha in fitting if sha)
            budget_blocks, budget_chars = budget_blocks - 1, budget_chars - size
            if out_of_room:
                break
        if out_of_room:
            break

    blocks.append(summary)
    hidden = len({e.sha for s in notes.sections for e in s.entries} - shown)
    if hidden:
        blocks.append(_context_block(_overflow_text(hidden, full_notes_url)))
    return blocks
