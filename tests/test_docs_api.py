"""The HTTP API as the docs describe it: docs/api.md documents exactly the routes the app serves and every field
of every request body; every `sh` block of README.md and docs/api.md that calls the API works as written (a
real curl against `release-bot serve`'s app with the example config, see tests/docs_server.py) and answers
what docs/api.md shows; the README's `release-bot` commands run as written from a clone, its `console` blocks
print what they show, and its config fragments are valid in the example config.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from bot import api_models
from bot.config import Alerts, Config, ConfigError, load_config, load_config_located
from bot.config.source import read_yaml
from tests import docs_server
from tests.doc_console import Command, missing, run_session, steps
from tests.docs_server import (
    API_DOC,
    EXAMPLE_CONFIG,
    README,
    ROOT,
    Served,
    code_blocks,
    curl_missing,
    released_history,
    serve_example,
)

_CURL_MISSING = curl_missing()
if _CURL_MISSING is not None and os.environ.get("CI") == "true":  # CI installs curl (.ci/run): never skip there
    raise RuntimeError(f"CI=true, but {_CURL_MISSING}")
needs_curl = pytest.mark.skipif(_CURL_MISSING is not None, reason=_CURL_MISSING or "")
_ROUTE = re.compile(r"^### (GET|POST|PUT|PATCH|DELETE) (/\S*)$", re.MULTILINE)
_HEADING = re.compile(r"^#{1,3} ", re.MULTILINE)
_GENERATED_ID = re.compile(r"[0-9a-f]{32}")


# docs/api.md documents POST /api/v1/alerts, served only with an `alerts:` block: the API doc's tests serve the
# example config plus one, with its token variable set for the bot and for the doc's shell blocks.
ALERTS_TOKEN_ENV, ALERTS_TOKEN = "ALERTMANAGER_TOKEN", "docs-alertmanager-token"


@asynccontextmanager
async def serve_documented(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Served]:
    """serve_example with ``alerts: {token_env: ALERTMANAGER_TOKEN}`` added to the example config."""

    def with_alerts(path: Path) -> Config:
        return load_config(path).model_copy(update={"alerts": Alerts(token_env=ALERTS_TOKEN_ENV)})

    monkeypatch.setenv(ALERTS_TOKEN_ENV, ALERTS_TOKEN)
    monkeypatch.setattr(docs_server, "load_config", with_alerts)
    async with serve_example(tmp_path) as served:
        run = served.run

        async def run_with_token(script: str, cwd: Path) -> Any:
            # As a reader who set the variable, like RELEASEBOT_URL and RELEASEBOT_API_TOKEN, before pasting.
            return await run(f"export {ALERTS_TOKEN_ENV}={ALERTS_TOKEN}\n{script}", cwd)

        monkeypatch.setattr(served, "run", run_with_token)
        yield served


def route_sections(text: str) -> dict[str, str]:
    """``"METHOD /path"`` → the text of its ``###`` section, up to the next heading of level 1–3."""
    sections: dict[str, str] = {}
    for match in _ROUTE.finditer(text):
        end = _HEADING.search(text, match.end())
        key = f"{match[1]} {match[2]}"
        assert key not in sections, f"{key} is documented twice"
        sections[key] = text[match.end() : end.start() if end else len(text)]
    return sections


def table(section: str, first_header: str) -> dict[str, list[str]]:
    """The rows of the section's table whose header starts ``| first_header |``: first cell (unquoted) → cells."""
    lines = section.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |")), None)
    if start is None:
        return {}
    rows: dict[str, list[str]] = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[cells[0].strip("`")] = cells[1:]
    return rows


def body_models() -> list[type[BaseModel]]:
    """Every request body model in bot/api_models.py (a model with fields)."""
    return [
        model
        for model in vars(api_models).values()
        if isinstance(model, type)
        and issubclass(model, BaseModel)
        and model.__module__ == api_models.__name__
        and model.model_fields
    ]


def served_routes(app: Any) -> set[str]:
    """``"METHOD /path"`` of every route the app and its sub-apps serve (HEAD goes with GET)."""
    return {f"{route.method} {route.resource.canonical}" for route in app.router.routes() if route.method != "HEAD"}


