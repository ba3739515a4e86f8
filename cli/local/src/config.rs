//! The local stack's configuration: one TOML file (`payhook.toml`) with every key overridable
//! by a `PAYHOOK_<SECTION>_<KEY>` environment variable, and `payhook config init`, which writes
//! a demo configuration with freshly generated secrets and a local demo CA for PayPal.
//!
//! `payhook serve`, `payhook demo` and `payhook send` read it through [`Config::load`]. In AWS
//! the same values live in SSM Parameter Store and the Pulumi program; this file is only for
//! the laptop (and for `payhook send` against a deployed stage).
//!
//! | key | environment variable | default |
//! |---|---|---|
//! | `api.key` | `PAYHOOK_API_KEY` | – (required) |
//! | `api.daily_quota` | `PAYHOOK_API_DAILY_QUOTA` | 10000 |
//! | `api.max_body_bytes` | `PAYHOOK_API_MAX_BODY_BYTES` | 1048576 |
//! | `api.idempotency_retention_seconds` | `PAYHOOK_API_IDEMPOTENCY_RETENTION_SECONDS` | 2592000 (30 days) |
//! | `api.stripe_key` | `PAYHOOK_API_STRIPE_KEY` | unset: `api.key` |
//! | `api.paypal_key` | `PAYHOOK_API_PAYPAL_KEY` | unset: `api.key` |
//! | `api.square_key` | `PAYHOOK_API_SQUARE_KEY` | unset: `api.key` |
//! | `stripe.signing_secrets` | `PAYHOOK_STRIPE_SIGNING_SECRETS` (comma-separated) | – (required) |
//! | `stripe.tolerance_seconds` | `PAYHOOK_STRIPE_TOLERANCE_SECONDS` | 300 |
//! | `stripe.allow_no_tolerance` | `PAYHOOK_STRIPE_ALLOW_NO_TOLERANCE` | false |
//! | `stripe.require_livemode` | `PAYHOOK_STRIPE_REQUIRE_LIVEMODE` | false |
//! | `square.signature_key` | `PAYHOOK_SQUARE_SIGNATURE_KEY` | – (required) |
//! | `square.notification_url` | `PAYHOOK_SQUARE_NOTIFICATION_URL` | `http://127.0.0.1:8787/webhooks/square` (`config init` adds `?key=`) |
//! | `paypal.webhook_id` | `PAYHOOK_PAYPAL_WEBHOOK_ID` | – (required) |
//! | `paypal.environment` | `PAYHOOK_PAYPAL_ENVIRONMENT` | `live` |
//! | `paypal.tolerance_seconds` | `PAYHOOK_PAYPAL_TOLERANCE_SECONDS` | 300 |
//! | `paypal.cert_url` | `PAYHOOK_PAYPAL_CERT_URL` | [`DEMO_PAYPAL_CERT_URL`] |
//! | `paypal.cert_file` | `PAYHOOK_PAYPAL_CERT_FILE` | unset |
//! | `paypal.trust_anchor_file` | `PAYHOOK_PAYPAL_TRUST_ANCHOR_FILE` | unset: Mozilla's roots |
//! | `paypal.signing_key_file` | `PAYHOOK_PAYPAL_SIGNING_KEY_FILE` | unset |
//! | `queues.max_receive_count` | `PAYHOOK_QUEUES_MAX_RECEIVE_COUNT` | 5 |
//! | `queues.visibility_timeout_seconds` | `PAYHOOK_QUEUES_VISIBILITY_TIMEOUT_SECONDS` | 5 |
//! | `processing.tier_high_min` | `PAYHOOK_PROCESSING_TIER_HIGH_MIN` | 1000 |
//! | `processing.tier_medium_min` | `PAYHOOK_PROCESSING_TIER_MEDIUM_MIN` | 100 |
//! | `processing.currency_rates_file` | `PAYHOOK_PROCESSING_CURRENCY_RATES_FILE` | unset: the built-in `rules/currencies/rates.json` |
//! | `tracing.sampling` | `PAYHOOK_TRACING_SAMPLING` | `all` |
//! | `aws.stage` | `PAYHOOK_AWS_STAGE` | `local` |
//! | `aws.region` | `PAYHOOK_AWS_REGION` | `us-east-1` |
//! | `aws.endpoint_url` | `PAYHOOK_AWS_ENDPOINT_URL` | unset |
//!
//! [`CONFIG_KEYS`] is the single source of this table: the environment overrides, the comments
//! of the generated file and `payhook config show` are all driven by it. Relative file paths
//! are resolved against the configuration file's folder. Unknown keys are refused, so a typo
//! cannot silently fall back to a default.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use payhook_core::Provider;
use payhook_core::Secret;
use payhook_core::ports::{MemorySecretStore, ProviderSecrets};
use payhook_core::processor::TierThresholds;
use payhook_core::signature::{
    DEFAULT_PAYPAL_TOLERANCE_SECS, PaypalCertificateCache, PaypalEnvironment,
    STRIPE_DEFAULT_TOLERANCE_SECS, StaticCertificateFetcher, TrustAnchors, check_cert_url,
};
use payhook_core::status::DEFAULT_IDEMPOTENCY_RETENTION_SECS;
use payhook_core::validator::{DEFAULT_MAX_BODY_BYTES, ValidatorConfig};
use payhook_memory::sqs::FifoQueueConfig;
use payhook_telemetry::RootSampling;
use serde::{Deserialize, Deserializer};

use payhook_devkit::democa::DemoCa;
use payhook_devkit::http::{Sender, with_key};
use payhook_devkit::payloads::{Signer, SigningKeys, random_bytes, random_string};
use payhook_devkit::write_file;

use crate::LocalError;

/// The configuration file's name in its folder.
pub const CONFIG_FILE_NAME: &str = "payhook.toml";
/// Names the configuration file when no `--config` is given (else `./payhook.toml`).
pub const CONFIG_PATH_ENV: &str = "PAYHOOK_CONFIG";
/// Prefix of every override variable: `PAYHOOK_<SECTION>_<KEY>`.
pub const ENV_PREFIX: &str = "PAYHOOK_";
/// The local stack's default port (`payhook serve`, the Square notification URL).
pub const DEFAULT_PORT: u16 = 8787;
/// API Gateway usage plan quota, requests per day.
pub const DEFAULT_DAILY_QUOTA: u64 = 10_000;
/// `maxReceiveCount` of the local queues before a message goes to the DLQ.
pub const DEFAULT_MAX_RECEIVE_COUNT: u32 = 5;
/// Visibility timeout of the local queues: short, so retries are visible within seconds.
pub const DEFAULT_LOCAL_VISIBILITY_TIMEOUT_SECS: u32 = 5;
/// Largest `maxReceiveCount` SQS accepts.
pub const MAX_RECEIVE_COUNT_LIMIT: u32 = 1000;
/// Largest visibility timeout SQS accepts, in seconds (12 hours).
pub const MAX_VISIBILITY_TIMEOUT_SECS: u32 = 43_200;
/// The PayPal certificate URL of the local demo: of the shape live PayPal uses, as the
/// verifier requires; the local stack serves `paypal.cert_file` for it, nothing is downloaded.
pub const DEMO_PAYPAL_CERT_URL: &str =
    "https://api.paypal.com/v1/notifications/certs/CERT-payhook-local-demo";
