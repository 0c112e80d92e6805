"""Trim slackapi's Web API OpenAPI spec to what tests/test_contract.py reads (1.2 MB → about 40 kB).

Kept: every path (so "is this a Web API method?" still knows all 174 methods of the 2020 spec) and, per
operation, its ``operationId`` and ``security`` (the scopes it needs); plus the spec's own header fields and
``securityDefinitions``. Dropped: descriptions, parameters, responses, examples, ``definitions``.

Run (SPEC is web-api/slack_web_openapi_v2.json from a checkout of slackapi/slack-api-specs):
    python scripts/trim_slack_openapi.py SPEC > tests/data/slack/web-api.openapi.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HEADER = ("swagger", "info", "host", "basePath", "schemes", "securityDefinitions", "externalDocs")
PER_OPERATION = ("operationId", "security")


def trim(spec: dict[str, Any]) -> dict[str, Any]:
    out = {key: spec[key] for key in HEADER if key in spec}
    out["paths"] = {
        path: {verb: {key: op[key] for key in PER_OPERATION if key in op} for verb, op in operations.items()}
        for path, operations in spec["paths"].items()
    }
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    spec = json.loads(Path(argv[1]).read_text())
    if "paths" not in spec or not str(spec.get("swagger", "")).startswith("2."):
        print(f"{argv[1]}: not an OpenAPI 2.0 spec with paths", file=sys.stderr)
        return 1
    json.dump(trim(spec), sys.stdout, indent=1, sort_keys=True, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
