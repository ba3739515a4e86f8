"""The queue policies and the bus policy admit only the pipeline's own roles.

The policies are evaluated here as AWS does for a same-account request (an explicit Deny wins;
the identity policy grants): every action a function's rendered role policy grants on a queue or
the bus is left alone by that resource's policy, and the same action by any other principal of
the account is denied. AWS services acting as themselves (EventBridge delivering to its target
DLQ) are outside the Deny.
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any, Optional

import pytest

from conftest import as_list, run_program
from payhook_infra import settings
from payhook_infra.settings import ConfigError
from test_settings import config

PROVIDERS = ["stripe", "paypal", "square"]
ACCOUNT = "123456789012"
ONCALL = f"arn:aws:iam::{ACCOUNT}:role/payhook-oncall"
STRANGER = f"arn:aws:iam::{ACCOUNT}:role/admin"
QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"
BUS_POLICY = "aws:cloudwatch/eventBusPolicy:EventBusPolicy"
CONSUME = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"]


def role(function: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/payhook-prod-{function}-role"


def _matches(patterns: Any, value: str) -> bool:
    return any(fnmatch.fnmatchcase(value, p) for p in as_list(patterns))


def _condition_holds(condition: dict[str, Any], principal: Optional[str]) -> bool:
    """`principal` is the caller's role ARN, or None for an AWS service acting as itself."""
    for operator, keys in condition.items():
        for key, expected in keys.items():
            if key == "aws:PrincipalIsAWSService":
                assert operator == "BoolIfExists", operator
                actual = "false" if principal else "true"
                if actual != expected:
                    return False
            elif key == "aws:PrincipalArn":
                assert operator == "ArnNotLike", operator
                # A missing key satisfies a negated operator.
                if principal is not None and _matches(expected, principal):
                    return False
            else:
                raise AssertionError(f"condition this evaluator does not know: {operator} {key}")
    return True


def denied(document: dict[str, Any], principal: Optional[str], action: str, resource: str) -> bool:
    """Whether an explicit Deny of `document` applies to the request."""
    for statement in document["Statement"]:
        if statement["Effect"] != "Deny":
            continue
        assert statement["Principal"] == "*"
        if _matches(statement["Action"], action) and _matches(statement["Resource"], resource):
            if _condition_holds(statement.get("Condition", {}), principal):
                return True
    return False


def queue_arn(name: str) -> str:
    return f"arn:aws:sqs:us-east-1:{ACCOUNT}:{name}"


def _policy_of(deployment, name: str) -> dict[str, Any]:
    url = f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/{name}"
    return json.loads(deployment.by_input(QUEUE_POLICY, "queueUrl", url).inputs["policy"])


@pytest.fixture(scope="module")
def resource_policies(deployment) -> dict[str, dict[str, Any]]:
    """Each policy by the ARN of the queue or bus it guards."""
    policies = {}
    for name in [
        *(f"payhook-prod-{p}.fifo" for p in PROVIDERS),
        *(f"payhook-prod-{p}-dlq.fifo" for p in PROVIDERS),
        "payhook-prod-events-dlq",
    ]:
        policies[queue_arn(name)] = _policy_of(deployment, name)
    (bus,) = deployment.of_type(BUS_POLICY)
    assert bus.inputs["eventBusName"] == "payment-events"
    policies[f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/payment-events"] = json.loads(
        bus.inputs["policy"]
    )
    return policies


def test_every_queue_and_the_bus_has_a_policy(deployment, resource_policies) -> None:
    assert len(deployment.of_type(QUEUE_POLICY)) == 7
    for arn, document in resource_policies.items():
        assert all(s["Resource"] == arn for s in document["Statement"]), arn


def _granted(deployment) -> list[tuple[str, str, str]]:
    """(role ARN, action, resource) for every queue and bus action a rendered role policy grants."""
    granted = []
    for policy in deployment.of_type("aws:iam/rolePolicy:RolePolicy"):
        function = policy.name.removesuffix("-policy")
        for statement in json.loads(policy.inputs["policy"])["Statement"]:
            for action in as_list(statement["Action"]):
                if action.startswith(("sqs:", "events:")):
                    for resource in as_list(statement["Resource"]):
                        granted.append((role(function), action, resource))
    return granted


def test_what_a_role_policy_grants_on_a_queue_or_the_bus_its_resource_policy_leaves_alone(
    deployment, resource_policies
) -> None:
    granted = _granted(deployment)
    # The validator sends to 3 queues; each processor consumes its queue (the event source
    # mapping polls with its role) and publishes; the event processor's async failures.
    assert len(granted) >= 3 + 3 * 5 + 1
    for principal, action, resource in granted:
        assert resource in resource_policies, resource
        assert not denied(resource_policies[resource], principal, action, resource), (
            f"{principal} is granted {action} on {resource} by its role, denied by the resource"
        )


