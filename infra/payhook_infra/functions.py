"""The six pipeline Lambda functions and the API key authorizer: log group, least-privilege
role, function, event sources, and the sweeper's schedule.

Packages are the zips `cargo lambda build --release --arm64 --output-format zip` writes
(`target/lambda/<binary>/bootstrap.zip`). One processor binary is deployed three times with
`PROVIDER` set.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Mapping

import pulumi
import pulumi_aws as aws

from . import policies
from .components import Component
from .queues import Queues
from .storage import QUARANTINE_KEY_PREFIX
from .settings import (
    AUTHORIZER,
    EVENT_PROCESSOR_ASYNC_MAX_AGE_SECONDS,
    EVENT_PROCESSOR_ASYNC_RETRIES,
    FUNCTIONS,
    LAMBDA_ARCHITECTURE,
    LAMBDA_HANDLER,
    LAMBDA_MEMORY_MB,
    LAMBDA_RUNTIME,
    LAMBDA_TIMEOUT_SECONDS,
    LOG_LEVEL,
    LOG_RETENTION_DAYS,
    MAX_BODY_BYTES,
    METRICS_NAMESPACE,
    PAYPAL_TOLERANCE_SECONDS,
    PROVIDERS,
    SECRETS_TTL_SECONDS,
    SQS_BATCH_SIZE,
    STRIPE_TOLERANCE_SECONDS,
    SWEEP_SCHEDULE,
    TIER_HIGH_MIN,
    TIER_MEDIUM_MIN,
    FunctionSpec,
    Settings,
)


@dataclasses.dataclass(frozen=True)
class AccountContext:
    account_id: pulumi.Output[str]
    partition: pulumi.Output[str]


@dataclasses.dataclass(frozen=True)
class DeployedFunction:
    spec: FunctionSpec
    name: str
    log_group: aws.cloudwatch.LogGroup
    role: aws.iam.Role
    policy: aws.iam.RolePolicy
    function: aws.lambda_.Function


def currency_rates_json(settings: Settings) -> str:
    """`rules/currencies/rates.json`, compact, as the validator reads it from `CURRENCY_RATES`."""
    path = settings.repo_root / "rules" / "currencies" / "rates.json"
    return json.dumps(json.loads(path.read_text()), separators=(",", ":"), sort_keys=True)


def common_environment(settings: Settings, spec: FunctionSpec, table_name: str) -> dict[str, Any]:
    return {
        "POWERTOOLS_SERVICE_NAME": spec.name,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "POWERTOOLS_LOG_LEVEL": LOG_LEVEL,
        "STATUS_TABLE": table_name,
    }


def authorizer_environment() -> dict[str, Any]:
    """The authorizer reads only the logger's settings (it emits no metrics, has no table)."""
    return {"POWERTOOLS_SERVICE_NAME": AUTHORIZER.name, "POWERTOOLS_LOG_LEVEL": LOG_LEVEL}


