"""API Gateway: the route, its authorizer and integration, the stage, the keys and the usage
plan."""

from __future__ import annotations

import json

import pytest

from conftest import run_program
from mocks import REST_API_ID, api_key_id
from payhook_infra.api import ACCESS_LOG_FORMAT, with_key
from payhook_infra.settings import PROVIDERS

RESOURCE = "aws:apigateway/resource:Resource"


def test_post_webhooks_provider_requires_the_key_the_authorizer_finds(deployment) -> None:
    webhooks = deployment.by_input(RESOURCE, "pathPart", "webhooks")
    provider = deployment.by_input(RESOURCE, "pathPart", "{provider}")
    assert webhooks.inputs["parentId"] == "r00t1d"
    assert provider.inputs["parentId"] == "webhooks-resource-id"
    (method,) = deployment.of_type("aws:apigateway/method:Method")
    assert method.inputs["httpMethod"] == "POST"
    assert method.inputs["resourceId"] == "provider-resource-id"
    assert method.inputs["apiKeyRequired"] is True
    assert method.inputs["authorization"] == "CUSTOM"
    assert method.inputs["authorizerId"] == "api-key-authorizer-id"
    (api,) = deployment.of_type("aws:apigateway/restApi:RestApi")
    assert api.inputs["apiKeySource"] == "AUTHORIZER", "the authorizer's usageIdentifierKey is the key"


def test_authorizer_is_the_key_lambda_cached_per_key_query_parameter(deployment) -> None:
    authorizer = deployment.one("aws:apigateway/authorizer:Authorizer", "api-key-authorizer")
    function = deployment.one("aws:lambda/function:Function", "api-key-authorizer")
    assert authorizer.inputs["type"] == "REQUEST"
    assert authorizer.inputs["restApi"] == REST_API_ID
    assert authorizer.inputs["authorizerUri"] == function.outputs["invokeArn"]
    assert authorizer.inputs["identitySource"] == "method.request.querystring.key"
    assert authorizer.inputs["authorizerResultTtlInSeconds"] == 300


def test_only_this_api_may_invoke_the_authorizer(deployment) -> None:
    permission = deployment.one("aws:lambda/permission:Permission", "authorizer-invoke-from-api")
    assert permission.inputs["function"] == "payhook-prod-api-key-authorizer"
    assert permission.inputs["principal"] == "apigateway.amazonaws.com"
    assert permission.inputs["sourceArn"] == (
        f"arn:aws:execute-api:us-east-1:123456789012:{REST_API_ID}/authorizers/api-key-authorizer-id"
    )


def test_access_log_never_records_the_query_string_or_the_key() -> None:
    assert "querystring" not in ACCESS_LOG_FORMAT.lower()
    assert "$input" not in ACCESS_LOG_FORMAT
    assert "$context.identity.apiKey\"" not in ACCESS_LOG_FORMAT
    assert "$context.identity.apiKeyId" in ACCESS_LOG_FORMAT
    # $context.path is the path alone; the key would only come with the query string.
    assert "$context.path" in ACCESS_LOG_FORMAT


def test_execution_logs_stay_at_error_without_data_trace(deployment) -> None:
    (settings,) = deployment.of_type("aws:apigateway/methodSettings:MethodSettings")
    # INFO execution logs print each request's query string, which holds the key.
    assert settings.inputs["settings"]["loggingLevel"] == "ERROR"
    assert settings.inputs["settings"]["dataTraceEnabled"] is False


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://h/prod/webhooks/square", "https://h/prod/webhooks/square?key=k%2B1"),
        ("https://h/w/square?a=b", "https://h/w/square?a=b&key=k%2B1"),
        ("https://h/w/square?key=other", "https://h/w/square?key=other"),
    ],
)
def test_with_key_adds_the_key_once(url, expected) -> None:
    assert with_key(url, "k+1") == expected


def test_route_proxies_to_the_validator(deployment) -> None:
    (integration,) = deployment.of_type("aws:apigateway/integration:Integration")
    validator = deployment.one("aws:lambda/function:Function", "webhook-validator")
    assert integration.inputs["type"] == "AWS_PROXY"
    assert integration.inputs["integrationHttpMethod"] == "POST"
    assert integration.inputs["uri"] == validator.outputs["invokeArn"]