async def test_the_api_doc_documents_every_route_served_and_no_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = API_DOC.read_text()
    async with serve_documented(tmp_path, monkeypatch) as served:
        routes = served_routes(served.app)

    documented = set(route_sections(doc))

    assert "POST /api/v1/candidates/{service}/{version}/tests" in routes  # the sub-app's routes are seen
    assert "POST /api/v1/alerts" in routes  # served with the `alerts:` block
    assert sorted(routes - documented) == [], "served but not documented in docs/api.md"
    assert sorted(documented - routes) == [], "documented in docs/api.md but not served"
    overview = {f"{m[1]} {m[2]}" for m in re.finditer(r"^\| `(\w+)` \| \[`(/\S*?)`\]", doc, re.MULTILINE)}
    assert overview == routes, "the overview table at the top of docs/api.md"


@pytest.mark.parametrize("model", body_models(), ids=lambda m: m.__name__)
def test_every_field_of_a_request_body_is_documented_with_whether_it_is_required(model: type[BaseModel]) -> None:
    found = re.search(r"``(GET|POST|PUT|PATCH|DELETE) (/\S+)``", model.__doc__ or "")
    assert found, f"{model.__name__}'s docstring must start with its route, e.g. ``POST /api/v1/candidates``"
    sections = route_sections(API_DOC.read_text())
    route = f"{found[1]} {found[2]}"
    assert route in sections, f"{route} ({model.__name__}) has no section in docs/api.md"

    rows = table(sections[route], "field")

    assert sorted(rows) == sorted(model.model_fields), f"the body table of {route}"
    for name, info in model.model_fields.items():
        required = rows[name][1]
        assert required.startswith("yes") == info.is_required(), f"{route}: {name} is required: {info.is_required()}"


def test_the_request_bodies_are_found() -> None:
    assert {"CandidateBody", "TestReportBody"} <= {m.__name__ for m in body_models()}


def api_blocks(path: Path) -> list[str]:
    return [body for lang, body in code_blocks(path.read_text()) if lang == "sh" and "curl " in body]


