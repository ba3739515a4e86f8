"""The five functions: runtime settings, packages, log groups and environment."""

from __future__ import annotations

import json
import re
import tomllib

import pytest

from conftest import INFRA_DIR, PACKAGE_DIR, REPO_ROOT, run_program
from payhook_infra import functions
from payhook_infra.functions import MissingPackageError, build_command
from payhook_infra.settings import BINARIES, PROVIDERS
from rust_source import env_read_by, env_read_by_telemetry, rust_usize_constant

#: The rates file as the validator gets it: the repository's file, compact.
CURRENCY_RATES = json.dumps(
    json.loads((REPO_ROOT / "rules" / "currencies" / "rates.json").read_text()),
    separators=(",", ":"),
    sort_keys=True,
)

FUNCTION = "aws:lambda/function:Function"
QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/payhook-prod-{}.fifo"
FUNCTIONS = {
    "api-key-authorizer": "api-key-authorizer",
    "webhook-validator": "webhook-validator",
    "stripe-processor": "provider-processor",
    "paypal-processor": "provider-processor",
    "square-processor": "provider-processor",
    "event-processor": "event-processor",
    "sweeper": "sweeper",
}
COMMON = {
    "POWERTOOLS_METRICS_NAMESPACE": "Payhook",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "STATUS_TABLE": "webhook-processing",
}


def test_six_pipeline_functions_and_the_authorizer(deployment) -> None:
    assert sorted(f.name for f in deployment.of_type(FUNCTION)) == sorted(FUNCTIONS)


@pytest.mark.parametrize("logical", FUNCTIONS)
def test_function_runtime_settings(deployment, logical) -> None:
    function = deployment.one(FUNCTION, logical).inputs
    assert function["name"] == f"payhook-prod-{logical}"
    assert function["architectures"] == ["arm64"]
    assert function["runtime"] == "provided.al2023"
    assert function["handler"] == "bootstrap"
    assert function["memorySize"] == 1024
    assert function["timeout"] == 300
    assert function["tracingConfig"] == {"mode": "Active"}
    assert function["loggingConfig"] == {
        "logFormat": "JSON",
        "logGroup": f"/aws/lambda/payhook-prod-{logical}",
    }


@pytest.mark.parametrize(("logical", "binary"), FUNCTIONS.items())
def test_function_code_is_the_cargo_lambda_zip(deployment, logical, binary) -> None:
    code = deployment.one(FUNCTION, logical).inputs["code"]
    assert code.path == str(PACKAGE_DIR / binary / "bootstrap.zip")


@pytest.mark.parametrize("logical", FUNCTIONS)
def test_each_function_has_its_own_log_group_kept_seven_days(deployment, logical) -> None:
    group = deployment.one("aws:cloudwatch/logGroup:LogGroup", f"{logical}-logs")
    assert group.inputs["name"] == f"/aws/lambda/payhook-prod-{logical}"
    assert group.inputs["retentionInDays"] == 7


def _env(deployment, logical: str) -> dict[str, str]:
    return deployment.one(FUNCTION, logical).inputs["environment"]["variables"]


def test_validator_environment(deployment) -> None:
    assert _env(deployment, "webhook-validator") == {
        **COMMON,
        "POWERTOOLS_SERVICE_NAME": "webhook-validator",
        "PAYHOOK_STAGE": "prod",
        "QUEUE_URL_STRIPE": QUEUE_URL.format("stripe"),
        "QUEUE_URL_PAYPAL": QUEUE_URL.format("paypal"),
        "QUEUE_URL_SQUARE": QUEUE_URL.format("square"),
        "SECRETS_TTL_SECONDS": "300",
        "STRIPE_TOLERANCE_SECONDS": "300",
        "STRIPE_ALLOW_NO_TOLERANCE": "false",
        "STRIPE_REQUIRE_LIVEMODE": "false",
        "PAYPAL_ENVIRONMENT": "live",
        "PAYPAL_TOLERANCE_SECONDS": "300",
        "IDEMPOTENCY_RETENTION_SECONDS": str(30 * 86_400),
        "MAX_BODY_BYTES": "1048576",
        "CURRENCY_RATES": CURRENCY_RATES,
        "QUARANTINE_BUCKET": "payhook-prod-quarantine-20260101abcdef",
    }


