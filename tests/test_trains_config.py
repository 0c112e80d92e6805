"""`trains:` in the config: a valid train loads with its parsed slots and defaults; every bad input gets a clear
error at its path (and line), the file is refused as a whole, and nothing is stored or started."""

from __future__ import annotations

import copy
from datetime import time, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.config import ConfigError, load_config, parse_config
from bot.config.trains import carried
from tests.harness import config_dict


def base(tmp_path: Path, **train: Any) -> dict[str, Any]:
    data = config_dict(tmp_path / "deploys.log")
    data["services"]["payments"] = {"channel": "C02PAYMENTS", "pipeline": ["staging", "prod"]}
    data["environments"]["qa"] = {"window": "always", "deploy": data["environments"]["staging"]["deploy"]}
    data["services"]["search"] = {"channel": "C03SEARCH", "pipeline": ["qa", "staging"]}
    data["trains"] = {
        "prod": {
            "departs": ["Mon-Thu 10:00", "Mon-Thu 14:00", "Fri 10:00"],
            "from": "staging",
            "services": ["notify", "payments"],
            "notice": "15m",
            "hold": ["releasers", "oncall"],
        }
        | train
    }
    return data


def errors_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    return caught.value.errors


def test_a_train_loads_with_its_slots_and_defaults(tmp_path: Path) -> None:
    config = parse_config(base(tmp_path))
    train = config.trains["prod"]
    slots = train.slots()
    assert [(sorted(s.days), s.clock) for s in slots] == [
        ([0, 1, 2, 3], time(10, 0)),
        ([0, 1, 2, 3], time(14, 0)),
        ([4], time(10, 0)),
    ]
    assert train.from_ == "staging" and train.notice == timedelta(minutes=15)
    assert carried(train, "prod", {n: s.pipeline for n, s in config.services.items()}) == ["notify", "payments"]


def test_services_default_to_every_service_with_the_env_in_its_pipeline(tmp_path: Path) -> None:
    data = base(tmp_path)
    del data["trains"]["prod"]["services"], data["trains"]["prod"]["from"]
    config = parse_config(data)
    pipelines = {n: s.pipeline for n, s in config.services.items()}
    assert carried(config.trains["prod"], "prod", pipelines) == ["notify", "payments"]  # not search (qa → staging)
    assert config.trains["prod"].from_ is None  # each service's previous stage


def test_no_trains_is_the_default(tmp_path: Path) -> None:
    data = base(tmp_path)
    del data["trains"]
    assert parse_config(data).trains == {}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"departs": ["Mon-Thu 10:00", "Mnday 10:00"]},
            "trains.prod.departs[1]: 'Mnday' in 'Mnday 10:00' is not a day name (mon, tue, wed, thu, fri, sat, sun)",
        ),
        (
            {"departs": ["Fri 25:00"]},
            "trains.prod.departs[0]: '25:00' in 'Fri 25:00' is not a time of day (00:00 to 23:59)",
        ),
        ({"departs": ["Fri 10h"]}, "trains.prod.departs[0]: '10h' in 'Fri 10h' is not a time (use HH:MM, 24-hour)"),
        ({"departs": ["10:00"]}, "trains.prod.departs[0]: '10:00' is not a departure: use '<days> HH:MM'"),
        ({"departs": ["Mon,,Tue 10:00"]}, "trains.prod.departs[0]: 'Mon,,Tue 10:00' has an empty day in its list"),
        ({"departs": []}, "trains.prod.departs: List should have at least 1 item"),
        (
            {"from": "qa"},
            "trains.prod.from: 'qa' is not in the pipeline of notify (staging → prod): a train carries what the "
            "previous stage runs",
        ),
        ({"hold": ["leads", "oncall"]}, "trains.prod.hold[0]: undefined group 'leads'"),
        ({"services": ["notify", "billing"]}, "trains.prod.services[1]: undefined service 'billing'"),
        ({"services": ["search"]}, "trains.prod.services[0]: 'prod' is not in the pipeline of search (qa, staging)"),
        ({"notice": "0s"}, "trains.prod.notice: notice must be more than 0 and at most 1 day"),
        ({"hold": []}, "trains.prod.hold: List should have at least 1 item"),
        ({"every": "day"}, "trains.prod.every: unknown key"),
    ],
)
def test_bad_input_is_named_with_its_path(tmp_path: Path, change: dict[str, Any], expected: str) -> None:
    errors = errors_of(base(tmp_path, **change))
    assert any(e.startswith(expected) for e in errors), errors
    assert len(errors) == (2 if "from" in change else 1), errors  # a wrong `from` is named per carried service


def test_a_train_to_an_undefined_environment_or_a_first_stage(tmp_path: Path) -> None:
    data = base(tmp_path)
    data["trains"]["canary"] = copy.deepcopy(data["trains"]["prod"])
    data["trains"]["staging"] = {"departs": ["Mon 09:00"], "hold": ["oncall"], "services": ["notify"]}
    errors = errors_of(data)
    assert "trains.canary: undefined environment 'canary'" in errors, errors
    assert any(e.startswith("trains.staging.services[0]: 'staging' is the first stage of notify") for e in errors), (
        errors
    )


def test_the_file_is_refused_at_the_line_of_the_problem(tmp_path: Path) -> None:
    """A bad train stops the whole file from loading: the error names file, line and path."""
    data = base(tmp_path, departs=["Mon-Thu 10:00", "Fri 25:00"])
    path = tmp_path / "releasebot.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    [line] = caught.value.located
    assert line.startswith(f"{path}:") and "trains.prod.departs[1]: '25:00' in 'Fri 25:00'" in line, line
    position = line.removeprefix(f"{path}:").split(" ")[0]
    assert position.split(":")[0].isdigit(), line
