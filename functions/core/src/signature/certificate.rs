//! The PayPal signing certificate: the trust anchors it must chain to, and the checks on the
//! PEM bundle that `PAYPAL-CERT-URL` serves (chain, validity at "now", subject CN).
//!
//! Path building and validity are rustls-webpki's `verify_for_usage`, with the server-auth EKU
//! required only when an EKU extension is present: PayPal's message-verification certificates
//! are ordinary DigiCert TLS server certificates, and webpki accepts the real 2015–2019 ones
//! and their DigiCert SHA2 EV intermediate as they are. The CN rule and the validity window
//! used for caching are read with x509-parser.

use std::fmt;
use std::time::Duration;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, TrustAnchor, UnixTime};
use webpki::{EndEntityCert, KeyUsage};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer as _;

use super::{SignatureError, clip};

/// Largest certificate bundle parsed; PayPal's leaf plus intermediates is a few KiB.
const MAX_BUNDLE_BYTES: usize = 64 * 1024;

/// What a PayPal signing certificate's subject CN starts with.
const CN_PREFIX: &str = "messageverificationcerts.";
/// What a PayPal signing certificate's subject CN ends with.
const CN_SUFFIX: &str = ".paypal.com";

/// The root certificates a PayPal signing certificate must chain to.
///
/// [`TrustAnchors::mozilla`] (the default) is Mozilla's root store from `webpki-roots`. Note
/// that it no longer contains *DigiCert High Assurance EV Root CA*, the root of PayPal's
/// historical (2015–2019) certificates that the PayPal SDKs bundle; add such a root with
/// [`TrustAnchors::with_pem`] if you need it.
#[derive(Clone)]
pub struct TrustAnchors {
    anchors: Vec<TrustAnchor<'static>>,
}

impl TrustAnchors {
    /// Mozilla's root store, as shipped by `webpki-roots`.
    pub fn mozilla() -> Self {
        TrustAnchors {
            anchors: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        }
    }

    /// Exactly the certificates in `pem` (one or more `CERTIFICATE` blocks), replacing the
    /// Mozilla roots. Fails when there is none or one cannot be used as an anchor.
    pub fn from_pem(pem: &[u8]) -> Result<Self, SignatureError> {
        TrustAnchors {
            anchors: Vec::new(),
        }
        .with_pem(pem)
    }

    /// These anchors plus the certificates in `pem` (one or more `CERTIFICATE` blocks).
    pub fn with_pem(mut self, pem: &[u8]) -> Result<Self, SignatureError> {
        let certs = parse_pem_certificates(pem)
            .map_err(|_| SignatureError::NotConfigured("trust anchors: not valid PEM"))?;
        if certs.is_empty() {
            return Err(SignatureError::NotConfigured(
                "trust anchors: no CERTIFICATE in PEM",
            ));
        }
        for der in &certs {
            let anchor = webpki::anchor_from_trusted_cert(der).map_err(|_| {
                SignatureError::NotConfigured("trust anchors: a certificate cannot be parsed")
            })?;
            self.anchors.push(anchor.to_owned());
        }
        Ok(self)
    }

    /// Number of anchors.
    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    /// Whether there are no anchors (nothing would verify).
    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }
}

impl Default for TrustAnchors {
    fn default() -> Self {
        TrustAnchors::mozilla()
    }
}

impl fmt::Debug for TrustAnchors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustAnchors")
            .field("len", &self.anchors.len())
            .finish()
    }
}

/// A leaf certificate that chained to a trust anchor and passed the CN rule, with the window
/// in which that verification holds (the leaf's and its intermediates' validity overlap).
#[derive(Debug)]
pub(crate) struct VerifiedLeaf {
    der: CertificateDer<'static>,
    not_before: i64,
    not_after: i64,
}

impl VerifiedLeaf {
    /// Whether the chain verified before is still within its validity at `now_unix`.
    pub(crate) fn is_valid_at(&self, now_unix: i64) -> bool {
        self.not_before <= now_unix && now_unix <= self.not_after
    }

    /// When the verification stops holding (Unix seconds).
    pub(crate) fn not_after(&self) -> i64 {
        self.not_after
    }

    /// Verifies `signature` over `message` with the leaf's public key.
    pub(crate) fn verify_signature(
        &self,
        algorithm: &dyn SignatureVerificationAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        let leaf = EndEntityCert::try_from(&self.der)
            .map_err(|e| SignatureError::CertUntrusted(format!("leaf certificate: {e}")))?;
        leaf.verify_signature(algorithm, message, signature)
            .map_err(|e| match e {
                webpki::Error::InvalidSignatureForPublicKey => SignatureError::NoMatchingSignature,
                // The header's algorithm does not fit the leaf's key (type or size).
                other => SignatureError::UnsupportedAlgorithm(format!(
                    "not usable with the certificate's key: {other}"
                )),
            })
    }
}