def test_only_this_api_stage_and_route_may_invoke_the_validator(deployment) -> None:
    permission = deployment.by_input(
        "aws:lambda/permission:Permission", "function", "payhook-prod-webhook-validator"
    )
    assert permission.inputs["principal"] == "apigateway.amazonaws.com"
    assert permission.inputs["sourceArn"] == (
        f"arn:aws:execute-api:us-east-1:123456789012:{REST_API_ID}/prod/POST/webhooks/*"
    )


def test_stage_is_traced_and_access_logged(deployment) -> None:
    (stage,) = deployment.of_type("aws:apigateway/stage:Stage")
    assert stage.inputs["stageName"] == "prod"
    assert stage.inputs["xrayTracingEnabled"] is True
    log_group = deployment.one("aws:cloudwatch/logGroup:LogGroup", "api-access-logs")
    settings = stage.inputs["accessLogSettings"]
    assert settings["destinationArn"] == log_group.outputs["arn"]
    assert log_group.inputs["retentionInDays"] == 7
    # The format is JSON once API Gateway substitutes its variables.
    sample = settings["format"].replace("$context.error.messageString", '"boom"')
    fields = json.loads(sample)
    assert fields["requestId"] == "$context.requestId"
    assert fields["status"] == "$context.status"
    assert fields["xrayTraceId"] == "$context.xrayTraceId"


def test_usage_plan_allows_each_key_ten_thousand_requests_a_day_with_throttling(deployment) -> None:
    (plan,) = deployment.of_type("aws:apigateway/usagePlan:UsagePlan")
    assert plan.inputs["quotaSettings"] == {"limit": 10000, "period": "DAY"}
    assert plan.inputs["throttleSettings"]["rateLimit"] > 0
    assert plan.inputs["throttleSettings"]["burstLimit"] > 0
    assert plan.inputs["apiStages"] == [{"apiId": REST_API_ID, "stage": "prod"}]


def test_usage_plan_holds_one_key_per_provider(deployment) -> None:
    keys = deployment.of_type("aws:apigateway/apiKey:ApiKey")
    assert sorted(k.inputs["name"] for k in keys) == sorted(f"payhook-prod-{p}" for p in PROVIDERS)
    assert all(k.inputs["enabled"] is True for k in keys)
    bindings = deployment.of_type("aws:apigateway/usagePlanKey:UsagePlanKey")
    assert sorted(b.inputs["keyId"] for b in bindings) == sorted(
        api_key_id(f"{p}-api-key") for p in PROVIDERS
    )
    for binding in bindings:
        assert binding.inputs["keyType"] == "API_KEY"
        assert binding.inputs["usagePlanId"] == "webhooks-usage-plan-id"


def test_stage_wide_throttling_matches_the_usage_plan(deployment) -> None:
    (settings,) = deployment.of_type("aws:apigateway/methodSettings:MethodSettings")
    (plan,) = deployment.of_type("aws:apigateway/usagePlan:UsagePlan")
    assert settings.inputs["methodPath"] == "*/*"
    assert settings.inputs["settings"]["throttlingRateLimit"] == plan.inputs["throttleSettings"]["rateLimit"]
    assert settings.inputs["settings"]["throttlingBurstLimit"] == plan.inputs["throttleSettings"]["burstLimit"]


def test_deployment_is_redeployed_when_the_route_changes(deployment) -> None:
    (api_deployment,) = deployment.of_type("aws:apigateway/deployment:Deployment")
    assert len(api_deployment.inputs["triggers"]["redeployment"]) == 64


def test_the_account_wide_api_gateway_log_role_is_left_alone_by_default(deployment) -> None:
    assert not deployment.of_type("aws:apigateway/account:Account")


def test_api_gateway_can_write_logs_in_this_account_when_told_to_manage_it() -> None:
    managed = run_program(manageApiGatewayAccount="true")
    (account,) = managed.of_type("aws:apigateway/account:Account")
    role = managed.one("aws:iam/role:Role", "apigateway-cloudwatch-role")
    assert account.inputs["cloudwatchRoleArn"] == role.outputs["arn"]
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Principal"] == {
        "Service": "apigateway.amazonaws.com"
    }