/// File name of the demo signing certificate (what the certificate URL "returns").
pub const DEMO_CHAIN_FILE: &str = "paypal-demo-chain.pem";
/// File name of the demo CA certificate (the local stack's PayPal trust anchor).
pub const DEMO_TRUST_ANCHOR_FILE: &str = "paypal-demo-ca.pem";
/// File name of the demo signing key (used only by `payhook send`).
pub const DEMO_SIGNING_KEY_FILE: &str = "paypal-demo-key.pem";

/// The type of a configuration value, which says how its environment variable is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// A string, taken verbatim.
    Text,
    /// A non-negative integer.
    Integer,
    /// A number (integer or decimal).
    Number,
    /// A list of strings; in the environment, comma-separated (blank items are dropped).
    List,
    /// `true` or `false`.
    Boolean,
}

/// One configuration key: where it lives, how it is overridden and what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigKey {
    /// The TOML table (`stripe`).
    pub section: &'static str,
    /// The key in that table (`signing_secrets`).
    pub key: &'static str,
    /// Its type.
    pub kind: KeyKind,
    /// Whether the value is a secret (redacted by `payhook config show`).
    pub secret: bool,
    /// What it means, for the generated file's comments.
    pub doc: &'static str,
    /// For optional keys: an example value shown commented out when unset.
    pub example: Option<&'static str>,
}

impl ConfigKey {
    /// The overriding environment variable: `PAYHOOK_<SECTION>_<KEY>`, upper case.
    pub fn env_var(&self) -> String {
        format!(
            "{ENV_PREFIX}{}_{}",
            self.section.to_ascii_uppercase(),
            self.key.to_ascii_uppercase()
        )
    }
}

const fn key(
    section: &'static str,
    key: &'static str,
    kind: KeyKind,
    doc: &'static str,
) -> ConfigKey {
    ConfigKey {
        section,
        key,
        kind,
        secret: false,
        doc,
        example: None,
    }
}

const fn secret(
    section: &'static str,
    key: &'static str,
    kind: KeyKind,
    doc: &'static str,
) -> ConfigKey {
    ConfigKey {
        section,
        key,
        kind,
        secret: true,
        doc,
        example: None,
    }
}

const fn optional(
    section: &'static str,
    key: &'static str,
    doc: &'static str,
    example: &'static str,
) -> ConfigKey {
    ConfigKey {
        section,
        key,
        kind: KeyKind::Text,
        secret: false,
        doc,
        example: Some(example),
    }
}

/// The sections in file order, with what each configures.
pub const CONFIG_SECTIONS: [(&str, &str); 8] = [
    (
        "api",
        "The API Gateway stand-in: POST /webhooks/{provider} with `x-api-key`.",
    ),
    ("stripe", "Stripe: `Stripe-Signature` HMAC-SHA256."),
    (
        "square",
        "Square: `x-square-hmacsha256-signature` over the notification URL + body.",
    ),
    (
        "paypal",
        "PayPal: RSA with the certificate behind `PAYPAL-CERT-URL`. Locally the certificate comes\n\
         from `cert_file` (whatever URL is sent) and must chain to `trust_anchor_file`.",
    ),
    ("queues", "The in-memory SQS FIFO queues, one per provider."),
    (
        "processing",
        "Amount tiers, in major units of the event's currency (the numbers the rules in\n\
         `rules/` use on `detail.amount`).",
    ),
    (
        "tracing",
        "X-Ray traces: which webhooks start a sampled trace (its segments in `xray.jsonl`, drawn by\n\
         `payhook trace`).",
    ),
    (
        "aws",
        "Where `--aws-endpoint` and `payhook bootstrap` create resources; SSM parameters live\n\
         under /payhook/{stage}/….",
    ),
];

