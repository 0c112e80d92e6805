"""Regenerate README.md's "Who may do what" table from bot/policy/permissions.py (`make docs`)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.views.permissions_table import replace_section  # noqa: E402

readme = ROOT / "README.md"
readme.write_text(replace_section(readme.read_text()))
