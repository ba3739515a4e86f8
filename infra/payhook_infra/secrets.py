"""Provider secrets in SSM Parameter Store (SecureString, AWS-managed `aws/ssm` key).

Values come from `pulumi config set --secret`. Providers only issue a signing secret once the
endpoint is registered with them, so a first `pulumi up` without them is expected: a
parameter whose config key is unset is not created (and a warning says so), and the
validator rejects that provider's deliveries until it exists. Never a placeholder value: a
known placeholder would be a known signing key.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import pulumi
import pulumi_aws as aws

from .settings import Settings


@dataclasses.dataclass(frozen=True)
class SecretParameter:
    #: Path under `/payhook/{stage}/`.
    relative_name: str
    config_key: str
    description: str


PARAMETERS: tuple[SecretParameter, ...] = (
    SecretParameter(
        "stripe/signing-secrets",
        "stripeSigningSecrets",
        "Stripe endpoint signing secrets (whsec_...), comma-separated while rotating",
    ),
    SecretParameter(
        "square/signing-secrets",
        "squareSignatureKey",
        "Square webhook subscription signature key",
    ),
    SecretParameter(
        "square/notification-url",
        "squareNotificationUrl",
        "The notification URL exactly as registered with Square (part of the signed bytes)",
    ),
    SecretParameter(
        "paypal/webhook-id",
        "paypalWebhookId",
        "PayPal webhook id (part of the signed message)",
    ),
)


def _value(settings: Settings, parameter: SecretParameter) -> Optional[pulumi.Output[str]]:
    s = settings.secrets
    return {
        "stripeSigningSecrets": s.stripe_signing_secrets,
        "squareSignatureKey": s.square_signature_key,
        "squareNotificationUrl": s.square_notification_url,
        "paypalWebhookId": s.paypal_webhook_id,
    }[parameter.config_key]


def create(
    settings: Settings, square_endpoint_url: pulumi.Input[str]
) -> dict[str, aws.ssm.Parameter]:
    """The parameters, keyed by their full name. `square_endpoint_url` is the default
    notification URL: this stack's own endpoint for Square."""
    created: dict[str, aws.ssm.Parameter] = {}
    missing: list[str] = []
    for parameter in PARAMETERS:
        value = _value(settings, parameter)
        if value is None and parameter.config_key == "squareNotificationUrl":
            value = pulumi.Output.secret(square_endpoint_url)
        if value is None:
            missing.append(parameter.config_key)
            continue
        name = f"{settings.ssm_prefix}/{parameter.relative_name}"
        created[name] = aws.ssm.Parameter(
            f"ssm-{parameter.relative_name.replace('/', '-')}",
            name=name,
            type="SecureString",
            value=value,
            description=parameter.description,
            tags=settings.tags,
        )
    if missing:
        pulumi.log.warn(
            "provider secrets not set yet, their SSM parameters are not created and the "
            f"validator rejects those providers: {', '.join(missing)}. Set them with "
            "`pulumi config set --secret <key> <value>` and run `pulumi up` again."
        )
    return created