/// Every key, in file order: the source of the environment overrides and of the generated
/// file's comments.
pub const CONFIG_KEYS: [ConfigKey; 29] = [
    secret(
        "api",
        "key",
        KeyKind::Text,
        "The shared API key, sent as `?key=` in the URL or in `x-api-key` (401 without a key,\n\
         403 with an unknown one): valid on every route, and the key of every provider that has\n\
         none of its own below. Each key has its own daily quota.",
    ),
    key(
        "api",
        "daily_quota",
        KeyKind::Integer,
        "Requests per day accepted with each key (the usage plan); 429 past it.",
    ),
    key(
        "api",
        "max_body_bytes",
        KeyKind::Integer,
        "Largest webhook body accepted (413 past it), checked before any signature work.",
    ),
    key(
        "api",
        "idempotency_retention_seconds",
        KeyKind::Integer,
        "How long a webhook's status item (its idempotency record) is kept after first receipt.\n\
         Events older than this less one day are refused (event_too_old), so a replay can never\n\
         outlive its record; at least 4 days (the providers retry for up to 3).",
    ),
    secret(
        "api",
        "stripe_key",
        KeyKind::Text,
        "Stripe's own API key, with its own daily quota (one usage plan key per provider, as\n\
         deployed); unset: api.key.",
    ),
    secret(
        "api",
        "paypal_key",
        KeyKind::Text,
        "PayPal's own API key; unset: api.key.",
    ),
    secret(
        "api",
        "square_key",
        KeyKind::Text,
        "Square's own API key; unset: api.key.",
    ),
    secret(
        "stripe",
        "signing_secrets",
        KeyKind::List,
        "Endpoint signing secrets (`whsec_…`). Several while one is rotated: any may match;\n\
         `payhook send` signs with the first.",
    ),
    key(
        "stripe",
        "tolerance_seconds",
        KeyKind::Integer,
        "Largest accepted age of the signature timestamp, seconds (0: no age check, refused\n\
         unless allow_no_tolerance is true).",
    ),
    key(
        "stripe",
        "allow_no_tolerance",
        KeyKind::Boolean,
        "The explicit switch that lets tolerance_seconds be 0 (no replay protection).",
    ),
    key(
        "stripe",
        "require_livemode",
        KeyKind::Boolean,
        "Answer test-mode events (livemode false) 200 ignored instead of processing them.",
    ),
    secret(
        "square",
        "signature_key",
        KeyKind::Text,
        "The subscription's signature key.",
    ),
    secret(
        "square",
        "notification_url",
        KeyKind::Text,
        "The notification URL exactly as configured on the Square subscription, `?key=` included:\n\
         it is signed with the body, so it must be the URL Square (or `payhook send`) posts to.",
    ),
    key(
        "paypal",
        "webhook_id",
        KeyKind::Text,
        "The receiver's webhook id (part of the signed string).",
    ),
    key(
        "paypal",
        "environment",
        KeyKind::Text,
        "`live` or `sandbox`: certificate URLs on PayPal's sandbox hosts are accepted only with\n\
         `sandbox`.",
    ),
    key(
        "paypal",
        "tolerance_seconds",
        KeyKind::Integer,
        "Largest distance between PAYPAL-TRANSMISSION-TIME and now, either way, seconds.",
    ),
    key(
        "paypal",
        "cert_url",
        KeyKind::Text,
        "The `PAYPAL-CERT-URL` that `payhook send` puts in its requests\n\
         (https://api.paypal.com/v1/notifications/certs/…, or a sandbox host with `sandbox`).",
    ),
    optional(
        "paypal",
        "cert_file",
        "PEM bundle the certificate URL \"returns\" locally: the signing certificate, then any\n\
         intermediates.",
        DEMO_CHAIN_FILE,
    ),
    optional(
        "paypal",
        "trust_anchor_file",
        "PEM of the root certificate(s) PayPal certificates must chain to; unset: Mozilla's roots.",
        DEMO_TRUST_ANCHOR_FILE,
    ),
    optional(
        "paypal",
        "signing_key_file",
        "PKCS#8 PEM private key of the signing certificate; used only by `payhook send`.",
        DEMO_SIGNING_KEY_FILE,
    ),
    key(
        "queues",
        "max_receive_count",
        KeyKind::Integer,
        "Receives before a message moves to the provider's DLQ (maxReceiveCount).",
    ),
    key(
        "queues",
        "visibility_timeout_seconds",
        KeyKind::Integer,
        "Visibility timeout, seconds; short locally so that retries are visible.",
    ),
    key(
        "processing",
        "tier_high_min",
        KeyKind::Number,
        "Amounts at or above this are tier `high`.",
    ),
    key(
        "processing",
        "tier_medium_min",
        KeyKind::Number,
        "Amounts at or above this (and below tier_high_min) are tier `medium`; below, `low`.",
    ),
    optional(
        "processing",
        "currency_rates_file",
        "The rates file (as `rules/currencies/rates.json`): each currency's exponent and its rate in the\n\
         reporting currency, which tiers compare; unset: the copy built into payhook.",
        "../rules/currencies/rates.json",
    ),
    key(
        "tracing",
        "sampling",
        KeyKind::Text,
        "`all`: every webhook is traced. `xray-default`: as API Gateway samples a deployed stage\n\
         with X-Ray's default rule, the first webhook each second and 5 % of the rest (the others\n\
         still have a trace id in their log lines); what a load test locally should use.",
    ),
    key(
        "aws",
        "stage",
        KeyKind::Text,
        "Stage name used in resource names and SSM paths.",
    ),
    key("aws", "region", KeyKind::Text, "AWS region."),
    optional(
        "aws",
        "endpoint_url",
        "An AWS-compatible endpoint (moto server, LocalStack); unset: real AWS.",
        "http://127.0.0.1:5000",
    ),
];

/// The whole configuration, as loaded by [`Config::load`]: paths resolved, environment
/// overrides applied, validated. `Debug` never shows a secret.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[api]`.
    #[serde(default)]
    pub api: ApiConfig,
    /// `[stripe]`.
    #[serde(default)]
    pub stripe: StripeConfig,
    /// `[square]`.
    #[serde(default)]
    pub square: SquareConfig,
    /// `[paypal]`.
    #[serde(default)]
    pub paypal: PaypalConfig,
    /// `[queues]`.
    #[serde(default)]
    pub queues: QueuesConfig,
    /// `[processing]`.
    #[serde(default)]
    pub processing: ProcessingConfig,
    /// `[tracing]`.
    #[serde(default)]
    pub tracing: TracingConfig,
    /// `[aws]`.
    #[serde(default)]
    pub aws: AwsConfig,
    /// The file this was loaded from (empty for a configuration built in memory).
    #[serde(skip)]
    pub path: PathBuf,
}

/// `[api]`: the API Gateway stand-in.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// The API key of every provider without its own (`?key=` or `x-api-key`).
    #[serde(deserialize_with = "de_secret")]
    pub key: Secret,
    /// Stripe's own key; empty: `key`.
    #[serde(deserialize_with = "de_secret")]
    pub stripe_key: Secret,
    /// PayPal's own key; empty: `key`.
    #[serde(deserialize_with = "de_secret")]
    pub paypal_key: Secret,
    /// Square's own key; empty: `key`.
    #[serde(deserialize_with = "de_secret")]
    pub square_key: Secret,
    /// Requests per day.
    pub daily_quota: u64,
    /// Largest body accepted, bytes.
    pub max_body_bytes: u64,
    /// Status item lifetime after first receipt, seconds.
    pub idempotency_retention_seconds: u64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            key: Secret::new(""),
            stripe_key: Secret::new(""),
            paypal_key: Secret::new(""),
            square_key: Secret::new(""),
            daily_quota: DEFAULT_DAILY_QUOTA,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES as u64,
            idempotency_retention_seconds: DEFAULT_IDEMPOTENCY_RETENTION_SECS.unsigned_abs(),
        }
    }
}

/// `[stripe]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StripeConfig {
    /// Endpoint secrets; the first signs `payhook send` requests.
    #[serde(deserialize_with = "de_secrets")]
    pub signing_secrets: Vec<Secret>,
    /// Tolerance on the signature's age, seconds.
    pub tolerance_seconds: u64,
    /// Lets `tolerance_seconds` be 0.
    pub allow_no_tolerance: bool,
    /// Ignore test-mode events.
    pub require_livemode: bool,
}

impl Default for StripeConfig {
    fn default() -> Self {
        StripeConfig {
            signing_secrets: Vec::new(),
            tolerance_seconds: STRIPE_DEFAULT_TOLERANCE_SECS,
            allow_no_tolerance: false,
            require_livemode: false,
        }
    }
}

/// `[square]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SquareConfig {
    /// The subscription's signature key.
    #[serde(deserialize_with = "de_secret")]
    pub signature_key: Secret,
    /// The URL Square signs together with the body.
    pub notification_url: String,
}

impl Default for SquareConfig {
    fn default() -> Self {
        SquareConfig {
            signature_key: Secret::new(""),
            notification_url: local_webhook_url(DEFAULT_PORT, Provider::Square),
        }
    }
}

