"""IAM policy documents, one per function, as plain data.

Each builder takes resolved ARNs and returns the document, so the tests can assert the exact
actions and resources. Rules: only the actions the function calls, only on the ARNs it
touches; no wildcard action; the one wildcard resource is X-Ray's, which has no resource
types to scope to.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

VERSION = "2012-10-17"

LAMBDA_ASSUME_ROLE: dict[str, Any] = {
    "Version": VERSION,
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}

APIGATEWAY_ASSUME_ROLE: dict[str, Any] = {
    "Version": VERSION,
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "apigateway.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def statement(
    sid: str,
    actions: Sequence[str],
    resources: Sequence[str],
    condition: Optional[dict[str, Any]] = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Sid": sid,
        "Effect": "Allow",
        "Action": sorted(actions),
        "Resource": list(resources),
    }
    if condition:
        out["Condition"] = condition
    return out


def _document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": VERSION, "Statement": list(statements)}


def own_logs(log_group_arn: str) -> dict[str, Any]:
    """Write to the function's own log group (the log streams under it)."""
    return statement(
        "WriteOwnLogs",
        ["logs:CreateLogStream", "logs:PutLogEvents"],
        [f"{log_group_arn}:*"],
    )


def xray() -> dict[str, Any]:
    # PutTraceSegments and PutTelemetryRecords have no resource-level permissions.
    return statement("WriteTraces", ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], ["*"])


def validator(
    *,
    queue_arns: Sequence[str],
    table_arn: str,
    ssm_path_arn: str,
    kms_key_arns: str,
    region: str,
    log_group_arn: str,
    quarantine_objects_arn: str,
) -> dict[str, Any]:
    """webhook-validator: enqueue, idempotency record, read the provider secrets, keep a
    quarantined body too large for its item (write only, under the quarantine prefix)."""
    return _document(
        statement("SendToProviderQueues", ["sqs:SendMessage"], list(queue_arns)),
        statement("KeepQuarantinedBodies", ["s3:PutObject"], [quarantine_objects_arn]),
        statement(
            "IdempotencyRecords",
            ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
            [table_arn],
        ),
        # The secret store reads its parameters by name (GetParameters), each under the path.
        statement("ReadProviderSecrets", ["ssm:GetParameters"], [f"{ssm_path_arn}/*"]),
        statement(
            "DecryptProviderSecrets",
            ["kms:Decrypt"],
            [kms_key_arns],
            {
                # Only when SSM decrypts one of this stage's parameters (the aws/ssm key).
                "StringEquals": {"kms:ViaService": f"ssm.{region}.amazonaws.com"},
                "StringLike": {"kms:EncryptionContext:PARAMETER_ARN": f"{ssm_path_arn}/*"},
            },
        ),
        own_logs(log_group_arn),
        xray(),
    )


def processor(
    *, provider: str, queue_arn: str, table_arn: str, event_bus_arn: str, log_group_arn: str
) -> dict[str, Any]:
    """A provider processor: consume its own queue, claim and mark, publish to the bus, only
    events of its own source (`payhook.<provider>`, what the processor sets): no other role can
    put a "verified" event of this provider on the bus, nor this one of another's."""
    return _document(
        statement(
            "ConsumeOwnQueue",
            [
                "sqs:ChangeMessageVisibility",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:ReceiveMessage",
            ],
            [queue_arn],
        ),
        # PutItem: a message whose item has expired (a late redrive) is recorded again.
        statement(
            "ProcessingStatus",
            ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
            [table_arn],
        ),
        statement(
            "PublishPaymentEvents",
            ["events:PutEvents"],
            [event_bus_arn],
            {"StringEquals": {"events:source": f"payhook.{provider}"}},
        ),
        own_logs(log_group_arn),
        xray(),
    )


def event_processor(
    *, table_arn: str, failure_queue_arn: str, log_group_arn: str
) -> dict[str, Any]:
    """event-processor: mark PROCESSED; Lambda sends exhausted async events to the DLQ."""
    return _document(
        # Conditional updates only: an event for a webhook with no item is retried, not created.
        statement("ProcessingStatus", ["dynamodb:GetItem", "dynamodb:UpdateItem"], [table_arn]),
        # Used by Lambda itself (on-failure destination of the asynchronous invocation),
        # with the function's role, when EventBridge's delivery succeeded but every
        # attempt of the function failed.
        statement("AsyncFailureDestination", ["sqs:SendMessage"], [failure_queue_arn]),
        own_logs(log_group_arn),
        xray(),
    )


def sweeper(
    *, table_arn: str, open_status_index_arn: str, queue_arns: Sequence[str], log_group_arn: str
) -> dict[str, Any]:
    """sweeper: list open items by state through the sparse index, read each item and its
    payment record, move a stuck one (conditional updates only), enqueue it again."""
    return _document(
        statement("ListOpenItems", ["dynamodb:Query"], [open_status_index_arn]),
        statement("RepairStatus", ["dynamodb:GetItem", "dynamodb:UpdateItem"], [table_arn]),
        statement("SendToProviderQueues", ["sqs:SendMessage"], list(queue_arns)),
        own_logs(log_group_arn),
        xray(),
    )


def authorizer(*, log_group_arn: str) -> dict[str, Any]:
    """api-key-authorizer: it calls no AWS API, so only its logs and its traces."""
    return _document(own_logs(log_group_arn), xray())


