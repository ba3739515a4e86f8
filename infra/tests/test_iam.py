"""Least privilege: one role per function, exactly the actions it calls on the ARNs it
touches, no wildcard action, and `*` as a resource only for X-Ray. The DynamoDB actions are
those the function's handler calls, read from the Rust source (`rust_source.py`)."""

from __future__ import annotations

import json

import pytest

from conftest import as_list, policy_statements
from rust_source import (
    dynamodb_actions_needed_by,
    event_source_prefix,
    ssm_actions_called_by_the_secret_store,
)

ACCOUNT = "123456789012"
TABLE = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/webhook-processing"
BUS = f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/payment-events"
SSM_PATH = f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/payhook/prod"
FUNCTIONS = [
    "webhook-validator",
    "stripe-processor",
    "paypal-processor",
    "square-processor",
    "event-processor",
    "sweeper",
]
QUARANTINE_OBJECTS = "arn:aws:s3:::payhook-prod-quarantine-20260101abcdef/quarantine/*"


def _queue(name: str) -> str:
    return f"arn:aws:sqs:us-east-1:{ACCOUNT}:{name}"


def _logs(logical: str) -> str:
    return f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/payhook-prod-{logical}:*"


XRAY = {
    "Sid": "WriteTraces",
    "Effect": "Allow",
    "Action": ["xray:PutTelemetryRecords", "xray:PutTraceSegments"],
    "Resource": ["*"],
}


def _logs_statement(logical: str) -> dict:
    return {
        "Sid": "WriteOwnLogs",
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": [_logs(logical)],
    }


def _policy(deployment, logical: str) -> list[dict]:
    policy = deployment.one("aws:iam/rolePolicy:RolePolicy", f"{logical}-policy")
    assert policy.inputs["role"] == f"payhook-prod-{logical}-role"
    return policy_statements(policy.inputs["policy"])


@pytest.mark.parametrize("logical", FUNCTIONS)
def test_each_function_runs_as_its_own_lambda_role(deployment, logical) -> None:
    role = deployment.one("aws:iam/role:Role", f"{logical}-role")
    function = deployment.one("aws:lambda/function:Function", logical)
    assert function.inputs["role"] == role.outputs["arn"]
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust == [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ]
    assert not deployment.where(
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        lambda r: r.inputs["role"] == role.inputs["name"],
    ), "function roles carry only their inline least-privilege policy"


def test_validator_policy(deployment) -> None:
    assert _policy(deployment, "webhook-validator") == [
        {
            "Sid": "SendToProviderQueues",
            "Effect": "Allow",
            "Action": ["sqs:SendMessage"],
            "Resource": [_queue(f"payhook-prod-{p}.fifo") for p in ("stripe", "paypal", "square")],
        },
        {
            "Sid": "KeepQuarantinedBodies",
            "Effect": "Allow",
            "Action": ["s3:PutObject"],
            "Resource": [QUARANTINE_OBJECTS],
        },
        {
            "Sid": "IdempotencyRecords",
            "Effect": "Allow",
            "Action": sorted(dynamodb_actions_needed_by("webhook-validator")),
            "Resource": [TABLE],
        },
        {
            "Sid": "ReadProviderSecrets",
            "Effect": "Allow",
            "Action": sorted(ssm_actions_called_by_the_secret_store()),
            "Resource": [f"{SSM_PATH}/*"],
        },
        {
            "Sid": "DecryptProviderSecrets",
            "Effect": "Allow",
            "Action": ["kms:Decrypt"],
            "Resource": [f"arn:aws:kms:us-east-1:{ACCOUNT}:key/*"],
            "Condition": {
                "StringEquals": {"kms:ViaService": "ssm.us-east-1.amazonaws.com"},
                "StringLike": {"kms:EncryptionContext:PARAMETER_ARN": f"{SSM_PATH}/*"},
            },
        },
        _logs_statement("webhook-validator"),
        XRAY,
    ]


