"""The layers hold: every import-linter contract in pyproject.toml is kept, so `make test` enforces them too.

The contracts (core and views pure, only the store on SQLite, services free of Slack code) are run by the
project's own `lint-imports`, the one `make lint` runs, installed beside this interpreter by the dev extras.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def test_every_layer_contract_is_kept() -> None:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    assert LINT_IMPORTS.is_file(), f"{LINT_IMPORTS} is missing: install the dev extras (`pip install -e '.[dev]'`)"
    run = subprocess.run(  # noqa: S603 - the virtualenv's own lint-imports, fixed argv
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    # Each configured contract was checked and kept: none skipped, none left out of the run.
    assert re.search(rf"^Contracts: {len(contracts)} kept, 0 broken\.$", report, re.MULTILINE), report
