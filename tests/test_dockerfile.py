"""The Dockerfile, read as a reviewer would: hadolint, then its properties (tests/container runs the built image)."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
COMPILERS = re.compile(r"\b(gcc|g\+\+|cc|c\+\+|clang|build-essential|make|cmake|gfortran|rustc|cargo|python3?-dev)\b")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [arguments for instruction, arguments in self.instructions if instruction == keyword]

    def last(self, keyword: str) -> str:
        found = self.all(keyword)
        assert found, f"no {keyword} in the stage FROM {self.base}"
        return found[-1]


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: comments dropped, continuation lines joined."""
    joined, pending = [], ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip()) for line in joined]


def _stages(text: str) -> tuple[dict[str, str], list[Stage]]:
    """The ARGs declared before the first FROM (name -> default), and the build stages in order."""
    global_args, stages = {}, []
    for instruction, arguments in _instructions(text):
        if instruction == "FROM":
            words = arguments.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        elif not stages:
            assert instruction == "ARG", f"only ARG may come before the first FROM, not {instruction}"
            key, _, default = arguments.partition("=")
            global_args[key] = default
        else:
            stages[-1].instructions.append((instruction, arguments))
    return global_args, stages


@pytest.fixture(scope="module")
def parsed() -> tuple[dict[str, str], list[Stage]]:
    return _stages(DOCKERFILE.read_text())


def _hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is missing: it comes with the [dev] extra (pip install -e '.[dev]')")
    return found


def _lint(path: Path) -> list[dict]:
    result = subprocess.run(
        [_hadolint(), "--no-color", "--format", "json", str(path)], capture_output=True, text=True, timeout=60
    )
    return json.loads(result.stdout or "[]")


def test_hadolint_finds_nothing() -> None:
    findings = _lint(DOCKERFILE)
    assert findings == [], "\n".join(f"line {f['line']}: {f['code']} {f['message']}" for f in findings)


def test_hadolint_does_flag_a_careless_dockerfile(tmp_path: Path) -> None:
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python\nRUN apt-get update && apt-get install -y gcc\nRUN pip install fastapi\n")
    assert {finding["code"] for finding in _lint(careless)} >= {"DL3006", "DL3008", "DL3013"}


def test_the_base_image_is_a_build_argument_used_by_every_stage(parsed) -> None:
    global_args, stages = parsed
    assert global_args.get("PYTHON_IMAGE") == "python:3.11-slim-bookworm"
    assert len(stages) >= 2, "multi-stage"
    assert all(stage.base == "${PYTHON_IMAGE}" for stage in stages)


def test_the_builder_installs_from_the_wheelhouse_alone_and_the_final_stage_takes_its_virtualenv(parsed) -> None:
    _, stages = parsed
    builder, final = stages[0], stages[-1]
    assert builder.name
    assert [copy.split()[0] for copy in builder.all("COPY")] == ["build/wheelhouse/"]
    installs = [run for run in builder.all("RUN") if "pip install" in run]
    assert installs, "the builder installs the project"
    for run in installs:
        assert "--no-index" in run and "--find-links" in run, "no package index: nothing is downloaded in the build"
    assert not any("pip wheel" in run for run in builder.all("RUN")), "the wheels are made before the build"
    assert not any("pip install" in run for run in final.all("RUN")), "the final stage installs nothing"
    assert not final.all("ADD")
    copies = final.all("COPY")
    assert copies and all(copy.startswith(f"--from={builder.name} ") for copy in copies), copies
    venv = copies[0].split()[-1]
    assert any(f"PATH={venv}/bin:" in env for env in final.all("ENV")), "its commands are on PATH"


def test_the_final_stage_installs_no_compiler(parsed) -> None:
    _, stages = parsed
    for run in stages[-1].all("RUN"):
        assert not re.search(r"\b(apt-get|apt|apk|yum|dnf)\b.*\binstall\b", run), "no system packages at all"
        assert not COMPILERS.search(run.replace("--find-links", "")), run


def test_it_runs_as_a_fixed_non_root_uid_created_in_the_image(parsed) -> None:
    _, stages = parsed
    final = stages[-1]
    user = final.last("USER")
    assert re.fullmatch(r"\d+(:\d+)?", user), f"USER {user}: numeric, so the orchestrator can check it is not root"
    uid = int(user.split(":")[0])
    assert uid >= 1000
    assert any(f"--uid {uid}" in run for run in final.all("RUN")), "the user exists in /etc/passwd"


def test_it_works_with_a_read_only_root_filesystem(parsed) -> None:
    _, stages = parsed
    final = stages[-1]
    env = dict(assignment.split("=", 1) for arguments in final.all("ENV") for assignment in shlex.split(arguments))
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    for name in ("HOME", "TMPDIR", "SKYCART_ASSETS_DIR"):
        assert env[name].startswith("/tmp"), f"{name} is written to: it must be on the /tmp tmpfs"
    assert "SKYCART_DATABASE_URL" not in env, "the database comes at run time, never baked into the image"
    assert final.last("WORKDIR") != "/tmp", "the default SQLite file must not land in a writable working directory"


def test_healthcheck_entrypoint_and_port(parsed) -> None:
    _, stages = parsed
    final = stages[-1]
    env = dict(assignment.split("=", 1) for arguments in final.all("ENV") for assignment in shlex.split(arguments))
    healthcheck = final.last("HEALTHCHECK")
    assert "/healthz" in healthcheck and "CMD" in healthcheck
    assert "SKYCART_PORT" in healthcheck, "it probes the port the server listens on, whatever the environment sets"
    assert not re.search(r"\b(curl|wget)\b", healthcheck), "the slim image has neither"
    assert final.last("EXPOSE") == env["SKYCART_PORT"] == "8000"
    assert env["SKYCART_HOST"] == "0.0.0.0"
    assert json.loads(final.last("ENTRYPOINT")) == ["skycart"]
    assert json.loads(final.last("CMD")) == ["serve"], "host, port and workers come from the environment"


def test_the_build_context_holds_only_what_the_build_reads() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "everything is excluded first"
    assert {p for p in patterns if p.startswith("!")} == {"!build/wheelhouse/"}
    copied: set[str] = set()
    for instruction, arguments in _instructions(DOCKERFILE.read_text()):
        if instruction == "COPY" and not arguments.startswith("--from"):
            copied.update(arguments.split()[:-1])
    assert copied == {"build/wheelhouse/"}