@pytest.mark.parametrize("provider", ["stripe", "paypal", "square"])
def test_processor_policy_touches_only_its_own_queue(deployment, provider) -> None:
    assert _policy(deployment, f"{provider}-processor") == [
        {
            "Sid": "ConsumeOwnQueue",
            "Effect": "Allow",
            "Action": [
                "sqs:ChangeMessageVisibility",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:ReceiveMessage",
            ],
            "Resource": [_queue(f"payhook-prod-{provider}.fifo")],
        },
        {
            "Sid": "ProcessingStatus",
            "Effect": "Allow",
            "Action": sorted(dynamodb_actions_needed_by("provider-processor")),
            "Resource": [TABLE],
        },
        {
            "Sid": "PublishPaymentEvents",
            "Effect": "Allow",
            "Action": ["events:PutEvents"],
            "Resource": [BUS],
            "Condition": {"StringEquals": {"events:source": f"{event_source_prefix()}{provider}"}},
        },
        _logs_statement(f"{provider}-processor"),
        XRAY,
    ]


def test_event_processor_policy(deployment) -> None:
    assert _policy(deployment, "event-processor") == [
        {
            "Sid": "ProcessingStatus",
            "Effect": "Allow",
            "Action": sorted(dynamodb_actions_needed_by("event-processor")),
            "Resource": [TABLE],
        },
        {
            "Sid": "AsyncFailureDestination",
            "Effect": "Allow",
            "Action": ["sqs:SendMessage"],
            "Resource": [_queue("payhook-prod-events-dlq")],
        },
        _logs_statement("event-processor"),
        XRAY,
    ]


def test_sweeper_policy_lists_through_the_index_and_sends_only_to_the_provider_queues(
    deployment,
) -> None:
    policy = _policy(deployment, "sweeper")
    assert policy == [
        {
            "Sid": "ListOpenItems",
            "Effect": "Allow",
            "Action": ["dynamodb:Query"],
            "Resource": [f"{TABLE}/index/open-status-updated-at"],
        },
        {
            "Sid": "RepairStatus",
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:UpdateItem"],
            "Resource": [TABLE],
        },
        {
            "Sid": "SendToProviderQueues",
            "Effect": "Allow",
            "Action": ["sqs:SendMessage"],
            "Resource": [_queue(f"payhook-prod-{p}.fifo") for p in ("stripe", "paypal", "square")],
        },
        _logs_statement("sweeper"),
        XRAY,
    ]
    # Exactly the DynamoDB calls its handler's ports make (read from the Rust source).
    granted = {a for s in policy[:2] for a in s["Action"]}
    assert granted == dynamodb_actions_needed_by("sweeper")


def test_authorizer_may_only_write_its_logs_and_traces(deployment) -> None:
    assert _policy(deployment, "api-key-authorizer") == [_logs_statement("api-key-authorizer"), XRAY]


def test_no_wildcard_action_and_star_resource_only_for_xray(deployment) -> None:
    policies = deployment.of_type("aws:iam/rolePolicy:RolePolicy")
    assert len(policies) == 7
    for policy in policies:
        for statement in policy_statements(policy.inputs["policy"]):
            assert statement["Effect"] == "Allow"
            assert "NotAction" not in statement and "NotResource" not in statement
            for action in as_list(statement["Action"]):
                assert "*" not in action, f"{policy.name}: wildcard action {action}"
            if "*" in as_list(statement["Resource"]):
                assert all(a.startswith("xray:") for a in as_list(statement["Action"])), policy.name


def test_only_the_validator_can_read_or_decrypt_provider_secrets(deployment) -> None:
    for policy in deployment.of_type("aws:iam/rolePolicy:RolePolicy"):
        actions = [a for s in policy_statements(policy.inputs["policy"]) for a in as_list(s["Action"])]
        touches_secrets = any(a.startswith(("ssm:", "kms:")) for a in actions)
        assert touches_secrets == (policy.name == "webhook-validator-policy"), policy.name

