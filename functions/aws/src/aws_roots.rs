//! Which of Mozilla's roots the AWS SDK's HTTPS client trusts. The build script (`build.rs`)
//! writes their PEM bundle, which `config.rs` compiles in as `AWS_ROOTS_PEM` (and tests).

/// The subjects' common names of the roots AWS's endpoints chain to (Amazon Trust Services).
pub(crate) const AWS_ROOT_NAMES: [&str; 5] = [
    "Amazon Root CA 1",
    "Amazon Root CA 2",
    "Amazon Root CA 3",
    "Amazon Root CA 4",
    "Starfield Services Root Certificate Authority - G2",
];

/// Whether `der` holds one of [`AWS_ROOT_NAMES`] as a whole DER string — tag (PrintableString
/// 0x13 or UTF8String 0x0c), one-byte length, bytes. A self-signed root names itself as
/// subject and issuer.
#[allow(
    dead_code,
    reason = "the build script runs it; in the crate only its tests do"
)]
pub(crate) fn names_an_aws_root(der: &[u8]) -> bool {
    (0..der.len().saturating_sub(1)).any(|at| {
        matches!(der[at], 0x13 | 0x0c) && {
            let len = usize::from(der[at + 1]);
            der.get(at + 2..at + 2 + len)
                .is_some_and(|value| AWS_ROOT_NAMES.iter().any(|name| name.as_bytes() == value))
        }
    })
}
