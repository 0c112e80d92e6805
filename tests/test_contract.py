"""Contracts between the code and what Slack (and the architecture) expect of it.

- manifest.yml is a valid Slack app manifest, and its command, scopes and events match the code;
- every Web API method the bot calls exists in Slack's published spec, with its scopes granted;
- `help` is the table that parses; `bot/core` stays pure; one module talks to SQLite.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from bot.core.grammar import COMMANDS, help_lines
from bot.slack.app import registered_commands
from commands import HANDLERS

ROOT = Path(__file__).resolve().parent.parent
# Slack's published manifest schema and Web API descriptions, vendored: see tests/data/slack/README.md.
SLACK_DATA = ROOT / "tests" / "data" / "slack"
MANIFEST = yaml.safe_load((ROOT / "manifest.yml").read_text())
# slack_sdk helpers that wrap several Web API methods.
WRAPPERS = {"files_upload_v2": ["files.getUploadURLExternal", "files.completeUploadExternal"]}
IO_MODULES = {
    "slack_bolt",
    "slack_sdk",
    "aiohttp",
    "sqlite3",
    "sqlite_utils",
    "apscheduler",
    "subprocess",
    "requests",
    "httpx",
    "socket",
    "urllib",
    "asyncio",
}


def _methods_called() -> set[str]:
    """Web API methods called anywhere in bot/ and commands/ (client.<method_name>(…) calls)."""
    found: set[str] = set()
    for path in [*ROOT.glob("bot/**/*.py"), *ROOT.glob("commands/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = node.func.value
                owner_name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
                if owner_name != "client":
                    continue
                name = node.func.attr
                if name in WRAPPERS:
                    found.update(WRAPPERS[name])
                elif re.fullmatch(r"[a-z]+(_[a-zA-Z]+)+", name):
                    group, _, rest = name.partition("_")
                    found.add(group + "." + rest.replace("_", "."))
    return found


def _method_doc(method: str) -> dict[str, object] | None:
    path = SLACK_DATA / "methods" / f"{method}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _manifest_validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads((SLACK_DATA / "app-manifest.schema.json").read_text()))


def test_manifest_validates_against_slacks_schema() -> None:
    _manifest_validator().validate(MANIFEST)


def test_slacks_schema_accepts_its_own_example_and_refuses_a_broken_one() -> None:
    """The control for the test above: the vendored schema is a real schema, not one that accepts anything."""
    example = json.loads((SLACK_DATA / "app-manifest.example.json").read_text())
    _manifest_validator().validate(example)
    broken = {**MANIFEST, "display_information": {}, "oauth_config": {"scopes": {"bot": "commands"}}}
    problems = sorted(e.json_path for e in _manifest_validator().iter_errors(broken))
    assert problems == ["$.display_information", "$.oauth_config.scopes.bot"], problems


def test_manifest_slash_command_is_the_one_registered() -> None:
    commands = [c["command"] for c in MANIFEST["features"]["slash_commands"]]
    assert commands == registered_commands()


def test_the_methods_scan_sees_the_calls_we_know_of() -> None:
    called = _methods_called()
    assert {"chat.postMessage", "chat.update", "views.publish", "usergroups.users.list", "users.info"} <= called


def test_every_web_api_method_called_exists_in_slacks_spec() -> None:
    paths = set(json.loads((SLACK_DATA / "web-api.openapi.json").read_text())["paths"])
    for method in sorted(_methods_called()):
        assert f"/{method}" in paths or _method_doc(method) is not None, f"{method} is not a Slack Web API method"


def _bot_scopes(method: str) -> set[str]:
    """The bot scopes a method needs: from its (newer) per-method doc, else from the OpenAPI spec's security."""
    doc = _method_doc(method)
    if doc is not None:
        scopes = doc.get("scopes", {})
        assert isinstance(scopes, dict)
        return {s["name"] for s in scopes.get("bot", [])}
    operations = json.loads((SLACK_DATA / "web-api.openapi.json").read_text())["paths"][f"/{method}"]
    found: set[str] = set()
    for operation in operations.values():
        for requirement in operation.get("security", []):
            for names in requirement.values():
                found.update(names)
    assert found, f"no scope information for {method}"
    return found


def test_manifest_grants_every_bot_scope_the_calls_need_and_no_more() -> None:
    granted = set(MANIFEST["oauth_config"]["scopes"]["bot"])
    needed = {"commands"}  # the slash command itself
    for method in _methods_called():
        needed |= _bot_scopes(method)
    assert needed == granted


def test_manifest_events_are_the_ones_handled() -> None:
    source = (ROOT / "bot" / "slack" / "app.py").read_text()
    handled = set(re.findall(r'@app\.event\("([a-z_]+)"\)', source))
    assert set(MANIFEST["settings"]["event_subscriptions"]["bot_events"]) == handled
    assert MANIFEST["settings"]["interactivity"]["is_enabled"] is True
    assert MANIFEST["features"]["app_home"]["home_tab_enabled"] is True


def test_help_is_generated_from_the_table_that_parses() -> None:
    usages = [usage for usage, _ in help_lines()]
    assert set(HANDLERS) == {spec.name for spec in COMMANDS}
    for spec in COMMANDS:
        assert f"/release {spec.usage}" in usages
    hint = MANIFEST["features"]["slash_commands"][0]["usage_hint"]
    for word in re.findall(r"[a-z]+", hint):
        assert word in {"service", "env", "version"} or word in HANDLERS, f"usage hint names unknown {word!r}"


@pytest.mark.parametrize("path", sorted((ROOT / "bot" / "core").glob("*.py")), ids=lambda p: p.name)
def test_core_imports_no_io_library(path: Path) -> None:
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            root = name.split(".")[0]
            assert root not in IO_MODULES, f"bot/core/{path.name} imports {name}"
            assert not name.startswith(("bot.store", "bot.slack", "bot.engine", "bot.providers", "bot.metrics")), (
                f"bot/core/{path.name} depends on an edge module {name}"
            )


def test_only_the_store_imports_sqlite_utils() -> None:
    importers = sorted(
        str(p.relative_to(ROOT))
        for p in [*ROOT.glob("bot/**/*.py"), *ROOT.glob("commands/**/*.py")]
        if re.search(r"^\s*(from|import)\s+sqlite_utils\b", p.read_text(), re.MULTILINE)
    )
    assert importers == ["bot/store/db.py"]


def test_only_one_module_builds_the_async_app() -> None:
    builders = sorted(
        str(p.relative_to(ROOT))
        for p in [*ROOT.glob("bot/**/*.py"), *ROOT.glob("commands/**/*.py")]
        if re.search(r"\bAsyncApp\(", p.read_text())
    )
    assert builders == ["bot/slack/app.py"]


def test_settings_are_not_read_at_import_time() -> None:
    for path in [*ROOT.glob("bot/**/*.py"), *ROOT.glob("commands/**/*.py")]:
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level only
            if isinstance(node, ast.Assign | ast.AnnAssign | ast.Expr):
                text = ast.unparse(node)
                assert "os.environ" not in text and "getenv" not in text, f"{path.name} reads the environment at import"
