"""Config validation: every error names its path; the example config loads; the docs match the models."""

from __future__ import annotations

import importlib.util
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from ruamel.yaml import YAML

from bot.config import CommandProvider, Config, ConfigError, load_config, parse_config
from bot.config.source import read_yaml

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "releasebot.yml"


def example() -> dict[str, Any]:
    data: dict[str, Any] = YAML(typ="safe", pure=True).load(EXAMPLE.read_text())  # YAML 1.2: ON stays a string
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
        (lambda d: d["calendar"].update(country="XX"), "calendar.country", "unknown country"),
        (lambda d: d["calendar"].update(subdivision="ZZ"), "calendar.subdivision", "unknown subdivision"),
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
        (
            lambda d: d["environments"]["prod"].update(deploy=http_deploy({"token_env": "DEPLOY-TOKEN"})),
            "environments.prod.deploy.auth.token_env",
            "must be the name of an environment variable",
        ),
        (
            lambda d: d["environments"]["prod"].update(deploy=http_deploy({"headers": {"Authorization": "Bearer x"}})),
            "environments.prod.deploy.auth.headers",
            "Authorization is a credential: name its environment variable in headers_env",
        ),
        (
            lambda d: d["environments"]["prod"].update(deploy=http_deploy({"token_env": "T", "username": "bot"})),
            "environments.prod.deploy.auth",
            "give token_env (bearer) or basic auth (username, password_env), not both",
        ),
        (
            lambda d: d["environments"]["prod"]["checks"][0].update(auth={"token_env": "T"}),
            "environments.prod.checks[0]",
            "auth is for http checks; Prometheus's credentials are metrics.prometheus_auth",
        ),
        (
            lambda d: d["metrics"].update(prometheus_auth={"username": "bot"}),
            "metrics.prometheus_auth",
            "basic auth needs password_env and one of username, username_env",
        ),
        (
            lambda d: d["metrics"].update(prometheus_auth={"headers_env": {"X Scope": "TENANT"}}),
            "metrics.prometheus_auth.headers_env",
            "'X Scope' is not a header name",
        ),
        (
            lambda d: d["metrics"].update(prometheus_auth={"headers": {"x-a": "1"}, "headers_env": {"X-A": "A"}}),
            "metrics.prometheus_auth",
            "header x-a is given twice",
        ),
        (
            lambda d: d["metrics"].update(prometheus_auth={"headers_env": {"Content-Type": "CT"}}),
            "metrics.prometheus_auth.headers_env",
            "Content-Type is set by the bot",
        ),
        (lambda d: d["metrics"].update(prometheus_auth={}), "metrics.prometheus_auth", "names nothing"),
        (
            lambda d: d["environments"]["prod"]["deploy"]["run"].append("--to={verison}"),
            "environments.prod.deploy.run[6]",
            "unknown placeholder {verison} (known: {service}, {version}, {environment}, {weight}, {colour}, "
            "{previous_version}, {release_id}, {action})",
        ),
        (
            lambda d: d["environments"]["prod"]["deploy"].update(shift=[]),
            "environments.prod.deploy.shift",
            "List should have at least 1 item",
        ),
        (  # a check's name keys its measurements: a second check of the same name would overwrite them
            lambda d: d["environments"]["prod"]["checks"].append(
                {k: v for k, v in d["environments"]["prod"]["checks"][0].items() if k != "after"}
                | {"every": "30s", "for": "10m"}
            ),
            "environments.prod.checks",
            "check name 'error rate' is used by checks[0] and checks[1]",
        ),
        (
            lambda d: d["services"]["notify"].update(
                environments={"prod": {"checks": [{"name": "up", "http": "https://x.example/"}] * 2}}
            ),
            "services.notify.environments.prod.checks",
            "check name 'up' is used by checks[0] and checks[1]",
        ),
    ],
)
def test_each_error_names_its_path(mutate: Any, path: str, message: str) -> None:
    data = example()
    mutate(data)
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert any(line.startswith(f"{path}:") and message in line for line in caught.value.errors), caught.value.errors


def http_deploy(auth: dict[str, Any]) -> dict[str, Any]:
    return {"provider": "http", "url": "https://deploy.example/deploy", "auth": auth}


SECRET = "ghp_Zx9s3cretVALUE0123456789"


