"""The hermetic container: the hash-pinned lock matches pyproject.toml, and the Dockerfile uses it safely."""

from __future__ import annotations

import importlib.util
import re
import shlex
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
PYPROJECT = ROOT / "pyproject.toml"
DOCKERFILE = ROOT / "Dockerfile"


def _load_checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_lock", ROOT / "scripts" / "check_lock.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module while the class is built
    spec.loader.exec_module(module)
    return module


check_lock = _load_checker()


def pyproject() -> dict[str, object]:
    return tomllib.loads(PYPROJECT.read_text())


def block(text: str, name: str) -> str:
    """The whole entry of ``name`` in a lock (its pin line, hash lines and `# via` comments)."""
    match = re.search(rf"^{re.escape(name)}==.*?(?=^\S|\Z)", text, flags=re.M | re.S)
    assert match, f"{name} is not in the lock"
    return match.group(0)


def test_the_committed_lock_matches_pyproject_and_every_pin_is_hashed() -> None:
    assert check_lock.check(LOCK.read_text(), pyproject()) == []
    pins = check_lock.parse_lock(LOCK.read_text()).pins
    for text in [*pyproject()["project"]["dependencies"], *pyproject()["build-system"]["requires"]]:  # type: ignore[index]
        name = canonicalize_name(re.split(r"[<>=!~;\[ ]", text, maxsplit=1)[0])
        assert name in pins and pins[name].hashes


def test_the_lock_names_no_machine_specific_index() -> None:
    text = LOCK.read_text()
    assert not re.search(r"^-", text, flags=re.M), "index/find-links options belong to pip config, not the lock"
    assert "file://" not in text and "/opt/" not in text


def test_cli_passes_on_the_real_lock(capsys: pytest.CaptureFixture[str]) -> None:
    assert check_lock.main(["--lock", str(LOCK), "--pyproject", str(PYPROJECT)]) == 0
    assert "matches" in capsys.readouterr().out


def test_a_pin_without_hashes_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = LOCK.read_text()
    entry = block(text, "aiohttp")
    pin_line = entry.splitlines()[0].rstrip(" \\")
    doctored = tmp_path / "requirements.lock"
    doctored.write_text(text.replace(entry, pin_line + "\n"))
    assert check_lock.main(["--lock", str(doctored), "--pyproject", str(PYPROJECT)]) == 1
    err = capsys.readouterr().err
    assert f"{pin_line} has no --hash=sha256:" in err


def test_a_version_outside_the_specifier_is_refused(tmp_path: Path) -> None:
    text = LOCK.read_text()
    entry = block(text, "click")
    old = entry.splitlines()[0].split("==")[1].split()[0]
    problems = check_lock.check(text.replace(f"click=={old}", "click==7.1.2"), pyproject())
    assert len(problems) == 1
    assert "click==7.1.2 does not satisfy click<9,>=8.1 ([project].dependencies)" in problems[0]


def test_a_missing_dependency_is_refused() -> None:
    text = LOCK.read_text()
    problems = check_lock.check(text.replace(block(text, "ruamel-yaml"), ""), pyproject())
    assert problems == ["ruamel.yaml<0.20,>=0.18.6 ([project].dependencies) is missing from the lock: run `make lock`"]


def test_a_dependency_added_to_pyproject_but_not_locked_is_refused() -> None:
    project = pyproject()
    project["project"]["dependencies"].append("httpx>=0.27")  # type: ignore[index]
    problems = check_lock.check(LOCK.read_text(), project)
    assert problems == ["httpx>=0.27 ([project].dependencies) is missing from the lock: run `make lock`"]


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("requests>=2.31 --hash=sha256:" + "0" * 64, "is not pinned with =="),
        ("--index-url https://example.org/simple", "option '--index-url' in the lock"),
        ("requests", "is not pinned with =="),
    ],
)
def test_unpinned_lines_and_options_are_refused(line: str, why: str) -> None:
    problems = check_lock.check(LOCK.read_text() + line + "\n", pyproject())
    assert len(problems) == 1 and why in problems[0]


def test_continuation_lines_and_comments_are_read_like_pip_reads_them() -> None:
    hashes = f" \\\n    --hash=sha256:{'a' * 64} \\\n    --hash=sha256:{'b' * 64}"
    text = f"# header\nfoo==1.0{hashes}\n    # via bar\n"
    lock = check_lock.parse_lock(text)
    assert lock.problems == []
    assert lock.pins["foo"].version == "1.0" and lock.pins["foo"].hashes == ["a" * 64, "b" * 64]


# ------------------------------------------------------------------------------------------ Dockerfile


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def test_every_base_image_is_pinned_by_digest() -> None:
    args = dict(rest.split("=", 1) for keyword, rest in instructions() if keyword == "ARG" and "=" in rest)
    froms = [rest.split()[0] for keyword, rest in instructions() if keyword == "FROM"]
    assert len(froms) >= 2, "multi-stage: a builder and a runtime stage"
    stages = {rest.split()[-1] for keyword, rest in instructions() if keyword == "FROM" and " AS " in rest.upper()}
    for image in froms:
        resolved = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        assert resolved in stages or re.fullmatch(r"[\w./:-]+@sha256:[0-9a-f]{64}", resolved), image


def test_dependencies_install_only_from_the_hashed_lock() -> None:
    runs = [rest for keyword, rest in instructions() if keyword == "RUN" and "pip install" in rest]
    assert runs
    locked = [r for r in runs if "-r requirements.lock" in r]
    assert locked and all("--require-hashes" in r and "--no-deps" in r for r in locked)
    for run in runs:
        if "-r requirements.lock" not in run:  # the project itself: no resolution, no download
            assert "--no-deps" in run and "--no-index" in run, run


def test_the_container_runs_as_a_non_root_user() -> None:
    users = [rest for keyword, rest in instructions() if keyword == "USER"]
    assert users, "no USER: the container would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0") and (not user.isdigit() or int(user) >= 1000)


def test_healthcheck_probes_healthz_and_the_entrypoint_is_the_bot() -> None:
    (health,) = [rest for keyword, rest in instructions() if keyword == "HEALTHCHECK"]
    assert "CMD" in health and "http://127.0.0.1:3000/healthz" in health
    (entrypoint,) = [rest for keyword, rest in instructions() if keyword == "ENTRYPOINT"]
    assert shlex.split(entrypoint.strip("[]").replace(",", " ")) == ["release-bot"]
    assert ("EXPOSE", "3000") in instructions()
    apt = [rest for keyword, rest in instructions() if keyword == "RUN" and "apt-get install" in rest]
    assert apt and all("--no-install-recommends" in r for r in apt) and any(" git" in r for r in apt)
