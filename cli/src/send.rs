//! `payhook send`: builds a realistic provider webhook ([`crate::payloads`]), signs it the
//! provider's way with the configured secret, posts it to the local stack or a deployed API
//! Gateway stage, and prints each response as one JSON line. The `stripe trigger` of this kit.
//!
//! Exit codes: 0 when every response is 2xx, 1 when any is not, 2 for usage errors and for a
//! request that got no response at all (connection refused, timeout).
//!
//! [`Sender`] is the reusable part for `payhook demo` and the load bench: one keep-alive HTTP
//! client (hyper-util's pooled client, plain HTTP or HTTPS with rustls, *ring* and Mozilla's
//! roots) plus a [`Signer`]; [`post_webhook`] is one request over any such client.
//!
//! The API key goes where providers put it: in the URL, `…/webhooks/stripe?key=…` (each
//! provider's own key from the configuration, see [`Config::api_key`]); `--key-in-header`
//! sends it as `x-api-key` instead. A URL that already carries `key=` (one copied from
//! `pulumi stack output`) is posted as it is.

use std::error::Error as StdError;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use http::header::{CONTENT_TYPE, USER_AGENT};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use payhook_core::{Provider, Secret};
use serde_json::{Value, json};

use crate::config::Config;
use crate::payloads::{self, PayloadSpec, Signer};
use crate::{CliError, unix_now};

/// The header carrying the API key (API Gateway's).
pub const API_KEY_HEADER: &str = payhook_api_key_authorizer::HEADER;
/// Longest wait for one request, connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for a TCP connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest response body read; the rest is cut off.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// Idle keep-alive connections kept per host (the load bench runs many in parallel).
pub const MAX_IDLE_CONNECTIONS_PER_HOST: usize = 256;

/// The HTTP client type: pooled, keep-alive, `http` and `https` URLs.
pub type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A new pooled client for `http://` and `https://` URLs (rustls with *ring*, Mozilla's
/// roots), with Nagle off so small requests on loopback are not delayed.
pub fn http_client() -> Result<HttpClient, CliError> {
    let tls = rustls::ClientConfig::builder_with_provider(
        rustls::crypto::ring::default_provider().into(),
    )
    .with_safe_default_protocol_versions()
    .map_err(|e| CliError::Failed(format!("cannot set up TLS: {e}")))?
    .with_root_certificates(rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    })
    .with_no_client_auth();
    let mut http = HttpConnector::new();
    // The https connector decides per URL; this only lets it see https URIs.
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    let connector = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(MAX_IDLE_CONNECTIONS_PER_HOST)
        .build(connector))
}

/// POSTs one webhook `body` with `headers` (and `x-api-key` when `api_key` is given) to `url`;
/// returns the response status and body (cut at [`MAX_RESPONSE_BYTES`], invalid UTF-8
/// replaced). `Content-Type: application/json` and a `payhook-send` `User-Agent` are added
/// unless `headers` has them.
///
/// A bad URL or header is a usage error; no response within [`REQUEST_TIMEOUT`] or a
/// connection failure is [`CliError::Failed`].
pub async fn post_webhook(
    client: &HttpClient,
    url: &str,
    api_key: Option<&str>,
    headers: &[(String, String)],
    body: impl Into<Bytes>,
) -> Result<(u16, String), CliError> {
    let uri = parse_url(url)?;
    let mut request = http::Request::post(uri);
    let has = |wanted: &http::HeaderName| {
        headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case(wanted.as_str()))
    };
    if !has(&CONTENT_TYPE) {
        request = request.header(CONTENT_TYPE, "application/json");
    }
    if !has(&USER_AGENT) {
        request = request.header(
            USER_AGENT,
            concat!("payhook-send/", env!("CARGO_PKG_VERSION")),
        );
    }
    if let Some(key) = api_key {
        request = request.header(API_KEY_HEADER, key);
    }
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let request = request
        .body(Full::new(body.into()))
        .map_err(|e| CliError::Usage(format!("cannot build the request: {e}")))?;

    exchange(client, request, url).await
}

/// GETs `url` (the local stack's admin API); returns status and body like [`post_webhook`].
pub async fn get(client: &HttpClient, url: &str) -> Result<(u16, String), CliError> {
    request_without_body(client, http::Method::GET, url).await
}

/// POSTs to `url` with an empty body (the local stack's admin actions).
pub async fn post_empty(client: &HttpClient, url: &str) -> Result<(u16, String), CliError> {
    request_without_body(client, http::Method::POST, url).await
}

async fn request_without_body(
    client: &HttpClient,
    method: http::Method,
    url: &str,
) -> Result<(u16, String), CliError> {
    let request = http::Request::builder()
        .method(method)
        .uri(parse_url(url)?)
        .header(USER_AGENT, concat!("payhook/", env!("CARGO_PKG_VERSION")))
        .body(Full::new(Bytes::new()))
        .map_err(|e| CliError::Usage(format!("cannot build the request: {e}")))?;
    exchange(client, request, url).await
}