@pytest.mark.parametrize(
    "auth",
    [
        {"token_env": SECRET + "!"},  # the secret pasted where its variable's name belongs
        {"username": "bot", "password": SECRET},  # a password written into the file
        {"headers": {"Authorization": f"Bearer {SECRET}"}},
        {"headers": {"X-Api-Key": f"{SECRET}\n"}},
        {"headers_env": {"X-Api-Key": f"{SECRET}-"}},
        {"username": f"{SECRET}:", "password_env": "P"},
    ],
)
def test_auth_errors_never_repeat_a_value(auth: dict[str, Any]) -> None:
    data = example()
    data["environments"]["prod"]["deploy"] = http_deploy(auth)
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert all(error.startswith("environments.prod.deploy.auth") for error in caught.value.errors), caught.value.errors
    assert SECRET not in str(caught.value)


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


# --- calendar: categories, extra days, skipped holidays ----------------------------------------------------


def calendar_errors(calendar: dict[str, Any]) -> list[str]:
    data = example()
    data["calendar"] = calendar
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    return [str(e) for e in caught.value.errors]


BAVARIA = {"country": "DE", "subdivision": "BY"}
ONTARIO = {"country": "CA", "subdivision": "ON"}


@pytest.mark.parametrize(
    ("calendar", "expected"),
    [
        (
            {**BAVARIA, "categories": ["public", "catholik"]},
            "calendar.categories[1]: unknown category 'catholik' for DE (known: catholic, public, school)",
        ),
        (
            {**ONTARIO, "categories": ["public", "catholic"]},
            "calendar.categories[1]: unknown category 'catholic' for CA (known: government, optional, public)",
        ),
        ({**ONTARIO, "categories": ["public", "Public"]}, "calendar.categories: a category appears twice"),
        (
            {**ONTARIO, "skip": ["2026-12-24"]},
            "calendar.skip[0]: 2026-12-24 is not a holiday in CA-ON (public): there is nothing to skip",
        ),
        (
            # Ontario's Civic Holiday is only in its optional category, which this calendar does not keep.
            {**ONTARIO, "skip": [{"date": "2026-12-25"}, {"date": "2026-08-03", "name": "Civic Holiday"}]},
            "calendar.skip[1]: 2026-08-03 is not a holiday in CA-ON (public): there is nothing to skip",
        ),
        (
            {**ONTARIO, "skip": [{"date": "2026-12-25", "name": "Xmas"}]},
            "calendar.skip[0]: no holiday named 'Xmas' on 2026-12-25 (there: Christmas Day)",
        ),
        ({**ONTARIO, "skip": ["2026-12-25", "2026-12-25"]}, "calendar.skip: 2026-12-25 appears twice"),
        ({**ONTARIO, "skip": ["2026-13-01"]}, "calendar.skip[0].date: Input should be a valid date"),
        ({**ONTARIO, "extra": [{"date": "2026-12-24"}]}, "calendar.extra[0].name: Field required"),
        (
            {**ONTARIO, "extra": [{"date": "2026-12-24", "name": "A"}, {"date": "2026-12-24", "name": "B"}]},
            "calendar.extra: 2026-12-24 appears twice",
        ),
        (
            {**ONTARIO, "extra": [{"date": "2026-12-25", "name": "Party"}], "skip": ["2026-12-25"]},
            "calendar.skip[0]: 2026-12-25 is also in calendar.extra: a day is either added or skipped",
        ),
    ],
)
def test_calendar_errors_name_their_path(calendar: dict[str, Any], expected: str) -> None:
    errors = calendar_errors(calendar)
    assert any(line.startswith(expected) for line in errors), errors


def test_a_bad_country_is_the_only_calendar_error() -> None:
    # Categories and skipped dates can't be checked against an unknown country: no errors that only echo it.
    errors = calendar_errors({"country": "XX", "categories": ["catholic"], "skip": ["2026-12-25"]})
    assert errors == ["calendar.country: unknown country 'XX' (use an ISO 3166-1 alpha-2 code, e.g. CA, GB)"]


