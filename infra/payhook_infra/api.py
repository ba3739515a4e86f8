"""API Gateway (REST): `POST /webhooks/{provider}` → webhook-validator, behind the
api-key-authorizer (key source `AUTHORIZER`: the key rides in the URL as `?key=`, where the
providers can put it), a usage plan with one key per provider (daily quota, rate and burst),
X-Ray tracing and JSON access logs.

The access log never records the query string (it holds the key): `$context.path` is the path
alone, and the key appears only as API Gateway's key id. Execution logging stays at `ERROR`
without data tracing, since `INFO` would log the request's query string.
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from typing import Optional

import pulumi
import pulumi_aws as aws

from . import policies
from .components import Component
from .functions import AccountContext, DeployedFunction
from .settings import (
    API_KEY_QUERY_PARAMETER,
    AUTHORIZER_CACHE_SECONDS,
    LOG_RETENTION_DAYS,
    PROVIDERS,
    Settings,
)

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

#: Metrics the access log's metric filters publish (API Gateway publishes none per key).
USAGE_NAMESPACE = "Payhook/Api"
#: Requests counted against a key's quota, by `ApiKeyId` (the dashboard's usage per key).
KEY_REQUESTS_METRIC = "ApiKeyRequests"
#: Requests refused because a key's daily quota is used up (the `api-quota-exceeded` alarm).
QUOTA_EXCEEDED_METRIC = "ApiQuotaExceeded"


#: The usage plan key's name when one key is shared by every provider.
SHARED_KEY = "shared"


def with_key(url: str, key: str) -> str:
    """`url` with `?key=<key>` (form-encoded), unless it already has a `key` parameter."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    if any(name == API_KEY_QUERY_PARAMETER for name, _ in query):
        return url
    query.append((API_KEY_QUERY_PARAMETER, key))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def endpoint_url(rest_api_id: pulumi.Input[str], region: str, stage: str) -> pulumi.Output[str]:
    return pulumi.Output.concat(
        "https://", rest_api_id, f".execute-api.{region}.amazonaws.com/{stage}/webhooks/{{provider}}"
    )


def _cloudwatch_account_role(
    owner: Component, settings: Settings, account: AccountContext
) -> aws.apigateway.Account:
    # API Gateway writes access logs with one role per account and region. AWS's managed
    # policy is the documented one; it is shared by every API in the account, so it cannot
    # be scoped to this stack's log group. Set manageApiGatewayAccount=false when the
    # account already has the role configured.
    role = aws.iam.Role(
        "apigateway-cloudwatch-role",
        name=f"{settings.prefix}-apigateway-cloudwatch",
        assume_role_policy=json.dumps(policies.APIGATEWAY_ASSUME_ROLE),
        opts=owner.child(),
    )
    attachment = aws.iam.RolePolicyAttachment(
        "apigateway-cloudwatch-logs",
        role=role.name,
        policy_arn=account.partition.apply(lambda p: f"arn:{p}:{APIGATEWAY_LOGS_POLICY}"),
        opts=owner.child(),
    )
    return aws.apigateway.Account(
        "apigateway-account",
        cloudwatch_role_arn=role.arn,
        opts=owner.child(depends_on=[attachment]),
    )


def _custom_domain(
    owner: Component, settings: Settings, rest_api: aws.apigateway.RestApi, stage: aws.apigateway.Stage
) -> Optional[aws.apigateway.DomainName]:
    """The optional custom domain: the URLs providers hold then survive re-creating the API."""
    if settings.custom_domain is None:
        return None
    domain = aws.apigateway.DomainName(
        "webhooks-domain",
        domain_name=settings.custom_domain,
        regional_certificate_arn=settings.custom_domain_certificate_arn,
        endpoint_configuration={"types": "REGIONAL"},
        security_policy="TLS_1_2",
        opts=owner.child(),
    )
    aws.apigateway.BasePathMapping(
        "webhooks-domain-mapping",
        rest_api=rest_api.id,
        stage_name=stage.stage_name,
        domain_name=domain.domain_name,
        opts=owner.child(),
    )
    return domain


def _usage_metric_filters(owner: Component, access_log_group: aws.cloudwatch.LogGroup) -> None:
    """Per-key usage and quota refusals from the access log (`apiKeyId`, `status`,
    `errorType` = `$context.error.responseType`), each request counted as 1."""
    filters = {
        # What the usage plan counts: requests with a valid key, neither refused nor throttled.
        "api-key-requests": (
            '{ ($.apiKeyId != "-") && ($.status != "429") && ($.status != "403") }',
            {"name": KEY_REQUESTS_METRIC, "dimensions": {"ApiKeyId": "$.apiKeyId"}},
        ),
        "api-quota-exceeded": (
            '{ $.errorType = "QUOTA_EXCEEDED" }',
            {"name": QUOTA_EXCEEDED_METRIC, "default_value": "0"},
        ),
    }
    for name, (pattern, metric) in filters.items():
        aws.cloudwatch.LogMetricFilter(
            name,
            log_group_name=access_log_group.name,
            pattern=pattern,
            metric_transformation={
                "namespace": USAGE_NAMESPACE,
                "value": "1",
                "unit": "Count",
                **metric,
            },
            opts=owner.child(),
        )


