//! `payhook verify`: checks one webhook's signature offline, for people debugging a failing
//! webhook. Exit 0 valid, 1 invalid (JSON on stdout), 2 usage error.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use payhook_aws::HttpsCertificateFetcher;
use payhook_core::signature::{
    CertificateFetcher, PaypalCertificateCache, PaypalVerifier, STRIPE_DEFAULT_TOLERANCE_SECS,
    SignatureError, SquareVerifier, StaticCertificateFetcher, StripeVerifier, TrustAnchors,
};
use payhook_core::{Headers, Provider, Secret};
use serde_json::json;

use crate::{CliError, unix_now};

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
    /// Stripe endpoint secret or Square signature key (repeatable: rotation).
    #[arg(long = "secret")]
    secrets: Vec<String>,
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
    /// "Now" as Unix seconds (default: the clock).
    #[arg(long)]
    now: Option<i64>,
    /// Stripe tolerance in seconds; 0 turns the age check off.
    #[arg(long, default_value_t = STRIPE_DEFAULT_TOLERANCE_SECS)]
    tolerance: u64,
}

fn read(path: &PathBuf) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))
}

fn parse_headers(raw: &[String]) -> Result<Headers, CliError> {
    let mut headers = Headers::new();
    for h in raw {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| CliError::Usage(format!("--header `{h}` is not `Name: value`")))?;
        let name = name.trim();
        if name.is_empty() {
            return Err(CliError::Usage(format!("--header `{h}` has no name")));
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
    let headers = parse_headers(&args.headers)?;
    let now = args.now.unwrap_or_else(unix_now);
    let secrets: Vec<Secret> = args
        .secrets
        .iter()
        .map(|s| Secret::new(s.as_str()))
        .collect();
    let result = match args.provider {
        Provider::Stripe => {
            if secrets.is_empty() {
                return Err(CliError::Usage("stripe needs at least one --secret".into()));
            }
            StripeVerifier::new(secrets)
                .with_tolerance(args.tolerance)
                .verify(&headers, &body, now)
        }
        Provider::Square => {
            let url = args
                .notification_url
                .clone()
                .ok_or_else(|| CliError::Usage("square needs --notification-url".into()))?;
            if secrets.is_empty() {
                return Err(CliError::Usage("square needs at least one --secret".into()));
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