/// Sends `request` and reads the answer, bounded in size and time.
async fn exchange(
    client: &HttpClient,
    request: http::Request<Full<Bytes>>,
    url: &str,
) -> Result<(u16, String), CliError> {
    let exchange = async {
        let response = client.request(request).await.map_err(|e| {
            CliError::Failed(format!("no response from {url}: {}", error_chain(&e)))
        })?;
        let status = response.status().as_u16();
        let body = match Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
        {
            Ok(collected) => collected.to_bytes(),
            Err(e) => {
                return Err(CliError::Failed(format!(
                    "reading the response from {url}: {}",
                    error_chain(e.as_ref())
                )));
            }
        };
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| {
            CliError::Failed(format!(
                "no response from {url} within {} s",
                REQUEST_TIMEOUT.as_secs()
            ))
        })?
}

fn parse_url(url: &str) -> Result<http::Uri, CliError> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| CliError::Usage(format!("`{url}` is not a URL: {e}")))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(_)) => Ok(uri),
        _ => Err(CliError::Usage(format!(
            "`{url}` must be an absolute http:// or https:// URL"
        ))),
    }
}

/// `error: cause: cause`, since hyper's top-level messages alone say little.
fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Which API key a [`Sender`] sends.
#[derive(Debug, Clone)]
enum Keys {
    /// Each provider's key from the configuration; `shared` for a URL naming no provider.
    Configured {
        by_provider: Vec<(Provider, Secret)>,
        shared: Secret,
    },
    /// One key for every request, or none at all.
    Fixed(Option<Secret>),
}

/// Signs and posts webhooks over one keep-alive client; `Clone` shares the connection pool.
#[derive(Debug, Clone)]
pub struct Sender {
    client: HttpClient,
    signer: Signer,
    keys: Keys,
    key_in_header: bool,
}

impl Sender {
    /// A sender with `config`'s secrets and each provider's API key, sent as `?key=`.
    pub fn new(config: &Config) -> Result<Sender, CliError> {
        Ok(Sender {
            client: http_client()?,
            signer: Signer::from_config(config)?,
            keys: Keys::Configured {
                by_provider: Provider::ALL
                    .iter()
                    .map(|&p| (p, config.api_key(p).clone()))
                    .collect(),
                shared: config.api.key.clone(),
            },
            key_in_header: false,
        })
    }

    /// Sends `api_key` on every request instead (`None`: send none, to see the 401).
    pub fn with_api_key(mut self, api_key: Option<String>) -> Self {
        self.keys = Keys::Fixed(api_key.map(Secret::new).filter(|k| !k.is_empty()));
        self
    }

    /// Sends the key as `x-api-key` instead of `?key=` (for callers that can set headers).
    pub fn with_key_in_header(mut self, in_header: bool) -> Self {
        self.key_in_header = in_header;
        self
    }

    /// The key for a request to `url`: the key of the provider its last path segment names.
    fn key_for(&self, url: &str) -> Option<&Secret> {
        match &self.keys {
            Keys::Fixed(key) => key.as_ref(),
            Keys::Configured {
                by_provider,
                shared,
            } => {
                let path = url.split(['?', '#']).next().unwrap_or_default();
                let named = path
                    .rsplit('/')
                    .next()
                    .and_then(|s| s.parse::<Provider>().ok());
                let key = by_provider
                    .iter()
                    .find(|(p, _)| Some(*p) == named)
                    .map_or(shared, |(_, key)| key);
                Some(key).filter(|k| !k.is_empty())
            }
        }
    }

    /// The HTTP client, for [`post_webhook`].
    pub fn client(&self) -> &HttpClient {
        &self.client
    }

    /// The signer.
    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// Signs `body` as `provider` would now and posts it to `url`.
    pub async fn send(
        &self,
        url: &str,
        provider: Provider,
        body: impl Into<Bytes>,
    ) -> Result<(u16, String), CliError> {
        let body = body.into();
        let headers = self.signer.sign(provider, &body, unix_now())?;
        self.post(url, &headers, body).await
    }

    /// Posts `body` with exactly `headers` (plus the API key of the provider `url` names):
    /// for replays, duplicates and deliberately bad signatures.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: impl Into<Bytes>,
    ) -> Result<(u16, String), CliError> {
        match self.key_for(url).map(Secret::expose) {
            Some(key) if self.key_in_header => {
                post_webhook(&self.client, url, Some(key), headers, body).await
            }
            Some(key) => {
                let url = crate::config::with_key(url, key);
                post_webhook(&self.client, &url, None, headers, body).await
            }
            None => post_webhook(&self.client, url, None, headers, body).await,
        }
    }
}

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
    let mut sender = Sender::new(&config)?.with_key_in_header(args.key_in_header);
    if let Some(key) = args.api_key.clone() {
        sender = sender.with_api_key(Some(key));
    }
    let posted = match sender.key_for(&url) {
        Some(key) if !args.key_in_header => crate::config::with_key(&url, key.expose()),
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