def _authorizer(
    owner: Component,
    settings: Settings, rest_api: aws.apigateway.RestApi, authorizer: DeployedFunction
) -> aws.apigateway.Authorizer:
    """The REQUEST authorizer. With identity source `query` its answers are cached per
    `?key=` value; with `either` there is no identity source, so no cache."""
    cached = settings.api_key_identity_source == "query"
    wired = aws.apigateway.Authorizer(
        "api-key-authorizer",
        name=f"{settings.prefix}-api-key",
        rest_api=rest_api.id,
        type="REQUEST",
        authorizer_uri=authorizer.function.invoke_arn,
        identity_source=f"method.request.querystring.{API_KEY_QUERY_PARAMETER}" if cached else "",
        authorizer_result_ttl_in_seconds=AUTHORIZER_CACHE_SECONDS if cached else 0,
        opts=owner.child(),
    )
    aws.lambda_.Permission(
        "authorizer-invoke-from-api",
        action="lambda:InvokeFunction",
        function=authorizer.function.name,
        principal="apigateway.amazonaws.com",
        source_arn=pulumi.Output.concat(rest_api.execution_arn, "/authorizers/", wired.id),
        opts=owner.child(),
    )
    return wired


def _api_keys(owner: Component, settings: Settings) -> dict[str, aws.apigateway.ApiKey]:
    """One key per provider (so a flood on one cannot use up another's quota, and usage shows
    per provider), or one shared key. API Gateway generates the values."""
    if not settings.api_key_per_provider:
        shared = aws.apigateway.ApiKey(
            "webhooks-api-key",
            name=f"{settings.prefix}-webhooks",
            description="payhook webhook senders (one key shared by every provider)",
            enabled=True,
            opts=owner.child(),
        )
        return {p: shared for p in PROVIDERS}
    return {
        p: aws.apigateway.ApiKey(
            f"{p}-api-key",
            name=f"{settings.prefix}-{p}",
            description=f"payhook: {p}'s webhook deliveries (?key= in the registered URL)",
            enabled=True,
            opts=owner.child(),
        )
        for p in PROVIDERS
    }


