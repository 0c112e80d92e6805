"""Config validation: every error names its path; the example config loads; the docs match the models."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "releasebot.yml"


def example() -> dict[str, Any]:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["calendar"]["subdivision"] = "ON"  # plain yaml.safe_load reads ON as True: the bot's loader does not
    return data


def test_example_config_loads() -> None:
    config = load_config(EXAMPLE)
    assert config.calendar is not None and config.calendar.subdivision == "ON"
    assert config.environments["prod"].strategy.type == "canary"


@pytest.mark.parametrize(
    ("mutate", "path", "message"),
    [
        (
            lambda d: d["environments"]["prod"]["checks"][0].update(fail_if=">> 5"),
            "environments.prod.checks[0].fail_if",
            "bad condition",
        ),
        (
            lambda d: d["environments"]["prod"]["deploy"].update(timeout="5 parsecs"),
            "environments.prod.deploy.timeout",
            "bad duration",
        ),
        (lambda d: d["environments"]["prod"].update(bogus=1), "environments.prod.bogus", "unknown key"),
        (lambda d: d.update(timezone="Mars/Olympus"), "timezone", "unknown time zone"),
        (lambda d: d["calendar"].update(country="XX"), "calendar", "unknown country"),
        (lambda d: d["calendar"].update(subdivision="ZZ"), "calendar", "unknown subdivision"),
        (lambda d: d["business_hours"].update(start="17:00"), "business_hours", "must be after start"),
        (lambda d: d["freezes"][0].update(end="2026-01-01"), "freezes[0]", "is before start"),
        (
            lambda d: d["services"]["notify"].update(pipeline=["staging", "qa"]),
            "services.notify.pipeline[1]",
            "undefined environment 'qa'",
        ),
        (
            lambda d: d["environments"]["prod"].update(allowed=["nobody"]),
            "environments.prod.allowed[0]",
            "undefined group",
        ),
        (
            lambda d: d["environments"]["prod"]["strategy"].update(steps=[50, 10]),
            "environments.prod.strategy",
            "strictly increasing",
        ),
        (lambda d: d["groups"].update(oncall=["alice"]), "groups", "not a Slack user"),
        (lambda d: d["services"]["notify"].update(channel="#releases"), "services.notify.channel", "channel ID"),
        (lambda d: d["summaries"].update(weekly="someday"), "summaries.weekly", "weekly must be"),
    ],
)
def test_each_error_names_its_path(mutate: Any, path: str, message: str) -> None:
    data = example()
    mutate(data)
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert any(line.startswith(f"{path}:") and message in line for line in caught.value.errors), caught.value.errors


def test_all_errors_are_reported_at_once() -> None:
    data = example()
    data["timezone"] = "Nowhere/Land"
    data["environments"]["prod"]["bogus"] = True
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert len(caught.value.errors) == 2


def test_norway_problem_is_avoided(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace("{country: CA, subdivision: ON}", "{country: NO}")
    path = tmp_path / "c.yml"
    path.write_text(text)
    assert load_config(path).calendar.country == "NO"  # type: ignore[union-attr]


def test_config_docs_match_the_models() -> None:
    spec = importlib.util.spec_from_file_location("gen_config_docs", ROOT / "scripts" / "gen_config_docs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (ROOT / "docs" / "config.md").read_text() == module.generate(), "run `make docs` to regenerate"
