//! A stage on an AWS-compatible endpoint (moto, LocalStack) as the local stack's configuration
//! describes it: the SSM parameters its provider secrets become. `payhook bootstrap`
//! (`cli/src/commands/bootstrap.rs`) and the demo's own stage (`crate::demo`) create them.

use payhook_aws::provision::{SecureParameter, StackNames};
use payhook_aws::secrets::{
    NOTIFICATION_URL_PARAMETER, SIGNING_SECRETS_PARAMETER, WEBHOOK_ID_PARAMETER,
};
use payhook_core::{Provider, Secret};

use crate::config::Config;

/// The SSM parameters of `config`'s provider secrets under `names`' stage, with `infra/`'s
/// descriptions.
pub fn parameters_from_config(names: &StackNames, config: &Config) -> Vec<SecureParameter> {
    let stripe_secrets: Vec<&str> = config
        .stripe
        .signing_secrets
        .iter()
        .map(Secret::expose)
        .collect();
    let parameter = |provider, name: &str, value: Secret, description: &str| SecureParameter {
        name: names.parameter(provider, name),
        value,
        description: description.to_owned(),
    };
    vec![
        parameter(
            Provider::Stripe,
            SIGNING_SECRETS_PARAMETER,
            Secret::new(stripe_secrets.join(",")),
            "Stripe endpoint signing secrets (whsec_...), comma-separated while rotating",
        ),
        parameter(
            Provider::Square,
            SIGNING_SECRETS_PARAMETER,
            config.square.signature_key.clone(),
            "Square webhook subscription signature key",
        ),
        parameter(
            Provider::Square,
            NOTIFICATION_URL_PARAMETER,
            Secret::new(config.square.notification_url.clone()),
            "The notification URL exactly as registered with Square (part of the signed bytes)",
        ),
        parameter(
            Provider::Paypal,
            WEBHOOK_ID_PARAMETER,
            Secret::new(config.paypal.webhook_id.clone()),
            "PayPal webhook id (part of the signed message)",
        ),
    ]
}
