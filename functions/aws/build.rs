//! Writes the PEM bundle of the AWS roots (`src/aws_roots.rs` chooses them from Mozilla's set in
//! `webpki-root-certs`) to `OUT_DIR/aws_roots.pem`, which `src/config.rs` compiles in.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

#[path = "src/aws_roots.rs"]
mod aws_roots;

fn main() {
    println!("cargo::rerun-if-changed=src/aws_roots.rs");
    let mut pem = Vec::new();
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|cert| cert.as_ref())
        .filter(|der| aws_roots::names_an_aws_root(der))
    {
        pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        for line in STANDARD.encode(cert).as_bytes().chunks(64) {
            pem.extend_from_slice(line);
            pem.push(b'\n');
        }
        pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
    }
    assert!(!pem.is_empty(), "no AWS root in webpki-root-certs");
    let out = std::path::Path::new(&std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("aws_roots.pem");
    std::fs::write(&out, pem).expect("OUT_DIR is writable");
}
