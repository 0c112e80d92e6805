"""The `release-bot` command line: `window` decisions, `check-config` paths, and refusing bad configs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from bot.__main__ import cli
from bot.store import Store
from tests.fakes.tls import SelfSigned
from tests.harness import config_dict

ROOT = Path(__file__).resolve().parent.parent
SLACK_ENV = {"SLACK_BOT_TOKEN": "xoxb-not-used", "SLACK_SIGNING_SECRET": "not-used"}
NO_SLACK = {"SLACK_BOT_TOKEN": "", "SLACK_SIGNING_SECRET": "", "SLACK_APP_TOKEN": ""}


def write_config(tmp_path: Path, change: Callable[[dict[str, Any]], None] | None = None) -> Path:
    data = config_dict(tmp_path / "deploys.log")
    if change is not None:
        change(data)
    path = tmp_path / "releasebot.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path


def run(args: list[str], config: Path, **env: str) -> Result:
    return CliRunner().invoke(cli, args, env={"RELEASEBOT_CONFIG": str(config), **env}, catch_exceptions=False)


def run_subprocess(cwd: Path, args: list[str], config: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m bot ARGS`` in a real process with ``config`` and the extra ``env``."""
    full_env = {**os.environ, **env, "RELEASEBOT_CONFIG": str(config), "PYTHONPATH": str(ROOT)}
    return subprocess.run(  # noqa: S603 - our own interpreter and module, fixed argv
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=60,
        check=False,
    )


# --- window ------------------------------------------------------------------------------------------------


def test_window_json_on_christmas(tmp_path: Path) -> None:
    result = run(["window", "--env", "prod", "--at", "2026-12-25T10:00:00-05:00", "--json"], write_config(tmp_path))
    assert result.exit_code == 0, result.output
    decision = json.loads(result.stdout)
    assert decision["environment"] == "prod" and decision["open"] is False
    codes = {r["code"] for r in decision["reasons"]}
    assert {"holiday", "freeze"} <= codes
    assert all(r["text"] for r in decision["reasons"])
    assert "Christmas Day" in [r["text"] for r in decision["reasons"]]
    assert decision["next_open"] == "2027-01-05T09:00:00-05:00"
    assert decision["next_close"] is None
    assert decision["at"] == "2026-12-25T10:00:00-05:00"


def test_window_json_when_open_gives_the_closing_instant(tmp_path: Path) -> None:
    result = run(["window", "--env", "prod", "--at", "2026-11-24T10:00:00-05:00", "--json"], write_config(tmp_path))
    decision = json.loads(result.stdout)
    assert decision["open"] is True and decision["reasons"] == []
    assert decision["next_open"] is None and decision["next_close"] == "2026-11-24T16:00:00-05:00"


def test_window_json_for_every_environment_is_a_list(tmp_path: Path) -> None:
    result = run(["window", "--at", "2026-11-28T10:00:00-05:00", "--json"], write_config(tmp_path))
    decisions = {d["environment"]: d for d in json.loads(result.stdout)}
    assert decisions["staging"]["open"] is True
    assert decisions["prod"]["open"] is False
    assert [r["code"] for r in decisions["prod"]["reasons"]] == ["non_working_day"]


def test_window_text_mode(tmp_path: Path) -> None:
    result = run(["window", "--env", "prod", "--at", "2026-11-28T10:00:00-05:00"], write_config(tmp_path))
    assert result.exit_code == 0
    assert result.stdout.strip() == "prod is closed: weekend (Saturday). Next window: Mon 30 Nov 09:00 EST."


