"""Stack configuration and the constants shared with the Rust functions.

Every knob the program reads from `pulumi config` is read here, once, with its default, so
the rest of the package works on a plain `Settings` value. The constants below are the
contract with the Rust side (environment variables, metric namespace, timeouts); change them
only together with the code that reads them.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Optional, TypeVar

import pulumi

#: The repository root: `infra/payhook_infra/settings.py` → two levels up from `infra/`.
REPO_ROOT = Path(__file__).resolve().parents[2]

PROVIDERS: tuple[str, ...] = ("stripe", "paypal", "square")

#: The config namespace is the Pulumi project name.
CONFIG_NAMESPACE = "payhook"

DEFAULT_STAGE = "prod"
DEFAULT_REGION = "us-east-1"
DEFAULT_TABLE_NAME = "webhook-processing"
DEFAULT_EVENT_BUS_NAME = "payment-events"
#: The placeholder repository URL, the same one the Cargo workspace declares. Set
#: `runbookBaseUrl` to where the repository really lives so alarm links resolve.
DEFAULT_RUNBOOK_BASE_URL = "https://example.invalid/payhook/blob/main"
DEFAULT_PACKAGE_DIR = "target/lambda"

LAMBDA_RUNTIME = "provided.al2023"
LAMBDA_ARCHITECTURE = "arm64"
LAMBDA_HANDLER = "bootstrap"
LAMBDA_MEMORY_MB = 1024
LAMBDA_TIMEOUT_SECONDS = 300
LOG_RETENTION_DAYS = 7

#: AWS's advice for SQS event sources: at least six times the function timeout.
VISIBILITY_TIMEOUT_SECONDS = 6 * LAMBDA_TIMEOUT_SECONDS
QUEUE_RETENTION_SECONDS = 4 * 24 * 3600
DLQ_RETENTION_SECONDS = 14 * 24 * 3600
DEFAULT_MAX_RECEIVE_COUNT = 5
SQS_BATCH_SIZE = 10

METRICS_NAMESPACE = "Payhook"
LOG_LEVEL = "INFO"
SECRETS_TTL_SECONDS = 300
STRIPE_TOLERANCE_SECONDS = 300
#: The largest body the validator accepts (`payhook_core::validator::DEFAULT_MAX_BODY_BYTES`).
MAX_BODY_BYTES = 1024 * 1024
#: Distance allowed between PAYPAL-TRANSMISSION-TIME and now, either way.
PAYPAL_TOLERANCE_SECONDS = 300
PAYPAL_ENVIRONMENTS = ("live", "sandbox")
DEFAULT_PAYPAL_ENVIRONMENT = "live"
#: How long a webhook's status item (its idempotency record) lives after first receipt; the
#: validator refuses events older than this less one day, so no replay outlives its record.
DEFAULT_IDEMPOTENCY_RETENTION_DAYS = 30
#: The providers retry for up to 3 days; the retention must leave that window plus one day.
MIN_IDEMPOTENCY_RETENTION_DAYS = 4
#: Tier thresholds in major units; the amount rules in `rules/` use the same numbers.
TIER_HIGH_MIN = 1000
TIER_MEDIUM_MIN = 100

#: Requests a day per API key (each provider's key, or the one shared key).
DEFAULT_API_QUOTA_PER_DAY = 10_000
#: Where API Gateway caches the authorizer's answer from: `query` caches per `?key=` (what the
#: providers send; a request without it is 401 before the authorizer runs), `either` accepts
#: `?key=` or `x-api-key` and calls the authorizer on every request (no identity source, no
#: cache: API Gateway requires every identity source to be present to cache).
API_KEY_IDENTITY_SOURCES = ("query", "either")
DEFAULT_API_KEY_IDENTITY_SOURCE = "query"
#: The authorizer's query parameter (`payhook_api_key_authorizer::QUERY_PARAMETER`).
API_KEY_QUERY_PARAMETER = "key"
AUTHORIZER_CACHE_SECONDS = 300
DEFAULT_API_RATE_LIMIT = 50
DEFAULT_API_BURST_LIMIT = 100
DEFAULT_ARCHIVE_RETENTION_DAYS = 30

#: At most this many concurrent processor invocations per queue (the event source mapping's
#: `maximum_concurrency`, 2–1000), so draining a backlog cannot take the concurrency ingestion
#: needs.
DEFAULT_PROCESSOR_MAX_CONCURRENCY = 5
#: Concurrency reserved for the validator, so nothing else in the account can starve ingestion
#: (-1: none, for accounts whose concurrency limit is too low to reserve any).
DEFAULT_VALIDATOR_RESERVED_CONCURRENCY = 20

#: Lambda retries a failed asynchronous (EventBridge) invocation at most twice.
EVENT_PROCESSOR_ASYNC_RETRIES = 2
EVENT_PROCESSOR_ASYNC_MAX_AGE_SECONDS = 6 * 3600

T = TypeVar("T")

STAGE_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,19}$")


@dataclasses.dataclass(frozen=True)
class FunctionSpec:
    """One deployed Lambda function.

    `name` is the logical name: the `service` dimension of its metrics and its
    `POWERTOOLS_SERVICE_NAME`. The deployed name is `{prefix}-{name}`.
    """

    name: str
    binary: str
    provider: Optional[str] = None

    @property
    def is_validator(self) -> bool:
        return self.name == "webhook-validator"

    @property
    def is_processor(self) -> bool:
        return self.provider is not None

    @property
    def is_event_processor(self) -> bool:
        return self.name == "event-processor"

    @property
    def is_sweeper(self) -> bool:
        return self.name == "sweeper"


FUNCTIONS: tuple[FunctionSpec, ...] = (
    FunctionSpec("webhook-validator", "webhook-validator"),
    *(FunctionSpec(f"{p}-processor", "provider-processor", p) for p in PROVIDERS),
    FunctionSpec("event-processor", "event-processor"),
    FunctionSpec("sweeper", "sweeper"),
)
#: How often the sweeper runs (an EventBridge schedule on the default bus).
SWEEP_SCHEDULE = "rate(5 minutes)"
FUNCTION_NAMES: tuple[str, ...] = tuple(f.name for f in FUNCTIONS)
#: The API Gateway authorizer. Not one of `FUNCTIONS`, the pipeline's functions that the
#: function-scope alarms, the dashboard placeholders and `payhook check` cover: it calls
#: nothing and emits no metrics, and its failures are the API's 4XX and 5XX.
AUTHORIZER = FunctionSpec("api-key-authorizer", "api-key-authorizer")
BINARIES: tuple[str, ...] = tuple(
    dict.fromkeys([*(f.binary for f in FUNCTIONS), AUTHORIZER.binary])
)


def processor_for(provider: str) -> FunctionSpec:
    """The processor function of one provider."""
    return next(f for f in FUNCTIONS if f.provider == provider)


@dataclasses.dataclass(frozen=True)
class SecretInputs:
    """Provider secrets from `pulumi config set --secret`; `None` when not set yet."""

    stripe_signing_secrets: Optional[pulumi.Output[str]]
    square_signature_key: Optional[pulumi.Output[str]]
    square_notification_url: Optional[pulumi.Output[str]]
    paypal_webhook_id: Optional[pulumi.Output[str]]


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything the program needs to know about the stack it deploys."""

    stage: str
    region: str
    table_name: str
    event_bus_name: str
    max_receive_count: int
    table_deletion_protection: bool
    runbook_base_url: str
    alarm_email: Optional[str]
    api_key_required: bool
    api_key_per_provider: bool
    api_key_identity_source: str
    api_quota_per_day: int
    api_rate_limit: int
    api_burst_limit: int
    archive_retention_days: int
    manage_apigateway_account: bool
    processor_max_concurrency: int
    validator_reserved_concurrency: int
    protect_data: bool
    custom_domain: Optional[str]
    custom_domain_certificate_arn: Optional[str]
    #: IAM principals (role or user ARNs, `*` wildcards allowed) that may redrive and read the
    #: DLQs; the queue policies deny that to everyone else.
    redrive_principal_arns: tuple[str, ...]
    paypal_environment: str
    stripe_require_livemode: bool
    idempotency_retention_days: int
    package_paths: dict[str, Path]
    secrets: SecretInputs
    repo_root: Path = REPO_ROOT

    @property
    def prefix(self) -> str:
        return f"payhook-{self.stage}"

    @property
    def ssm_prefix(self) -> str:
        return f"/payhook/{self.stage}"

    @property
    def tags(self) -> dict[str, str]:
        """Project and stage; `components.default_tags` adds `managed-by`."""
        return {"project": "payhook", "stage": self.stage}

    def function_name(self, logical: str) -> str:
        """The deployed name of a function, e.g. `payhook-prod-stripe-processor`."""
        return f"{self.prefix}-{logical}"

    def log_group_name(self, logical: str) -> str:
        return f"/aws/lambda/{self.function_name(logical)}"

    def queue_name(self, provider: str) -> str:
        return f"{self.prefix}-{provider}.fifo"

    def dlq_name(self, provider: str) -> str:
        return f"{self.prefix}-{provider}-dlq.fifo"

    @property
    def events_dlq_name(self) -> str:
        return f"{self.prefix}-events-dlq"

    @property
    def api_name(self) -> str:
        return f"{self.prefix}-webhooks"

    @property
    def api_access_log_group_name(self) -> str:
        return f"/aws/apigateway/{self.api_name}/access"

    def runbook_url(self, runbook_file: str) -> str:
        return f"{self.runbook_base_url.rstrip('/')}/runbooks/{runbook_file}"


