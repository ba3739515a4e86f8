//! `HttpsCertificateFetcher` against an HTTPS server on loopback (certificates from
//! `tests/fixtures/tls/`): HTTPS only, no redirects, a size cap and a deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use payhook_aws::HttpsCertificateFetcher;
use payhook_aws::certificate_fetcher::MAX_CERTIFICATE_BYTES;
use payhook_core::signature::paypal::{CertificateFetcher, FetchError};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use url::Url;

use crate::support::within;

const CA_PEM: &[u8] = include_bytes!("../fixtures/tls/ca.pem");
const SERVER_PEM: &[u8] = include_bytes!("../fixtures/tls/server.pem");
const SERVER_KEY_PEM: &[u8] = include_bytes!("../fixtures/tls/server-key.pem");
/// What the server hands out as "the certificate": any PEM will do for the fetcher.
const BUNDLE: &[u8] = include_bytes!("../fixtures/tls/server.pem");

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A fetcher that trusts only the test CA.
fn fetcher() -> HttpsCertificateFetcher {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(CA_PEM) {
        roots.add(cert.expect("CA certificate")).expect("add CA");
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    HttpsCertificateFetcher::with_tls_config(config)
}

enum Reply {
    /// Write these bytes (a whole HTTP response) and close.
    Raw(Vec<u8>),
    /// Read the request, then say nothing.
    Stall,
}

fn ok(body: &[u8]) -> Reply {
    let mut response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/x-pem-file\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(body);
    Reply::Raw(response)
}

struct Server {
    base: String,
    requests: Arc<AtomicUsize>,
}

impl Server {
    fn url(&self, path: &str) -> Url {
        Url::parse(&format!("{}{path}", self.base)).expect("url")
    }
}

/// Serves `reply` over TLS on 127.0.0.1 to every request.
async fn serve(reply: Reply) -> Server {
    let certs = CertificateDer::pem_slice_iter(SERVER_PEM)
        .collect::<Result<Vec<_>, _>>()
        .expect("server certificate");
    let key = PrivateKeyDer::from_pem_slice(SERVER_KEY_PEM).expect("server key");
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("https://{}", listener.local_addr().expect("address"));
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&requests);
    let reply = Arc::new(reply);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (acceptor, counter, reply) =
                (acceptor.clone(), Arc::clone(&counter), Arc::clone(&reply));
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0_u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                counter.fetch_add(1, Ordering::SeqCst);
                match &*reply {
                    Reply::Raw(bytes) => {
                        let _ = tls.write_all(bytes).await;
                        let _ = tls.shutdown().await;
                    }
                    Reply::Stall => tokio::time::sleep(Duration::from_secs(60)).await,
                }
            });
        }
    });
    Server { base, requests }
}

#[tokio::test]
async fn fetches_the_bundle_over_https() {
    let server = serve(ok(BUNDLE)).await;
    let body = fetcher()
        .fetch(&server.url("/certs/CERT-360caa42-fca2a594"))
        .await
        .unwrap();
    assert_eq!(body, BUNDLE);
    // The connection pool does not change what is served.
    assert_eq!(
        fetcher().fetch(&server.url("/again")).await.unwrap(),
        BUNDLE
    );
}

#[tokio::test]
async fn plain_http_is_refused_without_connecting() {
    let server = serve(ok(BUNDLE)).await;
    let http = Url::parse(&server.base.replacen("https://", "http://", 1)).unwrap();
    let err = fetcher().fetch(&http).await.unwrap_err();
    assert!(
        matches!(&err, FetchError::Rejected(why) if why.contains("http")),
        "{err:?}"
    );
    assert_eq!(server.requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn redirect_is_not_followed() {
    let server = serve(Reply::Raw(
        b"HTTP/1.1 302 Found\r\nLocation: https://evil.example/cert.pem\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            .to_vec(),
    ))
    .await;
    let err = fetcher().fetch(&server.url("/cert.pem")).await.unwrap_err();
    assert!(
        matches!(&err, FetchError::Rejected(why) if why.contains("redirect")),
        "{err:?}"
    );
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn client_error_is_a_rejection_and_server_error_is_unavailable() {
    let server = serve(Reply::Raw(
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
    ))
    .await;
    let err = fetcher()
        .fetch(&server.url("/missing.pem"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, FetchError::Rejected(why) if why.contains("404")),
        "{err:?}"
    );

    let server = serve(Reply::Raw(
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            .to_vec(),
    ))
    .await;
    let err = fetcher().fetch(&server.url("/busy.pem")).await.unwrap_err();
    assert!(
        matches!(&err, FetchError::Unavailable(why) if why.contains("503")),
        "{err:?}"
    );
}

#[tokio::test]
async fn body_over_the_limit_is_refused() {
    let big = vec![b'A'; MAX_CERTIFICATE_BYTES + 1];
    let declared = serve(ok(&big)).await;
    let err = fetcher()
        .fetch(&declared.url("/big.pem"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, FetchError::Rejected(why) if why.contains("limit")),
        "{err:?}"
    );

    // No Content-Length: the body ends when the connection closes, and is cut off at the cap.
    let mut undeclared = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
    undeclared.extend_from_slice(&big);
    let streamed = serve(Reply::Raw(undeclared)).await;
    let err = fetcher()
        .fetch(&streamed.url("/big.pem"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, FetchError::Rejected(why) if why.contains("limit")),
        "{err:?}"
    );

    let exactly = serve(ok(&big[..MAX_CERTIFICATE_BYTES])).await;
    assert_eq!(
        fetcher()
            .fetch(&exactly.url("/max.pem"))
            .await
            .unwrap()
            .len(),
        MAX_CERTIFICATE_BYTES
    );
}

#[tokio::test]
async fn silent_server_times_out() {
    let server = serve(Reply::Stall).await;
    let fetcher = fetcher().with_fetch_timeout(Duration::from_millis(300));
    let err = within(
        Duration::from_secs(5),
        fetcher.fetch(&server.url("/slow.pem")),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, FetchError::Unavailable(why) if why.contains("timed out")),
        "{err:?}"
    );
}

#[tokio::test]
async fn certificate_outside_the_web_pki_is_refused() {
    let server = serve(ok(BUNDLE)).await;
    let public_roots_only = HttpsCertificateFetcher::new().unwrap();
    let err = public_roots_only
        .fetch(&server.url("/cert.pem"))
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Unavailable(_)), "{err:?}");
    assert_eq!(
        server.requests.load(Ordering::SeqCst),
        0,
        "no request over an untrusted TLS session"
    );
}