@pytest.mark.parametrize("provider", ["stripe", "paypal", "square"])
def test_processor_environment(deployment, provider) -> None:
    assert _env(deployment, f"{provider}-processor") == {
        **COMMON,
        "POWERTOOLS_SERVICE_NAME": f"{provider}-processor",
        "PROVIDER": provider,
        "EVENT_BUS_NAME": "payment-events",
        "MAX_RECEIVE_COUNT": "5",
        "TIER_HIGH_MIN": "1000",
        "TIER_MEDIUM_MIN": "100",
    }


def test_authorizer_environment_is_the_loggers_only(deployment) -> None:
    assert _env(deployment, "api-key-authorizer") == {
        "POWERTOOLS_SERVICE_NAME": "api-key-authorizer",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


def test_sweeper_environment(deployment) -> None:
    assert _env(deployment, "sweeper") == {
        **COMMON,
        "POWERTOOLS_SERVICE_NAME": "sweeper",
        "QUEUE_URL_STRIPE": QUEUE_URL.format("stripe"),
        "QUEUE_URL_PAYPAL": QUEUE_URL.format("paypal"),
        "QUEUE_URL_SQUARE": QUEUE_URL.format("square"),
    }


def test_event_processor_environment(deployment) -> None:
    assert _env(deployment, "event-processor") == {
        **COMMON,
        "POWERTOOLS_SERVICE_NAME": "event-processor",
    }


@pytest.mark.parametrize(("logical", "binary"), FUNCTIONS.items())
def test_every_variable_set_on_a_function_is_one_its_code_reads(deployment, logical, binary) -> None:
    read = env_read_by(binary, PROVIDERS) | env_read_by_telemetry()
    unread = set(_env(deployment, logical)) - read
    assert not unread, f"{logical} is given {sorted(unread)}, which {binary} never reads"


#: Telemetry variables the program leaves unset, and why. Lambda sets these itself:
LAMBDA_SETS = {
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    # From `logging_config.application_log_level`, when set (the program uses the default).
    "AWS_LAMBDA_LOG_LEVEL",
    "AWS_XRAY_DAEMON_ADDRESS",
}
#: Debugging switches, off in a deployment: logging whole events would log bodies and
#: signature headers; sampling and `RUST_LOG` override the level set by `POWERTOOLS_LOG_LEVEL`.
DEBUG_SWITCHES = {"POWERTOOLS_LOGGER_LOG_EVENT", "POWERTOOLS_LOGGER_SAMPLE_RATE", "RUST_LOG"}
#: The authorizer emits no metrics, so it has no namespace.
UNSET_PER_FUNCTION = {"api-key-authorizer": {"POWERTOOLS_METRICS_NAMESPACE"}}


@pytest.mark.parametrize(("logical", "binary"), FUNCTIONS.items())
def test_every_variable_a_function_reads_is_set_by_the_program(deployment, logical, binary) -> None:
    unset = env_read_by(binary, PROVIDERS) - set(_env(deployment, logical))
    assert not unset, f"{logical} would run on its binary's defaults for {sorted(unset)}"
    left = env_read_by_telemetry() - set(_env(deployment, logical))
    assert left == LAMBDA_SETS | DEBUG_SWITCHES | UNSET_PER_FUNCTION.get(logical, set()), (
        f"{logical}: classify the telemetry variables the program leaves unset"
    )


def test_the_body_limit_is_the_validators_own_default(deployment) -> None:
    limit = rust_usize_constant("functions/core/src/validator.rs", "DEFAULT_MAX_BODY_BYTES")
    assert _env(deployment, "webhook-validator")["MAX_BODY_BYTES"] == str(limit)


def test_event_processor_failures_after_lambda_retries_go_to_the_events_dlq(deployment) -> None:
    (config,) = deployment.of_type("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig")
    dlq = deployment.by_input("aws:sqs/queue:Queue", "name", "payhook-prod-events-dlq")
    assert config.inputs["functionName"] == "payhook-prod-event-processor"
    assert config.inputs["maximumRetryAttempts"] == 2
    assert config.inputs["destinationConfig"] == {"onFailure": {"destination": dlq.outputs["arn"]}}


def test_processor_max_receive_count_matches_the_redrive_policy(deployment) -> None:
    import json

    for provider in ("stripe", "paypal", "square"):
        queue = deployment.by_input("aws:sqs/queue:Queue", "name", f"payhook-prod-{provider}.fifo")
        redrive = json.loads(queue.inputs["redrivePolicy"])
        assert _env(deployment, f"{provider}-processor")["MAX_RECEIVE_COUNT"] == str(
            redrive["maxReceiveCount"]
        )


def _packages_without(tmp_path, missing: str):
    for binary in BINARIES:
        if binary != missing:
            (tmp_path / binary).mkdir()
            (tmp_path / binary / "bootstrap.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    return tmp_path


@pytest.mark.parametrize("binary", BINARIES)
def test_up_without_a_package_fails_naming_its_build_command(tmp_path, binary) -> None:
    package_dir = _packages_without(tmp_path, binary)
    command = f"cargo lambda build --release --arm64 --output-format zip -p payhook-{binary}"
    with pytest.raises(MissingPackageError, match=re.escape(command)):
        run_program(packageDir=str(package_dir))


def test_preview_without_a_package_only_warns_naming_its_build_command(tmp_path, monkeypatch) -> None:
    warnings: list[str] = []
    monkeypatch.setattr(functions.pulumi.log, "warn", lambda message, *a, **k: warnings.append(message))
    run_program(preview=True, packageDir=str(_packages_without(tmp_path, "event-processor")))
    assert any("-p payhook-event-processor" in w and "before `pulumi up`" in w for w in warnings), warnings


def _cargo_package_of_binary() -> dict[str, str]:
    """Each `[[bin]]` name of the function crates → its package name, from the manifests."""
    packages = {}
    for manifest in (REPO_ROOT / "functions").glob("*/Cargo.toml"):
        parsed = tomllib.loads(manifest.read_text())
        for binary in parsed.get("bin", []):
            packages[binary["name"]] = parsed["package"]["name"]
    return packages


def test_the_build_command_names_each_binarys_cargo_package() -> None:
    packages = _cargo_package_of_binary()
    for binary in BINARIES:
        assert build_command(binary).endswith(f"-p {packages[binary]}"), binary


def test_the_readme_builds_exactly_the_lambda_packages() -> None:
    readme = (INFRA_DIR / "README.md").read_text()
    commands = [
        " ".join(line.split())
        for block in re.findall(r"```sh\n(.*?)```", readme, re.S)
        for line in block.replace("\\\n", " ").splitlines()
        if "cargo lambda build" in line
    ]
    assert commands, "infra/README.md shows no `cargo lambda build`"
    packages = _cargo_package_of_binary()
    for command in commands:
        assert "cargo lambda build --release --arm64 --output-format zip" in command, command
        assert sorted(re.findall(r"-p (\S+)", command)) == sorted(packages[b] for b in BINARIES)


def test_the_validators_environment_fits_lambdas_4_kb_limit(deployment) -> None:
    # Lambda refuses environments over 4 KB in all (keys and values): the rates file travels in it.
    env = _env(deployment, "webhook-validator")
    assert sum(len(k) + len(str(v)) for k, v in env.items()) < 4096