def test_calendar_categories_extra_and_skip_load_from_yaml(tmp_path: Path) -> None:
    calendar = (
        "calendar:\n"
        "  country: DE\n"
        "  subdivision: BY\n"
        "  categories: [public, Catholic]\n"
        "  extra: [{date: 2026-12-24, name: Company day off}]\n"
        "  skip: [2026-01-06, {date: 2026-08-15, name: assumption day}]\n"
    )
    text = EXAMPLE.read_text().replace("calendar: {country: CA, subdivision: ON}", calendar.rstrip("\n"))
    path = tmp_path / "c.yml"
    path.write_text(text)
    loaded = load_config(path).calendar
    assert loaded is not None
    assert loaded.categories == ["public", "catholic"]
    assert [(e.date, e.name) for e in loaded.extra] == [(date(2026, 12, 24), "Company day off")]
    assert [(s.date, s.name) for s in loaded.skip] == [(date(2026, 1, 6), None), (date(2026, 8, 15), "assumption day")]
    assert parse_config(example()).calendar.categories == ["public"]  # type: ignore[union-attr]


# --- positions: every error at its file:line:col -----------------------------------------------------------


def located_errors(tmp_path: Path, text: str) -> list[str]:
    """The errors of loading ``text`` from a file, each as ``line:col path: message`` (the file name dropped)."""
    path = tmp_path / "releasebot.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert all(line.startswith(f"{path}:") for line in caught.value.located)
    return [line.removeprefix(f"{path}:") for line in caught.value.located]


MANY_ERRORS = """\
timezone: UTC
groups:
  releasers: [U01RELEASE]
services:
  notify:
    channel: C01RELEASES
    pipeline: [staging, prod]
environments:
  staging:
    window: always
    deploy:
      provider: command
      timeout: 5m
  prod:
    window: business_hours
    deploy: {provider: command, run: [./deploy.sh], timeout: 5 parsecs}
    checks:
      - name: error rate
        prometheus: up
        fail_if: ">> 5"
    colour: blue
"""


def test_every_error_is_reported_at_its_line_and_column_in_file_order(tmp_path: Path) -> None:
    errors = located_errors(tmp_path, MANY_ERRORS)
    expected = [
        # a missing key is reported at the mapping that lacks it
        "11:5 environments.staging.deploy.run: Field required",
        # inside a flow mapping, and with pydantic's union member (`command`) left out of the path
        "16:53 environments.prod.deploy.timeout: bad duration '5 parsecs'",
        "20:9 environments.prod.checks[0].fail_if: bad condition '>> 5'",
        "21:5 environments.prod.colour: unknown key",
    ]
    assert len(errors) == len(expected), errors
    assert all(error.startswith(prefix) for error, prefix in zip(errors, expected, strict=True)), errors


def test_cross_reference_errors_point_at_the_item_they_name(tmp_path: Path) -> None:
    text = (
        MANY_ERRORS.replace("pipeline: [staging, prod]", "pipeline: [staging, qa]")
        .replace("      timeout: 5m\n", "      run: [./deploy.sh]\n")
        .replace("timeout: 5 parsecs", "timeout: 5m")
        .replace('fail_if: ">> 5"', 'fail_if: "> 5"')
        .replace("    colour: blue\n", "    allowed:\n      - releasers\n      - nobody\n")
        .replace("  releasers: [U01RELEASE]\n", "  releasers: [U01RELEASE]\n  Night Shift: [U01ONCALL1]\n")
    )
    assert located_errors(tmp_path, text) == [
        "2:1 groups: 'Night Shift': names are lowercase letters, digits, '-' and '_'",
        "8:25 services.notify.pipeline[1]: undefined environment 'qa'",
        "24:9 environments.prod.allowed[1]: undefined group 'nobody'",
    ]


def test_duplicate_keys_are_errors_with_both_lines_alongside_the_others(tmp_path: Path) -> None:
    text = MANY_ERRORS.replace("    colour: blue\n", "    window: always\n").replace(
        "  notify:\n", "  notify:\n    channel: C02OTHER\n"
    )
    errors = located_errors(tmp_path, text)
    assert "7:5 services.notify.channel: duplicate key (first defined at line 6, column 5)" in errors
    assert "22:5 environments.prod.window: duplicate key (first defined at line 16, column 5)" in errors
    assert any(e.startswith("21:9 environments.prod.checks[0].fail_if: bad condition") for e in errors), errors
    assert len(errors) == 5, errors