def test_one_shared_key_when_keys_per_provider_are_off() -> None:
    shared = run_program(apiKeyPerProvider="false")
    (key,) = shared.of_type("aws:apigateway/apiKey:ApiKey")
    assert key.inputs["name"] == "payhook-prod-webhooks"
    (binding,) = shared.of_type("aws:apigateway/usagePlanKey:UsagePlanKey")
    assert binding.inputs["keyId"] == api_key_id("webhooks-api-key")
    assert shared.outputs["api_key_ids"] == {"shared": api_key_id("webhooks-api-key")}
    assert len(set(shared.outputs["webhook_urls"].values())) == 3


def test_key_in_query_or_header_turns_the_authorizer_cache_off() -> None:
    either = run_program(apiKeyIdentitySource="either")
    authorizer = either.one("aws:apigateway/authorizer:Authorizer", "api-key-authorizer")
    # API Gateway caches only when every identity source is present; none is required here.
    assert authorizer.inputs.get("identitySource", "") == ""
    assert authorizer.inputs["authorizerResultTtlInSeconds"] == 0


def test_without_api_keys_there_is_no_authorizer_and_urls_carry_no_key() -> None:
    open_api = run_program(apiKeyRequired="false")
    assert not open_api.of_type("aws:apigateway/authorizer:Authorizer")
    (method,) = open_api.of_type("aws:apigateway/method:Method")
    assert method.inputs["authorization"] == "NONE"
    assert all("?key=" not in url for url in open_api.outputs["webhook_urls"].values())


def test_access_log_metric_filters_count_each_keys_usage_and_the_quota_refusals(deployment) -> None:
    log_group = deployment.one("aws:cloudwatch/logGroup:LogGroup", "api-access-logs")
    usage = deployment.one("aws:cloudwatch/logMetricFilter:LogMetricFilter", "api-key-requests")
    refused = deployment.one("aws:cloudwatch/logMetricFilter:LogMetricFilter", "api-quota-exceeded")
    for metric_filter in (usage, refused):
        assert metric_filter.inputs["logGroupName"] == log_group.inputs["name"]
    assert usage.inputs["metricTransformation"]["dimensions"] == {"ApiKeyId": "$.apiKeyId"}
    assert usage.inputs["metricTransformation"]["name"] == "ApiKeyRequests"
    assert refused.inputs["pattern"] == '{ $.errorType = "QUOTA_EXCEEDED" }'
    # The alarm reads exactly this metric.
    alarm = deployment.by_input(
        "aws:cloudwatch/metricAlarm:MetricAlarm", "name", "payhook-prod-api-quota-exceeded"
    )
    assert (alarm.inputs["namespace"], alarm.inputs["metricName"]) == (
        refused.inputs["metricTransformation"]["namespace"],
        refused.inputs["metricTransformation"]["name"],
    )
    # The access log holds the fields the patterns read.
    fields = json.loads(ACCESS_LOG_FORMAT.replace("$context.error.messageString", '"x"'))
    assert {"apiKeyId", "status", "errorType"} <= set(fields)


def test_dashboard_draws_the_configured_quota_per_key() -> None:
    raised = run_program(apiQuotaPerDay="25000")
    (board,) = raised.of_type("aws:cloudwatch/dashboard:Dashboard")
    body = json.loads(board.inputs["dashboardBody"])
    drawn = [
        line["value"]
        for w in body["widgets"]
        for line in w.get("properties", {}).get("annotations", {}).get("horizontal", [])
        if line.get("label") == "daily quota per key"
    ]
    assert drawn == [25000]
    (plan,) = raised.of_type("aws:apigateway/usagePlan:UsagePlan")
    assert plan.inputs["quotaSettings"]["limit"] == 25000


def test_execution_logs_are_kept_seven_days_in_a_group_the_program_owns(deployment) -> None:
    group = deployment.one("aws:cloudwatch/logGroup:LogGroup", "api-execution-logs")
    assert group.inputs["name"] == f"API-Gateway-Execution-Logs_{REST_API_ID}/prod"
    assert group.inputs["retentionInDays"] == 7