class ConfigError(ValueError):
    """A configuration value is out of range; the message names the key and the fix."""


def _package_paths(config: pulumi.Config, repo_root: Path) -> dict[str, Path]:
    package_dir = Path(config.get("packageDir") or DEFAULT_PACKAGE_DIR)
    if not package_dir.is_absolute():
        package_dir = repo_root / package_dir
    overrides = config.get_object("packages") or {}
    if not isinstance(overrides, dict):
        raise ConfigError("payhook:packages must be an object mapping binary name to zip path")
    unknown = sorted(set(overrides) - set(BINARIES))
    if unknown:
        raise ConfigError(
            f"payhook:packages names unknown binaries {unknown}; known: {list(BINARIES)}"
        )
    paths: dict[str, Path] = {}
    for binary in BINARIES:
        if binary in overrides:
            path = Path(str(overrides[binary]))
            paths[binary] = path if path.is_absolute() else repo_root / path
        else:
            paths[binary] = package_dir / binary / "bootstrap.zip"
    return paths


#: What `aws:PrincipalArn` can be for a person or a pipeline: an IAM role, a user, or an
#: account's root; `*` and `?` match as in `ArnLike`.
PRINCIPAL_ARN_PATTERN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}|\*):(role/.+|user/.+|root)$")


def _redrive_principals(config: pulumi.Config) -> tuple[str, ...]:
    arns = config.get_object("redrivePrincipalArns") or []
    if not isinstance(arns, list) or not all(isinstance(a, str) for a in arns):
        raise ConfigError("payhook:redrivePrincipalArns must be a list of IAM role or user ARNs")
    bad = [a for a in arns if not PRINCIPAL_ARN_PATTERN.match(a)]
    if bad:
        raise ConfigError(
            f"payhook:redrivePrincipalArns {bad} are not IAM role or user ARNs "
            "(arn:aws:iam::<account>:role/<name>; an SSO role's ARN includes its path, "
            "`*` allowed): a session ARN (arn:aws:sts::…:assumed-role/…) never matches"
        )
    if not arns:
        pulumi.log.warn(
            "payhook:redrivePrincipalArns is empty: the queue policies let no one read or redrive "
            "the DLQs (`payhook dlq list|redrive`, SQS's DLQ redrive). Add the on-call role, e.g. "
            "`pulumi config set --path 'redrivePrincipalArns[0]' arn:aws:iam::<account>:role/<oncall>`"
        )
    return tuple(arns)


