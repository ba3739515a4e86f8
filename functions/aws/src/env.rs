//! A Lambda function's configuration from its environment, read once at cold start by each
//! binary's `Config::from_lookup`. One rule for all of them: values are trimmed, an empty value
//! is the same as an unset one, and an error names the variable and says what it should hold.
//!
//! ```
//! use payhook_aws::env::Env;
//!
//! let env = Env::new(|name| (name == "MAX_RECEIVE_COUNT").then(|| " 7 ".to_owned()));
//! assert_eq!(env.parse_or("MAX_RECEIVE_COUNT", 5_u32), Ok(7));
//! assert_eq!(env.parse_or("TIER_HIGH_MIN", 1000.0), Ok(1000.0));
//! assert_eq!(
//!     env.required("PROVIDER", "stripe, paypal or square").unwrap_err().variable(),
//!     "PROVIDER"
//! );
//! ```

use std::fmt::Display;
use std::str::FromStr;

use payhook_core::Provider;

use crate::status_store::DEFAULT_TABLE_NAME;

/// The status table's name (default [`DEFAULT_TABLE_NAME`]), for every function that has one.
pub const STATUS_TABLE_ENV: &str = "STATUS_TABLE";

/// The queue URL variable of each provider, for every function that sends to the queues.
pub const QUEUE_URL_VARIABLES: [(Provider, &str); 3] = [
    (Provider::Stripe, "QUEUE_URL_STRIPE"),
    (Provider::Paypal, "QUEUE_URL_PAYPAL"),
    (Provider::Square, "QUEUE_URL_SQUARE"),
];

/// A configuration variable is missing or invalid: the function cannot start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    /// A required variable is unset or empty.
    #[error("{name} is not set (expected {expected})")]
    Missing {
        /// The variable.
        name: &'static str,
        /// What it should hold.
        expected: &'static str,
    },
    /// A variable's value cannot be used.
    #[error("{name}=`{value}` is not valid: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Its (trimmed) value.
        value: String,
        /// Why it was refused.
        reason: String,
    },
}

impl EnvError {
    /// The variable at fault.
    pub fn variable(&self) -> &'static str {
        match self {
            EnvError::Missing { name, .. } | EnvError::Invalid { name, .. } => name,
        }
    }

    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            EnvError::Missing { .. } => "config_missing",
            EnvError::Invalid { .. } => "config_invalid",
        }
    }
}

/// The environment seen through a lookup (`|name| std::env::var(name).ok()` in a binary, a map
/// in tests), with the trimming and empty-is-unset rule applied.
#[derive(Debug, Clone, Copy)]
pub struct Env<F> {
    lookup: F,
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// Reads through `lookup`.
    pub fn new(lookup: F) -> Self {
        Env { lookup }
    }

    /// The trimmed value of `name`; `None` when unset or empty.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// The value of `name`, which must be set; `expected` says what it should hold.
    pub fn required(&self, name: &'static str, expected: &'static str) -> Result<String, EnvError> {
        self.get(name).ok_or(EnvError::Missing { name, expected })
    }

    /// The status table ([`STATUS_TABLE_ENV`], else [`DEFAULT_TABLE_NAME`]).
    pub fn status_table(&self) -> String {
        self.get(STATUS_TABLE_ENV)
            .unwrap_or_else(|| DEFAULT_TABLE_NAME.to_owned())
    }

    /// Every provider's queue URL ([`QUEUE_URL_VARIABLES`], all required).
    pub fn queue_urls(&self) -> Result<Vec<(Provider, String)>, EnvError> {
        QUEUE_URL_VARIABLES
            .into_iter()
            .map(|(provider, name)| {
                self.required(name, "the provider's SQS FIFO queue URL")
                    .map(|url| (provider, url))
            })
            .collect()
    }

    /// `name` parsed as `T`, or `default` when it is unset.
    pub fn parse_or<T>(&self, name: &'static str, default: T) -> Result<T, EnvError>
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(value) => value.parse().map_err(|e: T::Err| EnvError::Invalid {
                name,
                reason: e.to_string(),
                value,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> Env<impl Fn(&str) -> Option<String>> {
        Env::new(move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn values_are_trimmed_and_blank_ones_are_unset() {
        let env = env(&[("A", "  x  "), ("B", ""), ("C", " \t ")]);
        assert_eq!(env.get("A").as_deref(), Some("x"));
        assert_eq!(env.get("B"), None);
        assert_eq!(env.get("C"), None);
        assert_eq!(env.get("D"), None);
    }

    #[test]
    fn the_table_defaults_and_every_queue_url_is_required_in_provider_order() {
        assert_eq!(
            env(&[("STATUS_TABLE", " ")]).status_table(),
            "webhook-processing"
        );
        assert_eq!(env(&[("STATUS_TABLE", " t-dev ")]).status_table(), "t-dev");
        let all = env(&[
            ("QUEUE_URL_SQUARE", "q3"),
            ("QUEUE_URL_STRIPE", "q1"),
            ("QUEUE_URL_PAYPAL", "q2"),
        ]);
        assert_eq!(
            all.queue_urls().unwrap(),
            vec![
                (Provider::Stripe, "q1".to_owned()),
                (Provider::Paypal, "q2".to_owned()),
                (Provider::Square, "q3".to_owned()),
            ]
        );
        let missing = env(&[("QUEUE_URL_STRIPE", "q1"), ("QUEUE_URL_PAYPAL", "")]);
        assert_eq!(
            missing.queue_urls().unwrap_err().variable(),
            "QUEUE_URL_PAYPAL"
        );
    }

    #[test]
    fn a_blank_value_takes_the_default() {
        assert_eq!(env(&[("N", " ")]).parse_or("N", 5_u32), Ok(5));
    }

    #[test]
    fn a_missing_required_variable_is_named_with_what_it_should_hold() {
        let err = env(&[("PROVIDER", "")])
            .required("PROVIDER", "stripe, paypal or square")
            .unwrap_err();
        assert_eq!(err.variable(), "PROVIDER");
        assert_eq!(err.code(), "config_missing");
        assert_eq!(
            err.to_string(),
            "PROVIDER is not set (expected stripe, paypal or square)"
        );
    }

    #[test]
    fn an_unparsable_value_is_named_with_the_value_and_the_reason() {
        let err = env(&[("N", " five ")]).parse_or("N", 5_u32).unwrap_err();
        assert_eq!(err.variable(), "N");
        assert_eq!(err.code(), "config_invalid");
        assert!(
            err.to_string().starts_with("N=`five` is not valid: "),
            "{err}"
        );
    }
}
