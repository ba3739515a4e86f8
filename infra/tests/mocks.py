"""Pulumi mocks that answer like AWS would (ARNs, URLs, ids) and record every resource."""

from __future__ import annotations

import dataclasses
from typing import Any

import pulumi

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
REST_API_ID = "a1b2c3d4e5"


def api_key_id(logical: str) -> str:
    """The id the mocks give the API key registered as `logical` (`stripe-api-key`)."""
    return f"{logical}-id"


def api_key_value(logical: str) -> str:
    """The value API Gateway would generate for that key."""
    return f"phk-{logical}-value"


@dataclasses.dataclass
class Registered:
    """One resource the program registered: type token, logical name, inputs, outputs."""

    typ: str
    name: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]


def _arn(service: str, resource: str, region: str = REGION) -> str:
    return f"arn:aws:{service}:{region}:{ACCOUNT_ID}:{resource}"


class PayhookMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[Registered] = []
        self.calls: list[str] = []

    def call(self, args: pulumi.runtime.MockCallArgs):
        self.calls.append(args.token)
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/deployer",
                "userId": "AIDAEXAMPLE",
                "id": ACCOUNT_ID,
            }
        raise NotImplementedError(f"the program made an unexpected invoke: {args.token}")

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        inputs = dict(args.inputs)
        outputs = dict(inputs)
        name = inputs.get("name") or args.name
        resource_id = f"{args.name}-id"
        typ = args.typ
        if typ == "aws:sqs/queue:Queue":
            url = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/{name}"
            outputs.update(arn=_arn("sqs", name), url=url)
            resource_id = url
        elif typ == "aws:lambda/function:Function":
            arn = _arn("lambda", f"function:{name}")
            outputs.update(
                arn=arn,
                invokeArn=f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{arn}/invocations",
                qualifiedArn=f"{arn}:$LATEST",
            )
            resource_id = name
        elif typ == "aws:cloudwatch/logGroup:LogGroup":
            outputs["arn"] = _arn("logs", f"log-group:{name}")
            resource_id = name
        elif typ == "aws:iam/role:Role":
            outputs["arn"] = f"arn:aws:iam::{ACCOUNT_ID}:role/{name}"
            resource_id = name
        elif typ == "aws:s3/bucket:Bucket":
            bucket = f"{inputs.get('bucketPrefix', args.name)}20260101abcdef"
            outputs.update(bucket=bucket, arn=f"arn:aws:s3:::{bucket}")
            resource_id = bucket
        elif typ == "aws:dynamodb/table:Table":
            outputs["arn"] = _arn("dynamodb", f"table/{name}")
            resource_id = name
        elif typ == "aws:cloudwatch/eventBus:EventBus":
            outputs["arn"] = _arn("events", f"event-bus/{name}")
            resource_id = name
        elif typ == "aws:cloudwatch/eventRule:EventRule":
            outputs["arn"] = _arn("events", f"rule/{inputs.get('eventBusName')}/{name}")
            resource_id = f"{inputs.get('eventBusName')}|{name}"
        elif typ == "aws:cloudwatch/eventArchive:EventArchive":
            outputs["arn"] = _arn("events", f"archive/{name}")
        elif typ == "aws:apigateway/restApi:RestApi":
            resource_id = REST_API_ID
            outputs.update(
                rootResourceId="r00t1d",
                executionArn=_arn("execute-api", REST_API_ID),
                arn=f"arn:aws:apigateway:{REGION}::/restapis/{REST_API_ID}",
            )
        elif typ == "aws:apigateway/apiKey:ApiKey":
            resource_id = api_key_id(args.name)
            outputs["value"] = api_key_value(args.name)
        elif typ == "aws:kms/key:Key":
            resource_id = f"{args.name}-key-id"
            outputs.update(arn=_arn("kms", f"key/{resource_id}"), keyId=resource_id)
        elif typ == "aws:sns/topic:Topic":
            outputs["arn"] = _arn("sns", name)
            resource_id = outputs["arn"]
        elif typ == "aws:cloudwatch/metricAlarm:MetricAlarm":
            outputs["arn"] = _arn("cloudwatch", f"alarm:{name}")
            resource_id = name
        elif typ == "aws:ssm/parameter:Parameter":
            outputs["arn"] = _arn("ssm", f"parameter{name}")
            resource_id = name
        elif typ == "aws:cloudwatch/dashboard:Dashboard":
            outputs["dashboardArn"] = f"arn:aws:cloudwatch::{ACCOUNT_ID}:dashboard/{inputs.get('dashboardName')}"
        self.resources.append(Registered(typ, args.name, inputs, outputs))
        return resource_id, outputs
