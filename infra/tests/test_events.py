"""EventBridge: bus, archive, the rules from rules/*.json, their targets and permissions."""

from __future__ import annotations

import json

from conftest import REPO_ROOT
from payhook_infra import definitions

RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"
RULE_FILES = definitions.load_rules(REPO_ROOT / "rules")


def test_bus_is_payment_events(deployment) -> None:
    (bus,) = deployment.of_type("aws:cloudwatch/eventBus:EventBus")
    assert bus.inputs["name"] == "payment-events"


def test_bus_is_archived_for_replay(deployment) -> None:
    (archive,) = deployment.of_type("aws:cloudwatch/eventArchive:EventArchive")
    (bus,) = deployment.of_type("aws:cloudwatch/eventBus:EventBus")
    assert archive.inputs["eventSourceArn"] == bus.outputs["arn"]
    assert len(archive.inputs["name"]) <= 48
    assert archive.inputs["retentionDays"] == 30


def test_at_least_five_rules_come_from_the_rules_folder(deployment) -> None:
    files = sorted((REPO_ROOT / "rules").glob("*.json"))
    assert len(files) >= 5
    deployed = {r.inputs["name"]: r for r in _payment_rules(deployment)}
    assert sorted(deployed) == sorted(json.loads(f.read_text())["name"] for f in files)


def test_each_rule_is_deployed_exactly_as_its_file_says(deployment) -> None:
    for definition in RULE_FILES:
        rule = deployment.by_input(RULE, "name", definition.name)
        assert rule.inputs["eventBusName"] == "payment-events"
        assert json.loads(rule.inputs["eventPattern"]) == definition.event_pattern
        assert rule.inputs["state"] == definition.state
        assert rule.inputs["description"] == definition.description


def test_each_target_is_the_event_processor_with_the_rule_name_and_full_event(deployment) -> None:
    event_processor = deployment.one("aws:lambda/function:Function", "event-processor")
    dlq = deployment.by_input("aws:sqs/queue:Queue", "name", "payhook-prod-events-dlq")
    targets = deployment.where(TARGET, lambda t: t.inputs.get("eventBusName") == "payment-events")
    assert len(targets) == sum(len(r.targets) for r in RULE_FILES)
    for definition in RULE_FILES:
        for spec in definition.targets:
            (target,) = deployment.where(
                TARGET, lambda t: t.inputs["rule"] == definition.name and t.inputs["targetId"] == spec.id
            )
            assert target.inputs["eventBusName"] == "payment-events"
            assert target.inputs["arn"] == event_processor.outputs["arn"]
            assert target.inputs["inputTransformer"] == {
                "inputTemplate": '{"rule": "<aws.events.rule-name>", "event": <aws.events.event.json>}'
            }
            assert target.inputs["retryPolicy"] == {
                "maximumRetryAttempts": spec.maximum_retry_attempts,
                "maximumEventAgeInSeconds": spec.maximum_event_age_seconds,
            }
            assert target.inputs["deadLetterConfig"] == {"arn": dlq.outputs["arn"]}


def test_input_template_yields_json_once_filled() -> None:
    from payhook_infra.events import TARGET_INPUT_TEMPLATE

    filled = TARGET_INPUT_TEMPLATE.replace("<aws.events.rule-name>", "refunds").replace(
        "<aws.events.event.json>", '{"detail-type": "refund.succeeded", "detail": {}}'
    )
    assert json.loads(filled) == {
        "rule": "refunds",
        "event": {"detail-type": "refund.succeeded", "detail": {}},
    }


def test_each_rule_may_invoke_the_event_processor(deployment) -> None:
    permissions = deployment.where(
        "aws:lambda/permission:Permission",
        lambda p: p.inputs["principal"] == "events.amazonaws.com"
        and p.inputs["sourceArn"] != _sweeper_schedule(deployment).outputs["arn"],
    )
    rule_arns = {r.outputs["arn"] for r in _payment_rules(deployment)}
    assert {p.inputs["sourceArn"] for p in permissions} == rule_arns
    assert len(permissions) == len(rule_arns)
    assert {p.inputs["function"] for p in permissions} == {"payhook-prod-event-processor"}


def _payment_rules(deployment):
    """The rules of `payment-events` (the sweeper's schedule is a rule of the default bus)."""
    return deployment.where(RULE, lambda r: r.inputs.get("eventBusName") == "payment-events")


def _sweeper_schedule(deployment):
    return deployment.by_input(RULE, "name", "payhook-prod-sweeper-schedule")


def test_the_sweeper_runs_every_5_minutes_from_a_schedule_of_the_default_bus(deployment) -> None:
    schedule = _sweeper_schedule(deployment)
    assert schedule.inputs["scheduleExpression"] == "rate(5 minutes)"
    assert schedule.inputs["eventBusName"] == "default"
    assert "eventPattern" not in schedule.inputs
    sweeper = deployment.one("aws:lambda/function:Function", "sweeper")
    (target,) = deployment.where(TARGET, lambda t: t.inputs["rule"] == schedule.inputs["name"])
    assert target.inputs["arn"] == sweeper.outputs["arn"]
    assert target.inputs["retryPolicy"]["maximumRetryAttempts"] == 0
    (permission,) = deployment.where(
        "aws:lambda/permission:Permission",
        lambda p: p.inputs["sourceArn"] == schedule.outputs["arn"],
    )
    assert permission.inputs["function"] == "payhook-prod-sweeper"
    assert permission.inputs["principal"] == "events.amazonaws.com"
