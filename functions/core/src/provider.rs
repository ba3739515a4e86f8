//! The three payment providers payhook receives webhooks from.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A payment provider. Unknown names fail closed (`unknown_provider`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Stripe: `Stripe-Signature` HMAC-SHA256.
    Stripe,
    /// PayPal: RSA with the certificate behind `PAYPAL-CERT-URL`.
    Paypal,
    /// Square: `x-square-hmacsha256-signature` over URL + body.
    Square,
}

impl Provider {
    /// Every provider, in a stable order.
    pub const ALL: [Provider; 3] = [Provider::Stripe, Provider::Paypal, Provider::Square];

    /// The lower-case name used in URLs, queue names, metrics and `webhook_id`s.
    pub const fn as_str(self) -> &'static str {
        match self {
            Provider::Stripe => "stripe",
            Provider::Paypal => "paypal",
            Provider::Square => "square",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest part of an unknown provider segment kept in [`UnknownProvider`].
pub const UNKNOWN_PROVIDER_ECHO_CHARS: usize = 32;

/// The name did not match any provider (holding at most [`UNKNOWN_PROVIDER_ECHO_CHARS`] of it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown provider `{0}` (expected stripe, paypal or square)")]
pub struct UnknownProvider(pub String);

impl FromStr for Provider {
    type Err = UnknownProvider;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "stripe" => Ok(Provider::Stripe),
            "paypal" => Ok(Provider::Paypal),
            "square" => Ok(Provider::Square),
            // Only the start of the segment is kept: it is echoed into logs.
            other => Err(UnknownProvider(
                match other.char_indices().nth(UNKNOWN_PROVIDER_ECHO_CHARS) {
                    Some((cut, _)) => format!("{}…", &other[..cut]),
                    None => other.to_owned(),
                },
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_names_round_trip() {
        for p in Provider::ALL {
            assert_eq!(p.as_str().parse::<Provider>().unwrap(), p);
        }
    }

    #[test]
    fn unknown_provider_fails_closed() {
        assert!("Stripe".parse::<Provider>().is_err());
        assert!("adyen".parse::<Provider>().is_err());
    }
}