def _or_default(value: Optional[T], default: T) -> T:
    """The configured value, or the default when the key is unset (not when it is 0 or "")."""
    return default if value is None else value


def load(repo_root: Path = REPO_ROOT) -> Settings:
    """Read the stack configuration (see infra/README.md for every key)."""
    config = pulumi.Config(CONFIG_NAMESPACE)
    aws_config = pulumi.Config("aws")

    stage = _or_default(config.get("stage"), DEFAULT_STAGE)
    if not STAGE_PATTERN.match(stage):
        raise ConfigError(
            f"payhook:stage {stage!r} must be 1-20 characters of a-z, 0-9 and '-', "
            "starting with a letter (it becomes part of every resource name)"
        )
    max_receive_count = _or_default(config.get_int("maxReceiveCount"), DEFAULT_MAX_RECEIVE_COUNT)
    if not 1 <= max_receive_count <= 1000:
        raise ConfigError("payhook:maxReceiveCount must be between 1 and 1000 (an SQS limit)")
    quota = _or_default(config.get_int("apiQuotaPerDay"), DEFAULT_API_QUOTA_PER_DAY)
    if quota < 1:
        raise ConfigError("payhook:apiQuotaPerDay must be positive")
    archive_days = _or_default(config.get_int("archiveRetentionDays"), DEFAULT_ARCHIVE_RETENTION_DAYS)
    if archive_days < 0:
        raise ConfigError("payhook:archiveRetentionDays must be 0 (keep forever) or more")
    paypal_environment = _or_default(config.get("paypalEnvironment"), DEFAULT_PAYPAL_ENVIRONMENT)
    if paypal_environment not in PAYPAL_ENVIRONMENTS:
        raise ConfigError(
            f"payhook:paypalEnvironment {paypal_environment!r} must be 'live' or 'sandbox' "
            "(sandbox certificate hosts are accepted only with 'sandbox')"
        )
    retention_days = _or_default(
        config.get_int("idempotencyRetentionDays"), DEFAULT_IDEMPOTENCY_RETENTION_DAYS
    )
    if retention_days < MIN_IDEMPOTENCY_RETENTION_DAYS:
        raise ConfigError(
            f"payhook:idempotencyRetentionDays must be at least {MIN_IDEMPOTENCY_RETENTION_DAYS}: "
            "the providers retry for up to 3 days and events older than the retention less one "
            "day are refused"
        )
    identity_source = _or_default(
        config.get("apiKeyIdentitySource"), DEFAULT_API_KEY_IDENTITY_SOURCE
    )
    if identity_source not in API_KEY_IDENTITY_SOURCES:
        raise ConfigError(
            f"payhook:apiKeyIdentitySource {identity_source!r} must be 'query' (cached per ?key=, "
            "what providers send) or 'either' (?key= or x-api-key, no authorizer cache)"
        )
    max_concurrency = _or_default(
        config.get_int("processorMaxConcurrency"), DEFAULT_PROCESSOR_MAX_CONCURRENCY
    )
    if not 2 <= max_concurrency <= 1000:
        raise ConfigError("payhook:processorMaxConcurrency must be 2 to 1000 (a Lambda limit)")
    reserved = _or_default(
        config.get_int("validatorReservedConcurrency"), DEFAULT_VALIDATOR_RESERVED_CONCURRENCY
    )
    if reserved < -1 or reserved == 0:
        raise ConfigError(
            "payhook:validatorReservedConcurrency must be at least 1, or -1 for none (0 would "
            "stop the validator)"
        )
    custom_domain = config.get("customDomain") or None
    certificate = config.get("customDomainCertificateArn") or None
    if bool(custom_domain) != bool(certificate):
        raise ConfigError(
            "payhook:customDomain and payhook:customDomainCertificateArn go together: the "
            "domain needs an ACM certificate in the stack's region"
        )
    runbook_base_url = config.get("runbookBaseUrl") or DEFAULT_RUNBOOK_BASE_URL
    if runbook_base_url == DEFAULT_RUNBOOK_BASE_URL:
        pulumi.log.warn(
            "payhook:runbookBaseUrl is the placeholder "
            f"{DEFAULT_RUNBOOK_BASE_URL}: every alarm's runbook link is dead. Set it to where the "
            "repository is browsable, e.g. `pulumi config set runbookBaseUrl "
            "https://github.com/<org>/<repo>/blob/main`"
        )
    rate_limit = _or_default(config.get_int("apiRateLimit"), DEFAULT_API_RATE_LIMIT)
    burst_limit = _or_default(config.get_int("apiBurstLimit"), DEFAULT_API_BURST_LIMIT)
    if rate_limit < 1 or burst_limit < 1:
        raise ConfigError("payhook:apiRateLimit and payhook:apiBurstLimit must be positive")

    return Settings(
        stage=stage,
        region=aws_config.get("region") or DEFAULT_REGION,
        table_name=config.get("tableName") or DEFAULT_TABLE_NAME,
        event_bus_name=config.get("eventBusName") or DEFAULT_EVENT_BUS_NAME,
        max_receive_count=max_receive_count,
        table_deletion_protection=_or_default(config.get_bool("tableDeletionProtection"), True),
        runbook_base_url=runbook_base_url,
        alarm_email=config.get("alarmEmail") or None,
        api_key_required=_or_default(config.get_bool("apiKeyRequired"), True),
        api_key_per_provider=_or_default(config.get_bool("apiKeyPerProvider"), True),
        api_key_identity_source=identity_source,
        api_quota_per_day=quota,
        api_rate_limit=rate_limit,
        api_burst_limit=burst_limit,
        archive_retention_days=archive_days,
        # Off by default: the role is one setting per account and region, shared by every API
        # there; a stack must not take it over (or break it on destroy) unless told to.
        manage_apigateway_account=_or_default(config.get_bool("manageApiGatewayAccount"), False),
        processor_max_concurrency=max_concurrency,
        validator_reserved_concurrency=reserved,
        protect_data=_or_default(config.get_bool("protectData"), True),
        custom_domain=custom_domain,
        custom_domain_certificate_arn=certificate,
        redrive_principal_arns=_redrive_principals(config),
        paypal_environment=paypal_environment,
        stripe_require_livemode=_or_default(config.get_bool("stripeRequireLivemode"), False),
        idempotency_retention_days=retention_days,
        package_paths=_package_paths(config, repo_root),
        secrets=SecretInputs(
            stripe_signing_secrets=config.get_secret("stripeSigningSecrets"),
            square_signature_key=config.get_secret("squareSignatureKey"),
            square_notification_url=config.get_secret("squareNotificationUrl"),
            paypal_webhook_id=config.get_secret("paypalWebhookId"),
        ),
        repo_root=repo_root,
    )
