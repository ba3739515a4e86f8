//! The shared AWS SDK configuration: region, endpoint, timeouts and a lean HTTPS client
//! (rustls with *ring*, no aws-lc-rs). Every adapter in this crate is built from the
//! [`SdkConfig`] made here; the binaries call [`sdk_config`] once at cold start.
//!
//! The HTTPS client trusts the roots AWS's endpoints chain to — Amazon Trust Services' Amazon
//! Root CA 1–4 and the Starfield Services G2 root that cross-signs them — chosen from Mozilla's
//! set (`webpki-root-certs`) by the build script and compiled in, not the platform's
//! certificate directory. The SDK builds a TLS connector for each client at construction and parses its
//! trust store each time: reading `/etc/ssl/certs` there, or parsing all of Mozilla's roots, was
//! most of a function's cold start (see BENCHMARKS.md). With a custom `https://` endpoint
//! (LocalStack, a proxy) the platform's roots are trusted too, since such an endpoint may use
//! any CA; a plain `http://` one (moto) needs none.

use std::time::Duration;

use aws_config::environment::{
    EnvironmentVariableCredentialsProvider, EnvironmentVariableRegionProvider,
};
use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, Region, SdkConfig};
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};

/// The region used when neither `AWS_REGION` nor `AWS_DEFAULT_REGION` is set.
pub const DEFAULT_REGION: &str = "us-east-1";

/// The environment variable that points every AWS client at another endpoint (moto, LocalStack).
pub const ENDPOINT_URL_ENV: &str = "AWS_ENDPOINT_URL";

/// How long to wait for a TCP + TLS connection to an AWS endpoint.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long one attempt of one AWS call may take (DynamoDB, SQS and SSM answer in milliseconds).
pub const OPERATION_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one AWS call may take, retries included: well inside a function's timeout.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(12);

/// Attempts per AWS call (the SDK's standard retry mode with jittered backoff).
pub const MAX_ATTEMPTS: u32 = 3;

/// The endpoint to use: `explicit` wins, then a non-empty [`ENDPOINT_URL_ENV`] value, else the
/// AWS default (`None`).
pub fn resolve_endpoint_url(explicit: Option<&str>, from_env: Option<String>) -> Option<String> {
    explicit
        .map(str::to_owned)
        .or(from_env)
        .map(|url| url.trim().to_owned())
        .filter(|url| !url.is_empty())
}

/// A [`ConfigLoader`] with payhook's defaults, for callers that want to override something
/// before loading (credentials for moto, shorter timeouts in a test):
///
/// - region from `AWS_REGION` / `AWS_DEFAULT_REGION`, else [`DEFAULT_REGION`] (no profile or
///   instance-metadata look-up: a function's environment always carries its region);
/// - endpoint `endpoint_url` if given, else `AWS_ENDPOINT_URL` if set, else AWS's own;
/// - [`CONNECT_TIMEOUT`], [`OPERATION_ATTEMPT_TIMEOUT`], [`OPERATION_TIMEOUT`] and
///   [`MAX_ATTEMPTS`];
/// - the environment's credentials when it holds a key and its secret (every Lambda function),
///   else the default credentials chain;
/// - an HTTPS client on rustls with the *ring* provider trusting [`AWS_ROOTS_PEM`] (no file is
///   read), plus the platform's roots when the endpoint is a custom `https://` one.
pub fn config_loader(endpoint_url: Option<&str>) -> ConfigLoader {
    let region = RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
        .or_else(Region::from_static(DEFAULT_REGION));
    let endpoint = resolve_endpoint_url(endpoint_url, std::env::var(ENDPOINT_URL_ENV).ok());
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .tls_context(tls_context(endpoint.as_deref().is_some_and(|url| {
            url.get(..8)
                .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
        })))
        .build_https();
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(OPERATION_ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(region)
        .http_client(http_client)
        .timeout_config(timeouts)
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS));
    if has_environment_credentials(|name| std::env::var(name).ok()) {
        loader = loader.credentials_provider(EnvironmentVariableCredentialsProvider::new());
    }
    match endpoint {
        Some(url) => loader.endpoint_url(url),
        None => loader,
    }
}

/// Whether the environment holds an access key and its secret, as a Lambda function's always
/// does. The default credentials chain would take them first anyway; naming their provider
/// directly skips building the rest of the chain (profile files, web identity through STS,
/// container and instance metadata): about 0.15 ms of a cold start.
fn has_environment_credentials(var: impl Fn(&str) -> Option<String>) -> bool {
    ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
        .iter()
        .all(|name| var(name).is_some_and(|value| !value.trim().is_empty()))
}

/// The subjects' common names of the roots AWS's endpoints chain to (Amazon Trust Services).
pub const AWS_ROOT_NAMES: [&str; 5] = aws_roots::AWS_ROOT_NAMES;

/// The roots named in [`AWS_ROOT_NAMES`], taken from Mozilla's set (`webpki-root-certs`) by the
/// build script, as one PEM bundle: the SDK's TLS settings take custom roots only as PEM, and
/// choosing them at build time keeps the scan of every Mozilla root out of the cold start.
pub const AWS_ROOTS_PEM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/aws_roots.pem"));

/// The selection, shared with the build script that runs it.
#[path = "aws_roots.rs"]
mod aws_roots;

/// The TLS settings of the SDK's HTTPS client: [`AWS_ROOTS_PEM`], and the platform's store only
/// for a custom `https://` endpoint.
fn tls_context(custom_https_endpoint: bool) -> TlsContext {
    TlsContext::builder()
        .with_trust_store(
            TrustStore::empty()
                .with_native_roots(custom_https_endpoint)
                .with_pem_certificate(AWS_ROOTS_PEM),
        )
        .build()
        .expect("a trust store without server names always builds")
}