def test_naive_at_is_read_in_the_configured_zone(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    # 15:30 is inside hours in Toronto; read as UTC it would be 10:30 in Toronto (also open), so use
    # 16:30: closed in Toronto, but 11:30 (open) if the naive time were taken as UTC.
    naive = run(["window", "--env", "prod", "--at", "2026-11-24T16:30:00", "--json"], config)
    decision = json.loads(naive.stdout)
    assert decision["at"] == "2026-11-24T16:30:00-05:00"
    assert decision["open"] is False and decision["reasons"][0]["code"] == "outside_hours"
    utc = json.loads(run(["window", "--env", "prod", "--at", "2026-11-24T16:30:00+00:00", "--json"], config).stdout)
    assert utc["open"] is True


def test_a_naive_at_says_in_which_zone_it_was_read_and_leaves_the_json_alone(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    naive = run(["window", "--env", "prod", "--at", "2026-11-24T16:30:00", "--json"], config)
    assert naive.exit_code == 0
    assert naive.stderr == (
        "release-bot: --at 2026-11-24T16:30:00 has no UTC offset, so it is read in the config's time zone "
        "(America/Toronto): 2026-11-24T16:30:00-05:00\n"
    )
    assert json.loads(naive.stdout)["at"] == "2026-11-24T16:30:00-05:00"
    text = run(["window", "--env", "prod", "--at", "2026-11-24T16:30:00"], config)
    assert "read in the config's time zone (America/Toronto)" in text.stderr
    assert text.stdout.startswith("prod is closed")
    with_offset = run(["window", "--env", "prod", "--at", "2026-11-24T16:30:00+00:00"], config)
    assert with_offset.stderr == ""


def test_window_reports_a_configured_freeze_by_code(tmp_path: Path) -> None:
    result = run(["window", "--env", "prod", "--at", "2026-12-21T10:00:00-05:00", "--json"], write_config(tmp_path))
    decision = json.loads(result.stdout)
    assert [r["code"] for r in decision["reasons"]] == ["freeze"]
    assert "End-of-year freeze" in decision["reasons"][0]["text"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["window", "--env", "qa"], "unknown environment 'qa'"),
        (["window", "--at", "christmas"], "is not ISO-8601"),
    ],
)
def test_window_bad_arguments_exit_2_with_one_line(tmp_path: Path, args: list[str], expected: str) -> None:
    result = run(args, write_config(tmp_path))
    assert result.exit_code == 2
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_window_json_in_a_real_subprocess(tmp_path: Path) -> None:
    args = ["window", "--env", "prod", "--at", "2026-12-25T10:00:00-05:00", "--json"]
    done = run_subprocess(tmp_path, args, write_config(tmp_path))
    assert done.returncode == 0, done.stderr
    decision = json.loads(done.stdout)
    assert decision["open"] is False
    assert "holiday" in [r["code"] for r in decision["reasons"]]
    assert decision["next_open"] == "2027-01-05T09:00:00-05:00"


def test_window_json_names_the_holiday_category(tmp_path: Path) -> None:
    def calendar(data: dict[str, Any]) -> None:
        data["calendar"] = {
            "country": "CA",
            "subdivision": "ON",
            "categories": ["public", "optional"],
            "extra": [{"date": "2026-11-27", "name": "Company day off"}],
            "skip": ["2026-10-12"],
        }

    config = write_config(tmp_path, calendar)
    civic = json.loads(run(["window", "--env", "prod", "--at", "2026-08-03T10:00:00-04:00", "--json"], config).stdout)
    assert civic["open"] is False
    assert civic["reasons"] == [{"code": "holiday", "text": "Civic Holiday (optional)", "category": "optional"}]
    assert civic["next_open"] == "2026-08-04T09:00:00-04:00"
    extra = run(["window", "--env", "prod", "--at", "2026-11-27T10:00:00-05:00", "--json"], config)
    assert json.loads(extra.stdout)["reasons"] == [
        {"code": "holiday", "text": "Company day off (extra)", "category": "extra"}
    ]
    text = run(["window", "--env", "prod", "--at", "2026-11-27T10:00:00-05:00"], config)
    assert text.stdout.strip() == "prod is closed: Company day off (extra). Next window: Mon 30 Nov 09:00 EST."
    # Thanksgiving (Mon 12 Oct) is skipped: the team works it.
    worked = run(["window", "--env", "prod", "--at", "2026-10-12T10:00:00-04:00", "--json"], config)
    assert json.loads(worked.stdout)["open"] is True