def test_a_duplicate_key_alone_still_refuses_the_file(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace("timezone: America/Toronto\n", "timezone: America/Toronto\ntimezone: UTC\n")
    assert located_errors(tmp_path, text) == ["3:1 timezone: duplicate key (first defined at line 2, column 1)"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'timezone: "UTC\nservices: {}\n',
            "3:1 (yaml): found unexpected end of stream (while scanning a quoted scalar at line 1)",
        ),
        ("services:\n  notify: 1\n bad: 2\n", "3:2 (yaml): expected <block end>, but found '<block mapping start>'"),
        ("services: [a, b\ntimezone: UTC\n", "2:9 (yaml): expected ',' or ']', but got ':'"),
        ("timezone: *zone\n", "1:11 (yaml): found undefined alias 'zone'"),
        ('timezone: "\x07"\n', "1:12 (yaml): unacceptable character #x0007: special characters are not allowed"),
    ],
    ids=["unterminated-quote", "bad-indent", "unclosed-flow", "undefined-alias", "control-character"],
)
def test_a_yaml_syntax_error_has_its_line_and_column(tmp_path: Path, text: str, expected: str) -> None:
    [error] = located_errors(tmp_path, text)
    assert error.startswith(expected), error


def test_yaml_1_2_only_true_and_false_are_booleans() -> None:
    document = read_yaml("on: yes\noff: no\nNO: ON\ny: n\nyes: true\nno: False\nclock: 09:00\n", "t.yml")
    assert document.data == {
        "on": "yes",
        "off": "no",
        "NO": "ON",
        "y": "n",
        "yes": True,
        "no": False,
        "clock": "09:00",
    }


