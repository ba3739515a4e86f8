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

from .api import with_key
from .components import Component
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
        "The notification URL exactly as registered with Square, ?key= included (part of the "
        "signed bytes)",
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


def square_notification_url(
    settings: Settings,
    registered_url: pulumi.Input[str],
    square_key: Optional[pulumi.Input[str]],
) -> pulumi.Output[str]:
    """What Square signs: the URL registered with it, `?key=` included. By default the stack's
    own (`registered_url`); a configured `squareNotificationUrl` (a custom domain, say) gets
    Square's key appended when it has no `key` parameter, since Square must be given the key."""
    configured = settings.secrets.square_notification_url
    if configured is None:
        return pulumi.Output.secret(registered_url)
    if square_key is None:
        return configured
    return pulumi.Output.secret(
        pulumi.Output.all(configured, square_key).apply(lambda a: with_key(a[0], a[1]))
    )


class Secrets(Component):
    """The provider secrets' parameters, `parameters` keyed by their full name. `square_url` is
    Square's notification URL (see `square_notification_url`)."""

    TYPE = "payhook:secrets:Secrets"

    def __init__(self, settings: Settings, square_url: pulumi.Input[str]) -> None:
        super().__init__("secrets", settings)
        self.parameters: dict[str, aws.ssm.Parameter] = {}
        missing: list[str] = []
        for parameter in PARAMETERS:
            value = _value(settings, parameter)
            if parameter.config_key == "squareNotificationUrl":
                value = pulumi.Output.from_input(square_url)
            if value is None:
                missing.append(parameter.config_key)
                continue
            name = f"{settings.ssm_prefix}/{parameter.relative_name}"
            self.parameters[name] = aws.ssm.Parameter(
                f"ssm-{parameter.relative_name.replace('/', '-')}",
                name=name,
                type="SecureString",
                value=value,
                description=parameter.description,
                opts=self.child(),
            )
        if missing:
            pulumi.log.warn(
                "provider secrets not set yet, their SSM parameters are not created and the "
                f"validator rejects those providers: {', '.join(missing)}. Set them with "
                "`pulumi config set --secret <key> <value>` and run `pulumi up` again."
            )
        self.register_outputs({"ssm_parameters": sorted(self.parameters)})
