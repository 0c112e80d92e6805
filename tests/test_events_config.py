"""The `events:` config: types checked at their path, secrets named by variable and checked by `check-config`
and at start-up, and the targets the store writes deliveries for."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.config import ConfigError, parse_config
from bot.config.events import EVENT_TYPES, PREFIX, RELEASE_STATES, target_label
from bot.core.models import ReleaseState
from bot.events.deliver import DeliveryPolicy
from bot.events.setup import build_deliveries, event_targets, github_services
from bot.http_auth import CredentialsError
from bot.http_session import HttpSession
from bot.store import AsyncStore, Store
from bot.store.events import GITHUB, EventTarget, label_of
from tests.harness import TUESDAY_10AM, MutableClock, config_dict
from tests.test_cli import run

HOOK = "https://hooks.example/releases"


def with_events(events: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    data = config_dict(tmp_path / "deploys.log")
    data["services"]["notify"]["repo"] = {"github": "acme/notify"}
    data["events"] = events
    return data


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    return [f"{p.path}: {p.message}" for p in caught.value.problems]


def test_release_types_follow_the_release_states() -> None:
    assert list(RELEASE_STATES) == [state.value for state in ReleaseState]
    assert {PREFIX + "alert.firing", PREFIX + "train.departed", PREFIX + "train.held", PREFIX + "train.missed"} <= set(
        EVENT_TYPES
    )


def test_types_are_normalised_and_groups_accepted(tmp_path: Path) -> None:
    hook = {"url": HOOK, "secret_env": "RB_HOOK", "types": ["release.succeeded", "dev.releasebot.check.*", "*"]}
    config = parse_config(with_events({"webhooks": [hook]}, tmp_path))
    assert config.events.webhooks[0].types == [PREFIX + "release.succeeded", PREFIX + "check.*", "*"]
    assert parse_config(config_dict(tmp_path / "x")).events.webhooks == []  # no events: block: nothing configured


@pytest.mark.parametrize(
    ("hook", "expected"),
    [
        (
            {"url": HOOK, "secret_env": "RB_HOOK", "types": ["release.succeeded", "release.suceeded"]},
            "events.webhooks[0].types[1]: unknown event type 'release.suceeded'",
        ),
        (
            {"url": HOOK, "secret_env": "RB_HOOK", "types": ["deploy.*"]},
            "events.webhooks[0].types[0]: unknown",
        ),
        ({"url": HOOK, "secret_env": "RB_HOOK", "types": []}, "events.webhooks[0].types: List should have at least 1"),
        ({"url": "ftp://hooks.example/x", "secret_env": "RB_HOOK"}, "events.webhooks[0].url: must be an"),
        (
            {"url": "https://hooks.example:99999/x", "secret_env": "RB_HOOK"},
            "events.webhooks[0].url: must be an http:// or https:// URL; its port 99999 is not between 1 and 65535",
        ),
        (
            {"url": "https://u:p@hooks.example/x", "secret_env": "RB_HOOK"},
            "events.webhooks[0].url: must not",
        ),
        ({"url": HOOK, "secret_env": "hunter2 is my secret"}, "events.webhooks[0].secret_env: must be the"),
        ({"url": HOOK}, "events.webhooks[0].secret_env: Field required"),
        ({"url": HOOK, "secret_env": "RB_HOOK", "name": "Dash Board"}, "events.webhooks[0].name: must be lowercase"),
        ({"url": HOOK, "secret_env": "RB_HOOK", "name": "github"}, "events.webhooks[0].name: github is the"),
    ],
)
def test_bad_webhooks_are_refused_at_their_path(tmp_path: Path, hook: dict[str, Any], expected: str) -> None:
    found = problems(with_events({"webhooks": [hook]}, tmp_path))
    assert len(found) == 1 and found[0].startswith(expected), found
    assert "hunter2" not in found[0]  # a secret pasted by mistake is not repeated


def test_a_receiver_listed_twice_is_refused_by_position_not_by_its_url(tmp_path: Path) -> None:
    url = HOOK + "?token=s3cret"
    hooks = [
        {"url": HOOK + "/other", "secret_env": "A"},
        {"url": url, "secret_env": "B", "name": "dash"},
        {"url": url, "secret_env": "C"},
    ]
    assert problems(with_events({"webhooks": hooks}, tmp_path)) == [
        "events.webhooks: webhooks[1] (dash) and webhooks[2] have the same URL (https://hooks.example…): give it "
        "once with every type it takes"
    ]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("htps://hooks.example.com/services/T000/B000/SUPERSECRETTOKEN", "one starting htps://hooks.example.com"),
        ("ftp://user:SUPERSECRETTOKEN@files.example:2121/x", "one starting ftp://files.example:2121"),
        ("hooks.example.com/services/SUPERSECRETTOKEN", "something else"),
        ("https://hooks.example.com:SUPERSECRETTOKEN/x", "something else"),
        ("SUPERSECRETTOKEN", "something else"),
    ],
)
def test_a_bad_url_is_named_by_scheme_host_and_port_only(tmp_path: Path, url: str, shown: str) -> None:
    found = problems(with_events({"webhooks": [{"url": url, "secret_env": "RB_HOOK"}]}, tmp_path))
    assert found == [
        f"events.webhooks[0].url: must be an http:// or https:// URL; got {shown} (the rest is not shown: it may "
        "hold a token)"
    ]


def test_check_config_names_a_bad_webhook_url_without_printing_its_token(tmp_path: Path) -> None:
    bad = "htps://hooks.example.com/services/T000/B000/SUPERSECRETTOKEN"
    path = write(tmp_path, {"webhooks": [{"url": bad, "secret_env": "RB_HOOK_SECRET"}]})

    result = run(["check-config", str(path)], path, RB_HOOK_SECRET="v3ry-s3cret")

    assert result.exit_code == 1
    assert "SUPERSECRETTOKEN" not in result.stdout + result.stderr
    assert re.search(
        r":\d+:\d+ events\.webhooks\[0\]\.url: must be an http:// or https:// URL; got one starting "
        r"htps://hooks\.example\.com \(the rest is not shown: it may hold a token\)$",
        result.stderr.splitlines()[0],
    ), result.stderr


def test_two_webhooks_with_one_name_are_refused(tmp_path: Path) -> None:
    hooks = [
        {"url": HOOK, "secret_env": "A", "name": "dash"},
        {"url": HOOK + "/2", "secret_env": "B", "name": "dash"},
    ]
    assert problems(with_events({"webhooks": hooks}, tmp_path)) == [
        "events.webhooks: the name dash is given to two webhooks: metrics could not tell them apart"
    ]


def test_retention_defaults_to_30_days_and_a_too_short_one_is_refused_at_its_path(tmp_path: Path) -> None:
    assert parse_config(with_events({}, tmp_path)).events.retention == timedelta(days=30)
    assert parse_config(with_events({"retention": "90d"}, tmp_path)).events.retention == timedelta(days=90)
    assert problems(with_events({"retention": "10m"}, tmp_path)) == [
        "events.retention: must be at least 1h (events are pruned hourly), got 0:10:00"
    ]
    assert problems(with_events({"retention": "soon"}, tmp_path))[0].startswith("events.retention: ")


@pytest.mark.parametrize(
    ("target", "label"),
    [
        ("https://hooks.example/releases?token=s3cret", "https://hooks.example"),
        ("http://Hooks.Example:8080/a/b#frag", "http://hooks.example:8080"),
        ("https://[::1]:9443/hook?x=1", "https://[::1]:9443"),
        ("github", "github"),
        ("not a url with s3cret", "unknown"),
    ],
)
def test_a_target_is_labelled_by_scheme_host_and_port_only(target: str, label: str) -> None:
    assert target_label(target) == label


def test_a_webhook_is_labelled_by_its_name_when_it_has_one(tmp_path: Path) -> None:
    hooks = [
        {"url": HOOK + "?token=s3cret", "secret_env": "A", "name": "dash"},
        {"url": "https://other.example/h?token=s3cret", "secret_env": "B"},
    ]
    targets = event_targets(parse_config(with_events({"webhooks": hooks}, tmp_path)), github=frozenset())
    assert [label_of(targets, t.name) for t in targets] == ["dash", "https://other.example"]
    assert label_of(targets, "https://removed.example/h?token=s3cret") == "https://removed.example"


def test_github_deployments_default_to_the_token(tmp_path: Path) -> None:
    auto = parse_config(with_events({}, tmp_path))
    off = parse_config(with_events({"github_deployments": False}, tmp_path))
    on = parse_config(with_events({"github_deployments": True}, tmp_path))
    assert github_services(auto, has_token=True) == {"notify"} and github_services(auto, has_token=False) == set()
    assert github_services(off, has_token=True) == set() and github_services(on, has_token=False) == {"notify"}
    hook = {"url": HOOK, "secret_env": "RB_HOOK", "types": ["approval.*"]}
    assert event_targets(parse_config(with_events({"webhooks": [hook]}, tmp_path)), github=frozenset({"notify"})) == (
        EventTarget(HOOK, (PREFIX + "approval.*",)),
        EventTarget(GITHUB, (PREFIX + "release.*",), frozenset({"notify"})),
    )


def write(tmp_path: Path, events: dict[str, Any]) -> Path:
    path = tmp_path / "releasebot.yml"
    path.write_text(yaml.safe_dump(with_events(events, tmp_path), sort_keys=False))
    return path


def test_check_config_names_an_unset_secret_at_its_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RB_HOOK_SECRET", raising=False)
    path = write(tmp_path, {"webhooks": [{"url": HOOK, "secret_env": "RB_HOOK_SECRET", "types": ["release.*"]}]})

    result = run(["check-config", str(path)], path)

    assert result.exit_code == 1
    *errors, count = result.stderr.splitlines()
    assert count == "1 error(s)", result.stderr
    match = re.fullmatch(
        rf"{re.escape(str(path))}:(\d+):(\d+) events\.webhooks\[0\]\.secret_env: environment variable RB_HOOK_SECRET "
        "is not set",
        errors[0],
    )
    assert match, errors
    line = path.read_text().splitlines()[int(match.group(1)) - 1]
    assert line[int(match.group(2)) - 1 :].startswith("secret_env:")
    good = run(["check-config", str(path)], path, RB_HOOK_SECRET="v3ry-s3cret")
    assert good.exit_code == 0 and "v3ry-s3cret" not in good.stdout + good.stderr


async def test_the_worker_is_not_built_without_its_secret_and_sends_nothing(tmp_path: Path) -> None:
    config = parse_config(with_events({"webhooks": [{"url": HOOK, "secret_env": "RB_HOOK_SECRET"}]}, tmp_path))
    store = AsyncStore(Store(tmp_path / "db.sqlite"))
    try:
        with pytest.raises(CredentialsError) as caught:
            build_deliveries(
                config,
                store,
                HttpSession(),
                github_token=None,
                github_api_url="http://127.0.0.1:9",
                permalink=lambda channel, ts: _none(),
                clock=MutableClock(TUESDAY_10AM),
                policy=DeliveryPolicy(),
                environ={},
            )
        assert caught.value.problems == [
            (("events", "webhooks", 0, "secret_env"), "environment variable RB_HOOK_SECRET is not set")
        ]
        assert store.sync.event_targets == ()  # nothing will be queued for an unsigned receiver either
    finally:
        store.close()


async def _none() -> str | None:
    return None