def test_an_unquoted_ontario_subdivision_loads_as_a_string(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace("{country: CA, subdivision: ON}", "\n  country: CA\n  subdivision: ON")
    path = tmp_path / "c.yml"
    path.write_text(text)
    assert load_config(path).calendar.subdivision == "ON"  # type: ignore[union-attr]


def test_an_alias_and_a_merge_key_load_and_errors_in_them_have_a_line(tmp_path: Path) -> None:
    text = MANY_ERRORS.replace("      timeout: 5m\n", "      run: &run [./deploy.sh]\n").replace(
        "    deploy: {provider: command, run: [./deploy.sh], timeout: 5 parsecs}",
        "    deploy: {<<: {provider: command, timeout: 5 parsecs, run: []}, run: *run}",
    )
    errors = located_errors(tmp_path, text)
    # a merged key is reported where the merged mapping defines it; overriding it is not a duplicate key
    assert errors[0].startswith("16:38 environments.prod.deploy.timeout: bad duration"), errors
    assert not any("duplicate" in e for e in errors), errors
    assert len(errors) == 3, errors


# --- one pass: structure and cross-references together ------------------------------------------------------


def test_cross_references_are_reported_with_the_structural_errors_in_one_pass(tmp_path: Path) -> None:
    text = MANY_ERRORS.replace("pipeline: [staging, prod]", "pipeline: [staging, qa]").replace(
        "    colour: blue\n", "    colour: blue\n    allowed: [nobody]\n"
    )
    errors = located_errors(tmp_path, text)
    assert errors[0] == "7:25 services.notify.pipeline[1]: undefined environment 'qa'", errors
    assert "22:15 environments.prod.allowed[0]: undefined group 'nobody'" in errors
    assert any(e.startswith("16:53 environments.prod.deploy.timeout: bad duration") for e in errors), errors
    assert len(errors) == 6, errors


def test_references_are_checked_even_when_a_section_has_the_wrong_shape() -> None:
    data = example()
    data["groups"] = ["releasers"]  # not a mapping: groups cannot be checked, the pipeline still can
    data["services"]["notify"]["pipeline"] = ["staging", "qa"]
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert caught.value.errors[0].startswith("groups: Input should be a valid dictionary"), caught.value.errors
    assert "services.notify.pipeline[1]: undefined environment 'qa'" in caught.value.errors
    assert len(caught.value.errors) == 2, caught.value.errors


def set_key(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value


NEVER_WORKS = [
    (
        {"environments.prod.approvals": {"required": 3, "from": ["oncall", "leads"]}, "groups.leads": ["U01ONCALL1"]},
        "environments.prod.approvals.required: needs 3 approvals but oncall, leads have only 2 member(s)",
        False,
    ),
    (
        {"environments.prod.approvals": {"required": 3, "from": ["oncall"]}},
        "environments.prod.approvals.required: needs 3 approvals but oncall has only 2 member(s): it could never be "
        "approved",
        True,
    ),
    (
        # a Slack user group (S…) has a size only Slack knows: allowed
        {"environments.prod.approvals": {"required": 5, "from": ["releasers"]}},
        None,
        False,
    ),
    (
        {"environments.prod.rollback.approvals": {"required": 3}},  # without `from`: the oncall group
        "environments.prod.rollback.approvals.required: needs 3 approvals but oncall has only 2 member(s)",
        False,
    ),
    (
        {"environments.prod.rollback.approvals": {"required": 1}, "groups": {"releasers": ["U01RELEASE"]}},
        "environments.prod.rollback.approvals.required: needs 1 approval(s) but names no groups (`from`) and no "
        "'oncall' group is defined: nobody could approve",
        False,
    ),
    (
        {"environments.prod.rollback.approvals": {"required": 1, "from": ["oncall", "sre"]}},
        "environments.prod.rollback.approvals.from[1]: undefined group 'sre'",
        False,
    ),
    (
        {"environments.staging.production": True, "environments.prod.production": True},
        "services.notify.pipeline: has 2 production environments (staging, prod): DORA and the summaries count one "
        "per service",
        False,
    ),
    (
        {"services.notify.environments": {"qa": {"checks": []}}},
        "services.notify.environments.qa: undefined environment 'qa'",
        False,
    ),
    (
        {
            "environments.qa": {"deploy": {"provider": "command", "run": ["./deploy.sh"]}},
            "services.notify.environments": {"qa": {"checks": []}},
        },
        "services.notify.environments.qa: 'qa' is not in the pipeline of notify",
        False,
    ),
]


@pytest.mark.parametrize(("changes", "expected", "exact"), NEVER_WORKS)
def test_a_config_that_can_never_work_is_refused_with_its_path(
    changes: dict[str, Any], expected: str | None, exact: bool
) -> None:
    data = example()
    for path, value in changes.items():
        set_key(data, path, value)
    if expected is None:
        parse_config(data)
        return
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert len(caught.value.errors) == 1, caught.value.errors
    [error] = caught.value.errors
    assert error == expected if exact else error.startswith(expected), error


# --- approvals.when -----------------------------------------------------------------------------------------

TORONTO = ZoneInfo("America/Toronto")


def when_config(*rules: str, required: int = 1) -> Config:
    data = example()
    data["environments"]["prod"]["approvals"] = {"required": required, "when": list(rules)}
    return parse_config(data)


@pytest.mark.parametrize(
    ("rules", "wall", "needed"),
    [
        (["after 16:00", "fri"], "2026-11-24 15:59", 0),  # a Tuesday afternoon
        (["after 16:00", "fri"], "2026-11-24 16:00", 1),
        (["after 16:00", "fri"], "2026-11-27 09:30", 1),  # Friday
        (["after 16:00", "fri"], "2026-11-28 10:00", 0),  # Saturday morning
        (["mon-thu before 09:00"], "2026-11-26 08:59", 1),
        (["mon-thu before 09:00"], "2026-11-27 08:59", 0),
        (["fri-mon"], "2026-11-29 12:00", 1),  # a range may wrap past Sunday
        (["fri-mon"], "2026-11-25 12:00", 0),
        (["sat,sun", "12:00-13:00"], "2026-11-25 12:59", 1),
        (["sat,sun", "12:00-13:00"], "2026-11-25 13:00", 0),
        (["WED After 10:00"], "2026-11-25 11:00", 1),  # case-insensitive
    ],
)
def test_approvals_are_needed_when_a_rule_matches_the_request_time(rules: list[str], wall: str, needed: int) -> None:
    config = when_config(*rules)
    at = datetime.fromisoformat(wall).replace(tzinfo=TORONTO).astimezone(UTC)  # any zone: read in the configured one
    assert config.approvals_required("prod", at) == needed


def test_without_when_approvals_are_always_needed() -> None:
    data = example()
    data["environments"]["prod"]["approvals"] = {"required": 2, "from": ["oncall"]}
    config = parse_config(data)
    assert config.approvals_required("prod", datetime(2026, 11, 28, 3, 0, tzinfo=UTC)) == 2
    assert config.approvals_required("staging", datetime(2026, 11, 28, 3, 0, tzinfo=UTC)) == 0


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        (
            ["fri", "fry after 16:00"],
            "environments.prod.approvals.when[1]: bad rule 'fry after 16:00': 'fry' is not a day",
        ),
        (["after 25:00"], "environments.prod.approvals.when[0]: bad rule 'after 25:00': '25:00' is not a time (HH:MM)"),
        (["22:00-06:00"], "environments.prod.approvals.when[0]: bad rule '22:00-06:00': the range must end after it"),
        (["sometimes"], "environments.prod.approvals.when[0]: bad rule 'sometimes': use '[days] [after HH:MM"),
        (["before 00:00"], "environments.prod.approvals.when[0]: bad rule 'before 00:00': nothing is before 00:00"),
        ([], "environments.prod.approvals.when: List should have at least 1 item"),
    ],
)
def test_a_bad_when_rule_names_its_item(rules: list[str], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        when_config(*rules)
    assert [e for e in caught.value.errors if e.startswith(expected)], caught.value.errors


def test_when_needs_a_number_of_approvals() -> None:
    with pytest.raises(ConfigError) as caught:
        when_config("fri", required=0)
    assert caught.value.errors == [
        "environments.prod.approvals: when has no effect with required: 0 (set how many approvals it asks for)"
    ]


def test_rollback_approvals_have_no_when() -> None:
    data = example()
    data["environments"]["prod"]["rollback"]["approvals"]["when"] = ["fri"]
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert caught.value.errors == ["environments.prod.rollback.approvals.when: unknown key"]


# --- per service: strategy and checks; production ---------------------------------------------------------------

SEARCH_CHECK = {"name": "p99", "http": "https://search.example/health", "auth": {"token_env": "SEARCH_TOKEN"}}


def two_services() -> dict[str, Any]:
    data = example()
    data["services"]["search"] = {
        "channel": "C01SEARCH",
        "pipeline": ["staging", "prod"],
        "environments": {"prod": {"strategy": {"type": "blue_green"}, "checks": [SEARCH_CHECK]}, "staging": {}},
    }
    data["services"]["notify"]["environments"] = {"prod": {"checks": []}}
    return data


def test_a_service_overrides_the_strategy_and_checks_of_an_environment() -> None:
    config = parse_config(two_services())
    assert config.strategy_for("search", "prod").type == "blue_green"
    assert config.strategy_for("notify", "prod").type == "canary"  # the environment's
    assert config.strategy_for("search", "staging").type == "all_at_once"  # an override naming neither
    assert [c.name for c in config.checks_for("search", "prod")] == ["p99"]
    assert config.checks_for("notify", "prod") == [], "[] is no checks, not the environment's"
    assert [c.name for c in config.checks_for("search", "staging")] == []
    assert [loc for loc, _ in config.http_auths()] == [
        ("services", "search", "environments", "prod", "checks", 0, "auth")
    ]


def test_an_override_is_validated_with_its_path() -> None:
    data = two_services()
    data["services"]["search"]["environments"]["prod"]["strategy"] = {"type": "canary", "steps": [50, 10]}
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert caught.value.errors == [
        "services.search.environments.prod.strategy: steps must be strictly increasing and end at 100"
    ]


def test_production_is_the_marked_stage_else_the_last() -> None:
    data = example()
    data["environments"]["dr"] = {"deploy": {"provider": "command", "run": ["./deploy.sh"]}}
    data["services"]["notify"]["pipeline"] = ["staging", "prod", "dr"]
    assert parse_config(data).production_env("notify") == "prod"  # the example says `production: true`
    del data["environments"]["prod"]["production"]
    assert parse_config(data).production_env("notify") == "dr"


# --- cut-off per weekday -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("last_release", "expected"),
    [
        ({"sat": "12:00"}, "business_hours.last_release: Value error, sat is not a working day"),
        ({"thu": "17:00"}, "business_hours.last_release: Value error, thu: 17:00 must be after start (09:00)"),
        ({"fry": "12:00"}, "business_hours.last_release.fry: Input should be 'mon', 'tue'"),
        ({"thu": "noon"}, "business_hours.last_release.thu: Value error, bad time 'noon'"),
    ],
)
def test_a_bad_weekday_cutoff_names_its_path(last_release: dict[str, str], expected: str) -> None:
    data = example()
    data["business_hours"]["last_release"] = last_release
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert [e for e in caught.value.errors if e.startswith(expected.replace("Value error, ", ""))], caught.value.errors


