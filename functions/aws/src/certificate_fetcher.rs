//! [`HttpsCertificateFetcher`]: downloads the certificate behind a PayPal `PAYPAL-CERT-URL`.
//!
//! `payhook-core` checks the URL (https, a `paypal.com` host) before asking and verifies what
//! comes back (chain, validity, CN), then caches it by URL; this fetcher only moves the bytes,
//! defensively: HTTPS only (rustls with *ring*, Mozilla's roots from `webpki-roots`), a
//! connect timeout and an overall deadline, a cap on the body, and redirects are answered with
//! an error rather than followed.
//!
//! Errors are classed for the caller: a client error (4xx), a redirect or an oversized body is
//! [`FetchError::Rejected`] (the request is refused, 401, and the cache remembers it for a
//! while); a connection failure, a timeout or a server error (5xx) is
//! [`FetchError::Unavailable`] (503: the provider retries later).

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use payhook_core::signature::paypal::{CertificateFetcher, FetchError};
use url::Url;

use crate::error::describe;

/// How long a TCP connection to the certificate host may take.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long one whole fetch may take: connection, TLS, headers and body.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest certificate bundle accepted (PayPal's is a few KiB).
pub const MAX_CERTIFICATE_BYTES: usize = 64 * 1024;

/// Fetches PEM bundles over HTTPS for [`payhook_core::signature::paypal::PaypalCertificateCache`].
#[derive(Debug, Clone)]
pub struct HttpsCertificateFetcher {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    fetch_timeout: Duration,
    max_body_bytes: usize,
}

impl HttpsCertificateFetcher {
    /// A fetcher trusting Mozilla's root certificates (`webpki-roots`), with the default
    /// timeouts and [`MAX_CERTIFICATE_BYTES`]. Fails only if *ring* cannot offer TLS 1.2/1.3.
    pub fn new() -> Result<Self, rustls::Error> {
        let config = rustls::ClientConfig::builder_with_provider(
            rustls::crypto::ring::default_provider().into(),
        )
        .with_safe_default_protocol_versions()?
        .with_root_certificates(rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        })
        .with_no_client_auth();
        Ok(Self::with_tls_config(config))
    }

    /// A fetcher with its own TLS configuration (other roots: a private CA, a test's).
    pub fn with_tls_config(config: rustls::ClientConfig) -> Self {
        let mut http = HttpConnector::new();
        // The https connector below refuses plain http; this only lets it see https URIs.
        http.enforce_http(false);
        http.set_connect_timeout(Some(DEFAULT_CONNECT_TIMEOUT));
        let https = HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_only()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(https);
        HttpsCertificateFetcher {
            client,
            fetch_timeout: DEFAULT_FETCH_TIMEOUT,
            max_body_bytes: MAX_CERTIFICATE_BYTES,
        }
    }

    /// Gives up on a fetch after `timeout` (instead of [`DEFAULT_FETCH_TIMEOUT`]).
    pub fn with_fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
        self
    }

    /// Refuses bodies over `bytes` (instead of [`MAX_CERTIFICATE_BYTES`]).
    pub fn with_max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    async fn get(&self, url: &Url) -> Result<Vec<u8>, FetchError> {
        let uri: http::Uri = url
            .as_str()
            .parse()
            .map_err(|err| FetchError::Rejected(format!("invalid certificate URL {url}: {err}")))?;
        let request = http::Request::get(uri)
            .header(http::header::ACCEPT, "application/x-pem-file, */*")
            .body(Empty::new())
            .map_err(|err| {
                FetchError::Rejected(format!("invalid certificate request for {url}: {err}"))
            })?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|err| FetchError::Unavailable(describe(&format!("GET {url}"), &err)))?;
        let status = response.status();
        if status.is_server_error() {
            return Err(FetchError::Unavailable(format!("GET {url}: HTTP {status}")));
        }
        if status.is_redirection() {
            return Err(FetchError::Rejected(format!(
                "GET {url}: redirect ({status}) not followed"
            )));
        }
        if status != http::StatusCode::OK {
            return Err(FetchError::Rejected(format!("GET {url}: HTTP {status}")));
        }
        let declared = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(length) = declared
            && length > self.max_body_bytes as u64
        {
            return Err(self.too_large(url));
        }
        let body = Limited::new(response.into_body(), self.max_body_bytes)
            .collect()
            .await
            .map_err(|err| {
                if err.is::<http_body_util::LengthLimitError>() {
                    self.too_large(url)
                } else {
                    FetchError::Unavailable(describe(
                        &format!("GET {url}: reading body"),
                        err.as_ref(),
                    ))
                }
            })?;
        Ok(body.to_bytes().to_vec())
    }

    fn too_large(&self, url: &Url) -> FetchError {
        FetchError::Rejected(format!(
            "GET {url}: body exceeds the {}-byte certificate limit",
            self.max_body_bytes
        ))
    }
}

#[async_trait]
impl CertificateFetcher for HttpsCertificateFetcher {
    async fn fetch(&self, url: &Url) -> Result<Vec<u8>, FetchError> {
        if url.scheme() != "https" {
            return Err(FetchError::Rejected(format!(
                "refusing to fetch a certificate over `{}`",
                url.scheme()
            )));
        }
        tracing::debug!(%url, "fetching PayPal certificate");
        tokio::time::timeout(self.fetch_timeout, self.get(url))
            .await
            .map_err(|_| {
                FetchError::Unavailable(format!(
                    "GET {url}: timed out after {:?}",
                    self.fetch_timeout
                ))
            })?
    }
}