# Resource policies. Within the account, a role's identity policy is what grants it access;
# these only narrow: each statement denies a data-plane action to every principal outside the
# pipeline roles that need it. `aws:PrincipalArn` of a role's session is the role's ARN.
# `BoolIfExists aws:PrincipalIsAWSService false` leaves AWS services calling as themselves (the
# EventBridge target DLQ, an archive replay) out of the Deny: a service principal has no
# `aws:PrincipalArn`, and a negated condition on a missing key is true. The control plane
# (Get/SetQueueAttributes, PutPermission) is not denied, so whoever deploys can always change
# the policy again.

#: What moves a message along a queue (SendMessageBatch and DeleteMessageBatch are authorised as
#: SendMessage and DeleteMessage).
SQS_SEND = ("sqs:SendMessage",)
SQS_CONSUME = ("sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:ReceiveMessage")
#: Nothing in the pipeline empties a queue of payments; nobody may.
SQS_PURGE = ("sqs:PurgeQueue",)


def deny_unless(
    sid: str, actions: Sequence[str], resource: str, principal_arns: Sequence[str]
) -> dict[str, Any]:
    """Deny `actions` on `resource` to every principal but `principal_arns` (IAM role or user
    ARNs, `*` wildcards allowed) and AWS services acting as themselves. With no principal the
    action is denied to every principal of every account."""
    condition: dict[str, Any] = {"BoolIfExists": {"aws:PrincipalIsAWSService": "false"}}
    if principal_arns:
        condition["ArnNotLike"] = {"aws:PrincipalArn": sorted(set(principal_arns))}
    return {
        "Sid": sid,
        "Effect": "Deny",
        "Principal": "*",
        "Action": sorted(actions) if len(actions) > 1 else actions[0],
        "Resource": resource,
        "Condition": condition,
    }


def provider_queue_policy(
    *,
    queue_arn: str,
    validator_role_arn: str,
    processor_role_arn: str,
    redrive_arns: Sequence[str],
    sweeper_role_arn: Optional[str] = None,
) -> dict[str, Any]:
    """A provider queue: only the validator (the sweeper, sending a stuck webhook's kept
    message again, and a redrive, moving dead letters back) puts messages on it, only that
    provider's processor (Lambda polls with the processor's role) takes them off."""
    senders = [validator_role_arn, *([sweeper_role_arn] if sweeper_role_arn else []), *redrive_arns]
    return {
        "Version": VERSION,
        "Statement": [
            deny_unless("OnlyValidatorAndRedriveSend", SQS_SEND, queue_arn, senders),
            deny_unless("OnlyProcessorConsumes", SQS_CONSUME, queue_arn, [processor_role_arn]),
            deny_unless("NobodyPurges", SQS_PURGE, queue_arn, []),
        ],
    }


def provider_dlq_policy(
    *, dlq_arn: str, processor_role_arn: str, redrive_arns: Sequence[str]
) -> dict[str, Any]:
    """A provider's DLQ: SQS moves dead letters in itself (after `maxReceiveCount` receives by
    the processor, whose role stays admitted in case that move is ever evaluated as the
    consumer's); no principal sends to it, so nothing can be slipped in to be redriven as
    verified. Only the redrive principals read and delete (`payhook dlq list|redrive`, SQS's
    StartMessageMoveTask)."""
    return {
        "Version": VERSION,
        "Statement": [
            deny_unless("NobodySends", SQS_SEND, dlq_arn, [processor_role_arn]),
            deny_unless("OnlyRedriveReads", SQS_CONSUME, dlq_arn, list(redrive_arns)),
            deny_unless("NobodyPurges", SQS_PURGE, dlq_arn, []),
        ],
    }


def events_dlq_queue_policy(
    queue_arn: str,
    rule_arns: Sequence[str],
    *,
    event_processor_role_arn: str,
    redrive_arns: Sequence[str] = (),
) -> dict[str, Any]:
    """The events DLQ: EventBridge delivers failed events of this stack's rules (and only
    those); Lambda sends the event processor's exhausted asynchronous invocations with the
    function's role; only the redrive principals read."""
    statements: list[dict[str, Any]] = []
    if rule_arns:
        statements.append(
            {
                "Sid": "EventBridgeTargetDeadLetters",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": sorted(rule_arns)}},
            }
        )
    statements += [
        deny_unless("OnlyEventProcessorSends", SQS_SEND, queue_arn, [event_processor_role_arn]),
        deny_unless("OnlyRedriveReads", SQS_CONSUME, queue_arn, list(redrive_arns)),
        deny_unless("NobodyPurges", SQS_PURGE, queue_arn, []),
    ]
    return {"Version": VERSION, "Statement": statements}


def event_bus_policy(*, event_bus_arn: str, publisher_role_arns: Sequence[str]) -> dict[str, Any]:
    """`payment-events`: only the provider processors put events on it (each only its own
    source, by its identity policy), so no other principal can publish a "verified" payment.
    EventBridge itself (an archive replay) is a service and not denied."""
    return {
        "Version": VERSION,
        "Statement": [
            deny_unless(
                "OnlyProcessorsPublish", ["events:PutEvents"], event_bus_arn, publisher_role_arns
            )
        ],
    }