# --- paths are relative to the config file ----------------------------------------------------------------------

PATHS = """\
services:
  notify:
    channel: C01RELEASES
    pipeline: [staging, prod]
    repo: {path: ../code}
environments:
  staging:
    deploy: {provider: command, run: [./bin/deploy.sh, "{version}"], rollback: [../common/undo.sh], shift: [kubectl]}
  prod:
    deploy: {provider: command, run: [/opt/deploy.sh], cwd: work}
    checks: [{name: up, http: "https://x.example/", auth: {ca_file: certs/ca.pem}}]
manifest: {repo: manifests}
"""


def test_every_path_is_relative_to_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "releasebot.yml").write_text(PATHS)
    monkeypatch.chdir(tmp_path)  # started elsewhere, with the file named relatively
    config = load_config(Path("conf/releasebot.yml"))
    staging, prod = (config.environments[env].deploy for env in ("staging", "prod"))
    assert isinstance(staging, CommandProvider) and isinstance(prod, CommandProvider)
    assert staging.run == [str(conf / "bin" / "deploy.sh"), "{version}"]
    assert staging.rollback == [str(conf / ".." / "common" / "undo.sh")]
    assert staging.shift == ["kubectl"], "a bare name is looked up on PATH"
    assert staging.cwd == conf, "a command runs beside the config file unless told otherwise"
    assert prod.run == ["/opt/deploy.sh"] and prod.cwd == conf / "work"
    assert config.environments["prod"].checks[0].auth.ca_file == conf / "certs" / "ca.pem"  # type: ignore[union-attr]
    assert config.services["notify"].repo.path == conf / ".." / "code"  # type: ignore[union-attr]
    assert config.manifest is not None and config.manifest.repo == conf / "manifests"


