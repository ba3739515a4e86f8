//! `payhook verify`: checks one webhook's signature offline, for people debugging a failing
//! webhook. Exit 0 valid, 1 invalid (JSON on stdout), 2 usage error.
//!
//! Real signatures and secrets need not go on the command line (where shell history and the
//! process list keep them): headers can come from a file (`--header-file`, one `Name: value`
//! per line, as copied from a request log) and secrets from an environment variable
//! (`--secret-env`) or a file (`--secret-file`, one secret per line).

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use payhook_aws::HttpsCertificateFetcher;
use payhook_core::signature::{
    CertificateFetcher, DEFAULT_PAYPAL_TOLERANCE_SECS, PaypalCertificateCache, PaypalEnvironment,
    PaypalVerifier, STRIPE_DEFAULT_TOLERANCE_SECS, SignatureError, SquareVerifier,
    StaticCertificateFetcher, StripeVerifier, TrustAnchors,
};
use payhook_core::{Headers, Provider, Secret};
use payhook_devkit::unix_now;
use serde_json::json;

use crate::CliError;

/// Arguments of `payhook verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Which provider's rules to apply: stripe, square or paypal.
    #[arg(long)]
    provider: Provider,
    /// File holding the exact raw request body.
    #[arg(long)]
    body_file: PathBuf,
    /// A request header as `Name: value` (repeatable).
    #[arg(long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// A file of request headers, one `Name: value` per line (blank lines and lines starting
    /// with `#` are skipped); repeatable, and combined with `--header`.
    #[arg(long = "header-file", value_name = "PATH")]
    header_files: Vec<PathBuf>,
    /// Stripe endpoint secret or Square signature key (repeatable: rotation). Prefer
    /// `--secret-env` or `--secret-file` for real secrets.
    #[arg(long = "secret")]
    secrets: Vec<String>,
    /// The name of an environment variable holding a secret (repeatable).
    #[arg(long = "secret-env", value_name = "VAR")]
    secret_envs: Vec<String>,
    /// A file holding secrets, one per line (repeatable).
    #[arg(long = "secret-file", value_name = "PATH")]
    secret_files: Vec<PathBuf>,
    /// Square: the notification URL configured on the subscription.
    #[arg(long)]
    notification_url: Option<String>,
    /// PayPal: the receiver's webhook id.
    #[arg(long)]
    webhook_id: Option<String>,
    /// PayPal: what PAYPAL-CERT-URL would return (leaf plus intermediates), used instead of
    /// downloading it; the URL policy still applies to the header. Without it the certificate
    /// is downloaded over HTTPS.
    #[arg(long)]
    cert_file: Option<PathBuf>,
    /// PayPal: trust anchor PEM replacing the default (Mozilla) roots (repeatable).
    #[arg(long = "trust-anchor")]
    trust_anchors: Vec<PathBuf>,
    /// PayPal: `live` or `sandbox`, which certificate hosts are accepted.
    #[arg(long, default_value_t = PaypalEnvironment::Live)]
    paypal_environment: PaypalEnvironment,
    /// "Now" as Unix seconds (default: the clock).
    #[arg(long)]
    now: Option<i64>,
    /// Stripe: tolerance on the timestamp's age; PayPal: on the transmission time's distance
    /// from now. Stripe's 0 turns the age check off.
    #[arg(long)]
    tolerance: Option<u64>,
}

fn read(path: &PathBuf) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))
}

/// `--header` values, then every line of every `--header-file`.
fn collect_headers(args: &VerifyArgs) -> Result<Headers, CliError> {
    let mut lines = args.headers.clone();
    for path in &args.header_files {
        let text = String::from_utf8(read(path)?)
            .map_err(|_| CliError::Usage(format!("{}: not UTF-8", path.display())))?;
        lines.extend(
            text.lines()
                .map(|line| line.trim_end_matches('\r'))
                .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
                .map(str::to_owned),
        );
    }
    parse_headers(&lines)
}