def test_no_other_principal_of_the_account_can_use_a_queue_or_the_bus(
    deployment, resource_policies
) -> None:
    for principal, action, resource in _granted(deployment):
        # Reading a queue's attributes moves no message (and the deployer needs it).
        if action != "sqs:GetQueueAttributes":
            assert denied(resource_policies[resource], STRANGER, action, resource), (action, resource)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_only_the_validator_and_a_redrive_put_messages_on_a_provider_queue(
    resource_policies, provider
) -> None:
    arn = queue_arn(f"payhook-prod-{provider}.fifo")
    policy = resource_policies[arn]
    allowed = {role("webhook-validator"), ONCALL}
    for principal in [*allowed, STRANGER, role(f"{provider}-processor"), role("event-processor")]:
        assert denied(policy, principal, "sqs:SendMessage", arn) == (principal not in allowed)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_only_a_providers_processor_takes_messages_off_its_queue(resource_policies, provider) -> None:
    arn = queue_arn(f"payhook-prod-{provider}.fifo")
    others = [role(f"{p}-processor") for p in PROVIDERS if p != provider]
    for action in CONSUME:
        assert not denied(resource_policies[arn], role(f"{provider}-processor"), action, arn)
        for principal in [*others, role("webhook-validator"), ONCALL, STRANGER]:
            assert denied(resource_policies[arn], principal, action, arn), (principal, action)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_nothing_can_be_slipped_into_a_dlq_and_only_a_redrive_reads_it(
    resource_policies, provider
) -> None:
    arn = queue_arn(f"payhook-prod-{provider}-dlq.fifo")
    policy = resource_policies[arn]
    for principal in [role("webhook-validator"), ONCALL, STRANGER]:
        assert denied(policy, principal, "sqs:SendMessage", arn), principal
    for action in CONSUME:
        assert not denied(policy, ONCALL, action, arn)
        for principal in [role(f"{provider}-processor"), role("webhook-validator"), STRANGER]:
            assert denied(policy, principal, action, arn), (principal, action)


def test_eventbridge_and_the_event_processor_fill_the_events_dlq_and_nobody_else(
    resource_policies,
) -> None:
    arn = queue_arn("payhook-prod-events-dlq")
    policy = resource_policies[arn]
    # EventBridge delivers a target's failed events as itself (the Allow names the rules).
    assert not denied(policy, None, "sqs:SendMessage", arn)
    (allow,) = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert not denied(policy, role("event-processor"), "sqs:SendMessage", arn)
    for principal in [role("webhook-validator"), role("stripe-processor"), ONCALL, STRANGER]:
        assert denied(policy, principal, "sqs:SendMessage", arn), principal
    assert not denied(policy, ONCALL, "sqs:ReceiveMessage", arn)
    assert denied(policy, role("event-processor"), "sqs:ReceiveMessage", arn)


def test_only_the_provider_processors_put_events_on_the_bus(resource_policies) -> None:
    arn = f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/payment-events"
    policy = resource_policies[arn]
    for provider in PROVIDERS:
        assert not denied(policy, role(f"{provider}-processor"), "events:PutEvents", arn)
    for principal in [role("webhook-validator"), role("event-processor"), ONCALL, STRANGER]:
        assert denied(policy, principal, "events:PutEvents", arn), principal
    # An archive replay is EventBridge itself.
    assert not denied(policy, None, "events:PutEvents", arn)


def test_nobody_purges_a_queue_of_payments(resource_policies) -> None:
    for arn, policy in resource_policies.items():
        if ":sqs:" in arn:
            for principal in [ONCALL, STRANGER, role("stripe-processor")]:
                assert denied(policy, principal, "sqs:PurgeQueue", arn), (arn, principal)


def test_the_control_plane_stays_open_so_the_deployer_can_change_the_policy(
    resource_policies,
) -> None:
    for arn, policy in resource_policies.items():
        for action in ["sqs:SetQueueAttributes", "sqs:GetQueueAttributes", "events:PutPermission"]:
            assert not denied(policy, STRANGER, action, arn), (arn, action)


def test_every_deny_leaves_aws_services_acting_as_themselves_alone(resource_policies) -> None:
    for policy in resource_policies.values():
        for statement in policy["Statement"]:
            if statement["Effect"] == "Deny":
                assert statement["Condition"]["BoolIfExists"] == {
                    "aws:PrincipalIsAWSService": "false"
                }


def test_without_redrive_principals_nobody_reads_a_dlq_and_the_deploy_warns(monkeypatch) -> None:
    warnings: list[str] = []
    monkeypatch.setattr(settings.pulumi.log, "warn", lambda message, *a, **k: warnings.append(message))
    bare = run_program(redrivePrincipalArns="[]")
    assert any("redrivePrincipalArns" in w for w in warnings)
    arn = queue_arn("payhook-prod-stripe-dlq.fifo")
    policy = _policy_of(bare, "payhook-prod-stripe-dlq.fifo")
    assert denied(policy, ONCALL, "sqs:ReceiveMessage", arn)
    queue = queue_arn("payhook-prod-stripe.fifo")
    assert denied(_policy_of(bare, "payhook-prod-stripe.fifo"), ONCALL, "sqs:SendMessage", queue)


@pytest.mark.parametrize(
    "arn",
    [
        f"arn:aws:sts::{ACCOUNT}:assumed-role/oncall/alice",
        "oncall",
        f"arn:aws:sqs:us-east-1:{ACCOUNT}:queue",
    ],
)
def test_a_redrive_principal_that_is_no_iam_principal_arn_is_refused(arn) -> None:
    with config(redrivePrincipalArns=json.dumps([arn])), pytest.raises(ConfigError, match="redrivePrincipalArns"):
        settings.load()


def test_an_sso_role_can_be_named_with_a_wildcard(resource_policies) -> None:
    sso = f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_OnCall_*"
    with config(redrivePrincipalArns=json.dumps([sso])):
        assert settings.load().redrive_principal_arns == (sso,)