def test_without_a_file_paths_stay_as_written() -> None:
    config = parse_config(YAML(typ="safe", pure=True).load(PATHS))
    deploy = config.environments["staging"].deploy
    assert isinstance(deploy, CommandProvider)
    assert deploy.run[0] == "./bin/deploy.sh" and deploy.cwd is None
    assert config.manifest is not None and config.manifest.repo == Path("manifests")


# --- the example shows the new keys, and they work ----------------------------------------------------------------


def uncomment(text: str, marker: str, lines: int = 1) -> str:
    """``text`` with the commented line starting ``# <marker>`` (and the ``lines - 1`` after it) uncommented."""
    out = text.splitlines(keepends=True)
    first = next(i for i, line in enumerate(out) if line.lstrip().startswith(f"# {marker}"))
    for i in range(first, first + lines):
        indent = len(out[i]) - len(out[i].lstrip())
        assert out[i][indent:].startswith("# "), out[i]
        out[i] = out[i][:indent] + out[i][indent + 2 :]
    return "".join(out)


def test_the_examples_optional_keys_load_when_uncommented(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace("    approvals: {required: 0}", "    # (approvals below)")
    text = uncomment(text, "last_release:")
    text = uncomment(text, "environments:", lines=4)
    text = uncomment(text, "approvals: {required: 1")
    path = tmp_path / "releasebot.yml"
    path.write_text(text)
    config = load_config(path)
    assert config.business_hours.last_release == {"thu": time(14, 0)}
    assert config.strategy_for("notify", "prod").type == "blue_green" and config.checks_for("notify", "prod") == []
    friday = datetime(2026, 11, 27, 10, 0, tzinfo=TORONTO)
    assert config.approvals_required("prod", friday) == 1
    assert config.approvals_required("prod", friday - timedelta(days=1)) == 0
    assert config.production_env("notify") == "prod"
    # The console demo validates a dump of the loaded config again (bot/demo.py).
    assert Config.model_validate(config.model_dump(by_alias=True, exclude_none=True)) == config


# --- the docs: every key described, defaults as written in the file -------------------------------------------


def generated_docs() -> str:
    spec = importlib.util.spec_from_file_location("gen_config_docs", ROOT / "scripts" / "gen_config_docs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text: str = module.generate()
    return text


def test_every_key_in_the_docs_has_a_description() -> None:
    rows = [line for line in generated_docs().splitlines() if line.startswith("| `")]
    undescribed = [row.split(" | ")[0] for row in rows if not row.removesuffix("|").rstrip().split(" | ")[-1]]
    assert len(rows) > 100
    assert undescribed == []


def test_defaults_in_the_docs_are_written_as_in_the_file() -> None:
    docs = generated_docs()
    assert "datetime." not in docs and "timedelta(" not in docs
    defaults = [line.split(" | ")[2] for line in docs.splitlines() if line.startswith("| `")]
    for python in ("time(", "Path(", "True", "False", "None", "'"):  # reprs, not YAML
        assert not [d for d in defaults if python in d], python
    assert "`[5m]`" in defaults and "`[mon, tue, wed, thu, fri]`" in defaults and "`{type: all_at_once}`" in defaults