# --- check-config ------------------------------------------------------------------------------------------


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        if last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value

    return change


BAD_CONFIGS = [
    ("calendar.country", "XX", "calendar.country: unknown country 'XX'"),
    ("calendar.subdivision", "ZZ", "calendar.subdivision: unknown subdivision 'ZZ' for CA"),
    ("business_hours.end", "08:00", "business_hours: end (08:00) must be after start (09:00)"),
    ("freezes.0.end", "2026-12-01", "freezes[0]: end (2026-12-01) is before start (2026-12-18)"),
    ("timezone", "Mars/Olympus_Mons", "timezone: unknown time zone 'Mars/Olympus_Mons'"),
    ("services.notify.pipeline", ["staging", "qa"], "services.notify.pipeline[1]: undefined environment 'qa'"),
]


@pytest.mark.parametrize(("path", "value", "expected"), BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_check_config_names_the_path_and_line_and_exits_1(tmp_path: Path, path: str, value: Any, expected: str) -> None:
    config = write_config(tmp_path, _set(path, value))
    result = run(["check-config", str(config)], config)
    assert result.exit_code == 1
    match = re.search(rf"^{re.escape(str(config))}:(\d+):(\d+) {re.escape(expected)}", result.stderr, flags=re.M)
    assert match, result.stderr
    # The position is that of the node the error's path names: its key, or the `- ` item of a list.
    line, column = int(match.group(1)), int(match.group(2))
    text = config.read_text().splitlines()[line - 1]
    shown = expected.split(": ")[0]
    if shown.endswith("]"):
        assert text[: column - 1].endswith("- "), (text, column)
    else:
        assert text[column - 1 :].startswith(shown.rsplit(".", 1)[-1] + ":"), (text, column)
    assert "1 error(s)" in result.stderr
    assert result.stdout == ""


def test_check_config_lists_every_error(tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        _set("calendar.country", "XX")(data)
        _set("timezone", "Nowhere/Else")(data)

    config = write_config(tmp_path, change)
    result = run(["check-config", str(config)], config)
    assert result.exit_code == 1
    assert "calendar.country: unknown country" in result.stderr and "timezone: unknown time zone" in result.stderr
    assert "2 error(s)" in result.stderr


def test_check_config_prints_every_error_with_its_line_in_one_pass(tmp_path: Path) -> None:
    config = tmp_path / "releasebot.yml"
    config.write_text(
        textwrap.dedent(
            """\
            timezone: Nowhere/Else
            services:
              notify:
                channel: C01RELEASES
                pipeline: [staging]
            environments:
              staging:
                window: always
                deploy: {provider: command, run: [./deploy.sh], timeout: 5 parsecs}
                bogus: yes
                window: never
            """
        )
    )
    result = run(["check-config", str(config)], config)
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    expected = [
        f"{config}:1:1 timezone: unknown time zone 'Nowhere/Else'",
        f"{config}:9:53 environments.staging.deploy.timeout: bad duration '5 parsecs'",
        f"{config}:10:5 environments.staging.bogus: unknown key",
        f"{config}:11:5 environments.staging.window: duplicate key (first defined at line 8, column 5)",
        "4 error(s)",
    ]
    assert len(lines) == len(expected), lines
    assert all(line.startswith(prefix) for line, prefix in zip(lines, expected, strict=True)), lines


def test_check_config_reports_a_yaml_syntax_error_at_its_line(tmp_path: Path) -> None:
    config = tmp_path / "releasebot.yml"
    config.write_text("timezone: UTC\nservices:\n  notify:\n    channel: C01RELEASES\n   pipeline: [staging]\n")
    result = run(["check-config", str(config)], config)
    assert result.exit_code == 1
    [error, count] = result.stderr.splitlines()
    assert error.startswith(f"{config}:5:4 (yaml): ") and count == "1 error(s)"


def test_check_config_accepts_a_good_config(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = run(["check-config", str(config)], config)
    assert result.exit_code == 0
    assert "ok (1 service(s), 2 environment(s))" in result.stdout


def test_check_config_of_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yml"
    result = run(["check-config", str(missing)], missing)
    assert result.exit_code == 1 and "cannot read" in result.stderr


# --- refusing to start -------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["serve", "socket"])
@pytest.mark.parametrize(
    ("path", "value", "expected"), BAD_CONFIGS[:2] + BAD_CONFIGS[4:5], ids=["country", "sub", "tz"]
)
def test_bad_config_refuses_to_start_even_with_slack_credentials(
    tmp_path: Path, mode: str, path: str, value: Any, expected: str
) -> None:
    config = write_config(tmp_path, _set(path, value))
    env = {**SLACK_ENV, "SLACK_APP_TOKEN": "xapp-not-used", "RELEASEBOT_DB": str(tmp_path / "db.sqlite")}
    result = run([mode], config, **env)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "refusing to start" in lines[0] and expected in lines[0] and str(config) in lines[0]
    assert not (tmp_path / "db.sqlite").exists(), "nothing was started"


def test_bad_config_is_reported_before_missing_credentials(tmp_path: Path) -> None:
    config = write_config(tmp_path, _set("timezone", "Nowhere/Else"))
    result = run(["serve"], config, **NO_SLACK)
    assert result.exit_code == 2
    assert "timezone: unknown time zone" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("serve", "release-bot serve needs SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET"),
        ("socket", "release-bot socket needs SLACK_BOT_TOKEN and SLACK_APP_TOKEN"),
    ],
)
def test_missing_slack_credentials_is_one_clear_line(tmp_path: Path, mode: str, expected: str) -> None:
    result = run([mode], write_config(tmp_path), **NO_SLACK)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0]


