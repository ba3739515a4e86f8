"""The program's shape: one ComponentResource per concern holding every AWS resource, the
children's aliases to their URNs from before the components (an existing stack is updated,
not replaced), and the default tags on every taggable resource."""

from __future__ import annotations

import pulumi
import pytest

from conftest import run_program
from payhook_infra.components import Component, takes_tags

CONCERNS = {
    "payhook:storage:Storage": "storage",
    "payhook:queues:Queues": "queues",
    "payhook:events:Events": "events",
    "payhook:functions:Functions": "functions",
    "payhook:api:Api": "api",
    "payhook:secrets:Secrets": "secrets",
    "payhook:monitoring:Monitoring": "monitoring",
}

#: What an existing stack must keep (a replacement loses data, or the URLs and keys the
#: providers hold): each stays under its logical name.
KEPT = {
    "aws:dynamodb/table:Table": ["webhook-processing"],
    "aws:sqs/queue:Queue": [
        "stripe-queue", "paypal-queue", "square-queue",
        "stripe-dlq", "paypal-dlq", "square-dlq", "events-dlq",
    ],
    "aws:apigateway/restApi:RestApi": ["webhooks-api"],
    "aws:apigateway/apiKey:ApiKey": ["stripe-api-key", "paypal-api-key", "square-api-key"],
    "aws:apigateway/stage:Stage": ["webhooks-stage"],
    "aws:cloudwatch/eventBus:EventBus": ["payment-events"],
}


def _aws(deployment):
    return [r for r in deployment.registrations if r.typ.startswith("aws:")]


def test_one_component_per_concern(deployment) -> None:
    components = [r for r in deployment.registrations if isinstance(r.resource, Component)]
    assert {r.typ: r.name for r in components} == CONCERNS
    assert len(components) == len(CONCERNS)
    assert all(r.opts.parent is None for r in components), "components sit under the stack"


def test_every_aws_resource_is_a_child_of_a_component(deployment) -> None:
    resources = _aws(deployment)
    assert len(resources) > 100
    orphans = [f"{r.typ}::{r.name}" for r in resources if not isinstance(r.opts.parent, Component)]
    assert not orphans, f"not in any component: {orphans}"


def test_each_resource_sits_in_its_concern(deployment) -> None:
    concern = {
        r.name: r.opts.parent._name
        for r in _aws(deployment)
        if isinstance(r.opts.parent, Component) and r.typ != "aws:apigateway/authorizer:Authorizer"
    }
    assert concern["webhook-processing"] == "storage"
    assert concern["stripe-dlq"] == concern["events-dlq-policy"] == "queues"
    assert concern["webhook-validator"] == concern["stripe-queue-to-processor"] == "functions"
    assert concern["api-key-authorizer"] == "functions"
    assert concern["payment-events"] == concern["payment-events-policy"] == "events"
    assert concern["webhooks-api"] == concern["stripe-api-key"] == "api"
    assert concern["ssm-paypal-webhook-id"] == "secrets"
    assert concern["alarms-topic"] == concern["dashboard-payments"] == "monitoring"


def _was_a_child_of_the_stack(alias: pulumi.Alias) -> bool:
    # Same name, same type, no parent: the URN the resource had before the components.
    return alias.parent is pulumi.ROOT_STACK_RESOURCE and alias.name is ... and alias.type_ is ...


def test_every_child_keeps_its_urn_from_before_the_components_through_an_alias(deployment) -> None:
    unaliased = [
        f"{r.typ}::{r.name}"
        for r in _aws(deployment)
        if not any(_was_a_child_of_the_stack(a) for a in r.opts.aliases or [])
    ]
    assert not unaliased, f"would be replaced on an existing stack: {unaliased}"


@pytest.mark.parametrize(("typ", "names"), KEPT.items())
def test_data_and_registered_urls_keep_their_logical_names(deployment, typ, names) -> None:
    registered = {r.name for r in deployment.registrations if r.typ == typ}
    assert set(names) <= registered


def test_the_table_and_the_dlqs_are_protected_under_their_component(deployment) -> None:
    protected = {
        r.name for r in _aws(deployment) if r.opts.protect and isinstance(r.opts.parent, Component)
    }
    assert protected == {
        "webhook-processing",
        "quarantine",
        "stripe-dlq",
        "paypal-dlq",
        "square-dlq",
        "events-dlq",
    }


def _tags(deployment, name: str, typ: str) -> dict[str, str]:
    return deployment.one(typ, name).inputs["tags"]


def test_every_taggable_resource_carries_project_stage_and_managed_by(deployment) -> None:
    taggable = [r for r in _aws(deployment) if takes_tags(r.resource)]
    # The table, queues, functions, roles, log groups, API, keys, bus, rules, parameters, key,
    # topic, alarms...
    assert {r.typ for r in taggable} >= {
        "aws:dynamodb/table:Table",
        "aws:sqs/queue:Queue",
        "aws:lambda/function:Function",
        "aws:iam/role:Role",
        "aws:cloudwatch/logGroup:LogGroup",
        "aws:apigateway/restApi:RestApi",
        "aws:apigateway/stage:Stage",
        "aws:apigateway/apiKey:ApiKey",
        "aws:apigateway/usagePlan:UsagePlan",
        "aws:cloudwatch/eventBus:EventBus",
        "aws:cloudwatch/eventRule:EventRule",
        "aws:ssm/parameter:Parameter",
        "aws:kms/key:Key",
        "aws:sns/topic:Topic",
        "aws:cloudwatch/metricAlarm:MetricAlarm",
    }
    recorded = {(r.typ, r.name): r for r in deployment.resources}
    for r in taggable:
        tags = recorded[(r.typ, r.name)].inputs.get("tags")
        assert tags is not None and {
            "project": "payhook",
            "stage": "prod",
            "managed-by": "pulumi",
        }.items() <= tags.items(), f"{r.typ}::{r.name} has tags {tags}"


def test_untaggable_resources_get_no_tags(deployment) -> None:
    for typ in ("aws:iam/rolePolicy:RolePolicy", "aws:lambda/permission:Permission"):
        for resource in deployment.of_type(typ):
            assert "tags" not in resource.inputs, resource.name


def test_a_resources_own_tags_stay_next_to_the_default_ones(deployment) -> None:
    alarm = next(iter(deployment.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")))
    assert alarm.inputs["tags"]["severity"] in {"critical", "high", "warning"}
    assert alarm.inputs["tags"]["managed-by"] == "pulumi"


def test_the_stage_tag_is_the_stacks_stage() -> None:
    dev = run_program(stage="dev")
    assert _tags(dev, "webhook-processing", "aws:dynamodb/table:Table") == {
        "project": "payhook",
        "stage": "dev",
        "managed-by": "pulumi",
    }
