"""The GitLab pipeline as gitlab-ci-local evaluates it: which jobs each kind of pipeline runs, in what
order and under what protection; and the test and AWS templates run for real in the shell."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.deploy import gitlab
from tests.deploy.gitlab import Job, Sandbox, Trigger

ENVIRONMENTS = ("dev", "stage", "qa", "prod")
TIERS = {"dev": "development", "stage": "staging", "qa": "testing", "prod": "production"}
APP = "src/skycart/app.py"
INFRA = "infra/cloudformation/skycart.yaml"
LAMBDA = "src/skycart_deploy/lambdas/api_deployer.py"
# Not under lambdas/, yet inside the API deployer's zip.
ZIPPED_MODULE = "src/skycart_deploy/api_gateway.py"
DOCS = "README.md"
STACKS = {f"stack:{env}" for env in ENVIRONMENTS}
APP_JOBS = {f"{part}:{env}" for part in ("image", "service", "api") for env in ENVIRONMENTS} | {"image:build"}
RELEASE = {"test", "deploy:prod"} | STACKS | APP_JOBS
ID_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJwcm9qZWN0X3BhdGg6Z3JvdXAvc2t5Y2FydCJ9.c2lnbmF0dXJl"
ROLE = "arn:aws:iam::123456789012:role/skycart-pipeline-dev"
AWS_PROBE = """\
aws:probe:
  extends: .skycart:aws
  stage: test
  script:
    - python -c "import boto3; print('caller', boto3.client('sts').get_caller_identity()['Arn'])"
"""

ARTIFACTS = "skycart-bootstrap-dev-artifactbucket-1a2b3c"
DEPLOYMENT_ROLE = "arn:aws:iam::123456789012:role/skycart-bootstrap-dev-DeploymentRole-1A2B3C"
STACK_JOB = {
    **gitlab.MAIN_PUSH.variables,
    "AWS_ID_TOKEN": ID_TOKEN,
    "AWS_ROLE_ARN": ROLE,
    "ARTIFACT_BUCKET": ARTIFACTS,
    "DEPLOYMENT_ROLE_ARN": DEPLOYMENT_ROLE,
}
ROOT_TEMPLATE = """
Parameters:
  Environment: {Type: String}
  TemplateBaseUrl: {Type: String}
  ArtifactBucket: {Type: String}
  ApiDeployerCodeKey: {Type: String}
  SecretRotationCodeKey: {Type: String}
Resources:
  Orders:
    Type: AWS::CloudFormation::Stack
    Properties:
      TemplateURL: !Sub "${TemplateBaseUrl}/orders.yaml"
      Parameters: {Environment: !Ref Environment}
"""
IMAGE_PARAMETERS = """\
  ImageRepositoryName: {Type: String}
  ImageTag: {Type: String, Default: ""}
  ImageDigest: {Type: String, Default: ""}