def test_serve_subprocess_refuses_a_bad_config(tmp_path: Path) -> None:
    config = write_config(tmp_path, _set("business_hours.end", "08:00"))
    done = run_subprocess(tmp_path, ["serve"], config, **SLACK_ENV, PORT="0")
    assert done.returncode == 2
    assert done.stdout == ""
    [line] = done.stderr.strip().splitlines()
    assert "business_hours: end (08:00) must be after start (09:00)" in line


# --- credentials of the HTTP backends ------------------------------------------------------------------------

SECRET = "s3cret-from-the-vault"
AUTH_ENV = ("RB_DEPLOY_TOKEN", "RB_MIMIR_TENANT")


def with_auth(data: dict[str, Any]) -> None:
    data["environments"]["prod"]["deploy"] = {
        "provider": "http",
        "url": "https://deploy.example/deploy",
        "auth": {"token_env": "RB_DEPLOY_TOKEN"},
    }
    data["metrics"] = {
        "prometheus_url": "https://mimir.example/prometheus",
        "prometheus_auth": {"headers_env": {"X-Scope-OrgID": "RB_MIMIR_TENANT"}, "ca_file": "ca.pem"},
    }


@pytest.fixture
def auth_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tls: SelfSigned) -> Path:
    """A config whose deploy service and Prometheus need credentials; none of their variables is set."""
    for name in AUTH_ENV:
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "ca.pem").write_bytes(tls.cert.read_bytes())  # ca_file is relative to the config file
    return write_config(tmp_path, with_auth)


def test_check_config_names_each_missing_variable_at_its_line(auth_config: Path) -> None:
    result = run(["check-config", str(auth_config)], auth_config)

    assert result.exit_code == 1
    *errors, count = result.stderr.splitlines()
    expected = [
        ("environments.prod.deploy.auth.token_env", "environment variable RB_DEPLOY_TOKEN is not set"),
        ("metrics.prometheus_auth.headers_env.X-Scope-OrgID", "environment variable RB_MIMIR_TENANT is not set"),
    ]
    assert len(errors) == len(expected) and count == "2 error(s)", result.stderr
    lines = auth_config.read_text().splitlines()
    for error, (path, message) in zip(errors, expected, strict=True):
        match = re.fullmatch(rf"{re.escape(str(auth_config))}:(\d+):(\d+) {re.escape(path)}: {message}", error)
        assert match, error
        line, column = int(match.group(1)), int(match.group(2))
        assert lines[line - 1][column - 1 :].startswith(path.rsplit(".", 1)[-1] + ":")