def environment(
    settings: Settings,
    spec: FunctionSpec,
    *,
    table_name: str,
    queue_urls: Mapping[str, pulumi.Input[str]],
    event_bus_name: pulumi.Input[str],
    quarantine_bucket: pulumi.Input[str] = "",
) -> dict[str, Any]:
    """The environment variables the Rust binaries read, per function (and nothing they do
    not read: `infra/tests/test_functions.py` checks both against the Rust source)."""
    env = common_environment(settings, spec, table_name)
    if spec.is_validator:
        env.update(
            {
                # The secret store reads `/payhook/{stage}/…` (settings.ssm_prefix).
                "PAYHOOK_STAGE": settings.stage,
                **{f"QUEUE_URL_{p.upper()}": queue_urls[p] for p in PROVIDERS},
                "SECRETS_TTL_SECONDS": str(SECRETS_TTL_SECONDS),
                "STRIPE_TOLERANCE_SECONDS": str(STRIPE_TOLERANCE_SECONDS),
                # Said out loud: a deployed validator never accepts a Stripe tolerance of 0.
                "STRIPE_ALLOW_NO_TOLERANCE": "false",
                "STRIPE_REQUIRE_LIVEMODE": str(settings.stripe_require_livemode).lower(),
                "PAYPAL_ENVIRONMENT": settings.paypal_environment,
                "PAYPAL_TOLERANCE_SECONDS": str(PAYPAL_TOLERANCE_SECONDS),
                "IDEMPOTENCY_RETENTION_SECONDS": str(settings.idempotency_retention_days * 86_400),
                "MAX_BODY_BYTES": str(MAX_BODY_BYTES),
                # The rates file, so an update ships with `pulumi up` (the binary's built-in
                # copy is the fallback).
                "CURRENCY_RATES": currency_rates_json(settings),
                # Quarantined bodies too large for a status item.
                "QUARANTINE_BUCKET": quarantine_bucket,
            }
        )
    elif spec.is_sweeper:
        # Where a stuck webhook's kept message is sent again.
        env.update({f"QUEUE_URL_{p.upper()}": queue_urls[p] for p in PROVIDERS})
    elif spec.is_processor:
        env.update(
            {
                "PROVIDER": spec.provider,
                "EVENT_BUS_NAME": event_bus_name,
                "MAX_RECEIVE_COUNT": str(settings.max_receive_count),
                "TIER_HIGH_MIN": str(TIER_HIGH_MIN),
                "TIER_MEDIUM_MIN": str(TIER_MEDIUM_MIN),
            }
        )
    return env


@dataclasses.dataclass(frozen=True)
class StorageArns:
    """What the functions' policies name of the storage: the table, its open-status index and
    the quarantine bucket."""

    table: aws.dynamodb.Table
    open_status_index_arn: pulumi.Output[str]
    quarantine_bucket: aws.s3.Bucket


def _policy_document(
    settings: Settings,
    spec: FunctionSpec,
    account: AccountContext,
    queues: Queues,
    storage: StorageArns,
    event_bus: aws.cloudwatch.EventBus,
    log_group: aws.cloudwatch.LogGroup,
) -> pulumi.Output[str]:
    table = storage.table
    queue_arns = [queues.by_provider[p].queue.arn for p in PROVIDERS]
    if spec.is_sweeper:
        return pulumi.Output.all(
            table.arn, storage.open_status_index_arn, log_group.arn, *queue_arns
        ).apply(
            lambda a: json.dumps(
                policies.sweeper(
                    table_arn=a[0],
                    open_status_index_arn=a[1],
                    queue_arns=a[3:],
                    log_group_arn=a[2],
                )
            )
        )
    if spec.is_validator:
        return pulumi.Output.all(
            account.partition,
            account.account_id,
            table.arn,
            log_group.arn,
            storage.quarantine_bucket.arn,
            *queue_arns,
        ).apply(
            lambda a: json.dumps(
                policies.validator(
                    queue_arns=a[5:],
                    table_arn=a[2],
                    quarantine_objects_arn=f"{a[4]}/{QUARANTINE_KEY_PREFIX}*",
                    ssm_path_arn=f"arn:{a[0]}:ssm:{settings.region}:{a[1]}:parameter"
                    f"{settings.ssm_prefix}",
                    kms_key_arns=f"arn:{a[0]}:kms:{settings.region}:{a[1]}:key/*",
                    region=settings.region,
                    log_group_arn=a[3],
                )
            )
        )
    if spec.is_processor:
        assert spec.provider is not None
        return pulumi.Output.all(
            queues.by_provider[spec.provider].queue.arn, table.arn, event_bus.arn, log_group.arn
        ).apply(
            lambda a: json.dumps(
                policies.processor(
                    provider=spec.provider,
                    queue_arn=a[0],
                    table_arn=a[1],
                    event_bus_arn=a[2],
                    log_group_arn=a[3],
                )
            )
        )
    return pulumi.Output.all(table.arn, queues.events_dlq.arn, log_group.arn).apply(
        lambda a: json.dumps(
            policies.event_processor(table_arn=a[0], failure_queue_arn=a[1], log_group_arn=a[2])
        )
    )


