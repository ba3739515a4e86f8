"""The whole stack, wired in data-flow order, and its outputs."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Optional

import pulumi
import pulumi_aws as aws

from . import components, definitions, secrets, settings
from .api import Api
from .events import Events
from .functions import AccountContext, Functions, StorageArns
from .monitoring import Monitoring, console_url, planned_alarms
from .queues import Queues
from .secrets import Secrets
from .storage import Storage


@dataclasses.dataclass(frozen=True)
class Stack:
    """Handles on what `build` created, for the outputs and the tests."""

    settings: settings.Settings
    outputs: dict[str, Any]
    #: What `protectData` protects: the status table, the quarantine bucket and the
    #: dead-letter queues.
    protected: list[pulumi.CustomResource] = dataclasses.field(default_factory=list)
    #: One component per concern; every AWS resource is a child of one of them.
    components: list[components.Component] = dataclasses.field(default_factory=list)


def _account() -> AccountContext:
    identity = aws.get_caller_identity_output()
    return AccountContext(
        account_id=identity.account_id,
        # arn:<partition>:iam::<account>:...
        partition=identity.arn.apply(lambda arn: arn.split(":")[1]),
    )


def build(repo_root: Optional[Path] = None) -> Stack:
    """Register every resource and export the stack outputs."""
    cfg = settings.load(repo_root or settings.REPO_ROOT)
    root = cfg.repo_root

    # Read and check the JSON-as-code first: a bad file fails before anything is registered.
    rules = definitions.load_rules(root / "rules")
    alarm_kinds = definitions.load_alarm_kinds(root / "alarms", root / "runbooks")
    dashboards = definitions.load_dashboards(root / "dashboards")
    rule_names = [r.name for r in rules]
    # Render every alarm once up front: a description over 1024 characters fails here.
    planned_alarms(cfg, alarm_kinds, rule_names)

    account = _account()
    storage = Storage(cfg)
    queues = Queues(cfg)
    events = Events(cfg)
    functions = Functions(
        cfg,
        account,
        queues,
        StorageArns(storage.table, storage.open_status_index_arn, storage.quarantine_bucket),
        events.bus,
    )
    webhook_api = Api(cfg, account, functions.validator, functions.authorizer)
    square_url = secrets.square_notification_url(
        cfg,
        webhook_api.registered_url("square") if cfg.api_key_required
        else webhook_api.provider_endpoint("square"),
        webhook_api.api_keys["square"].value if cfg.api_key_required else None,
    )
    provider_secrets = Secrets(cfg, square_url)
    routed = events.route(rules, functions, queues)
    queues.admit_only_pipeline_roles(
        validator_role=functions.validator.role,
        processor_roles={p: functions.processor(p).role for p in settings.PROVIDERS},
        event_processor_role=functions.event_processor.role,
        rule_arns=[r.rule.arn for r in routed],
        sweeper_role=functions.sweeper.role,
    )

    monitoring = Monitoring(cfg, account, alarm_kinds, rule_names, dashboards)
    topic = monitoring.topic
    dashboard_names = sorted(monitoring.dashboards)

    outputs: dict[str, Any] = {
        "webhook_endpoint": webhook_api.endpoint,
        "api_key_ids": webhook_api.key_ids(),
        # Secret: each URL holds its provider's key. `pulumi stack output --show-secrets`.
        "webhook_urls": pulumi.Output.secret(
            {
                p: (
                    webhook_api.registered_url(p)
                    if cfg.api_key_required
                    else webhook_api.provider_endpoint(p)
                )
                for p in settings.PROVIDERS
            }
        ),
        "rest_api_id": webhook_api.rest_api.id,
        # With customDomain: the name to point the domain's DNS record (CNAME or alias) at.
        "custom_domain_target": (
            webhook_api.custom_domain.regional_domain_name if webhook_api.custom_domain else None
        ),
        "region": cfg.region,
        "stage": cfg.stage,
        "dashboard_name": dashboard_names[0] if dashboard_names else None,
        "dashboard_names": dashboard_names,
        "dashboard_url": (
            console_url(cfg.region, dashboard_names[0]) if dashboard_names else None
        ),
        "alarm_topic_arn": topic.arn,
        "queue_urls": {p: q.queue.url for p, q in queues.by_provider.items()},
        "dlq_urls": {
            **{p: q.dlq.url for p, q in queues.by_provider.items()},
            "events": queues.events_dlq.url,
        },
        "table_name": storage.table.name,
        # `payhook quarantine show|replay --aws --bucket …`.
        "quarantine_bucket": storage.quarantine_bucket.bucket,
        "event_bus_name": events.bus.name,
        "function_names": {
            **{name: d.function.name for name, d in functions.deployed.items()},
            functions.authorizer.spec.name: functions.authorizer.function.name,
        },
        "rule_names": [r.definition.name for r in routed],
        "ssm_parameters": sorted(provider_secrets.parameters),
    }
    for key, value in outputs.items():
        pulumi.export(key, value)
    return Stack(
        cfg,
        outputs,
        protected=[storage.table, storage.quarantine_bucket, *queues.dlqs()],
        components=[storage, queues, events, functions, webhook_api, provider_secrets, monitoring],
    )
