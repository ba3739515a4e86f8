//! `payhook send`: builds a realistic provider webhook (`payhook_devkit::payloads`), signs it
//! the provider's way with the configured secret, posts it to the local stack or a deployed API
//! Gateway stage, and prints each response as one JSON line. The `stripe trigger` of this kit.
//!
//! Exit codes: 0 when every response is 2xx, 1 when any is not, 2 for usage errors and for a
//! request that got no response at all (connection refused, timeout).
//!
//! The API key goes where providers put it: in the URL, `…/webhooks/stripe?key=…` (each
//! provider's own key from the configuration, see [`Config::api_key`]); `--key-in-header`
//! sends it as `x-api-key` instead. A URL that already carries `key=` (one copied from
//! `pulumi stack output`) is posted as it is.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use payhook_core::Provider;
use payhook_devkit::http::{parse_url, with_key};
use payhook_devkit::payloads::{self, PayloadSpec};
use serde_json::{Value, json};

use crate::CliError;
use payhook_local::config::Config;

/// Arguments of `payhook send`.
#[derive(Debug, Clone, Args)]
pub struct SendArgs {
    /// The provider to imitate: stripe, paypal or square.
    pub provider: Provider,
    /// The provider's event type (default: its payment-succeeded event); an unknown one is
    /// answered with the list of types that can be built.
    #[arg(long)]
    pub event_type: Option<String>,
    /// Amount in major units, as a decimal (converted exactly: "25.00" USD, "1500" JPY).
    #[arg(long, default_value = "25.00")]
    pub amount: String,
    /// ISO 4217 currency code.
    #[arg(long, default_value = "USD")]
    pub currency: String,
    /// The payment the events are about (default: a new one per event).
    #[arg(long)]
    pub payment_id: Option<String>,
    /// Square only: the payment/refund status or dispute state in the object (e.g. FAILED).
    #[arg(long)]
    pub status: Option<String>,
    /// How many events to send, one after the other (each with a new event id).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub count: u32,
    /// Where to post (default: the local stack, http://127.0.0.1:PORT/webhooks/PROVIDER with
    /// the port of square.notification_url); an API Gateway https URL works too.
    #[arg(long)]
    pub to: Option<String>,
    /// The configuration file (default: $PAYHOOK_CONFIG, else ./payhook.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The API key to send instead of the provider's from the configuration.
    #[arg(long)]
    pub api_key: Option<String>,
    /// Send the key as `x-api-key` instead of `?key=` in the URL.
    #[arg(long)]
    pub key_in_header: bool,
}

/// `url` with the value of its `key` parameter hidden, for output (the key is a credential).
fn without_key(url: &str) -> String {
    match url.split_once('?') {
        Some((path, query)) => {
            let shown: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some(("key", _)) => "key=[redacted]".to_owned(),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", shown.join("&"))
        }
        None => url.to_owned(),
    }
}

/// Runs `payhook send`, printing one JSON line per response on stdout; returns the exit code.
pub async fn run(args: SendArgs) -> Result<i32, CliError> {
    let mut stdout = std::io::stdout();
    run_with_output(args, &mut stdout).await
}

/// [`run`] writing its JSON lines to `out`.
pub async fn run_with_output(
    args: SendArgs,
    out: &mut (dyn Write + Send),
) -> Result<i32, CliError> {
    let config = Config::load(args.config.as_deref())?;
    let provider = args.provider;
    let url = args
        .to
        .clone()
        .unwrap_or_else(|| config.webhook_url(provider));
    parse_url(&url)?;
    let mut sender = config.sender()?.with_key_in_header(args.key_in_header);
    if let Some(key) = args.api_key.clone() {
        sender = sender.with_api_key(Some(key));
    }
    let posted = match sender.key_for(&url) {
        Some(key) if !args.key_in_header => with_key(&url, key.expose()),
        _ => url.clone(),
    };
    if provider == Provider::Square && posted != config.square.notification_url {
        eprintln!(
            "payhook send: note: Square signs the notification URL; requests go to {} but \
             are signed for square.notification_url (set PAYHOOK_SQUARE_NOTIFICATION_URL if the \
             receiver expects another)",
            without_key(&posted)
        );
    }

    let mut all_ok = true;
    for _ in 0..args.count {
        let mut spec = PayloadSpec::new(provider).amount(&args.amount, &args.currency);
        spec.event_type = args.event_type.clone();
        spec.payment_id = args.payment_id.clone();
        spec.status = args.status.clone();
        let payload = payloads::build(&spec)?;
        let (status, body) = sender.send(&url, provider, payload.body.clone()).await?;
        all_ok &= (200..300).contains(&status);
        let response = serde_json::from_str::<Value>(&body).unwrap_or(Value::String(body));
        let line = json!({
            "provider": provider,
            "event_type": payload.event_type,
            "event_id": payload.event_id,
            "webhook_id": payload.webhook_id(),
            "payment_id": payload.payment_id,
            "amount_minor": payload.amount_minor,
            "currency": payload.currency,
            "url": without_key(&url),
            "status": status,
            "response": response,
        });
        writeln!(out, "{line}")
            .map_err(|e| CliError::Failed(format!("cannot write the output: {e}")))?;
    }
    Ok(if all_ok { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_kit_sends_the_key_in_the_authorizers_header() {
        assert_eq!(
            payhook_devkit::http::API_KEY_HEADER,
            payhook_api_key_authorizer::HEADER
        );
    }
}
