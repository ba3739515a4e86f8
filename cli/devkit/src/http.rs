//! The HTTP side of the kit: one keep-alive client (hyper-util's pooled client, plain HTTP or
//! HTTPS with rustls, *ring* and Mozilla's roots), [`post_webhook`] (one signed webhook over
//! any such client), [`get`] and [`post_empty`] (the local stack's admin API), and [`Sender`]
//! (the client plus a [`Signer`] and the API keys), which `payhook send`, `payhook demo`, the
//! load bench and the tests post with.
//!
//! The API key goes where providers put it: in the URL, `…/webhooks/stripe?key=…` (each
//! provider's own key, see [`Sender::new`]); [`Sender::with_key_in_header`] sends it as
//! `x-api-key` instead. A URL that already carries `key=` (one copied from
//! `pulumi stack output`) is posted as it is.

use std::error::Error as StdError;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, USER_AGENT};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use payhook_core::{Provider, Secret};

use crate::payloads::Signer;
use crate::{DevkitError, unix_now};

/// The header carrying the API key (API Gateway's, and the `api-key-authorizer` Lambda's
/// `HEADER`; a test of the `payhook` CLI holds the two equal).
pub const API_KEY_HEADER: &str = "x-api-key";
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
pub fn http_client() -> Result<HttpClient, DevkitError> {
    let tls = rustls::ClientConfig::builder_with_provider(
        rustls::crypto::ring::default_provider().into(),
    )
    .with_safe_default_protocol_versions()
    .map_err(|e| DevkitError::Tls(format!("cannot set up TLS: {e}")))?
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
/// connection failure is [`DevkitError::NoResponse`].
pub async fn post_webhook(
    client: &HttpClient,
    url: &str,
    api_key: Option<&str>,
    headers: &[(String, String)],
    body: impl Into<Bytes>,
) -> Result<(u16, String), DevkitError> {
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
        .map_err(|e| DevkitError::Invalid(format!("cannot build the request: {e}")))?;

    exchange(client, request, no_response_from(url)).await
}

/// GETs `url` (the local stack's admin API); returns status and body like [`post_webhook`].
pub async fn get(client: &HttpClient, url: &str) -> Result<(u16, String), DevkitError> {
    request_without_body(client, http::Method::GET, url).await
}

/// POSTs to `url` with an empty body (the local stack's admin actions).
pub async fn post_empty(client: &HttpClient, url: &str) -> Result<(u16, String), DevkitError> {
    request_without_body(client, http::Method::POST, url).await
}

async fn request_without_body(
    client: &HttpClient,
    method: http::Method,
    url: &str,
) -> Result<(u16, String), DevkitError> {
    let request = http::Request::builder()
        .method(method)
        .uri(parse_url(url)?)
        .header(USER_AGENT, concat!("payhook/", env!("CARGO_PKG_VERSION")))
        .body(Full::new(Bytes::new()))
        .map_err(|e| DevkitError::Invalid(format!("cannot build the request: {e}")))?;
    exchange(client, request, no_response_from(url)).await
}

/// Why an [`exchange`] brought no answer, for the caller to put in its own words.
#[derive(Debug, Clone, Copy)]
pub enum NoAnswer<'a> {
    /// The request failed before a response came (connection refused, TLS, …).
    Request(&'a (dyn StdError + 'static)),
    /// The response's body could not be read, or was larger than [`MAX_RESPONSE_BYTES`].
    Body(&'a (dyn StdError + 'static)),
    /// No complete answer within [`REQUEST_TIMEOUT`].
    Timeout,
}

/// Sends `request` and reads the answer, bounded in size ([`MAX_RESPONSE_BYTES`]) and time
/// ([`REQUEST_TIMEOUT`]); returns its status and body (invalid UTF-8 replaced). Without an
/// answer, [`DevkitError::NoResponse`] with what `say` makes of why (the kit's own requests
/// name the URL and the whole cause; the on-call tools say which stack did not answer).
pub async fn exchange(
    client: &HttpClient,
    request: http::Request<Full<Bytes>>,
    say: impl Fn(NoAnswer<'_>) -> String,
) -> Result<(u16, String), DevkitError> {
    let exchange = async {
        let response = client
            .request(request)
            .await
            .map_err(|e| DevkitError::NoResponse(say(NoAnswer::Request(&e))))?;
        let status = response.status().as_u16();
        let body = match Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
        {
            Ok(collected) => collected.to_bytes(),
            Err(e) => return Err(DevkitError::NoResponse(say(NoAnswer::Body(e.as_ref())))),
        };
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| DevkitError::NoResponse(say(NoAnswer::Timeout)))?
}

/// The kit's words for a request to `url` that brought no answer.
fn no_response_from(url: &str) -> impl Fn(NoAnswer<'_>) -> String + '_ {
    move |why| match why {
        NoAnswer::Request(e) => format!("no response from {url}: {}", error_chain(e)),
        NoAnswer::Body(e) => format!("reading the response from {url}: {}", error_chain(e)),
        NoAnswer::Timeout => format!(
            "no response from {url} within {} s",
            REQUEST_TIMEOUT.as_secs()
        ),
    }
}

/// `url` as a URI, refused unless it is an absolute http:// or https:// URL.
pub fn parse_url(url: &str) -> Result<http::Uri, DevkitError> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| DevkitError::Invalid(format!("`{url}` is not a URL: {e}")))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(_)) => Ok(uri),
        _ => Err(DevkitError::Invalid(format!(
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
    /// A sender signing with `signer` and sending each provider's key of `by_provider` (`shared`
    /// for a URL naming no provider) as `?key=`.
    pub fn new(
        signer: Signer,
        by_provider: Vec<(Provider, Secret)>,
        shared: Secret,
    ) -> Result<Sender, DevkitError> {
        Ok(Sender {
            client: http_client()?,
            signer,
            keys: Keys::Configured {
                by_provider,
                shared,
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
    pub fn key_for(&self, url: &str) -> Option<&Secret> {
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
    ) -> Result<(u16, String), DevkitError> {
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
    ) -> Result<(u16, String), DevkitError> {
        match self.key_for(url).map(Secret::expose) {
            Some(key) if self.key_in_header => {
                post_webhook(&self.client, url, Some(key), headers, body).await
            }
            Some(key) => {
                let url = with_key(url, key);
                post_webhook(&self.client, &url, None, headers, body).await
            }
            None => post_webhook(&self.client, url, None, headers, body).await,
        }
    }
}

/// `url` with the API key as its `key` query parameter (form-encoded), the form providers are
/// given: `…/webhooks/stripe?key=…`. A URL that already has a `key` parameter is returned as is.
pub fn with_key(url: &str, key: &str) -> String {
    let query = url.split_once('?').map(|(_, q)| q);
    let has_key = query
        .is_some_and(|q| url::form_urlencoded::parse(q.as_bytes()).any(|(name, _)| name == "key"));
    if has_key || key.is_empty() {
        return url.to_owned();
    }
    let encoded: String = url::form_urlencoded::byte_serialize(key.as_bytes()).collect();
    let separator = if query.is_some() { '&' } else { '?' };
    format!("{url}{separator}key={encoded}")
}

/// Refuses `url` unless it is an absolute http(s) URL with a host; `flag` names it in the error.
pub fn check_http_url(url: &str, flag: &str) -> Result<(), DevkitError> {
    url::Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .map(|_| ())
        .ok_or_else(|| DevkitError::Invalid(format!("{flag} `{url}` is not an http(s) URL")))
}