/// Checks the PEM `bundle` (leaf first, then intermediates) at `now_unix`: it must chain to
/// one of `anchors`, every certificate on the path must be within its validity period, and
/// the leaf's CN must be a PayPal message-verification name.
pub(crate) fn verify_bundle(
    bundle: &[u8],
    anchors: &TrustAnchors,
    now_unix: i64,
) -> Result<VerifiedLeaf, SignatureError> {
    if bundle.len() > MAX_BUNDLE_BYTES {
        return Err(SignatureError::CertUntrusted(format!(
            "certificate bundle is larger than {MAX_BUNDLE_BYTES} bytes"
        )));
    }
    let certs = parse_pem_certificates(bundle).map_err(|e| {
        SignatureError::CertUntrusted(format!("certificate bundle is not valid PEM: {}", clip(&e)))
    })?;
    let (leaf_der, intermediates) = certs.split_first().ok_or_else(|| {
        SignatureError::CertUntrusted("certificate bundle holds no certificate".into())
    })?;

    // Before 1970 no certificate is valid; the validity error is the honest one.
    let seconds = u64::try_from(now_unix).map_err(|_| SignatureError::CertExpired)?;
    let time = UnixTime::since_unix_epoch(Duration::from_secs(seconds));

    let leaf = EndEntityCert::try_from(leaf_der)
        .map_err(|e| SignatureError::CertUntrusted(format!("leaf certificate: {e}")))?;
    let path = leaf
        .verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors.anchors,
            intermediates,
            time,
            KeyUsage::server_auth(),
            None,
            None,
        )
        .map_err(|e| match e {
            webpki::Error::CertExpired { .. } | webpki::Error::CertNotValidYet { .. } => {
                SignatureError::CertExpired
            }
            other => SignatureError::CertUntrusted(other.to_string()),
        })?;

    let (mut not_before, mut not_after) = validity(leaf_der)?;
    for intermediate in path.intermediate_certificates() {
        let (from, until) = validity(&intermediate.der())?;
        not_before = not_before.max(from);
        not_after = not_after.min(until);
    }

    check_common_name(leaf_der)?;

    Ok(VerifiedLeaf {
        der: leaf_der.clone().into_owned(),
        not_before,
        not_after,
    })
}

/// Every `CERTIFICATE` block in `pem` (other block types are skipped).
fn parse_pem_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

fn parse_x509<'a>(der: &'a CertificateDer<'_>) -> Result<X509Certificate<'a>, SignatureError> {
    X509Certificate::from_der(der.as_ref())
        .map(|(_, cert)| cert)
        .map_err(|e| SignatureError::CertUntrusted(format!("certificate cannot be parsed: {e}")))
}

/// `(notBefore, notAfter)` in Unix seconds.
fn validity(der: &CertificateDer<'_>) -> Result<(i64, i64), SignatureError> {
    let cert = parse_x509(der)?;
    let validity = cert.validity();
    Ok((
        validity.not_before.timestamp(),
        validity.not_after.timestamp(),
    ))
}

/// The leaf's subject must name PayPal's message-verification host: every CN (there must be
/// at least one) starts with `messageverificationcerts.` and ends with `.paypal.com`, compared
/// ASCII case-insensitively as DNS names are.
fn check_common_name(der: &CertificateDer<'_>) -> Result<(), SignatureError> {
    let cert = parse_x509(der)?;
    let mut seen = false;
    for attribute in cert.subject().iter_common_name() {
        let name = attribute
            .as_str()
            .map_err(|_| SignatureError::CertNameMismatch("(a CN that is not a string)".into()))?;
        if !is_paypal_message_name(name) {
            return Err(SignatureError::CertNameMismatch(clip(name)));
        }
        seen = true;
    }
    if seen {
        Ok(())
    } else {
        Err(SignatureError::CertNameMismatch("(no CN)".into()))
    }
}

fn is_paypal_message_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.starts_with(CN_PREFIX) && name.ends_with(CN_SUFFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paypal_message_names() {
        assert!(is_paypal_message_name(
            "messageverificationcerts.paypal.com"
        ));
        assert!(is_paypal_message_name(
            "messageverificationcerts.sandbox.paypal.com"
        ));
        assert!(is_paypal_message_name(
            "MessageVerificationCerts.Sandbox.PayPal.com"
        ));
        assert!(!is_paypal_message_name("webhooks.evil.example"));
        assert!(!is_paypal_message_name("www.paypal.com"));
        assert!(!is_paypal_message_name(
            "messageverificationcerts.paypal.com.evil.example"
        ));
    }

    #[test]
    fn garbage_bundles_are_untrusted_not_panics() {
        let anchors = TrustAnchors::mozilla();
        for bundle in [
            &b""[..],
            b"not pem",
            b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        ] {
            assert!(matches!(
                verify_bundle(bundle, &anchors, 1_700_000_000),
                Err(SignatureError::CertUntrusted(_))
            ));
        }
    }

    #[test]
    fn trust_anchors_reject_empty_pem() {
        assert!(matches!(
            TrustAnchors::from_pem(b""),
            Err(SignatureError::NotConfigured(_))
        ));
        assert!(!TrustAnchors::mozilla().is_empty());
    }

    #[test]
    fn anchors_without_a_certificate_are_empty() {
        let none = TrustAnchors {
            anchors: Vec::new(),
        };
        assert!(none.is_empty());
        assert_eq!(none.len(), 0);
    }
}