"""
ORDERS_TEMPLATE = """
Parameters:
  Environment: {Type: String}
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties: {QueueName: !Sub "orders-${Environment}"}
"""

Pipeline = Callable[..., dict[str, Job]]


@pytest.fixture(scope="module")
def gitlab_ci_local() -> Path:
    return gitlab.executable()


@pytest.fixture(scope="module")
def sandbox(gitlab_ci_local: Path, tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    return Sandbox.create(root=tmp_path_factory.mktemp("pipeline"), gitlab_ci_local=gitlab_ci_local)


@pytest.fixture(scope="module")
def pipeline(gitlab_ci_local: Path, tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    """The jobs `trigger` runs after a push that changed `changed`; each combination evaluated once."""
    evaluated: dict[str, dict[str, Job]] = {}

    def jobs(trigger: Trigger, *changed: str, evaluate_changes: bool = True) -> dict[str, Job]:
        key = repr((trigger, changed, evaluate_changes))
        if key not in evaluated:
            root = tmp_path_factory.mktemp("push")
            push = Sandbox.create(root=root, gitlab_ci_local=gitlab_ci_local)
            push.change(*changed)
            evaluated[key] = push.jobs(trigger, evaluate_changes=evaluate_changes)
        return evaluated[key]

    return jobs


@pytest.fixture(scope="module")
def merged(sandbox: Sandbox) -> dict[str, Any]:
    return sandbox.preview()


@pytest.fixture(params=[(APP, INFRA), (INFRA,), (APP,)], ids=["app+infra", "infra", "app"])
def release(request: pytest.FixtureRequest, pipeline: Pipeline) -> dict[str, Job]:
    return pipeline(gitlab.MAIN_PUSH, *request.param)


def test_configuration_passes_gitlab_schema_validation(sandbox: Sandbox) -> None:
    finished = sandbox.validate_schema()

    assert finished.returncode == 0, finished.stdout + finished.stderr


def test_main_push_changing_app_and_infra_releases_every_part_to_every_environment(pipeline: Pipeline) -> None:
    assert set(pipeline(gitlab.MAIN_PUSH, APP, INFRA)) == RELEASE


def test_infra_change_on_main_runs_only_the_stack_jobs(pipeline: Pipeline) -> None:
    assert set(pipeline(gitlab.MAIN_PUSH, INFRA)) == {"test", "deploy:prod"} | STACKS


def test_app_change_on_main_builds_once_and_deploys_image_service_and_api(pipeline: Pipeline) -> None:
    jobs = pipeline(gitlab.MAIN_PUSH, APP)

    assert set(jobs) == {"test", "deploy:prod"} | APP_JOBS
    assert [name for name, job in jobs.items() if job.stage == "build"] == ["image:build"]


def test_lambda_code_change_redeploys_the_stacks_that_ship_it(pipeline: Pipeline) -> None:
    assert set(pipeline(gitlab.MAIN_PUSH, LAMBDA)) >= STACKS


def test_change_to_a_module_the_lambda_zips_hold_redeploys_the_stacks(
    gitlab_ci_local: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("zip-module")
    (root / ZIPPED_MODULE).parent.mkdir(parents=True)
    (root / ZIPPED_MODULE).write_text("placeholder\n")
    push = Sandbox.create(root=root, gitlab_ci_local=gitlab_ci_local)
    push.change(ZIPPED_MODULE)

    assert set(push.jobs(gitlab.MAIN_PUSH)) >= STACKS


def test_docs_only_push_to_main_deploys_nothing(pipeline: Pipeline) -> None:
    assert set(pipeline(gitlab.MAIN_PUSH, DOCS)) == {"test"}


def test_merge_request_runs_test_stage_jobs_only(pipeline: Pipeline) -> None:
    jobs = pipeline(gitlab.MERGE_REQUEST, APP, INFRA)

    assert set(jobs) == {"test", "lint:stack"}
    assert {job.stage for job in jobs.values()} == {"test"}


def test_merge_request_without_template_changes_skips_the_stack_lint(pipeline: Pipeline) -> None:
    assert set(pipeline(gitlab.MERGE_REQUEST, APP)) == {"test"}


def test_feature_branch_push_runs_test_stage_jobs_only(pipeline: Pipeline) -> None:
    assert set(pipeline(gitlab.FEATURE_PUSH, APP, INFRA)) == {"test", "lint:stack"}


def test_tag_pipeline_runs_the_tests_and_deploys_nothing(sandbox: Sandbox, pipeline: Pipeline) -> None:
    assert sandbox.creates_pipeline(gitlab.TAG)
    assert set(pipeline(gitlab.TAG, APP, INFRA)) == {"test"}


def test_scheduled_main_pipeline_deploys_nothing_though_its_changes_rules_match(pipeline: Pipeline) -> None:
    # GitLab counts every file as changed when no push started the pipeline.
    assert set(pipeline(gitlab.MAIN_SCHEDULE, DOCS, evaluate_changes=False)) == {"test"}


def test_pipeline_run_from_the_ui_on_main_redeploys_everything(pipeline: Pipeline) -> None:
    assert set(pipeline(gitlab.MAIN_FROM_UI, DOCS, evaluate_changes=False)) == RELEASE


def test_branch_push_with_an_open_merge_request_leaves_the_pipeline_to_the_merge_request(sandbox: Sandbox) -> None:
    assert not sandbox.creates_pipeline(gitlab.FEATURE_PUSH_WITH_OPEN_MR)
    assert sandbox.creates_pipeline(gitlab.MERGE_REQUEST)
    assert sandbox.creates_pipeline(gitlab.FEATURE_PUSH)


def test_main_push_creates_a_pipeline_even_with_a_merge_request_open_from_main(sandbox: Sandbox) -> None:
    assert sandbox.creates_pipeline(gitlab.MAIN_PUSH_WITH_OPEN_MR)


def test_every_need_names_a_job_of_the_same_pipeline_unless_optional(release: dict[str, Job]) -> None:
    missing = [(job.name, n.job) for job in release.values() for n in job.needs if n.job not in release]

    assert all(_need(release, job, needed).optional for job, needed in missing), missing


def test_dev_is_deployed_before_stage_and_qa(release: dict[str, Job]) -> None:
    dev = _of(release, "dev")

    for name in _of(release, "stage") | _of(release, "qa"):
        assert dev <= _ancestors(release, name), name


def test_stage_and_qa_are_deployed_side_by_side(release: dict[str, Job]) -> None:
    for name in _of(release, "stage"):
        assert not _ancestors(release, name) & _of(release, "qa"), name
    for name in _of(release, "qa"):
        assert not _ancestors(release, name) & _of(release, "stage"), name


def test_prod_is_deployed_after_stage_and_qa_and_the_manual_step(release: dict[str, Job]) -> None:
    before = _of(release, "stage") | _of(release, "qa")

    for name in _of(release, "prod"):
        assert before <= _ancestors(release, name), name
    for name in _of(release, "prod") - {"deploy:prod"}:
        assert "deploy:prod" in _ancestors(release, name), name


def test_prod_release_is_one_manual_blocking_step(pipeline: Pipeline) -> None:
    jobs = pipeline(gitlab.MAIN_PUSH, APP, INFRA)

    assert [name for name, job in jobs.items() if job.when == "manual"] == ["deploy:prod"]
    assert jobs["deploy:prod"].allow_failure is False


def test_deploy_job_names_end_with_their_environment(pipeline: Pipeline) -> None:
    deploys = [job for job in pipeline(gitlab.MAIN_PUSH, APP, INFRA).values() if job.stage == "deploy"]

    assert {job.name.rsplit(":", 1)[1] for job in deploys} == set(ENVIRONMENTS)
    assert [job.name for job in deploys if job.environment != job.name.rsplit(":", 1)[1]] == []


def test_each_environment_has_its_own_resource_group_and_deployment_tier(merged: dict[str, Any]) -> None:
    for name, job in _deploy_jobs(merged).items():
        env = name.rsplit(":", 1)[1]
        assert _expand(job["resource_group"], job["variables"]) == f"skycart-{env}", name
        assert _expand(job["environment"]["name"], job["variables"]) == env, name
        assert job["environment"]["deployment_tier"] == TIERS[env], name


def test_the_manual_prod_step_records_no_deployment_of_its_own(merged: dict[str, Any]) -> None:
    assert merged["deploy:prod"]["environment"]["action"] == "prepare"
    assert "action" not in merged["service:prod"]["environment"]


def test_aws_jobs_get_an_oidc_id_token_for_sts(merged: dict[str, Any]) -> None:
    aws_jobs = {name: job for name, job in _deploy_jobs(merged).items() if name != "deploy:prod"}

    assert len(aws_jobs) == 16
    for name, job in aws_jobs.items():
        assert job["id_tokens"] == {"AWS_ID_TOKEN": {"aud": "sts.amazonaws.com"}}, name


def test_no_job_carries_stored_aws_keys(sandbox: Sandbox, merged: dict[str, Any]) -> None:
    stored = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}

    assert "AWS_SECRET_ACCESS_KEY" not in sandbox.gitlab_ci_local_output("--preview", trigger=gitlab.MAIN_PUSH)
    assert [name for name, job in _jobs(merged).items() if stored & set(job.get("variables") or {})] == []


def test_service_job_gets_its_image_from_its_own_environments_push(merged: dict[str, Any]) -> None:
    for env in ENVIRONMENTS:
        push, service = merged[f"image:{env}"], merged[f"service:{env}"]
        assert push["artifacts"]["reports"]["dotenv"] == "image.env"
        assert {n["job"]: n["artifacts"] for n in push["needs"]}["image:build"] is True
        with_artifacts = [n["job"] for n in service["needs"] if n["artifacts"]]
        assert with_artifacts == [f"image:{env}"], env


def test_stack_job_gets_the_image_its_own_environment_pushed(merged: dict[str, Any]) -> None:
    for env in ENVIRONMENTS:
        dotenv = [n["job"] for n in merged[f"stack:{env}"]["needs"] if n["artifacts"] and _dotenv(merged, n["job"])]
        assert dotenv == [f"image:{env}"], env
        assert '--image "$IMAGE_URI"' in "\n".join(merged[f"stack:{env}"]["script"]), env


def test_jobs_call_the_skycart_deploy_verbs(merged: dict[str, Any]) -> None:
    verbs = {
        "image:build": 'skycart-deploy image build --repository "$IMAGE_NAME" --tag "$CI_COMMIT_SHA"',
        "image:qa": 'skycart-deploy image push --repository "$IMAGE_REPOSITORY" --tag "$CI_COMMIT_SHA" \\\n'
        '  --builder "$IMAGE_BUILDER"',
        "stack:qa": 'skycart-deploy stack deploy --env "$ENVIRONMENT" --package-bucket "$ARTIFACT_BUCKET"',
        "service:qa": 'skycart-deploy service deploy --env "$ENVIRONMENT" --image "$IMAGE_URI"',
        "api:qa": "skycart-deploy openapi export --output openapi.json",
    }

    for name, command in verbs.items():
        assert command in "\n".join(merged[name]["script"]), name


def test_test_job_image_has_the_node_that_gitlab_ci_local_requires(merged: dict[str, Any]) -> None:
    # The bundled yargs parser throws below this Node major (Debian bookworm's nodejs, 18, is below it).
    bundled = (gitlab.GITLAB_CI_LOCAL.parents[1] / "gitlab-ci-local" / "dist" / "index.js").read_text()
    (required,) = set(re.findall(r"YARGS_MIN_NODE_VERSION\):(\d+)", bundled))

    image = re.fullmatch(r"node:(\d+)-bookworm", merged["test"]["variables"]["SKYCART_TEST_IMAGE"])

    assert image, merged["test"]["variables"]["SKYCART_TEST_IMAGE"]
    assert int(image[1]) >= int(required)


def test_test_job_runs_the_test_command_in_the_checkout(sandbox: Sandbox) -> None:
    command = "test -f pyproject.toml && echo suite-finished"

    finished = sandbox.run("test", variables={"TEST_COMMAND": command}, env=gitlab.environment())

    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert "suite-finished" in finished.stdout


def test_test_job_fails_when_the_test_command_fails(sandbox: Sandbox) -> None:
    finished = sandbox.run("test", variables={"TEST_COMMAND": "test -f no-such-file"}, env=gitlab.environment())

    assert finished.returncode != 0


@pytest.fixture(scope="module")
def aws_sandbox(gitlab_ci_local: Path, tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    probe = Sandbox.create(root=tmp_path_factory.mktemp("aws"), gitlab_ci_local=gitlab_ci_local)
    probe.append(AWS_PROBE)
    return probe


def test_aws_template_assumes_the_role_with_the_jobs_id_token(aws_sandbox: Sandbox, moto_endpoint: str) -> None:
    variables = {"AWS_ID_TOKEN": ID_TOKEN, "AWS_ROLE_ARN": ROLE, "AWS_ENDPOINT_URL_STS": moto_endpoint}

    finished = aws_sandbox.run("aws:probe", variables=variables, env=_job_environment())

    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert re.search(
        r"caller arn:aws:sts::123456789012:assumed-role/skycart-pipeline-dev/gitlab-\d+-\d+", finished.stdout
    )


def test_aws_template_refuses_a_stored_access_key(aws_sandbox: Sandbox) -> None:
    env = {**_job_environment(), "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE"}

    finished = aws_sandbox.run("aws:probe", variables={"AWS_ID_TOKEN": ID_TOKEN, "AWS_ROLE_ARN": ROLE}, env=env)

    assert finished.returncode != 0
    assert "AWS_ACCESS_KEY_ID is set" in finished.stdout
    assert "caller" not in finished.stdout


def test_aws_template_fails_without_a_role_to_assume(aws_sandbox: Sandbox) -> None:
    finished = aws_sandbox.run("aws:probe", variables={"AWS_ID_TOKEN": ID_TOKEN}, env=_job_environment())

    assert finished.returncode != 0
    assert "AWS_ROLE_ARN is not set" in finished.stdout


@pytest.fixture
def stack_sandbox(gitlab_ci_local: Path, tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    """The pipeline with a small root template (one nested stack) in place of skycart.yaml."""
    sandbox = Sandbox.create(root=tmp_path_factory.mktemp("stack"), gitlab_ci_local=gitlab_ci_local)
    (sandbox.root / INFRA).write_text(ROOT_TEMPLATE)
    (sandbox.root / INFRA).with_name("orders.yaml").write_text(ORDERS_TEMPLATE)
    return sandbox


def test_stack_job_packages_into_the_artifact_bucket_then_deploys_with_the_deployment_role(
    stack_sandbox: Sandbox, fresh_moto: str
) -> None:
    s3 = boto3.client("s3", endpoint_url=fresh_moto, region_name="eu-central-1")
    s3.create_bucket(Bucket=ARTIFACTS, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    # moto resolves a nested TemplateURL on its own server only when the host is named "localhost".
    endpoint = fresh_moto.replace("127.0.0.1", "localhost")
    variables = {**STACK_JOB, "AWS_ENDPOINT_URL_STS": fresh_moto, "SKYCART_AWS_ENDPOINT_URL": endpoint}

    finished = stack_sandbox.run("stack:dev", variables=variables, env=_job_environment())

    assert finished.returncode == 0, finished.stdout + finished.stderr
    cloudformation = boto3.client("cloudformation", endpoint_url=fresh_moto, region_name="eu-central-1")
    (stack,) = cloudformation.describe_stacks(StackName="skycart-dev")["Stacks"]
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    stored = {item["Key"] for item in s3.list_objects_v2(Bucket=ARTIFACTS)["Contents"]}
    assert stack["RoleARN"] == DEPLOYMENT_ROLE
    assert parameters["ArtifactBucket"] == ARTIFACTS
    assert parameters["TemplateBaseUrl"].removeprefix(f"{endpoint}/{ARTIFACTS}/") + "/orders.yaml" in stored
    assert {parameters["ApiDeployerCodeKey"], parameters["SecretRotationCodeKey"]} <= stored


@pytest.mark.parametrize("missing", ["ARTIFACT_BUCKET", "DEPLOYMENT_ROLE_ARN"])
def test_stack_job_refuses_to_run_without_its_environments_bootstrap_outputs(
    stack_sandbox: Sandbox, missing: str
) -> None:
    variables = {name: value for name, value in STACK_JOB.items() if name != missing}

    finished = stack_sandbox.run("stack:dev", variables=variables, env=_job_environment())

    assert finished.returncode != 0
    assert f"{missing} is not set for environment 'dev'" in finished.stdout


def test_stack_job_deploys_the_pushed_image_by_digest(stack_sandbox: Sandbox, fresh_moto: str) -> None:
    (stack_sandbox.root / INFRA).write_text(ROOT_TEMPLATE.replace("Resources:", IMAGE_PARAMETERS + "Resources:", 1))
    s3 = boto3.client("s3", endpoint_url=fresh_moto, region_name="eu-central-1")
    s3.create_bucket(Bucket=ARTIFACTS, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    endpoint = fresh_moto.replace("127.0.0.1", "localhost")
    pushed = f"123456789012.dkr.ecr.eu-central-1.amazonaws.com/skycart/dev@sha256:{'b' * 64}"
    variables = {**STACK_JOB, "AWS_ENDPOINT_URL_STS": fresh_moto, "SKYCART_AWS_ENDPOINT_URL": endpoint}

    finished = stack_sandbox.run("stack:dev", variables={**variables, "IMAGE_URI": pushed}, env=_job_environment())

    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert f"skycart-dev runs the image: {pushed}" in finished.stdout
    cloudformation = boto3.client("cloudformation", endpoint_url=fresh_moto, region_name="eu-central-1")
    (stack,) = cloudformation.describe_stacks(StackName="skycart-dev")["Stacks"]
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert (parameters["ImageRepositoryName"], parameters["ImageDigest"]) == ("skycart/dev", f"sha256:{'b' * 64}")


def _dotenv(merged: Mapping[str, Any], name: str) -> bool:
    return "dotenv" in ((merged[name].get("artifacts") or {}).get("reports") or {})


def _job_environment() -> dict[str, str]:
    """A runner's environment: no AWS settings of this machine, this virtualenv's python and skycart-deploy first."""
    env = {name: value for name, value in gitlab.environment().items() if not name.startswith("AWS_")}
    return {**env, "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}", "AWS_REGION": "eu-central-1"}


def _of(jobs: Mapping[str, Job], env: str) -> set[str]:
    return {name for name in jobs if name.endswith(f":{env}")}


def _ancestors(jobs: Mapping[str, Job], name: str) -> set[str]:
    seen: set[str] = set()
    todo = [name]
    while todo:
        for need in jobs[todo.pop()].needs:
            if need.job in jobs and need.job not in seen:
                seen.add(need.job)
                todo.append(need.job)
    return seen


def _need(jobs: Mapping[str, Job], name: str, needed: str) -> gitlab.Need:
    return next(n for n in jobs[name].needs if n.job == needed)


def _jobs(merged: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: job for name, job in merged.items() if isinstance(job, dict) and "script" in job}


def _deploy_jobs(merged: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: job for name, job in _jobs(merged).items() if job["stage"] == "deploy"}


def _expand(text: str, variables: Mapping[str, str]) -> str:
    """GitLab's expansion of $NAME and ${NAME} from the job's variables, as in resource_group and environment."""
    return re.sub(r"\$\{?(\w+)\}?", lambda match: variables.get(match[1], match[0]), text)