def test_check_config_with_the_variables_set_never_shows_a_value(auth_config: Path) -> None:
    env = dict.fromkeys(AUTH_ENV, SECRET)
    good = run(["check-config", str(auth_config)], auth_config, **env)

    def also_a_bad_zone(data: dict[str, Any]) -> None:
        with_auth(data)
        data["timezone"] = "Mars/Olympus"

    bad_file = write_config(auth_config.parent, also_a_bad_zone)
    bad = run(["check-config", str(bad_file)], bad_file, **env)

    assert good.exit_code == 0 and "ok (1 service(s), 2 environment(s))" in good.stdout
    assert bad.exit_code == 1 and "timezone: unknown time zone" in bad.stderr
    assert all(SECRET not in text for text in (good.stdout, good.stderr, bad.stdout, bad.stderr))


def test_check_config_no_env_checks_the_file_only(auth_config: Path) -> None:
    (auth_config.parent / "ca.pem").unlink()
    result = run(["check-config", "--no-env", str(auth_config)], auth_config)
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize(
    ("content", "expected"), [(None, "cannot read {ca}: No such file or directory"), (b"junk", "{ca} holds no PEM")]
)
def test_check_config_reports_an_unusable_ca_file(auth_config: Path, content: bytes | None, expected: str) -> None:
    ca = auth_config.parent / "ca.pem"
    if content is None:
        ca.unlink()
    else:
        ca.write_bytes(content)
    result = run(["check-config", str(auth_config)], auth_config, **dict.fromkeys(AUTH_ENV, SECRET))
    assert result.exit_code == 1
    [error, count] = result.stderr.splitlines()
    assert f" metrics.prometheus_auth.ca_file: {expected.format(ca=ca)}" in error and count == "1 error(s)"


@pytest.mark.parametrize("mode", ["serve", "socket"])
def test_a_missing_variable_refuses_to_start_in_one_line(auth_config: Path, tmp_path: Path, mode: str) -> None:
    env = {**SLACK_ENV, "SLACK_APP_TOKEN": "xapp-not-used", "RELEASEBOT_DB": str(tmp_path / "db.sqlite")}
    result = run([mode], auth_config, **env, RB_MIMIR_TENANT=SECRET)
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()
    assert "refusing to start" in line and "1 error(s)" in line
    assert "environments.prod.deploy.auth.token_env: environment variable RB_DEPLOY_TOKEN is not set" in line
    assert SECRET not in line
    assert not (tmp_path / "db.sqlite").exists(), "nothing was started"


def test_window_needs_no_credentials(auth_config: Path) -> None:
    result = run(["window", "--env", "prod", "--at", "2026-11-24T10:00:00-05:00"], auth_config)
    assert result.exit_code == 0, result.stderr


# --- naming the config: --config, RELEASEBOT_CONFIG, or ./releasebot.yml --------------------------------------


def test_a_missing_config_is_named_with_its_absolute_path_and_where_the_name_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    env = {**NO_SLACK, "RELEASEBOT_CONFIG": ""}
    given = runner.invoke(cli, ["window", "--config", "team/my.yml"], env=env)
    from_env = runner.invoke(cli, ["window"], env={**env, "RELEASEBOT_CONFIG": "ops/bot.yml"})
    default = runner.invoke(cli, ["serve"], env=env)

    assert (given.exit_code, from_env.exit_code, default.exit_code) == (2, 2, 2)
    assert given.stderr == (
        f"release-bot: cannot read the config {tmp_path / 'team' / 'my.yml'} (from --config): no such file\n"
    )
    assert f"{tmp_path / 'ops' / 'bot.yml'} (from RELEASEBOT_CONFIG): no such file" in from_env.stderr
    assert default.stderr == (
        f"release-bot: refusing to start: cannot read the config {tmp_path / 'releasebot.yml'} (the default: "
        "no --config given and RELEASEBOT_CONFIG is not set): no such file; "
        "`release-bot console --demo` runs without one\n"
    )


