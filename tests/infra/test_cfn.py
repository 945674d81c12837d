"""The template reader and the intrinsic functions `skycart-deploy` evaluates."""

from __future__ import annotations

from pathlib import Path

import pytest

from skycart_deploy.cfn import Scope, Unresolved, evaluate, load_template, scope_for

TEMPLATE = """\
Parameters:
  Environment: {Type: String}
  Size: {Type: Number, Default: 2}
Mappings:
  Table:
    prod: {Cpu: "1024"}
    dev: {Cpu: "256"}
Conditions:
  IsProd: !Equals [!Ref Environment, prod]
  Big: !And [!Condition IsProd, !Not [!Equals [!Ref Size, 1]]]
Resources:
  Thing:
    Type: AWS::S3::Bucket
    Properties:
      Cpu: !FindInMap [Table, !Ref Environment, Cpu]
      Name: !Sub "skycart-${Environment}-${Other.Arn}"
      Zone: !Select [1, !GetAZs ""]
      Att: !GetAtt Other.Arn
      Maybe: !If [Big, yes-big, !Ref AWS::NoValue]
      Subnets: !Cidr [10.0.0.0/16, 2, 8]
"""


@pytest.fixture
def loaded(tmp_path: Path) -> dict:
    path = tmp_path / "t.yaml"
    path.write_text(TEMPLATE, encoding="utf-8")
    return load_template(path)


def test_short_form_tags_load_in_their_long_form(loaded: dict) -> None:
    properties = loaded["Resources"]["Thing"]["Properties"]

    assert properties["Cpu"] == {"Fn::FindInMap": ["Table", {"Ref": "Environment"}, "Cpu"]}
    assert properties["Att"] == {"Fn::GetAtt": ["Other", "Arn"]}
    assert loaded["Conditions"]["Big"]["Fn::And"][0] == {"Condition": "IsProd"}


def test_parameters_mappings_and_conditions_resolve(loaded: dict) -> None:
    prod = evaluate(loaded["Resources"]["Thing"]["Properties"], scope_for(loaded, {"Environment": "prod"}))
    dev = evaluate(loaded["Resources"]["Thing"]["Properties"], scope_for(loaded, {"Environment": "dev"}))

    assert (prod["Cpu"], dev["Cpu"]) == ("1024", "256")
    assert prod["Maybe"] == "yes-big" and "Maybe" not in dev
    assert prod["Subnets"] == ["10.0.0.0/24", "10.0.1.0/24"]


def test_what_needs_a_deployed_resource_stays_unresolved(loaded: dict) -> None:
    resolved = evaluate(loaded["Resources"]["Thing"]["Properties"], scope_for(loaded, {"Environment": "dev"}))

    assert resolved["Att"] == Unresolved("Other.Arn")
    assert resolved["Name"] == Unresolved("Other.Arn")
    assert resolved["Zone"] == Unresolved("Fn::GetAZs")


def test_known_attributes_and_sub_variables_fill_in(loaded: dict) -> None:
    scope = scope_for(loaded, {"Environment": "qa"}, attributes={"Other": {"Arn": "arn:x"}})

    assert evaluate(loaded["Resources"]["Thing"]["Properties"]["Name"], scope) == "skycart-qa-arn:x"
    assert evaluate({"Fn::Sub": ["${A}-${AWS::Region}", {"A": "a"}]}, Scope({}, pseudo={"AWS::Region": "r"})) == "a-r"


def test_a_condition_on_a_missing_parameter_is_unresolved(loaded: dict) -> None:
    scope = scope_for(loaded, {})

    assert scope.condition("IsProd") == Unresolved("parameter Environment")
    assert scope.condition("Big") == Unresolved("parameter Environment")