/// Loads the SDK configuration every payhook adapter is built from (see [`config_loader`] for
/// what it sets). `endpoint_url` overrides `AWS_ENDPOINT_URL`.
///
/// ```no_run
/// # async fn run() {
/// let config = payhook_aws::sdk_config(None).await;
/// let dynamodb = aws_sdk_dynamodb::Client::new(&config);
/// # let _ = dynamodb;
/// # }
/// ```
pub async fn sdk_config(endpoint_url: Option<&str>) -> SdkConfig {
    config_loader(endpoint_url).load().await
}

/// The access key id (and secret) sent to an endpoint when the environment has no credentials
/// (moto and LocalStack accept any).
pub const LOCAL_ACCESS_KEY_ID: &str = "test";

/// SDK configuration for the on-call tools, `payhook bootstrap` and the local stack on an
/// endpoint: [`config_loader`] with `endpoint` (else `AWS_ENDPOINT_URL`, else AWS) and `region`
/// (else the environment's, else [`DEFAULT_REGION`]). With an endpoint and no
/// `AWS_ACCESS_KEY_ID` or `AWS_PROFILE` in the environment, dummy credentials
/// ([`LOCAL_ACCESS_KEY_ID`]) are used, which moto and LocalStack accept; otherwise the default
/// credentials chain.
pub async fn sdk_config_for(endpoint: Option<&str>, region: Option<&str>) -> SdkConfig {
    let mut loader = config_loader(endpoint);
    if let Some(region) = region {
        loader = loader.region(Region::new(region.to_owned()));
    }
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    if endpoint.is_some() && !set("AWS_ACCESS_KEY_ID") && !set("AWS_PROFILE") {
        loader = loader.credentials_provider(aws_sdk_sqs::config::Credentials::new(
            LOCAL_ACCESS_KEY_ID,
            LOCAL_ACCESS_KEY_ID,
            None,
            None,
            "payhook-local",
        ));
    }
    loader.load().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_in_roots_are_the_aws_roots_and_the_sdk_can_load_them() {
        // The SDK panics on a custom root it cannot parse: every certificate of the bundle must
        // parse as an anchor, and each AWS root must be found exactly once.
        use rustls::pki_types::pem::PemObject as _;
        let certs = rustls::pki_types::CertificateDer::pem_slice_iter(AWS_ROOTS_PEM)
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        assert_eq!(certs.len(), AWS_ROOT_NAMES.len());
        for name in AWS_ROOT_NAMES {
            let holding = certs
                .iter()
                .filter(|c| c.windows(name.len()).any(|w| w == name.as_bytes()))
                .count();
            assert_eq!(holding, 1, "{name}");
        }
        let mut store = rustls::RootCertStore::empty();
        for cert in certs {
            store.add(cert).unwrap();
        }
        assert_eq!(store.len(), AWS_ROOT_NAMES.len());
    }

    #[test]
    fn a_root_is_named_only_by_a_whole_der_string() {
        let string = |tag: u8, text: &str| {
            let mut der = vec![0x30, 0x31, tag, u8::try_from(text.len()).unwrap()];
            der.extend_from_slice(text.as_bytes());
            der
        };
        assert!(aws_roots::names_an_aws_root(&string(
            0x13,
            "Amazon Root CA 3"
        )));
        assert!(aws_roots::names_an_aws_root(&string(
            0x0c,
            "Amazon Root CA 1"
        )));
        assert!(!aws_roots::names_an_aws_root(&string(
            0x04,
            "Amazon Root CA 1"
        )));
        assert!(!aws_roots::names_an_aws_root(&string(
            0x13,
            "Amazon Root CA 10"
        )));
        assert!(!aws_roots::names_an_aws_root(&string(
            0x13,
            "Amazon Root CA"
        )));
        // A length running past the end is no match, and no panic.
        let mut cut = string(0x13, "Amazon Root CA 1");
        cut.truncate(cut.len() - 1);
        assert!(!aws_roots::names_an_aws_root(&cut));
        assert!(!aws_roots::names_an_aws_root(&[0x13]));
        assert!(!aws_roots::names_an_aws_root(&[]));
    }

    #[test]
    fn environment_credentials_need_a_key_and_its_secret() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| (*value).to_owned())
            }
        };
        assert!(has_environment_credentials(env(&[
            ("AWS_ACCESS_KEY_ID", "AKIA"),
            ("AWS_SECRET_ACCESS_KEY", "s")
        ])));
        assert!(!has_environment_credentials(env(&[(
            "AWS_ACCESS_KEY_ID",
            "AKIA"
        )])));
        assert!(!has_environment_credentials(env(&[(
            "AWS_SECRET_ACCESS_KEY",
            "s"
        )])));
        assert!(!has_environment_credentials(env(&[
            ("AWS_ACCESS_KEY_ID", " "),
            ("AWS_SECRET_ACCESS_KEY", "s")
        ])));
        assert!(!has_environment_credentials(env(&[])));
    }

    #[test]
    fn explicit_endpoint_overrides_the_environment() {
        assert_eq!(
            resolve_endpoint_url(Some("http://127.0.0.1:5000"), Some("http://other:1".into())),
            Some("http://127.0.0.1:5000".to_owned())
        );
    }

    #[test]
    fn environment_endpoint_is_used_when_none_is_given() {
        assert_eq!(
            resolve_endpoint_url(None, Some(" http://127.0.0.1:5000 ".into())),
            Some("http://127.0.0.1:5000".to_owned())
        );
    }

    #[test]
    fn blank_endpoint_means_the_aws_default() {
        assert_eq!(resolve_endpoint_url(None, Some(String::new())), None);
        assert_eq!(resolve_endpoint_url(None, None), None);
    }
}
