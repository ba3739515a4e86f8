"""API Gateway (REST): `POST /webhooks/{provider}` → webhook-validator, with an API key,
a usage plan (daily quota, rate and burst), X-Ray tracing and JSON access logs."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Optional

import pulumi
import pulumi_aws as aws

from . import policies
from .functions import AccountContext, DeployedFunction
from .settings import LOG_RETENTION_DAYS, Settings

#: One JSON object per request. `$context.error.messageString` is already quoted.
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "extendedRequestId": "$context.extendedRequestId",
        "requestTime": "$context.requestTime",
        "ip": "$context.identity.sourceIp",
        "userAgent": "$context.identity.userAgent",
        "apiKeyId": "$context.identity.apiKeyId",
        "httpMethod": "$context.httpMethod",
        "resourcePath": "$context.resourcePath",
        "path": "$context.path",
        "protocol": "$context.protocol",
        "status": "$context.status",
        "responseLength": "$context.responseLength",
        "responseLatency": "$context.responseLatency",
        "integrationStatus": "$context.integration.status",
        "integrationLatency": "$context.integration.latency",
        "integrationError": "$context.integration.error",
        "errorType": "$context.error.responseType",
        "errorMessage": "@@ERROR_MESSAGE@@",
        "xrayTraceId": "$context.xrayTraceId",
    },
    separators=(",", ":"),
).replace('"@@ERROR_MESSAGE@@"', "$context.error.messageString")

APIGATEWAY_LOGS_POLICY = "iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"


@dataclasses.dataclass(frozen=True)
class Api:
    rest_api: aws.apigateway.RestApi
    stage: aws.apigateway.Stage
    api_key: aws.apigateway.ApiKey
    usage_plan: aws.apigateway.UsagePlan
    access_log_group: aws.cloudwatch.LogGroup
    #: `https://{id}.execute-api.{region}.amazonaws.com/{stage}/webhooks/{provider}`
    endpoint: pulumi.Output[str]

    def provider_endpoint(self, provider: str) -> pulumi.Output[str]:
        return self.endpoint.apply(lambda url: url.replace("{provider}", provider))


def endpoint_url(rest_api_id: pulumi.Input[str], region: str, stage: str) -> pulumi.Output[str]:
    return pulumi.Output.concat(
        "https://", rest_api_id, f".execute-api.{region}.amazonaws.com/{stage}/webhooks/{{provider}}"
    )


def _cloudwatch_account_role(settings: Settings, account: AccountContext) -> aws.apigateway.Account:
    # API Gateway writes access logs with one role per account and region. AWS's managed
    # policy is the documented one; it is shared by every API in the account, so it cannot
    # be scoped to this stack's log group. Set manageApiGatewayAccount=false when the
    # account already has the role configured.
    role = aws.iam.Role(
        "apigateway-cloudwatch-role",
        name=f"{settings.prefix}-apigateway-cloudwatch",
        assume_role_policy=json.dumps(policies.APIGATEWAY_ASSUME_ROLE),
        tags=settings.tags,
    )
    attachment = aws.iam.RolePolicyAttachment(
        "apigateway-cloudwatch-logs",
        role=role.name,
        policy_arn=account.partition.apply(lambda p: f"arn:{p}:{APIGATEWAY_LOGS_POLICY}"),
    )
    return aws.apigateway.Account(
        "apigateway-account",
        cloudwatch_role_arn=role.arn,
        opts=pulumi.ResourceOptions(depends_on=[attachment]),
    )


def create(settings: Settings, account: AccountContext, validator: DeployedFunction) -> Api:
    account_settings: Optional[aws.apigateway.Account] = None
    if settings.manage_apigateway_account:
        account_settings = _cloudwatch_account_role(settings, account)

    rest_api = aws.apigateway.RestApi(
        "webhooks-api",
        name=settings.api_name,
        description="payhook: payment provider webhooks",
        endpoint_configuration={"types": "REGIONAL"},
        api_key_source="HEADER",
        tags=settings.tags,
    )
    webhooks = aws.apigateway.Resource(
        "webhooks-resource",
        rest_api=rest_api.id,
        parent_id=rest_api.root_resource_id,
        path_part="webhooks",
    )
    provider = aws.apigateway.Resource(
        "provider-resource",
        rest_api=rest_api.id,
        parent_id=webhooks.id,
        path_part="{provider}",
    )
    method = aws.apigateway.Method(
        "webhook-post",
        rest_api=rest_api.id,
        resource_id=provider.id,
        http_method="POST",
        authorization="NONE",
        api_key_required=settings.api_key_required,
        request_parameters={"method.request.path.provider": True},
    )
    integration = aws.apigateway.Integration(
        "webhook-post-validator",
        rest_api=rest_api.id,
        resource_id=provider.id,
        http_method=method.http_method,
        type="AWS_PROXY",
        integration_http_method="POST",
        uri=validator.function.invoke_arn,
    )
    aws.lambda_.Permission(
        "validator-invoke-from-api",
        action="lambda:InvokeFunction",
        function=validator.function.name,
        principal="apigateway.amazonaws.com",
        source_arn=rest_api.execution_arn.apply(
            lambda arn: f"{arn}/{settings.stage}/POST/webhooks/*"
        ),
    )
    deployment = aws.apigateway.Deployment(
        "webhooks-deployment",
        rest_api=rest_api.id,
        description="payhook webhooks",
        # A new deployment whenever the route or its integration changes.
        triggers={
            "redeployment": pulumi.Output.all(
                webhooks.id,
                provider.id,
                method.id,
                method.api_key_required,
                integration.id,
                integration.uri,
            ).apply(lambda parts: hashlib.sha256(json.dumps(parts).encode()).hexdigest())
        },
        opts=pulumi.ResourceOptions(depends_on=[method, integration]),
    )
    access_log_group = aws.cloudwatch.LogGroup(
        "api-access-logs",
        name=settings.api_access_log_group_name,
        retention_in_days=LOG_RETENTION_DAYS,
        tags=settings.tags,
    )
    stage = aws.apigateway.Stage(
        "webhooks-stage",
        rest_api=rest_api.id,
        deployment=deployment.id,
        stage_name=settings.stage,
        xray_tracing_enabled=True,
        access_log_settings={
            "destination_arn": access_log_group.arn,
            "format": ACCESS_LOG_FORMAT,
        },
        tags=settings.tags,
        opts=pulumi.ResourceOptions(
            depends_on=[account_settings] if account_settings is not None else []
        ),
    )
    aws.apigateway.MethodSettings(
        "webhooks-stage-settings",
        rest_api=rest_api.id,
        stage_name=stage.stage_name,
        method_path="*/*",
        settings={
            "logging_level": "ERROR",
            "data_trace_enabled": False,
            "metrics_enabled": False,
            # Stage-wide limits too, so they hold even when apiKeyRequired is false.
            "throttling_rate_limit": settings.api_rate_limit,
            "throttling_burst_limit": settings.api_burst_limit,
        },
    )
    api_key = aws.apigateway.ApiKey(
        "webhooks-api-key",
        name=f"{settings.prefix}-webhooks",
        description="payhook webhook senders",
        enabled=True,
        tags=settings.tags,
    )
    usage_plan = aws.apigateway.UsagePlan(
        "webhooks-usage-plan",
        name=f"{settings.prefix}-webhooks",
        description="payhook: daily quota and throttling for webhook senders",
        api_stages=[{"api_id": rest_api.id, "stage": stage.stage_name}],
        quota_settings={"limit": settings.api_quota_per_day, "period": "DAY"},
        throttle_settings={
            "rate_limit": settings.api_rate_limit,
            "burst_limit": settings.api_burst_limit,
        },
        tags=settings.tags,
    )
    aws.apigateway.UsagePlanKey(
        "webhooks-usage-plan-key",
        key_id=api_key.id,
        key_type="API_KEY",
        usage_plan_id=usage_plan.id,
    )
    return Api(
        rest_api=rest_api,
        stage=stage,
        api_key=api_key,
        usage_plan=usage_plan,
        access_log_group=access_log_group,
        endpoint=endpoint_url(rest_api.id, settings.region, settings.stage),
    )
