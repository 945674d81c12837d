"""gitlab-ci-local (`make gitlab-ci-local`) on a throwaway git copy of the pipeline files.

gitlab-ci-local evaluates `rules:changes` as `git diff --name-only origin/<default branch>`, so a
sandbox commits placeholders of the watched paths, points `origin/main` at that commit, and then
commits edits on top: the edits are what the "push" changed. It ignores `compare_to`, and it does not
drop a pipeline that `workflow:rules` refuse, so `creates_pipeline` asks the same rules through a
probe job. It never mints ID tokens: jobs that need one get it as a variable.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import service_missing

REPO = Path(__file__).resolve().parents[2]
GITLAB_CI_LOCAL = REPO / ".tools" / "node" / "node_modules" / ".bin" / "gitlab-ci-local"
PIPELINE_FILES = (".gitlab-ci.yml", "infra/gitlab")
# Stand-ins for the paths that rules:changes watch (and one that no rule watches).
PLACEHOLDERS = (
    "Dockerfile",
    "pyproject.toml",
    "README.md",
    "infra/cloudformation/skycart.yaml",
    "src/skycart/app.py",
    "src/skycart_deploy/lambdas/api_deployer.py",
)
GIT = ("git", "-c", "user.name=SkyCart", "-c", "user.email=ci@skycart.invalid", "-c", "commit.gpgsign=false")
PREDEFINED = (
    "CI_PIPELINE_SOURCE",
    "CI_COMMIT_BRANCH",
    "CI_COMMIT_REF_NAME",
    "CI_COMMIT_TAG",
    "CI_MERGE_REQUEST_IID",
    "CI_OPEN_MERGE_REQUESTS",
)
PROBE = "pipeline:probe"


@dataclass(frozen=True)
class Trigger:
    """What starts a pipeline: the predefined variables GitLab would set, and those it would leave unset."""

    variables: Mapping[str, str]
    unset: tuple[str, ...] = ()


MAIN_PUSH = Trigger({"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main", "CI_COMMIT_REF_NAME": "main"})
MAIN_FROM_UI = Trigger({"CI_PIPELINE_SOURCE": "web", "CI_COMMIT_BRANCH": "main", "CI_COMMIT_REF_NAME": "main"})
MAIN_SCHEDULE = Trigger({"CI_PIPELINE_SOURCE": "schedule", "CI_COMMIT_BRANCH": "main", "CI_COMMIT_REF_NAME": "main"})
MERGE_REQUEST = Trigger(
    {"CI_PIPELINE_SOURCE": "merge_request_event", "CI_MERGE_REQUEST_IID": "7", "CI_COMMIT_REF_NAME": "menu"},
    unset=("CI_COMMIT_BRANCH",),
)
FEATURE_PUSH = Trigger({"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "menu", "CI_COMMIT_REF_NAME": "menu"})
FEATURE_PUSH_WITH_OPEN_MR = Trigger({**FEATURE_PUSH.variables, "CI_OPEN_MERGE_REQUESTS": "group/skycart!7"})
MAIN_PUSH_WITH_OPEN_MR = Trigger({**MAIN_PUSH.variables, "CI_OPEN_MERGE_REQUESTS": "group/skycart!8"})
TAG = Trigger(
    {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_TAG": "v1.0.0", "CI_COMMIT_REF_NAME": "v1.0.0"},
    unset=("CI_COMMIT_BRANCH",),
)


@dataclass(frozen=True)
class Need:
    job: str
    optional: bool
    artifacts: bool


@dataclass(frozen=True)
class Job:
    """One job as gitlab-ci-local evaluated it for a pipeline."""

    name: str
    stage: str
    when: str
    allow_failure: bool
    environment: str
    needs: tuple[Need, ...] = field(default=())


def executable() -> Path:
    """gitlab-ci-local; a missing one skips the test, or fails it under CI=true."""
    if not GITLAB_CI_LOCAL.is_file():
        service_missing(f"gitlab-ci-local ({GITLAB_CI_LOCAL.relative_to(REPO)}; `make gitlab-ci-local`)")
    return GITLAB_CI_LOCAL


class Sandbox:
    """A git repository holding a copy of the pipeline, its `origin/main` at the first commit."""

    def __init__(self, root: Path, gitlab_ci_local: Path) -> None:
        self.root = root
        self.gitlab_ci_local = gitlab_ci_local

    @classmethod
    def create(cls, *, root: Path, gitlab_ci_local: Path) -> Sandbox:
        """Copy the pipeline files and placeholders into `root` and commit them as main and origin/main."""
        for name in PIPELINE_FILES:
            source, target = REPO / name, root / name
            if source.is_dir():
                shutil.copytree(source, target)
            else:
                shutil.copy2(source, target)
        for name in PLACEHOLDERS:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(f"placeholder for {name}\n")
        sandbox = cls(root, gitlab_ci_local)
        sandbox._git("init", "--quiet", "--initial-branch=main")
        sandbox._git("add", "--all")
        sandbox._git("commit", "--quiet", "--message=base")
        sandbox._git("remote", "add", "origin", "https://gitlab.example.com/group/skycart.git")
        sandbox._git("update-ref", "refs/remotes/origin/main", "HEAD")
        sandbox._git("symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/main")
        return sandbox

    def change(self, *paths: str) -> None:
        """Commit an edit of each path on top of origin/main: the files a push changed."""
        for name in paths:
            with (self.root / name).open("a") as file:
                file.write("edited\n")
        if paths:
            self._git("commit", "--quiet", "--all", "--message=change")

    def append(self, text: str) -> None:
        """Add YAML (extra jobs) to the sandbox's .gitlab-ci.yml."""
        with (self.root / ".gitlab-ci.yml").open("a") as file:
            file.write("\n" + text)

    def jobs(self, trigger: Trigger, *, evaluate_changes: bool = True) -> dict[str, Job]:
        """The jobs of the pipeline `trigger` starts (when:never left out), by name."""
        options = [] if evaluate_changes else ["--no-evaluate-rule-changes"]
        listed = json.loads(self.gitlab_ci_local_output("--list-json", *options, trigger=trigger))
        # Only the CSV listing shows the environment, with its variables expanded: name;stage;…;environment;needs
        rows = self.gitlab_ci_local_output("--list-csv-all", *options, trigger=trigger).splitlines()[1:]
        environments = {cells[0]: cells[4] for cells in (row.split(";") for row in rows)}
        return {
            job["name"]: Job(
                name=job["name"],
                stage=job["stage"],
                when=job["when"],
                allow_failure=job["allow_failure"],
                environment=environments[job["name"]],
                needs=tuple(Need(n["job"], n["optional"], n["artifacts"]) for n in job.get("needs") or ()),
            )
            for job in listed
            if job["when"] != "never" and job["name"] != PROBE
        }

    def creates_pipeline(self, trigger: Trigger) -> bool:
        """Whether workflow:rules let `trigger` create a pipeline, asked through a probe job with those rules."""
        if PROBE not in (self.root / ".gitlab-ci.yml").read_text():
            self.append(f"{PROBE}:\n  stage: test\n  script: [exit 0]\n  rules: !reference [workflow, rules]\n")
        listed = json.loads(self.gitlab_ci_local_output("--list-json", trigger=trigger))
        return next(job["when"] for job in listed if job["name"] == PROBE) != "never"

    def preview(self) -> dict[str, Any]:
        """The merged configuration: includes, extends and !reference resolved."""
        return yaml.safe_load(self.gitlab_ci_local_output("--preview", trigger=MAIN_PUSH))

    def run(self, job: str, *, variables: Mapping[str, str], env: Mapping[str, str]) -> subprocess.CompletedProcess:
        """Run one job in the shell (no container), in a copy of the sandbox; `env` is the whole process environment."""
        return self._gitlab_ci_local(
            "--force-shell-executor", "--no-color", job, trigger=Trigger(variables), env=env, timeout=120
        )

    def gitlab_ci_local_output(self, *options: str, trigger: Trigger) -> str:
        """gitlab-ci-local's standard output for `options`; raises when it fails."""
        finished = self._gitlab_ci_local("--no-json-schema-validation", *options, trigger=trigger)
        assert finished.returncode == 0, finished.stdout + finished.stderr
        return finished.stdout

    def validate_schema(self) -> subprocess.CompletedProcess:
        """gitlab-ci-local's check of the merged configuration against GitLab's JSON schema."""
        return self._gitlab_ci_local("--list", trigger=MAIN_PUSH)

    def _gitlab_ci_local(
        self, *options: str, trigger: Trigger, env: Mapping[str, str] | None = None, timeout: int = 60
    ) -> subprocess.CompletedProcess:
        arguments = [str(self.gitlab_ci_local), "--home", str(self.root / ".home")]
        arguments += ["--ignore-predefined-vars", ",".join(PREDEFINED)]
        arguments += [f"--variable={name}={value}" for name, value in trigger.variables.items()]
        arguments += [f"--unset-variable={name}" for name in trigger.unset]
        return subprocess.run(
            [*arguments, *options],
            cwd=self.root,
            env=dict(env if env is not None else environment()),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def _git(self, *arguments: str) -> None:
        subprocess.run([*GIT, *arguments], cwd=self.root, env=environment(), check=True, capture_output=True)


def environment() -> dict[str, str]:
    """This environment minus gitlab-ci-local settings, git configuration and an enclosing GitLab job's variables."""
    kept = {name: value for name, value in os.environ.items() if not name.startswith(("GCL_", "CI_", "GITLAB_"))}
    return {**kept, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