class MissingPackageError(FileNotFoundError):
    """A function's zip is not there at `pulumi up`; the message names the build command."""


def build_command(binary: str) -> str:
    """The command that writes `binary`'s package (run from the repository root); each
    binary's crate is `payhook-<binary>`."""
    return f"cargo lambda build --release --arm64 --output-format zip -p payhook-{binary}"


def _code(settings: Settings, spec: FunctionSpec) -> pulumi.Archive:
    path = settings.package_paths[spec.binary]
    if not path.is_file():
        message = (
            f"{spec.name}: package {path} does not exist; build it from the repository root "
            f"with `{build_command(spec.binary)}`"
        )
        # A preview can run before the build; `pulumi up` would upload nothing.
        if not pulumi.runtime.is_dry_run():
            raise MissingPackageError(message)
        pulumi.log.warn(f"{message} before `pulumi up`")
    return pulumi.FileArchive(str(path))


class Functions(Component):
    """The pipeline's functions and the authorizer, each with its own log group (7 days) and
    its own role; the queues' event source mappings and the event processor's asynchronous
    failure destination."""

    TYPE = "payhook:functions:Functions"

    def __init__(
        self,
        settings: Settings,
        account: AccountContext,
        queues: Queues,
        storage: StorageArns,
        event_bus: aws.cloudwatch.EventBus,
    ) -> None:
        super().__init__("functions", settings)
        self.deployed: dict[str, DeployedFunction] = {}
        queue_urls = {p: queues.by_provider[p].queue.url for p in PROVIDERS}
        for spec in FUNCTIONS:
            self.deployed[spec.name] = self._deploy(
                spec,
                lambda log_group, spec=spec: _policy_document(
                    settings, spec, account, queues, storage, event_bus, log_group
                ),
                environment(
                    settings,
                    spec,
                    table_name=settings.table_name,
                    queue_urls=queue_urls,
                    event_bus_name=event_bus.name,
                    quarantine_bucket=storage.quarantine_bucket.bucket,
                ),
                # The validator's own share of the account's concurrency: a backlog drain or
                # another workload cannot starve ingestion.
                settings.validator_reserved_concurrency if spec.is_validator else -1,
            )
        #: The API key authorizer: its role may write its logs and traces, nothing else.
        self.authorizer = self._deploy(
            AUTHORIZER,
            lambda log_group: log_group.arn.apply(
                lambda arn: json.dumps(policies.authorizer(log_group_arn=arn))
            ),
            authorizer_environment(),
        )
        self._event_sources(queues)
        self._schedule_sweeper()
        self.register_outputs(
            {
                "function_names": {
                    **{name: d.function.name for name, d in self.deployed.items()},
                    AUTHORIZER.name: self.authorizer.function.name,
                }
            }
        )

    def __getitem__(self, name: str) -> DeployedFunction:
        return self.deployed[name]

    @property
    def validator(self) -> DeployedFunction:
        return self.deployed["webhook-validator"]

    @property
    def event_processor(self) -> DeployedFunction:
        return self.deployed["event-processor"]

    def processor(self, provider: str) -> DeployedFunction:
        return self.deployed[f"{provider}-processor"]

    @property
    def sweeper(self) -> DeployedFunction:
        return self.deployed["sweeper"]

    def _schedule_sweeper(self) -> None:
        """The sweeper runs every 5 minutes: a scheduled rule on the account's default bus
        (not `payment-events`, whose events are payments) invoking it, with the permission
        for EventBridge to do so from that rule only."""
        sweeper = self.sweeper
        rule = aws.cloudwatch.EventRule(
            "sweeper-schedule",
            name=f"{self.settings.prefix}-sweeper-schedule",
            event_bus_name="default",
            description="payhook: find webhooks stuck past their state's threshold",
            schedule_expression=SWEEP_SCHEDULE,
            opts=self.child(),
        )
        permission = aws.lambda_.Permission(
            "sweeper-schedule-invoke",
            action="lambda:InvokeFunction",
            function=sweeper.function.name,
            principal="events.amazonaws.com",
            source_arn=rule.arn,
            opts=self.child(),
        )
        aws.cloudwatch.EventTarget(
            "sweeper-schedule-target",
            rule=rule.name,
            arn=sweeper.function.arn,
            # A failed sweep is not retried: the next one comes within 5 minutes.
            retry_policy={"maximum_retry_attempts": 0, "maximum_event_age_in_seconds": 300},
            opts=self.child(depends_on=[permission]),
        )

    def _deploy(
        self,
        spec: FunctionSpec,
        policy_document: Any,
        env: Mapping[str, Any],
        reserved_concurrency: int = -1,
    ) -> DeployedFunction:
        """One function with its own log group (7 days) and its own role holding only
        `policy`."""
        settings = self.settings
        name = settings.function_name(spec.name)
        log_group = aws.cloudwatch.LogGroup(
            f"{spec.name}-logs",
            name=settings.log_group_name(spec.name),
            retention_in_days=LOG_RETENTION_DAYS,
            opts=self.child(),
        )
        role = aws.iam.Role(
            f"{spec.name}-role",
            name=f"{name}-role",
            assume_role_policy=json.dumps(policies.LAMBDA_ASSUME_ROLE),
            description=f"Execution role of {name}: least privilege, see infra/payhook_infra/policies.py",
            opts=self.child(),
        )
        policy = aws.iam.RolePolicy(
            f"{spec.name}-policy",
            name=f"{name}-policy",
            role=role.id,
            policy=policy_document(log_group),
            opts=self.child(),
        )
        function = aws.lambda_.Function(
            spec.name,
            name=name,
            description=f"payhook {spec.name} ({spec.binary})",
            role=role.arn,
            runtime=LAMBDA_RUNTIME,
            handler=LAMBDA_HANDLER,
            architectures=[LAMBDA_ARCHITECTURE],
            memory_size=LAMBDA_MEMORY_MB,
            timeout=LAMBDA_TIMEOUT_SECONDS,
            code=_code(settings, spec),
            tracing_config={"mode": "Active"},
            logging_config={"log_format": "JSON", "log_group": log_group.name},
            environment={"variables": dict(env)},
            reserved_concurrent_executions=reserved_concurrency,
            # Lambda checks the role can write traces and logs when the function is created.
            opts=self.child(depends_on=[policy, log_group]),
        )
        return DeployedFunction(spec, name, log_group, role, policy, function)

    def _event_sources(self, queues: Queues) -> None:
        for provider in PROVIDERS:
            processor = self.processor(provider)
            aws.lambda_.EventSourceMapping(
                f"{provider}-queue-to-processor",
                event_source_arn=queues.by_provider[provider].queue.arn,
                function_name=processor.function.arn,
                batch_size=SQS_BATCH_SIZE,
                function_response_types=["ReportBatchItemFailures"],
                enabled=True,
                # A backlog is drained by at most this many invocations per queue.
                scaling_config={"maximum_concurrency": self.settings.processor_max_concurrency},
                # Lambda checks the role can read the queue when the mapping is created.
                opts=self.child(depends_on=[processor.policy]),
            )

        # EventBridge's retry policy and target DLQ cover delivery to Lambda; once Lambda has
        # accepted the asynchronous invocation, function errors are retried by Lambda and
        # then sent here instead of being dropped.
        aws.lambda_.FunctionEventInvokeConfig(
            "event-processor-async",
            function_name=self.event_processor.function.name,
            maximum_retry_attempts=EVENT_PROCESSOR_ASYNC_RETRIES,
            maximum_event_age_in_seconds=EVENT_PROCESSOR_ASYNC_MAX_AGE_SECONDS,
            destination_config={"on_failure": {"destination": queues.events_dlq.arn}},
            opts=self.child(depends_on=[self.event_processor.policy]),
        )