def test_config_errors_name_the_file_given_with_config(tmp_path: Path) -> None:
    config = write_config(tmp_path, _set("timezone", "Nowhere/Else"))
    result = CliRunner().invoke(cli, ["serve", "--config", str(config)], env={**SLACK_ENV, "RELEASEBOT_CONFIG": ""})
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"release-bot: refusing to start: the config {config} (from --config) has 1 error(s): ")
    assert "timezone: unknown time zone 'Nowhere/Else'" in line


def test_check_config_takes_the_config_option_too(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = CliRunner().invoke(cli, ["check-config", "--config", str(config)])
    assert result.exit_code == 0 and result.stdout == f"{config}: ok (1 service(s), 2 environment(s))\n"
    both = CliRunner().invoke(cli, ["check-config", str(config), "--config", str(config)])
    assert both.exit_code == 2 and "name the config once" in both.stderr


@pytest.mark.parametrize("option", ["--config", "--db"])
def test_the_demo_refuses_a_config_or_database_of_yours(tmp_path: Path, option: str) -> None:
    result = CliRunner().invoke(cli, ["console", "--demo", option, str(tmp_path / "mine")])
    assert result.exit_code == 2
    assert "--demo runs the example config on a temporary database of its own" in result.stderr
    assert not (tmp_path / "mine").exists()


# --- candidates from the command line ------------------------------------------------------------------------

COMMIT = "4f0c" * 10
API_IMAGE = "ghcr.io/example/api:1.3.0@sha256:" + "a1" * 32
WORKER_IMAGE = "ghcr.io/example/worker:1.3.0@sha256:" + "b2" * 32


def candidate(tmp_path: Path, *args: str) -> Result:
    """`release-bot candidate ARGS` with the test config and the database under ``tmp_path``."""
    env = {"RELEASEBOT_CONFIG": str(write_config(tmp_path)), "RELEASEBOT_DB": str(tmp_path / "bot.db")}
    return CliRunner().invoke(cli, ["candidate", *args], env=env, catch_exceptions=False)


def test_candidate_add_tests_and_scan_write_the_database_and_answer_like_the_api(tmp_path: Path) -> None:
    add = ["add", "notify", "1.3.0", "--commit", COMMIT, "--image", f"api={API_IMAGE}"]
    added = candidate(tmp_path, *add, "--image", f"worker={WORKER_IMAGE}", "--test", "unit=passed", "--json")
    assert added.exit_code == 0, added.stderr
    assert json.loads(added.stdout) == {
        "status": "created",
        "service": "notify",
        "version": "1.3.0",
        "commit": COMMIT,
        "committed_at": None,
        "components": {
            "api": {"image": API_IMAGE, "digest": "sha256:" + "a1" * 32},
            "worker": {"image": WORKER_IMAGE, "digest": "sha256:" + "b2" * 32},
        },
        "tests": {"unit": "passed"},
    }
    tested = candidate(tmp_path, "tests", "notify", "1.3.0", "integration", "failed", "--url", "https://ci.example/1")
    assert (tested.exit_code, tested.stdout) == (0, "notify 1.3.0: integration failed (recorded)\n")
    report = tmp_path / "trivy.json"
    report.write_text(
        json.dumps(
            {
                "SchemaVersion": 2,
                "ArtifactName": API_IMAGE,
                "ArtifactType": "container_image",
                "Metadata": {"RepoDigests": ["ghcr.io/example/api@sha256:" + "a1" * 32]},
                "Results": [],
            }
        )
    )
    scanned = candidate(tmp_path, "scan", "notify", "1.3.0", str(report))
    assert scanned.exit_code == 0, scanned.stderr
    assert scanned.stdout == (
        f"notify 1.3.0: scan of api ({API_IMAGE}) recorded: 0 critical, 0 high, 0 medium, 0 low, 0 unknown\n"
    )

    store = Store(tmp_path / "bot.db")
    found = store.get_candidate("notify", "1.3.0")
    assert found is not None and found.commit == COMMIT
    assert {suite: row["status"] for suite, row in store.tests("notify", "1.3.0").items()} == {
        "unit": "passed",
        "integration": "failed",
    }
    assert list(store.scans("notify", "1.3.0")) == ["api"]
    assert [(e.actor, e.action) for e in store.audit_since(None)] == [
        ("cli", "candidate.created"),
        ("cli", "tests.reported"),
        ("cli", "scan.reported"),
    ]


@pytest.mark.parametrize(
    ("args", "errors"),
    [
        (
            ["add", "notify", "1.3.0", "--commit", COMMIT, "--image", f"api={API_IMAGE}"],
            ["components.worker: missing: notify needs an image for worker"],
        ),
        (
            ["add", "mail", "1.3.0", "--commit", "abc", "--image", "api=x"],
            ["commit: 'abc' is not a commit: use the full id, 40 or 64 hexadecimal characters"],
        ),
        (
            ["add", "mail", "1.3.0", "--commit", COMMIT],
            ["service: unknown service 'mail' (known: notify)"],
        ),
        (
            ["add", "notify", "1.3.0", "--commit", COMMIT, "--image", "api=Not An Image", "--image", "db=x"],
            [
                "components.db: not a component of notify (known: api, worker)",
                "components.worker: missing: notify needs an image for worker",
            ],
        ),
        (
            ["tests", "notify", "1.3.0", "unit", "skipped"],
            ["status: must be one of 'passed' or 'failed'"],
        ),
        (
            ["tests", "notify", "1.3.0", "unit", "passed"],
            [
                "version: no candidate notify 1.3.0; register it first "
                "(POST /api/v1/candidates, or `release-bot candidate add`)"
            ],
        ),
    ],
)
def test_candidate_refusals_name_the_field_to_fix_and_store_nothing(
    tmp_path: Path, args: list[str], errors: list[str]
) -> None:
    result = candidate(tmp_path, *args)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[: len(errors)] == [f"release-bot: {e}" for e in errors]
    assert result.stdout == ""
    store = Store(tmp_path / "bot.db")
    assert store.get_candidate("notify", "1.3.0") is None and store.audit_since(None) == []


def test_a_registered_candidate_is_what_the_console_releases(tmp_path: Path) -> None:
    """The path from `make run` to a team's own service: their config, their database, `candidate add`, release."""
    config = tmp_path / "my.yml"
    config.write_text(
        textwrap.dedent(
            """\
            timezone: Europe/Paris
            services:
              web:
                channel: C0WEB
                components: [app]
                pipeline: [dev]
            environments:
              dev:
                window: always
                deploy: {provider: command, run: [echo, "deploying {service} {version} to {environment}"]}
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "RELEASEBOT_"))}
    lines = f"candidate add web 1.0.0 --commit {COMMIT} --image app=ghcr.io/acme/web:1.0.0\n/release dev 1.0.0\nwait\n"
    done = subprocess.run(  # noqa: S603 - our own interpreter and module, fixed argv
        [sys.executable, "-m", "bot", "console", "--config", "my.yml", "--db", "my.db"],
        input=lines,
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"config {config} (from --config)\ndatabase {tmp_path / 'my.db'} (from --db)\n")
    assert "registered web 1.0.0 (commit 4f0c4f0c4f0c)" in done.stdout
    assert "web 1.0.0 is live in dev" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    # The same database, from a shell: evidence for the version the console released.
    tested = run_subprocess(tmp_path, ["candidate", "tests", "web", "1.0.0", "unit", "passed", "--db", "my.db"], config)
    assert (tested.returncode, tested.stdout) == (0, "web 1.0.0: unit passed (recorded)\n")
