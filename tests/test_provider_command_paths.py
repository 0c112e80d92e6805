"""The ``command`` provider's paths and placeholders: programs relative to the config file wherever the bot
starts, every placeholder (``{action}`` too) in every action, and the program checks of ``check-config``."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from bot.config import CommandProvider, load_config, load_config_located
from bot.providers.base import DeployContext
from bot.providers.command import CommandDeployProvider, program_problems
from tests.fakes.runs import recorded

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def executable(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


async def test_the_example_runs_its_script_wherever_the_bot_was_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # not the repository: `./deploy.sh` is found beside releasebot.yml
    deploy = load_config(EXAMPLES / "releasebot.yml").environments["prod"].deploy
    assert isinstance(deploy, CommandProvider)
    provider = CommandDeployProvider(deploy)
    ctx = DeployContext("notify", "1.3.0", "prod", 7, weight=10, previous_version="1.2.2")

    result = await provider.shift(ctx, recorded(tmp_path))

    assert result.ok, result
    assert result.output_tail == "deploying notify 1.3.0 to prod at 10% traffic (the rest on 1.2.2)\ndone"
    assert provider.workdir() == EXAMPLES


async def test_every_action_gets_every_placeholder(tmp_path: Path) -> None:
    out = tmp_path / "args"
    dump = executable(tmp_path / "dump.sh", f"printf '%s\\n' \"$*\" >> '{out}'\n")
    every = "{action} {service} {environment} {release_id} {version} {weight} {colour} {previous_version}"
    config = CommandProvider.model_validate({"provider": "command", "run": [str(dump), every]})
    provider = CommandDeployProvider(config)
    ctx = DeployContext("notify", "1.3.0", "prod", 7, weight=0, colour="blue", previous_version="1.2.2")

    for act in (provider.deploy, provider.shift, provider.rollback):
        assert (await act(ctx, recorded(tmp_path))).ok

    assert out.read_text().splitlines() == [
        "deploy notify prod 7 1.3.0 0 blue 1.2.2",
        "shift notify prod 7 1.3.0 0 blue 1.2.2",
        "rollback notify prod 7 1.3.0 100 blue 1.2.2",  # a rollback is always to all traffic
    ]


def config_text(deploy: str) -> str:
    return f"""\
services:
  notify:
    channel: C01RELEASES
    pipeline: [prod]
environments:
  prod:
    deploy: {deploy}
"""


def at(deploy: str, item: str) -> str:
    """``line:col`` of ``item`` in ``deploy``, written on line 7 after ``    deploy: ``."""
    return f"7:{len('    deploy: ') + deploy.index(item) + 1}"


def problems(tmp_path: Path, deploy: str, search_path: str | None = None) -> list[str]:
    path = tmp_path / "conf" / "releasebot.yml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(config_text(deploy))
    config, positions = load_config_located(path)
    return [problem.located("") for problem in program_problems(config, positions, search_path)]


def test_a_good_program_has_no_problem(tmp_path: Path) -> None:
    executable(tmp_path / "conf" / "bin" / "deploy.sh", "exit 0\n")
    assert problems(tmp_path, '{provider: command, run: [bin/deploy.sh], shift: [sh, -c, "exit 0"]}') == []


def test_the_example_programs_exist() -> None:
    config, positions = load_config_located(EXAMPLES / "releasebot.yml")
    assert program_problems(config, positions) == []


def test_a_missing_program_is_named_at_its_line_with_where_it_was_looked_for(tmp_path: Path) -> None:
    conf, deploy = tmp_path / "conf", "{provider: command, run: [./deploy.sh, '{version}']}"
    assert problems(tmp_path, deploy) == [
        f":{at(deploy, './deploy.sh')} environments.prod.deploy.run[0]: {conf / 'deploy.sh'} does not exist "
        "(a program path is relative to the config file)"
    ]


def test_a_program_that_is_not_executable_or_is_a_directory(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    (conf / "bin").mkdir(parents=True)
    (conf / "deploy.sh").write_text("echo not executable\n")
    deploy = "{provider: command, run: [./deploy.sh], rollback: [./bin]}"
    assert problems(tmp_path, deploy) == [
        f":{at(deploy, './deploy.sh')} environments.prod.deploy.run[0]: {conf / 'deploy.sh'} is not an executable file",
        f":{at(deploy, './bin')} environments.prod.deploy.rollback[0]: {conf / 'bin'} is not an executable file",
    ]


def test_a_bare_name_is_looked_up_on_path(tmp_path: Path) -> None:
    tools = tmp_path / "tools"
    executable(tools / "kubectl", "exit 0\n")
    deploy = "{provider: command, run: [kubectl, apply], shift: [helm]}"
    assert problems(tmp_path, deploy, search_path=str(tools)) == [
        f":{at(deploy, 'helm')} environments.prod.deploy.shift[0]: 'helm' is not on PATH "
        "(a program named without a '/' is looked up on PATH)"
    ], "kubectl is found in tools"


def test_a_program_named_by_a_placeholder_is_checked_when_it_runs(tmp_path: Path) -> None:
    assert problems(tmp_path, "{provider: command, run: ['./deploy-{service}.sh']}") == []


def test_a_missing_working_directory(tmp_path: Path) -> None:
    conf, deploy = tmp_path / "conf", "{provider: command, run: ['true'], cwd: ops}"
    assert problems(tmp_path, deploy) == [
        f":{at(deploy, 'cwd')} environments.prod.deploy.cwd: working directory {conf / 'ops'} is not a directory"
    ]
