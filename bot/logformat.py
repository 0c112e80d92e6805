"""How the bot's log lines look on stderr: human-readable text (the default) or one JSON object per line.

``RELEASEBOT_LOG_FORMAT=json`` is for log shippers: each line is a JSON object with ``time`` (ISO 8601,
UTC, milliseconds), ``level``, ``logger``, ``message``, and when known ``release_id`` / ``request_id``
(from :mod:`bot.logcontext`), ``exception`` (the traceback as text) and ``stack``. Non-ASCII text is
escaped, so a message holding newlines, quotes or Unicode line separators still makes one line.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Literal

from bot import logcontext

__all__ = ["TEXT_FORMAT", "JsonFormatter", "LogFormat", "configure_logging", "formatter"]

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (see the module docstring for the fields)."""

    def format(self, record: logging.LogRecord) -> str:
        created = datetime.fromtimestamp(record.created, UTC)
        entry: dict[str, object] = {
            "time": f"{created:%Y-%m-%dT%H:%M:%S}.{created.microsecond // 1000:03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            # Read when the line is formatted, which is when it is emitted: handlers here are synchronous.
            **logcontext.current(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)  # cached for other handlers, as logging does
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=True)  # escapes U+2028 and the like: one line, always


def formatter(log_format: LogFormat) -> logging.Formatter:
    """The formatter for ``log_format``."""
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure_logging(log_format: LogFormat, *, verbose: bool) -> None:
    """Log to stderr in ``log_format``, at DEBUG when ``verbose`` else INFO.

    Like ``logging.basicConfig``, does nothing when the root logger already has handlers (an embedding
    program or a test runner configured logging first).
    """
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(log_format))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