class Api(Component):
    """The REST API, its authorizer, keys, usage plan, stage, log groups and optional custom
    domain."""

    TYPE = "payhook:api:Api"

    #: Each provider's key; with `apiKeyPerProvider=false` the same shared key for all.
    api_keys: dict[str, aws.apigateway.ApiKey]
    #: `https://{id}.execute-api.{region}.amazonaws.com/{stage}/webhooks/{provider}`, or
    #: `https://{customDomain}/webhooks/{provider}` with a custom domain.
    endpoint: pulumi.Output[str]
    #: The custom domain, when one is configured (point DNS at its `regional_domain_name`).
    custom_domain: Optional[aws.apigateway.DomainName]

    def __init__(
        self,
        settings: Settings,
        account: AccountContext,
        validator: DeployedFunction,
        authorizer: DeployedFunction,
    ) -> None:
        super().__init__("api", settings)
        account_settings: Optional[aws.apigateway.Account] = None
        if settings.manage_apigateway_account:
            account_settings = _cloudwatch_account_role(self, settings, account)
        self.rest_api = aws.apigateway.RestApi(
            "webhooks-api",
            name=settings.api_name,
            description="payhook: payment provider webhooks",
            endpoint_configuration={"types": "REGIONAL"},
            # The authorizer says which key a request carries (`usageIdentifierKey`).
            api_key_source="AUTHORIZER",
            opts=self.child(),
        )
        deployment = self._route(validator, authorizer)
        self.access_log_group = aws.cloudwatch.LogGroup(
            "api-access-logs",
            name=settings.api_access_log_group_name,
            retention_in_days=LOG_RETENTION_DAYS,
            opts=self.child(),
        )
        _usage_metric_filters(self, self.access_log_group)
        self.stage = self._stage(deployment, account_settings)
        self.api_keys = _api_keys(self, settings)
        self.usage_plan = self._usage_plan()
        self.endpoint = endpoint_url(self.rest_api.id, settings.region, settings.stage)
        self.custom_domain = _custom_domain(self, settings, self.rest_api, self.stage)
        if self.custom_domain is not None:
            self.endpoint = pulumi.Output.from_input(
                f"https://{settings.custom_domain}/webhooks/{{provider}}"
            )
        self.register_outputs({"rest_api_id": self.rest_api.id, "endpoint": self.endpoint})

    def provider_endpoint(self, provider: str) -> pulumi.Output[str]:
        return self.endpoint.apply(lambda url: url.replace("{provider}", provider))

    def key_ids(self) -> dict[str, pulumi.Output[str]]:
        """The key ids by provider, or `{"shared": id}` when one key is shared."""
        distinct = {id(k) for k in self.api_keys.values()}
        if len(distinct) == 1 and len(self.api_keys) > 1:
            return {SHARED_KEY: next(iter(self.api_keys.values())).id}
        return {p: k.id for p, k in self.api_keys.items()}

    def registered_url(self, provider: str) -> pulumi.Output[str]:
        """The URL to give `provider`: its endpoint with its key as `?key=` (a secret)."""
        return pulumi.Output.secret(
            pulumi.Output.all(self.provider_endpoint(provider), self.api_keys[provider].value).apply(
                lambda parts: with_key(parts[0], parts[1])
            )
        )

    def _route(
        self, validator: DeployedFunction, authorizer: DeployedFunction
    ) -> aws.apigateway.Deployment:
        """`POST /webhooks/{provider}` → the validator, behind the authorizer; its deployment."""
        settings, rest_api = self.settings, self.rest_api
        webhooks = aws.apigateway.Resource(
            "webhooks-resource",
            rest_api=rest_api.id,
            parent_id=rest_api.root_resource_id,
            path_part="webhooks",
            opts=self.child(),
        )
        provider = aws.apigateway.Resource(
            "provider-resource",
            rest_api=rest_api.id,
            parent_id=webhooks.id,
            path_part="{provider}",
            opts=self.child(),
        )
        key_authorizer = (
            _authorizer(self, settings, rest_api, authorizer) if settings.api_key_required else None
        )
        method = aws.apigateway.Method(
            "webhook-post",
            rest_api=rest_api.id,
            resource_id=provider.id,
            http_method="POST",
            authorization="CUSTOM" if key_authorizer else "NONE",
            authorizer_id=key_authorizer.id if key_authorizer else None,
            api_key_required=settings.api_key_required,
            request_parameters={"method.request.path.provider": True},
            opts=self.child(),
        )
        integration = aws.apigateway.Integration(
            "webhook-post-validator",
            rest_api=rest_api.id,
            resource_id=provider.id,
            http_method=method.http_method,
            type="AWS_PROXY",
            integration_http_method="POST",
            uri=validator.function.invoke_arn,
            opts=self.child(),
        )
        aws.lambda_.Permission(
            "validator-invoke-from-api",
            action="lambda:InvokeFunction",
            function=validator.function.name,
            principal="apigateway.amazonaws.com",
            source_arn=rest_api.execution_arn.apply(
                lambda arn: f"{arn}/{settings.stage}/POST/webhooks/*"
            ),
            opts=self.child(),
        )
        return aws.apigateway.Deployment(
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
                    method.authorization,
                    key_authorizer.id if key_authorizer else "",
                    settings.api_key_identity_source,
                    integration.id,
                    integration.uri,
                ).apply(lambda parts: hashlib.sha256(json.dumps(parts).encode()).hexdigest())
            },
            opts=self.child(depends_on=[method, integration]),
        )

    def _stage(
        self,
        deployment: aws.apigateway.Deployment,
        account_settings: Optional[aws.apigateway.Account],
    ) -> aws.apigateway.Stage:
        """The stage (X-Ray, access logs), its execution log group and method settings."""
        settings, rest_api = self.settings, self.rest_api
        # API Gateway creates its execution log group on first use, kept forever; owning it
        # keeps it 7 days like every other log group.
        execution_log_group = aws.cloudwatch.LogGroup(
            "api-execution-logs",
            name=rest_api.id.apply(lambda i: f"API-Gateway-Execution-Logs_{i}/{settings.stage}"),
            retention_in_days=LOG_RETENTION_DAYS,
            opts=self.child(),
        )
        stage = aws.apigateway.Stage(
            "webhooks-stage",
            rest_api=rest_api.id,
            deployment=deployment.id,
            stage_name=settings.stage,
            xray_tracing_enabled=True,
            access_log_settings={
                "destination_arn": self.access_log_group.arn,
                "format": ACCESS_LOG_FORMAT,
            },
            opts=self.child(
                depends_on=[execution_log_group]
                + ([account_settings] if account_settings is not None else [])
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
            opts=self.child(),
        )
        return stage

    def _usage_plan(self) -> aws.apigateway.UsagePlan:
        """The daily quota, rate and burst per key, and the keys in it."""
        settings = self.settings
        usage_plan = aws.apigateway.UsagePlan(
            "webhooks-usage-plan",
            name=f"{settings.prefix}-webhooks",
            description="payhook: daily quota and throttling per key (one key per provider)",
            api_stages=[{"api_id": self.rest_api.id, "stage": self.stage.stage_name}],
            quota_settings={"limit": settings.api_quota_per_day, "period": "DAY"},
            throttle_settings={
                "rate_limit": settings.api_rate_limit,
                "burst_limit": settings.api_burst_limit,
            },
            opts=self.child(),
        )
        keys = {
            (SHARED_KEY if not settings.api_key_per_provider else p): k
            for p, k in self.api_keys.items()
        }
        for name, key in keys.items():
            aws.apigateway.UsagePlanKey(
                f"{name}-usage-plan-key",
                key_id=key.id,
                key_type="API_KEY",
                usage_plan_id=usage_plan.id,
                opts=self.child(),
            )
        return usage_plan
