//! A stage on an AWS-compatible endpoint (moto, LocalStack) as the local stack's configuration
//! describes it: its plan (queues, DLQs, table, bus, rules with a queue each as their target,
//! the SSM parameters its provider secrets become) and its creation. `payhook bootstrap`
//! (`cli/src/commands/bootstrap.rs`, which resolves its arguments and prints), the demo's own
//! stage (`crate::demo`) and the tests' stages ([`bootstrap_stage`]) create them.

use std::path::Path;

use payhook_aws::error::ProvisionError;
use payhook_aws::provision::{self, Provisioned, SecureParameter, StackNames, StackPlan};
use payhook_aws::secrets::{
    NOTIFICATION_URL_PARAMETER, SIGNING_SECRETS_PARAMETER, WEBHOOK_ID_PARAMETER,
};
use payhook_core::{Provider, Secret};
use payhook_pattern::load_rules;

use crate::LocalError;
use crate::config::{CONFIG_FILE_NAME, Config};

/// The plan of stage `names` with the rule files of `rules_dir`, each rule with a queue as its
/// target; with `config`, its queue settings and its provider secrets as the SSM parameters
/// ([`parameters_from_config`]), else the deployed defaults and no parameters. Not validated
/// yet ([`StackPlan::validate`], [`provision_stage`]): the caller may change it first.
pub fn stage_plan(
    names: StackNames,
    rules_dir: &Path,
    config: Option<&Config>,
) -> Result<StackPlan, LocalError> {
    let rules = load_rules(rules_dir)
        .map_err(|e| LocalError::Rules(format!("rules in {}: {e}", rules_dir.display())))?;
    let mut plan = StackPlan::new(names);
    if let Some(config) = config {
        plan.max_receive_count = config.queues.max_receive_count;
        plan.visibility_timeout_secs = config.queues.visibility_timeout_seconds;
        plan.parameters = parameters_from_config(&plan.names, config);
    }
    plan.rules = rules.into_iter().map(|(_, rule, _)| rule).collect();
    plan.rule_queues = true;
    Ok(plan)
}

/// Creates (or brings up to date) everything in `plan` on `endpoint` in `region` (`None`: the
/// environment's), calling `on_resource` after each resource; returns those lines. Stops at
/// the first failure; what was created so far stays, and running again continues.
pub async fn provision_stage<F>(
    endpoint: &str,
    region: Option<&str>,
    plan: &StackPlan,
    on_resource: F,
) -> Result<Vec<Provisioned>, ProvisionError>
where
    F: FnMut(&Provisioned) + Send,
{
    let sdk = payhook_aws::config::sdk_config_for(Some(endpoint), region).await;
    provision::provision(&sdk, plan, on_resource).await
}

/// Creates the stage `names` on `endpoint` in `region` as `payhook bootstrap --config
/// {config_dir}/payhook.toml` does: the provider secrets of the configuration file in
/// `config_dir` become the SSM parameters, `config`'s queue settings the queues', with the rule
/// files of `rules_dir` and a queue per rule as its target. What the tests and harnesses do
/// before running a stack on moto. Returns the resources gone through.
pub async fn bootstrap_stage(
    endpoint: &str,
    region: &str,
    config_dir: &Path,
    config: &Config,
    names: &StackNames,
    rules_dir: impl AsRef<Path>,
) -> Result<Vec<Provisioned>, LocalError> {
    let file = Config::load(Some(&config_dir.join(CONFIG_FILE_NAME)))?;
    payhook_devkit::http::check_http_url(endpoint, "--aws-endpoint")?;
    provision::validate_stage(&names.stage).map_err(|e| LocalError::Config(e.to_string()))?;
    let mut plan = stage_plan(names.clone(), rules_dir.as_ref(), Some(&file))?;
    plan.max_receive_count = config.queues.max_receive_count;
    plan.visibility_timeout_secs = config.queues.visibility_timeout_seconds;
    plan.validate()
        .map_err(|e| LocalError::Config(e.to_string()))?;
    provision_stage(endpoint, Some(region), &plan, |_| {})
        .await
        .map_err(|e| {
            LocalError::Aws(format!(
                "bootstrap of stage `{}` stopped: {e} ({}; what was created so far stays, \
                 running again continues)",
                names.stage,
                e.code()
            ))
        })
}

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
