//! A throw-away certificate authority for PayPal webhooks on the local stack.
//!
//! PayPal signs webhooks with the RSA key of a certificate it publishes at `PAYPAL-CERT-URL`,
//! and the validator trusts that certificate only if it chains to its trust anchors and its CN
//! is `messageverificationcerts.….paypal.com`. Locally nobody holds PayPal's key, so
//! `payhook config init` makes a CA of its own (marked `payhook LOCAL DEMO ONLY`) and a signing
//! certificate with a PayPal-shaped CN; the local stack serves the certificate for the
//! configured URL and trusts only that CA, and `payhook send` signs with the leaf key. The
//! verification code is the production code: only the anchors and the certificate source
//! differ.
//!
//! Both keys are RSA 2048 (PayPal signs with RSA, `SHA256withRSA`): the `rsa` crate generates
//! them, since *ring* cannot, and `rcgen` signs the certificates with *ring*.

use std::fmt;
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, PKCS_RSA_SHA256, SerialNumber,
};
use ring::rand::{SecureRandom as _, SystemRandom};
use rsa::pkcs8::EncodePrivateKey as _;
use rustls_pki_types::PrivatePkcs8KeyDer;
use time::{Duration, OffsetDateTime};

use crate::DevkitError;

/// The demo CA's subject common name.
pub const DEMO_CA_COMMON_NAME: &str = "payhook local demo CA";
/// The organisation of both demo certificates: they must never be mistaken for real ones.
pub const DEMO_ORGANIZATION: &str = "payhook LOCAL DEMO ONLY";
/// The signing certificate's CN; PayPal's verifier wants `messageverificationcerts.` …
/// `.paypal.com`.
pub const DEMO_LEAF_COMMON_NAME: &str = "messageverificationcerts.local.paypal.com";
/// RSA modulus size of both keys, in bits (PayPal's own certificates use 2048).
pub const DEMO_RSA_BITS: usize = 2048;
/// How long before "now" the certificates start to be valid (clock skew between tools).
pub const DEMO_VALID_BEFORE_SECS: i64 = 24 * 60 * 60;
/// How long after "now" the certificates stay valid.
pub const DEMO_VALID_FOR_SECS: i64 = 365 * 24 * 60 * 60;

/// A generated demo CA and PayPal-style signing certificate, as PEM text.
#[derive(Clone)]
pub struct DemoCa {
    /// The CA certificate: the local stack's only PayPal trust anchor.
    pub ca_pem: String,
    /// What the certificate URL "returns": the signing (leaf) certificate. The CA signs it
    /// directly, so there are no intermediates.
    pub chain_pem: String,
    /// The leaf's private key, PKCS#8 (`PRIVATE KEY`), used by `payhook send` to sign.
    pub leaf_key_pem: String,
}

impl fmt::Debug for DemoCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DemoCa")
            .field("ca_pem", &self.ca_pem)
            .field("chain_pem", &self.chain_pem)
            .field("leaf_key_pem", &"[redacted]")
            .finish()
    }
}

impl DemoCa {
    /// Generates a fresh CA and leaf, valid from one day before `now_unix` to a year after.
    pub fn generate(now_unix: i64) -> Result<DemoCa, DevkitError> {
        let failed = |what: &str, e: &dyn fmt::Display| {
            DevkitError::Crypto(format!("cannot generate the demo PayPal CA: {what}: {e}"))
        };
        let not_before = OffsetDateTime::from_unix_timestamp(now_unix - DEMO_VALID_BEFORE_SECS)
            .map_err(|e| failed("start of validity", &e))?;
        let not_after =
            not_before + Duration::seconds(DEMO_VALID_BEFORE_SECS + DEMO_VALID_FOR_SECS);
        let rng = SystemRandom::new();

        let ca_key = rsa_key_pair().map_err(|e| failed("CA key", &e))?;
        let mut ca = CertificateParams::default();
        ca.distinguished_name = distinguished_name(DEMO_CA_COMMON_NAME);
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca.not_before = not_before;
        ca.not_after = not_after;
        ca.serial_number = Some(serial_number(&rng).map_err(|e| failed("serial", &e))?);
        let issuer = CertifiedIssuer::self_signed(ca, ca_key).map_err(|e| failed("CA", &e))?;

        let leaf_key = rsa_key_pair().map_err(|e| failed("leaf key", &e))?;
        let mut leaf = CertificateParams::new(vec![DEMO_LEAF_COMMON_NAME.to_owned()])
            .map_err(|e| failed("leaf name", &e))?;
        leaf.distinguished_name = distinguished_name(DEMO_LEAF_COMMON_NAME);
        leaf.is_ca = IsCa::ExplicitNoCa;
        leaf.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        // As on PayPal's real message-verification certificates (TLS server certificates).
        leaf.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        leaf.not_before = not_before;
        leaf.not_after = not_after;
        leaf.serial_number = Some(serial_number(&rng).map_err(|e| failed("serial", &e))?);
        let leaf_cert = leaf
            .signed_by(&leaf_key, &issuer)
            .map_err(|e| failed("leaf certificate", &e))?;

        Ok(DemoCa {
            ca_pem: issuer.pem(),
            chain_pem: leaf_cert.pem(),
            leaf_key_pem: leaf_key.serialize_pem(),
        })
    }

    /// Writes the three PEM files; the key file is readable by its owner only (Unix).
    pub fn write(&self, chain: &Path, trust_anchor: &Path, key: &Path) -> Result<(), DevkitError> {
        crate::write_file(chain, self.chain_pem.as_bytes(), false)?;
        crate::write_file(trust_anchor, self.ca_pem.as_bytes(), false)?;
        crate::write_file(key, self.leaf_key_pem.as_bytes(), true)
    }
}

/// `CN=…, O=payhook LOCAL DEMO ONLY`.
fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name.push(DnType::OrganizationName, DEMO_ORGANIZATION);
    name
}

/// A random positive 128-bit serial number (RFC 5280: positive, at most 20 octets).
fn serial_number(rng: &SystemRandom) -> Result<SerialNumber, String> {
    let mut bytes = [0u8; 16];
    rng.fill(&mut bytes)
        .map_err(|_| "the system random generator failed".to_owned())?;
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    Ok(SerialNumber::from_slice(&bytes))
}

/// A fresh RSA key for `rcgen`, handed over as PKCS#8 and signing with `SHA256withRSA`.
fn rsa_key_pair() -> Result<KeyPair, String> {
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, DEMO_RSA_BITS)
        .map_err(|e| e.to_string())?;
    let der = key.to_pkcs8_der().map_err(|e| e.to_string())?;
    KeyPair::from_pkcs8_der_and_sign_algo(
        &PrivatePkcs8KeyDer::from(der.as_bytes()),
        &PKCS_RSA_SHA256,
    )
    .map_err(|e| e.to_string())
}