/// `[paypal]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PaypalConfig {
    /// The receiver's webhook id.
    pub webhook_id: String,
    /// Live PayPal or the sandbox.
    #[serde(deserialize_with = "de_parsed")]
    pub environment: PaypalEnvironment,
    /// Transmission-time tolerance, seconds.
    pub tolerance_seconds: u64,
    /// `PAYPAL-CERT-URL` sent by `payhook send`.
    pub cert_url: String,
    /// What the certificate URL returns locally (leaf, then intermediates).
    pub cert_file: Option<PathBuf>,
    /// Trust anchors; `None`: Mozilla's roots.
    pub trust_anchor_file: Option<PathBuf>,
    /// The signing key for `payhook send`.
    pub signing_key_file: Option<PathBuf>,
}

impl Default for PaypalConfig {
    fn default() -> Self {
        PaypalConfig {
            webhook_id: String::new(),
            environment: PaypalEnvironment::Live,
            tolerance_seconds: DEFAULT_PAYPAL_TOLERANCE_SECS,
            cert_url: DEMO_PAYPAL_CERT_URL.to_owned(),
            cert_file: None,
            trust_anchor_file: None,
            signing_key_file: None,
        }
    }
}

/// `[queues]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueuesConfig {
    /// `maxReceiveCount`.
    pub max_receive_count: u32,
    /// Visibility timeout, seconds.
    pub visibility_timeout_seconds: u32,
}

impl Default for QueuesConfig {
    fn default() -> Self {
        QueuesConfig {
            max_receive_count: DEFAULT_MAX_RECEIVE_COUNT,
            visibility_timeout_seconds: DEFAULT_LOCAL_VISIBILITY_TIMEOUT_SECS,
        }
    }
}

/// `[processing]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessingConfig {
    /// Lower bound of tier `high`, major units.
    pub tier_high_min: f64,
    /// Lower bound of tier `medium`, major units.
    pub tier_medium_min: f64,
    /// The rates file; `None`: the built-in copy.
    pub currency_rates_file: Option<PathBuf>,
}

impl Default for ProcessingConfig {
    fn default() -> Self {
        let tiers = TierThresholds::default();
        ProcessingConfig {
            tier_high_min: tiers.high_min,
            tier_medium_min: tiers.medium_min,
            currency_rates_file: None,
        }
    }
}

/// `[tracing]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TracingConfig {
    /// Which webhooks start a sampled trace.
    #[serde(deserialize_with = "de_parsed")]
    pub sampling: RootSampling,
}

/// `[aws]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AwsConfig {
    /// Stage name.
    pub stage: String,
    /// Region.
    pub region: String,
    /// AWS-compatible endpoint, if not real AWS.
    pub endpoint_url: Option<String>,
}

impl Default for AwsConfig {
    fn default() -> Self {
        AwsConfig {
            stage: payhook_aws::provision::DEFAULT_LOCAL_STAGE.to_owned(),
            region: payhook_aws::DEFAULT_REGION.to_owned(),
            endpoint_url: None,
        }
    }
}

fn de_secret<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
    String::deserialize(deserializer).map(Secret::new)
}

fn de_parsed<'de, D: Deserializer<'de>, T>(deserializer: D) -> Result<T, D::Error>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    String::deserialize(deserializer)?
        .parse()
        .map_err(serde::de::Error::custom)
}

fn de_secrets<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Secret>, D::Error> {
    Vec::<String>::deserialize(deserializer).map(|v| v.into_iter().map(Secret::new).collect())
}

/// `http://127.0.0.1:{port}/webhooks/{provider}`: the local stack's webhook URL.
pub fn local_webhook_url(port: u16, provider: Provider) -> String {
    format!("http://127.0.0.1:{port}/webhooks/{provider}")
}

impl Config {
    /// Loads the configuration: the file at `path`, else the one named by `PAYHOOK_CONFIG`,
    /// else `./payhook.toml`; then the `PAYHOOK_…` overrides; then validation.
    ///
    /// A missing file is a usage error that says to run `payhook config init`.
    pub fn load(path: Option<&Path>) -> Result<Config, LocalError> {
        Config::load_with_env(path, |name| std::env::var(name).ok())
    }