def answers(printed: str) -> list[Any]:
    """The JSON documents curl printed one after another."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while at < len(printed):
        if printed[at].isspace():
            at += 1
            continue
        value, at = decoder.raw_decode(printed, at)
        found.append(value)
    return found


@needs_curl
async def test_the_readme_ci_commands_work_as_written(tmp_path: Path) -> None:
    blocks = api_blocks(README)
    assert blocks, "README.md has no curl command"
    printed: list[Any] = []
    async with serve_example(tmp_path) as served:
        for block in blocks:
            done, answered = await served.run(block, tmp_path)

            assert done.returncode == 0, f"{block}\nexited {done.returncode}:\n{done.stderr}\n{done.stdout}"
            assert len(answered) >= block.count("curl "), answered
            assert [status for _, _, status in answered if not 200 <= status < 300] == [], answered
            printed += answers(done.stdout)

    components = set(load_config(EXAMPLE_CONFIG).services["notify"].components)
    assert printed[0]["status"] == "created"
    # The README's CI job gives prod's checklist its evidence: a scan of every image the candidate ships.
    assert {a["component"] for a in printed if "matched_by" in a} == components
    assert all(a["matched_by"] == "digest" for a in printed if "matched_by" in a)


def same_as_shown(actual: Any, shown: Any, where: str = "") -> None:
    """``actual`` is what the doc shows; a list shown may stop early, and an id the bot made may differ."""
    if isinstance(shown, dict):
        assert isinstance(actual, dict) and sorted(actual) == sorted(shown), f"keys at {where or 'top'}"
        for key in shown:
            same_as_shown(actual[key], shown[key], f"{where}.{key}")
    elif isinstance(shown, list):
        # A list shown may stop early; one shown empty is empty.
        assert isinstance(actual, list) and (0 < len(shown) <= len(actual) or shown == actual == []), f"list at {where}"
        for i, (one, other) in enumerate(zip(actual, shown, strict=False)):
            same_as_shown(one, other, f"{where}[{i}]")
    elif where.endswith(".request_id") and isinstance(actual, str) and _GENERATED_ID.fullmatch(actual):
        assert isinstance(shown, str) and _GENERATED_ID.fullmatch(shown), where  # generated: any such id
    else:
        assert actual == shown, f"value at {where}"


@needs_curl
async def test_the_api_doc_examples_work_as_written_and_answer_what_is_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocks = code_blocks(API_DOC.read_text())
    ran = 0
    async with serve_documented(tmp_path, monkeypatch) as served:
        released_history(served.store, served.clock)
        for i, (lang, block) in enumerate(blocks):
            if lang != "sh":
                continue
            done, answered = await served.run(block, tmp_path)
            ran += 1

            assert done.returncode == 0, f"{block}\nexited {done.returncode}:\n{done.stderr}\n{done.stdout}"
            assert answered and all(200 <= status < 300 for _, _, status in answered), answered
            shown_lang, shown = blocks[i + 1] if i + 1 < len(blocks) else ("", "")
            if shown_lang == "json":
                same_as_shown(json.loads(done.stdout), json.loads(shown))
            elif shown_lang == "markdown":
                assert done.stdout.strip() == shown.strip()
            elif shown_lang == "text":  # an excerpt: each line shown is a line of the answer
                lines = set(done.stdout.splitlines())
                assert [line for line in shown.splitlines() if line != "…" and line not in lines] == []
    assert ran == len(api_blocks(API_DOC)) >= 9


def test_the_readme_release_bot_commands_work_as_written_from_a_clone(tmp_path: Path) -> None:
    blocks = [b for lang, b in code_blocks(README.read_text()) if lang == "sh" and re.search(r"^release-bot ", b, re.M)]
    assert blocks, "README.md has no release-bot command block"
    for block in blocks:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block],
            env={"PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path)},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )

        assert done.returncode == 0, f"{block}\nexited {done.returncode}:\n{done.stderr}"
        assert "examples/releasebot.yml: ok (1 service(s), 2 environment(s))" in done.stdout
        decision = json.loads(done.stdout[done.stdout.index("{") :])
        assert (decision["environment"], decision["open"]) == ("prod", False)
        assert decision["reasons"][0]["text"].startswith("End-of-year freeze")


def test_the_readme_console_blocks_print_what_they_show(tmp_path: Path) -> None:
    """README's ```console blocks as one reader's session from the clone, `.venv` activated (tests/doc_console.py):
    run in a copy of the files they use (examples/), so the database they make stays out of the clone."""
    clone = tmp_path / "clone"
    shutil.copytree(ROOT / "examples", clone / "examples")
    session = steps(README.read_text())
    commands = [(i, step) for i, step in enumerate(session) if isinstance(step, Command)]
    texts = [step.text for _, step in commands]
    assert "release-bot check-config --config examples/releasebot.yml" in texts
    assert [t for t in texts if t.startswith("release-bot candidate ")], "the candidate command line is shown"
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path)}

    ran = run_session(session, cwd=clone, env={**env, "LANG": "C.UTF-8"}, timeout=120)

    problems = []
    for index, command in commands:
        printed, status = ran.output.get(index, ""), ran.status.get(index)
        if status is None or (status != 0) != command.fails:
            problems.append(f"`{command.text}` exited {status}:\n{printed}")
        elif (problem := missing(command.shown, printed)) is not None:
            problems.append(f"`{command.text}`: {problem}")
    assert problems == []


def _merged(base: Any, fragment: Any) -> Any:
    if isinstance(base, dict) and isinstance(fragment, dict):
        return {**base, **{key: _merged(base.get(key), value) for key, value in fragment.items()}}
    return fragment


def test_every_config_fragment_in_the_readme_is_valid_in_the_example_config(tmp_path: Path) -> None:
    """Each ```yaml block of README.md, put into examples/releasebot.yml (a copy, beside its deploy script),
    is a config release-bot reads."""
    fragments = [body for lang, body in code_blocks(README.read_text()) if lang == "yaml"]
    assert len(fragments) >= 3
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    example = read_yaml(EXAMPLE_CONFIG.read_text(), str(EXAMPLE_CONFIG)).data  # YAML 1.2, as the bot reads it
    for fragment in fragments:
        path = tmp_path / "examples" / "releasebot.yml"
        merged = _merged(example, read_yaml(fragment, "README.md").data)
        path.write_text(yaml.safe_dump(merged, sort_keys=False))  # PyYAML quotes what 1.1 would misread ('ON')
        try:
            load_config_located(path)
        except ConfigError as exc:
            pytest.fail(f"{fragment}\n{exc.located}")