/// `--secret` values, then `--secret-env` variables, then `--secret-file` lines.
fn collect_secrets(args: &VerifyArgs) -> Result<Vec<Secret>, CliError> {
    let mut secrets: Vec<Secret> = args
        .secrets
        .iter()
        .map(|s| Secret::new(s.as_str()))
        .collect();
    for name in &args.secret_envs {
        let value = std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| CliError::Usage(format!("--secret-env: {name} is not set")))?;
        secrets.push(Secret::new(value));
    }
    for path in &args.secret_files {
        let text = String::from_utf8(read(path)?)
            .map_err(|_| CliError::Usage(format!("{}: not UTF-8", path.display())))?;
        secrets.extend(
            text.lines()
                .map(|line| line.trim_end_matches('\r'))
                .filter(|line| !line.is_empty())
                .map(Secret::new),
        );
    }
    Ok(secrets)
}

fn parse_headers(raw: &[String]) -> Result<Headers, CliError> {
    let mut headers = Headers::new();
    for h in raw {
        // The messages name the header, never its value: it may be a signature.
        let (name, value) = h.split_once(':').ok_or_else(|| {
            CliError::Usage("a header is not `Name: value` (no colon)".to_owned())
        })?;
        let name = name.trim();
        if name.is_empty() {
            return Err(CliError::Usage("a header has no name".to_owned()));
        }
        // One optional space after the colon belongs to the syntax, the rest is the value.
        let value = value.strip_prefix(' ').unwrap_or(value);
        headers.insert(name, value);
    }
    Ok(headers)
}

/// Runs `payhook verify`; returns the process exit code.
pub async fn run(args: VerifyArgs) -> Result<i32, CliError> {
    let body = read(&args.body_file)?;
    let headers = collect_headers(&args)?;
    let now = args.now.unwrap_or_else(unix_now);
    let secrets = collect_secrets(&args)?;
    let result = match args.provider {
        Provider::Stripe => {
            if secrets.is_empty() {
                return Err(CliError::Usage(
                    "stripe needs a secret (--secret-env, --secret-file or --secret)".into(),
                ));
            }
            StripeVerifier::new(secrets)
                .with_tolerance(args.tolerance.unwrap_or(STRIPE_DEFAULT_TOLERANCE_SECS))
                .verify(&headers, &body, now)
        }
        Provider::Square => {
            let url = args
                .notification_url
                .clone()
                .ok_or_else(|| CliError::Usage("square needs --notification-url".into()))?;
            if secrets.is_empty() {
                return Err(CliError::Usage(
                    "square needs a signature key (--secret-env, --secret-file or --secret)".into(),
                ));
            }
            SquareVerifier::new(secrets, url).verify(&headers, &body)
        }
        Provider::Paypal => {
            let webhook_id = args
                .webhook_id
                .clone()
                .ok_or_else(|| CliError::Usage("paypal needs --webhook-id".into()))?;
            let anchors = if args.trust_anchors.is_empty() {
                TrustAnchors::mozilla()
            } else {
                let mut pem = Vec::new();
                for path in &args.trust_anchors {
                    pem.extend(read(path)?);
                    pem.push(b'\n');
                }
                TrustAnchors::from_pem(&pem)
                    .map_err(|e| CliError::Usage(format!("--trust-anchor: {e}")))?
            };
            // Without --cert-file the certificate is downloaded from PAYPAL-CERT-URL (https, PayPal
            // hosts only, checked before any request) exactly as the Lambda does.
            let fetcher: Arc<dyn CertificateFetcher> = match &args.cert_file {
                Some(path) => Arc::new(StaticCertificateFetcher::new(read(path)?)),
                None => Arc::new(HttpsCertificateFetcher::new().map_err(|e| {
                    CliError::Failed(format!(
                        "cannot set up HTTPS for the certificate download: {e}"
                    ))
                })?),
            };
            let cache = Arc::new(PaypalCertificateCache::new(fetcher, anchors));
            PaypalVerifier::new(webhook_id, cache)
                .with_environment(args.paypal_environment)
                .with_tolerance(args.tolerance.unwrap_or(DEFAULT_PAYPAL_TOLERANCE_SECS))
                .verify(&headers, &body, now)
                .await
        }
    };
    let (code, out) = report(&result);
    println!("{out}");
    Ok(code)
}

fn report(result: &Result<(), SignatureError>) -> (i32, serde_json::Value) {
    match result {
        Ok(()) => (
            0,
            json!({"valid": true, "reason": "ok", "message": "signature verified"}),
        ),
        Err(e) => (
            1,
            json!({"valid": false, "reason": e.code(), "message": e.to_string()}),
        ),
    }
}
