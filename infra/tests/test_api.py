"""API Gateway: the route, its integration, the stage, the key and the usage plan."""

from __future__ import annotations

import json

from mocks import API_KEY_ID, REST_API_ID

RESOURCE = "aws:apigateway/resource:Resource"


def test_post_webhooks_provider_requires_an_api_key(deployment) -> None:
    webhooks = deployment.by_input(RESOURCE, "pathPart", "webhooks")
    provider = deployment.by_input(RESOURCE, "pathPart", "{provider}")
    assert webhooks.inputs["parentId"] == "r00t1d"
    assert provider.inputs["parentId"] == "webhooks-resource-id"
    (method,) = deployment.of_type("aws:apigateway/method:Method")
    assert method.inputs["httpMethod"] == "POST"
    assert method.inputs["resourceId"] == "provider-resource-id"
    assert method.inputs["apiKeyRequired"] is True
    assert method.inputs["authorization"] == "NONE"


def test_route_proxies_to_the_validator(deployment) -> None:
    (integration,) = deployment.of_type("aws:apigateway/integration:Integration")
    validator = deployment.one("aws:lambda/function:Function", "webhook-validator")
    assert integration.inputs["type"] == "AWS_PROXY"
    assert integration.inputs["integrationHttpMethod"] == "POST"
    assert integration.inputs["uri"] == validator.outputs["invokeArn"]


def test_only_this_api_stage_and_route_may_invoke_the_validator(deployment) -> None:
    permission = deployment.by_input(
        "aws:lambda/permission:Permission", "principal", "apigateway.amazonaws.com"
    )
    assert permission.inputs["function"] == "payhook-prod-webhook-validator"
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


def test_usage_plan_allows_ten_thousand_requests_a_day_with_throttling(deployment) -> None:
    (plan,) = deployment.of_type("aws:apigateway/usagePlan:UsagePlan")
    assert plan.inputs["quotaSettings"] == {"limit": 10000, "period": "DAY"}
    assert plan.inputs["throttleSettings"]["rateLimit"] > 0
    assert plan.inputs["throttleSettings"]["burstLimit"] > 0
    assert plan.inputs["apiStages"] == [{"apiId": REST_API_ID, "stage": "prod"}]


def test_usage_plan_is_bound_to_the_api_key(deployment) -> None:
    (key,) = deployment.of_type("aws:apigateway/apiKey:ApiKey")
    (binding,) = deployment.of_type("aws:apigateway/usagePlanKey:UsagePlanKey")
    assert key.inputs["enabled"] is True
    assert binding.inputs == {
        "keyId": API_KEY_ID,
        "keyType": "API_KEY",
        "usagePlanId": "webhooks-usage-plan-id",
    }


def test_stage_wide_throttling_matches_the_usage_plan(deployment) -> None:
    (settings,) = deployment.of_type("aws:apigateway/methodSettings:MethodSettings")
    (plan,) = deployment.of_type("aws:apigateway/usagePlan:UsagePlan")
    assert settings.inputs["methodPath"] == "*/*"
    assert settings.inputs["settings"]["throttlingRateLimit"] == plan.inputs["throttleSettings"]["rateLimit"]
    assert settings.inputs["settings"]["throttlingBurstLimit"] == plan.inputs["throttleSettings"]["burstLimit"]


def test_deployment_is_redeployed_when_the_route_changes(deployment) -> None:
    (api_deployment,) = deployment.of_type("aws:apigateway/deployment:Deployment")
    assert len(api_deployment.inputs["triggers"]["redeployment"]) == 64


def test_api_gateway_can_write_logs_in_this_account(deployment) -> None:
    (account,) = deployment.of_type("aws:apigateway/account:Account")
    role = deployment.one("aws:iam/role:Role", "apigateway-cloudwatch-role")
    assert account.inputs["cloudwatchRoleArn"] == role.outputs["arn"]
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Principal"] == {
        "Service": "apigateway.amazonaws.com"
    }