    /// [`Config::load`] with the environment given as a lookup function (tests, embedding).
    pub fn load_with_env(
        path: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, LocalError> {
        let path = match path {
            Some(path) => path.to_path_buf(),
            None => env(CONFIG_PATH_ENV)
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(CONFIG_FILE_NAME)),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(LocalError::Config(format!(
                    "no configuration file at {}: run `payhook config init` to write one with \
                     fresh demo secrets (or pass --config FILE, or set {CONFIG_PATH_ENV})",
                    path.display()
                )));
            }
            Err(e) => {
                return Err(LocalError::Config(format!(
                    "cannot read {}: {e}",
                    path.display()
                )));
            }
        };
        Config::from_toml_with_env(&text, &path, env)
    }

    /// Parses configuration `text` as if read from `path` (which anchors relative file
    /// paths), applies the overrides found by `env`, and validates.
    pub fn from_toml_with_env(
        text: &str,
        path: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, LocalError> {
        let shown = path.display();
        let mut table: toml::Table = text
            .parse()
            .map_err(|e| LocalError::Config(format!("{shown} is not valid TOML: {e}")))?;
        apply_env_overrides(&mut table, &env)?;
        let mut config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e| LocalError::Config(format!("{shown}: {e}")))?;
        config.path = path.to_path_buf();
        let base = config.base_dir();
        for file in [
            &mut config.paypal.cert_file,
            &mut config.paypal.trust_anchor_file,
            &mut config.paypal.signing_key_file,
            &mut config.processing.currency_rates_file,
        ] {
            if let Some(relative) = file.as_ref().filter(|p| p.is_relative()) {
                *file = Some(base.join(relative));
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// The folder relative paths are resolved against: the configuration file's.
    pub fn base_dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// Checks every value; all problems are reported at once.
    pub fn validate(&self) -> Result<(), LocalError> {
        let mut problems: Vec<String> = Vec::new();
        let mut require = |ok: bool, what: &str| {
            if !ok {
                problems.push(what.to_owned());
            }
        };
        require(
            !self.api.key.is_empty(),
            "api.key is empty or missing (PAYHOOK_API_KEY)",
        );
        require(
            self.api.daily_quota > 0,
            "api.daily_quota must be at least 1",
        );
        require(
            !self.stripe.signing_secrets.is_empty(),
            "stripe.signing_secrets needs at least one secret (PAYHOOK_STRIPE_SIGNING_SECRETS)",
        );
        require(
            self.stripe.signing_secrets.iter().all(|s| !s.is_empty()),
            "stripe.signing_secrets holds an empty secret",
        );
        require(
            !self.square.signature_key.is_empty(),
            "square.signature_key is empty or missing (PAYHOOK_SQUARE_SIGNATURE_KEY)",
        );
        require(
            url::Url::parse(&self.square.notification_url)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https")),
            "square.notification_url must be an absolute http(s) URL",
        );
        require(
            !self.paypal.webhook_id.is_empty(),
            "paypal.webhook_id is empty or missing (PAYHOOK_PAYPAL_WEBHOOK_ID)",
        );
        if let Err(e) = check_cert_url(&self.paypal.cert_url, self.paypal.environment) {
            problems.push(format!("paypal.cert_url: {e}"));
        }
        if let Err(e) = self.validator_config().validate() {
            problems.push(e.0);
        }
        if let Err(e) = self.currency_rates() {
            problems.push(e.to_string());
        }
        for (name, file) in [
            ("paypal.cert_file", &self.paypal.cert_file),
            ("paypal.trust_anchor_file", &self.paypal.trust_anchor_file),
        ] {
            if let Some(file) = file
                && !file.is_file()
            {
                problems.push(format!("{name}: no file at {}", file.display()));
            }
        }
        let queues = &self.queues;
        let mut require = |ok: bool, what: &str| {
            if !ok {
                problems.push(what.to_owned());
            }
        };
        require(
            (1..=MAX_RECEIVE_COUNT_LIMIT).contains(&queues.max_receive_count),
            "queues.max_receive_count must be 1 to 1000",
        );
        require(
            queues.visibility_timeout_seconds <= MAX_VISIBILITY_TIMEOUT_SECS,
            "queues.visibility_timeout_seconds must be at most 43200",
        );
        let tiers = &self.processing;
        require(
            tiers.tier_high_min.is_finite()
                && tiers.tier_medium_min.is_finite()
                && tiers.tier_medium_min >= 0.0
                && tiers.tier_medium_min <= tiers.tier_high_min,
            "processing: need 0 <= tier_medium_min <= tier_high_min",
        );
        require(!self.aws.stage.is_empty(), "aws.stage is empty");
        require(!self.aws.region.is_empty(), "aws.region is empty");
        require(
            self.aws
                .endpoint_url
                .as_deref()
                .is_none_or(|u| url::Url::parse(u).is_ok()),
            "aws.endpoint_url is not an absolute URL",
        );
        if problems.is_empty() {
            Ok(())
        } else {
            Err(LocalError::Config(format!(
                "{}: invalid configuration:\n  - {}",
                self.path.display(),
                problems.join("\n  - ")
            )))
        }
    }

    /// What the validator needs to verify `provider`'s webhooks.
    pub fn provider_secrets(&self, provider: Provider) -> ProviderSecrets {
        match provider {
            Provider::Stripe => ProviderSecrets {
                signing_secrets: self.stripe.signing_secrets.clone(),
                notification_url: None,
                webhook_id: None,
            },
            Provider::Square => ProviderSecrets {
                signing_secrets: vec![self.square.signature_key.clone()],
                notification_url: Some(self.square.notification_url.clone()),
                webhook_id: None,
            },
            Provider::Paypal => ProviderSecrets {
                signing_secrets: Vec::new(),
                notification_url: None,
                webhook_id: Some(self.paypal.webhook_id.clone()),
            },
        }
    }

    /// Every provider's secrets, as the local stack's secret store.
    pub fn secret_store(&self) -> MemorySecretStore {
        Provider::ALL
            .into_iter()
            .fold(MemorySecretStore::new(), |store, provider| {
                store.with(provider, self.provider_secrets(provider))
            })
    }

    /// The validator's settings, as the Lambda reads them from its environment.
    pub fn validator_config(&self) -> ValidatorConfig {
        ValidatorConfig {
            stripe_tolerance_secs: self.stripe.tolerance_seconds,
            stripe_allow_no_tolerance: self.stripe.allow_no_tolerance,
            stripe_require_livemode: self.stripe.require_livemode,
            paypal_tolerance_secs: self.paypal.tolerance_seconds,
            paypal_environment: self.paypal.environment,
            idempotency_retention_secs: i64::try_from(self.api.idempotency_retention_seconds)
                .unwrap_or(i64::MAX),
            max_body_bytes: usize::try_from(self.api.max_body_bytes).unwrap_or(usize::MAX),
            // `validate` has refused a file that does not load, so the fallback is not reached.
            rates: Arc::new(
                self.currency_rates()
                    .unwrap_or_else(|_| payhook_core::currency::Rates::usd_only()),
            ),
        }
    }

    /// The rates file: `processing.currency_rates_file`, else the built-in copy of
    /// `rules/currencies/rates.json`.
    pub fn currency_rates(&self) -> Result<payhook_core::currency::Rates, LocalError> {
        let invalid = |e: payhook_core::currency::RatesError| {
            LocalError::Config(format!("processing.currency_rates_file: {e}"))
        };
        match &self.processing.currency_rates_file {
            None => payhook_core::currency::Rates::bundled().map_err(invalid),
            Some(_) => {
                let bytes = read_configured(
                    &self.processing.currency_rates_file,
                    "processing.currency_rates_file",
                )?;
                let text = String::from_utf8(bytes).map_err(|_| {
                    LocalError::Config("processing.currency_rates_file: not UTF-8".into())
                })?;
                payhook_core::currency::Rates::from_json(&text).map_err(invalid)
            }
        }
    }

    /// The processors' amount tiers.
    pub fn tier_thresholds(&self) -> TierThresholds {
        TierThresholds {
            high_min: self.processing.tier_high_min,
            medium_min: self.processing.tier_medium_min,
        }
    }

    /// `provider`'s local FIFO queue: `{provider}.fifo` as deployed, with this file's
    /// `maxReceiveCount` and visibility timeout.
    pub fn fifo_queue_config(&self, provider: Provider) -> FifoQueueConfig {
        FifoQueueConfig::for_provider(provider)
            .max_receive_count(self.queues.max_receive_count)
            .visibility_timeout_secs(self.queues.visibility_timeout_seconds)
    }

    /// The PEM bundle the certificate URL "returns" locally (`paypal.cert_file`).
    pub fn paypal_certificate_bundle(&self) -> Result<Vec<u8>, LocalError> {
        read_configured(&self.paypal.cert_file, "paypal.cert_file")
    }

    /// PayPal's trust anchors: `paypal.trust_anchor_file`, or Mozilla's roots when unset.
    pub fn paypal_trust_anchors(&self) -> Result<TrustAnchors, LocalError> {
        match &self.paypal.trust_anchor_file {
            None => Ok(TrustAnchors::mozilla()),
            Some(_) => {
                let pem =
                    read_configured(&self.paypal.trust_anchor_file, "paypal.trust_anchor_file")?;
                TrustAnchors::from_pem(&pem)
                    .map_err(|e| LocalError::Config(format!("paypal.trust_anchor_file: {e}")))
            }
        }
    }

    /// The local stack's PayPal certificate cache: `paypal.cert_file` served for every URL,
    /// checked against [`Config::paypal_trust_anchors`].
    pub fn paypal_certificate_cache(&self) -> Result<Arc<PaypalCertificateCache>, LocalError> {
        let fetcher = Arc::new(StaticCertificateFetcher::new(
            self.paypal_certificate_bundle()?,
        ));
        Ok(Arc::new(PaypalCertificateCache::new(
            fetcher,
            self.paypal_trust_anchors()?,
        )))
    }

    /// The PKCS#8 PEM signing key `payhook send` signs PayPal webhooks with.
    pub fn paypal_signing_key_pem(&self) -> Result<Vec<u8>, LocalError> {
        read_configured(&self.paypal.signing_key_file, "paypal.signing_key_file")
    }

    /// What a [`Signer`] signs with: the first Stripe secret, Square's key and URL, PayPal's
    /// webhook id, certificate URL and the key of `paypal.signing_key_file` when that is set
    /// (without it only PayPal signing fails).
    pub fn signing_keys(&self) -> Result<SigningKeys, LocalError> {
        let paypal_key_pem = match self.paypal.signing_key_file {
            Some(_) => Some(self.paypal_signing_key_pem()?),
            None => None,
        };
        Ok(SigningKeys {
            stripe_secret: self
                .stripe
                .signing_secrets
                .first()
                .cloned()
                .unwrap_or_else(|| Secret::new("")),
            square_key: self.square.signature_key.clone(),
            square_url: self.square.notification_url.clone(),
            paypal_webhook_id: self.paypal.webhook_id.clone(),
            paypal_cert_url: self.paypal.cert_url.clone(),
            paypal_key_pem,
        })
    }

    /// A [`Signer`] over this configuration's secrets.
    pub fn signer(&self) -> Result<Signer, LocalError> {
        Ok(Signer::new(self.signing_keys()?)?)
    }

    /// A [`Sender`] with this configuration's secrets and each provider's API key, sent as
    /// `?key=`.
    pub fn sender(&self) -> Result<Sender, LocalError> {
        let by_provider = Provider::ALL
            .iter()
            .map(|&p| (p, self.api_key(p).clone()))
            .collect();
        Ok(Sender::new(
            self.signer()?,
            by_provider,
            self.api.key.clone(),
        )?)
    }

    /// The local stack's URL for `provider`'s webhooks, without the key: derived from
    /// `square.notification_url` when it has the local shape `…/webhooks/square[?…]` (so
    /// `config init --port` carries over), else `http://127.0.0.1:8787/webhooks/{provider}`.
    pub fn webhook_url(&self, provider: Provider) -> String {
        let url = &self.square.notification_url;
        let path = url.split_once('?').map_or(url.as_str(), |(path, _)| path);
        match path.strip_suffix("/webhooks/square") {
            Some(base) if !base.is_empty() => format!("{base}/webhooks/{provider}"),
            _ => local_webhook_url(DEFAULT_PORT, provider),
        }
    }

    /// The API key `provider` sends: its own (`api.<provider>_key`) or the shared `api.key`.
    pub fn api_key(&self, provider: Provider) -> &Secret {
        let own = match provider {
            Provider::Stripe => &self.api.stripe_key,
            Provider::Paypal => &self.api.paypal_key,
            Provider::Square => &self.api.square_key,
        };
        if own.is_empty() { &self.api.key } else { own }
    }

    /// The URL to register with `provider`: [`Config::webhook_url`] with its key as `?key=`.
    pub fn registered_url(&self, provider: Provider) -> String {
        with_key(&self.webhook_url(provider), self.api_key(provider).expose())
    }

    /// The value of one key as TOML (`None` when an optional key is unset); paths are shown
    /// relative to the configuration's folder when they are inside it.
    pub fn value_of(&self, key: &ConfigKey) -> Option<toml::Value> {
        use toml::Value;
        let text = |s: &str| Some(Value::String(s.to_owned()));
        let int = |n: u64| Some(Value::Integer(i64::try_from(n).unwrap_or(i64::MAX)));
        let path = |p: &Option<PathBuf>| {
            p.as_ref().map(|p| {
                let base = self.base_dir();
                let shown = p.strip_prefix(&base).unwrap_or(p);
                Value::String(shown.display().to_string())
            })
        };
        match (key.section, key.key) {
            ("api", "key") => text(self.api.key.expose()),
            ("api", "stripe_key") => Some(self.api.stripe_key.expose())
                .filter(|k| !k.is_empty())
                .and_then(text),
            ("api", "paypal_key") => Some(self.api.paypal_key.expose())
                .filter(|k| !k.is_empty())
                .and_then(text),
            ("api", "square_key") => Some(self.api.square_key.expose())
                .filter(|k| !k.is_empty())
                .and_then(text),
            ("api", "daily_quota") => int(self.api.daily_quota),
            ("api", "max_body_bytes") => int(self.api.max_body_bytes),
            ("api", "idempotency_retention_seconds") => int(self.api.idempotency_retention_seconds),
            ("stripe", "allow_no_tolerance") => {
                Some(Value::Boolean(self.stripe.allow_no_tolerance))
            }
            ("stripe", "require_livemode") => Some(Value::Boolean(self.stripe.require_livemode)),
            ("paypal", "environment") => text(self.paypal.environment.as_str()),
            ("paypal", "tolerance_seconds") => int(self.paypal.tolerance_seconds),
            ("stripe", "signing_secrets") => Some(Value::Array(
                self.stripe
                    .signing_secrets
                    .iter()
                    .map(|s| Value::String(s.expose().to_owned()))
                    .collect(),
            )),
            ("stripe", "tolerance_seconds") => int(self.stripe.tolerance_seconds),
            ("square", "signature_key") => text(self.square.signature_key.expose()),
            ("square", "notification_url") => text(&self.square.notification_url),
            ("paypal", "webhook_id") => text(&self.paypal.webhook_id),
            ("paypal", "cert_url") => text(&self.paypal.cert_url),
            ("paypal", "cert_file") => path(&self.paypal.cert_file),
            ("paypal", "trust_anchor_file") => path(&self.paypal.trust_anchor_file),
            ("paypal", "signing_key_file") => path(&self.paypal.signing_key_file),
            ("queues", "max_receive_count") => int(u64::from(self.queues.max_receive_count)),
            ("queues", "visibility_timeout_seconds") => {
                int(u64::from(self.queues.visibility_timeout_seconds))
            }
            ("processing", "tier_high_min") => Some(number(self.processing.tier_high_min)),
            ("processing", "tier_medium_min") => Some(number(self.processing.tier_medium_min)),
            ("processing", "currency_rates_file") => path(&self.processing.currency_rates_file),
            ("tracing", "sampling") => text(self.tracing.sampling.as_str()),
            ("aws", "stage") => text(&self.aws.stage),
            ("aws", "region") => text(&self.aws.region),
            ("aws", "endpoint_url") => self.aws.endpoint_url.as_deref().and_then(text),
            _ => None,
        }
    }

    /// The configuration as a commented TOML file: every key with what it means and its
    /// environment variable. With `redact`, secrets print as `[redacted]` (for display).
    pub fn render(&self, redact: bool) -> String {
        let mut out = String::new();
        out.push_str(FILE_HEADER);
        for (section, about) in CONFIG_SECTIONS {
            let _ = writeln!(out, "\n{}\n[{section}]", comment(about));
            for key in CONFIG_KEYS.iter().filter(|k| k.section == section) {
                let _ = writeln!(out, "\n{}\n# env: {}", comment(key.doc), env_doc(key));
                match self.value_of(key) {
                    Some(_) if redact && key.secret => {
                        let _ = writeln!(out, "{} = \"[redacted]\"", key.key);
                    }
                    Some(value) => {
                        let _ = writeln!(out, "{} = {value}", key.key);
                    }
                    None => {
                        let example = toml::Value::String(key.example.unwrap_or("").to_owned());
                        let _ = writeln!(out, "# {} = {example}", key.key);
                    }
                }
            }
        }
        out
    }

    /// A demo configuration for the local stack in `dir` on `port`, with freshly generated
    /// random secrets and the demo PayPal files' default names (not written; see [`init`]).
    pub fn generate(dir: &Path, port: u16) -> Result<Config, LocalError> {
        let square_key = format!("phk_square_{}", random_string(ALPHANUMERIC, 40)?);
        Ok(Config {
            // One key per provider, each with its own quota, as deployed; api.key is the
            // fallback for a provider whose own key is removed.
            api: ApiConfig {
                key: Secret::new(format!("phk_{}", random_string(ALPHANUMERIC, 40)?)),
                stripe_key: Secret::new(format!("phk_stripe_{}", random_string(ALPHANUMERIC, 40)?)),
                paypal_key: Secret::new(format!("phk_paypal_{}", random_string(ALPHANUMERIC, 40)?)),
                square_key: Secret::new(square_key.clone()),
                ..ApiConfig::default()
            },
            stripe: StripeConfig {
                // Like the Stripe CLI's: `whsec_` and 32 random bytes in hex.
                signing_secrets: vec![Secret::new(format!(
                    "whsec_{}",
                    hex::encode(random_bytes::<32>()?)
                ))],
                ..StripeConfig::default()
            },
            square: SquareConfig {
                // Square's keys are 22 characters of URL-safe base64: 16 random bytes.
                signature_key: Secret::new(
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<16>()?),
                ),
                // Square signs the URL as registered, its `?key=` included.
                notification_url: with_key(&local_webhook_url(port, Provider::Square), &square_key),
            },
            paypal: PaypalConfig {
                webhook_id: random_string(UPPER_ALPHANUMERIC, 17)?,
                cert_file: Some(dir.join(DEMO_CHAIN_FILE)),
                trust_anchor_file: Some(dir.join(DEMO_TRUST_ANCHOR_FILE)),
                signing_key_file: Some(dir.join(DEMO_SIGNING_KEY_FILE)),
                ..PaypalConfig::default()
            },
            queues: QueuesConfig::default(),
            processing: ProcessingConfig::default(),
            tracing: TracingConfig::default(),
            aws: AwsConfig::default(),
            path: dir.join(CONFIG_FILE_NAME),
        })
    }
}

const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const UPPER_ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

const FILE_HEADER: &str = "\
# payhook: the local stack's configuration (`payhook serve`, `payhook demo`, `payhook send`).
#
# Every key can be overridden by an environment variable PAYHOOK_<SECTION>_<KEY> in upper
# case (each key below names its own); lists are comma-separated, for example
#   PAYHOOK_STRIPE_SIGNING_SECRETS=whsec_new,whsec_old
# Relative file paths are resolved against this file's folder.
#
# The secrets here are random values for the local stack only. A deployed stage keeps its
# secrets in SSM Parameter Store under /payhook/{stage}/{provider}/…; never copy these there.
";

fn comment(text: &str) -> String {
    text.lines()
        .map(|line| format!("# {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn env_doc(key: &ConfigKey) -> String {
    match key.kind {
        KeyKind::List => format!("{} (comma-separated)", key.env_var()),
        _ => key.env_var(),
    }
}

/// A TOML number: an integer when the value is whole (so `1000` stays `1000`).
fn number(value: f64) -> toml::Value {
    if value.fract() == 0.0 && value.abs() < 9.0e15 {
        toml::Value::Integer(value as i64)
    } else {
        toml::Value::Float(value)
    }
}

/// Writes every `PAYHOOK_<SECTION>_<KEY>` found by `env` into `table`, typed by its key.
fn apply_env_overrides(
    table: &mut toml::Table,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(), LocalError> {
    for key in &CONFIG_KEYS {
        let name = key.env_var();
        let Some(raw) = env(&name) else {
            continue;
        };
        let bad = |what: &str| LocalError::Config(format!("{name}={raw:?} is not {what}"));
        let value = match key.kind {
            KeyKind::Text => toml::Value::String(raw.clone()),
            KeyKind::Integer => raw
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .map(toml::Value::Integer)
                .ok_or_else(|| bad("a non-negative integer"))?,
            KeyKind::Number => raw
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .map(number)
                .ok_or_else(|| bad("a number"))?,
            KeyKind::Boolean => match raw.trim() {
                "true" => toml::Value::Boolean(true),
                "false" => toml::Value::Boolean(false),
                _ => return Err(bad("true or false")),
            },
            KeyKind::List => toml::Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(|item| toml::Value::String(item.to_owned()))
                    .collect(),
            ),
        };
        let section = table
            .entry(key.section)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let toml::Value::Table(section) = section else {
            return Err(LocalError::Config(format!(
                "`{}` must be a table ([{}]) to apply {name}",
                key.section, key.section
            )));
        };
        section.insert(key.key.to_owned(), value);
    }
    Ok(())
}

fn read_configured(file: &Option<PathBuf>, name: &str) -> Result<Vec<u8>, LocalError> {
    let path = file.as_ref().ok_or_else(|| {
        LocalError::Config(format!(
            "{name} is not set in the configuration (run `payhook config init` for a demo one)"
        ))
    })?;
    std::fs::read(path)
        .map_err(|e| LocalError::Config(format!("{name}: cannot read {}: {e}", path.display())))
}

/// Writes a demo configuration into `dir` (created if needed): `payhook.toml` with fresh
/// random secrets for a stack on `port`, and the demo PayPal CA, certificate and key
/// ([`DemoCa`]), valid from a day before `now_unix`. Refuses to overwrite any of those files
/// unless `force`. Returns the configuration as [`Config::load`] will read it.
pub fn init(dir: &Path, port: u16, force: bool, now_unix: i64) -> Result<Config, LocalError> {
    init_with_ca(dir, port, force, || DemoCa::generate(now_unix))
}

/// [`init`] with the demo CA from `demo_ca` (called only once nothing stands in the way), so
/// that tests and repeated demo runs can reuse one CA: RSA key generation is the slow part.
pub fn init_with_ca(
    dir: &Path,
    port: u16,
    force: bool,
    demo_ca: impl FnOnce() -> Result<DemoCa, payhook_devkit::DevkitError>,
) -> Result<Config, LocalError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| LocalError::Io(format!("cannot create {}: {e}", dir.display())))?;
    let config = Config::generate(dir, port)?;
    let chain = dir.join(DEMO_CHAIN_FILE);
    let anchor = dir.join(DEMO_TRUST_ANCHOR_FILE);
    let key = dir.join(DEMO_SIGNING_KEY_FILE);
    if !force {
        let existing: Vec<String> = [&config.path, &chain, &anchor, &key]
            .into_iter()
            .filter(|p| p.exists())
            .map(|p| p.display().to_string())
            .collect();
        if !existing.is_empty() {
            return Err(LocalError::Config(format!(
                "{} already exist(s); pass --force to replace them with new secrets",
                existing.join(", ")
            )));
        }
    }
    demo_ca()?.write(&chain, &anchor, &key)?;
    write_file(&config.path, config.render(false).as_bytes(), true)?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_a_section_and_a_unique_env_var() {
        let mut seen = std::collections::HashSet::new();
        for key in &CONFIG_KEYS {
            assert!(
                CONFIG_SECTIONS.iter().any(|(s, _)| *s == key.section),
                "{}",
                key.key
            );
            assert!(seen.insert(key.env_var()), "{}", key.env_var());
        }
        assert_eq!(CONFIG_KEYS[1].env_var(), "PAYHOOK_API_DAILY_QUOTA");
    }

    #[test]
    fn module_docs_list_every_env_var() {
        let docs: String = include_str!("config.rs")
            .lines()
            .filter(|line| line.starts_with("//!"))
            .collect();
        for key in &CONFIG_KEYS {
            assert!(
                docs.contains(&format!("`{}.{}`", key.section, key.key)),
                "{}",
                key.key
            );
            assert!(docs.contains(&key.env_var()), "{}", key.env_var());
        }
    }

    #[test]
    fn env_lists_are_comma_separated_and_numbers_are_typed() {
        let mut table = toml::Table::new();
        let env = |name: &str| match name {
            "PAYHOOK_STRIPE_SIGNING_SECRETS" => Some(" whsec_a, whsec_b ,,".to_owned()),
            "PAYHOOK_PROCESSING_TIER_HIGH_MIN" => Some("2500.5".to_owned()),
            "PAYHOOK_API_DAILY_QUOTA" => Some("42".to_owned()),
            _ => None,
        };
        apply_env_overrides(&mut table, &env).unwrap();
        assert_eq!(
            table["stripe"]["signing_secrets"],
            toml::Value::Array(vec!["whsec_a".into(), "whsec_b".into()])
        );
        assert_eq!(
            table["processing"]["tier_high_min"],
            toml::Value::Float(2500.5)
        );
        assert_eq!(table["api"]["daily_quota"], toml::Value::Integer(42));
    }

    #[test]
    fn a_bad_env_number_names_the_variable() {
        let mut table = toml::Table::new();
        let env = |name: &str| (name == "PAYHOOK_QUEUES_MAX_RECEIVE_COUNT").then(|| "-3".into());
        let err = apply_env_overrides(&mut table, &env).unwrap_err();
        assert!(
            err.to_string().contains("PAYHOOK_QUEUES_MAX_RECEIVE_COUNT"),
            "{err}"
        );
    }

    #[test]
    fn trace_sampling_is_all_unless_set_and_a_bad_value_names_the_key() {
        let text = Config::generate(Path::new("demo"), 9000)
            .unwrap()
            .render(false);
        let load = |value: Option<&str>| {
            let mut table: toml::Table = text.parse().unwrap();
            let env = |name: &str| {
                (name == "PAYHOOK_TRACING_SAMPLING")
                    .then(|| value.map(str::to_owned))
                    .flatten()
            };
            apply_env_overrides(&mut table, &env).unwrap();
            toml::Value::Table(table)
                .try_into::<Config>()
                .map(|c| c.tracing.sampling)
        };
        assert_eq!(load(None).unwrap(), RootSampling::All);
        assert_eq!(
            load(Some("xray-default")).unwrap(),
            RootSampling::XrayDefault
        );
        let err = load(Some("half")).unwrap_err().to_string();
        assert!(err.contains("sampling") && err.contains("half"), "{err}");
    }

    #[test]
    fn every_key_renders_and_parses_back() {
        let dir = Path::new("demo");
        let mut config = Config::generate(dir, 9000).unwrap();
        config.aws.endpoint_url = Some("http://127.0.0.1:5000".into());
        config.processing.tier_medium_min = 99.5;
        config.processing.currency_rates_file = Some(dir.join("rates.json"));
        config.tracing.sampling = RootSampling::XrayDefault;
        let text = config.render(false);
        for key in &CONFIG_KEYS {
            assert!(text.contains(&key.env_var()), "{}", key.env_var());
            assert!(config.value_of(key).is_some(), "{}", key.key);
        }
        let table: toml::Table = text.parse().unwrap();
        let mut parsed: Config = toml::Value::Table(table).try_into().unwrap();
        parsed.path = config.path.clone();
        for file in [
            &mut parsed.paypal.cert_file,
            &mut parsed.paypal.trust_anchor_file,
            &mut parsed.paypal.signing_key_file,
            &mut parsed.processing.currency_rates_file,
        ] {
            *file = file.as_ref().map(|f| dir.join(f));
        }
        assert_eq!(parsed, config);
    }

    #[test]
    fn redacted_rendering_hides_every_secret() {
        let config = Config::generate(Path::new("."), DEFAULT_PORT).unwrap();
        let text = config.render(true);
        assert!(!text.contains(config.api.key.expose()));
        assert!(!text.contains(config.stripe.signing_secrets[0].expose()));
        assert!(!text.contains(config.square.signature_key.expose()));
        assert!(text.contains(&config.paypal.webhook_id));
        assert!(!format!("{config:?}").contains(config.api.key.expose()));
    }

    #[test]
    fn webhook_url_follows_the_configured_port() {
        let config = Config::generate(Path::new("."), 9123).unwrap();
        assert_eq!(
            config.webhook_url(Provider::Paypal),
            "http://127.0.0.1:9123/webhooks/paypal"
        );
    }
}
