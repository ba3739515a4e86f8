//! Currency exponents, exact decimal arithmetic for normalisation, and the reporting rates that
//! make amounts of different currencies comparable.
//!
//! Every amount in a [`crate::PaymentEvent`] is an integer number of minor units of its
//! currency. How many minor units make a major unit (the *exponent*) depends on the provider:
//!
//! - **Stripe** has its own table (its currencies page), which is not ISO 4217: the
//!   zero-decimal currencies are [`STRIPE_ZERO_DECIMAL`] (MGA among them, although ISO gives it
//!   2), the three-decimal ones are [`STRIPE_THREE_DECIMAL`], ISK stays two-decimal although
//!   ISO gives it 0, and every other currency Stripe supports is two-decimal (HUF and TWD
//!   included: they charge as two-decimal and only pay out as zero-decimal). A currency that
//!   ISO gives another exponent and that Stripe does not list (IQD, LYD, CLF, UYI, …) is
//!   refused rather than guessed.
//! - **Square** sends `Money.amount` in the smallest denomination of the currency, per ISO 4217.
//! - **PayPal** sends decimal strings, read with the ISO 4217 exponent by
//!   [`parse_decimal_minor`], exactly and without floats.
//!
//! Unknown codes fail closed with `unsupported_currency` — unless the rates file names them.
//!
//! **Reporting amounts.** Tiers and the amount rules compare [`Rates::reporting`] amounts: the
//! major-unit amount times the currency's rate in the reporting currency (USD by default), from
//! the rates file `rules/currencies/rates.json` (per currency: its ISO 4217 exponent and its rate, with
//! the date of the rates). So ¥1,000 is about 7 USD, not "1000", and KWD 999 about 3,250 USD. A
//! currency without a rate is never guessed: its events carry no reporting amount and are
//! `unrated`. The file can also add a currency this module does not know yet (a new ISO code),
//! with its exponent, so its events normalise instead of being refused.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::normalise::NormaliseError;
use crate::provider::Provider;

/// The repository's rates file (`rules/currencies/rates.json`), built in as the default.
pub const BUNDLED_RATES_JSON: &str = include_str!("../../../rules/currencies/rates.json");

/// EventBridge compares numbers only between −5.0e9 and 5.0e9 (with at most six decimals):
/// reporting amounts are kept inside that range so the amount rules always see them.
pub const EVENTBRIDGE_NUMERIC_LIMIT: f64 = 5.0e9;

/// Stripe's zero-decimal currencies: the amount is already in whole units (¥500 is `500`).
pub const STRIPE_ZERO_DECIMAL: [&str; 16] = [
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
    "XAF", "XOF", "XPF",
];

/// Stripe's three-decimal currencies (its API requires the last digit to be 0).
pub const STRIPE_THREE_DECIMAL: [&str; 5] = ["BHD", "JOD", "KWD", "OMR", "TND"];

/// The longest currency text repeated back in an error message.
const MAX_SHOWN_CHARS: usize = 32;

/// The number of decimal places of `currency` (case-insensitive ISO 4217 code) in `provider`'s
/// amounts: Stripe's own table for Stripe, ISO 4217 for Square and PayPal.
///
/// ```
/// use payhook_core::{currency, Provider};
/// assert_eq!(currency::exponent(Provider::Stripe, "isk"), Ok(2));
/// assert_eq!(currency::exponent(Provider::Square, "ISK"), Ok(0));
/// assert_eq!(currency::exponent(Provider::Stripe, "MGA"), Ok(0));
/// assert_eq!(currency::exponent(Provider::Paypal, "MGA"), Ok(2));
/// assert!(currency::exponent(Provider::Paypal, "XYZ").is_err());
/// ```
pub fn exponent(provider: Provider, currency: &str) -> Result<u32, NormaliseError> {
    let code = canonical_code(currency)?;
    let found = match provider {
        Provider::Stripe => stripe_exponent(&code),
        Provider::Paypal | Provider::Square => iso_exponent(&code),
    };
    found.ok_or_else(|| NormaliseError::UnsupportedCurrency(shown(currency)))
}

/// `currency` as an upper-case ISO 4217 code, if it has the shape of one (three ASCII letters).
/// Says nothing about whether the code exists; see [`exponent`].
pub fn canonical_code(currency: &str) -> Result<String, NormaliseError> {
    if currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(currency.to_ascii_uppercase())
    } else {
        Err(NormaliseError::UnsupportedCurrency(shown(currency)))
    }
}

/// Parses a non-negative decimal string (`"2.51"`, `"600"`, `"1.005"`) into minor units of a
/// currency with `exponent` decimal places, exactly and without floats.
///
/// Accepted: one or more ASCII digits, optionally followed by `.` and one to `exponent` digits.
/// Refused with `invalid_amount`: an empty string, a sign, an exponent (`1e3`), spaces, a
/// missing digit on either side of the point, more fractional digits than the currency has
/// (`"2.515"` in USD, `"100.5"` in JPY), and values that do not fit in an `i64`.
///
/// ```
/// use payhook_core::currency::parse_decimal_minor;
/// assert_eq!(parse_decimal_minor("2.51", 2), Ok(251));
/// assert_eq!(parse_decimal_minor("2.5", 2), Ok(250));
/// assert_eq!(parse_decimal_minor("1500", 0), Ok(1500));
/// assert_eq!(parse_decimal_minor("1.005", 3), Ok(1005));
/// assert!(parse_decimal_minor("2.515", 2).is_err());
/// assert!(parse_decimal_minor("-1.00", 2).is_err());
/// ```
pub fn parse_decimal_minor(value: &str, exponent: u32) -> Result<i64, NormaliseError> {
    let invalid = |why: String| NormaliseError::InvalidAmount(format!("`{}` {why}", shown(value)));
    let (whole, fraction) = match value.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (value, None),
    };
    if whole.is_empty() {
        return Err(invalid("has no digits before the decimal point".into()));
    }
    let only_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !only_digits(whole) {
        return Err(invalid(
            "is not a plain decimal (digits and at most one `.`; no sign, exponent or spaces)"
                .into(),
        ));
    }
    if fraction == Some("") {
        return Err(invalid("has no digits after the decimal point".into()));
    }
    let fraction = fraction.unwrap_or("");
    if !only_digits(fraction) {
        return Err(invalid(
            "is not a plain decimal (digits and at most one `.`; no sign, exponent or spaces)"
                .into(),
        ));
    }
    // Compared as usize: a u32 exponent always fits.
    if fraction.len() > exponent as usize {
        return Err(invalid(format!(
            "has more than {exponent} fractional digit(s), the currency's exponent"
        )));
    }
    let overflow = || invalid("does not fit in 64-bit minor units".into());
    let mut minor: i64 = 0;
    for digit in whole.bytes().chain(fraction.bytes()) {
        minor = minor
            .checked_mul(10)
            .and_then(|m| m.checked_add(i64::from(digit - b'0')))
            .ok_or_else(overflow)?;
    }
    // Scale the missing fractional digits; zero stays zero, anything else overflows within 19
    // steps, so a huge exponent cannot make this loop long.
    let missing = exponent as usize - fraction.len();
    for _ in 0..missing {
        if minor == 0 {
            break;
        }
        minor = minor.checked_mul(10).ok_or_else(overflow)?;
    }
    Ok(minor)
}

/// `amount_minor` in major units, as the `f64` nearest to the exact decimal value (`251`, 2 →
/// `2.51`). For [`crate::PaymentEvent::amount`] only, which exists for EventBridge numeric
/// rules; never use the result for arithmetic.
pub fn minor_to_major_f64(amount_minor: i64, exponent: u32) -> f64 {
    // "251e-2" parsed by the standard library is correctly rounded, whatever the magnitude of
    // the amount or the exponent; a plain division would round twice above 2^53.
    let sign = if amount_minor < 0 { "-" } else { "" };
    let text = format!("{sign}{}e-{exponent}", amount_minor.unsigned_abs());
    text.parse::<f64>()
        .unwrap_or_else(|_| amount_minor as f64 / 10f64.powf(f64::from(exponent)))
}

/// Stripe's exponent for an upper-case code, or `None` when Stripe does not document it.
fn stripe_exponent(code: &str) -> Option<u32> {
    if STRIPE_ZERO_DECIMAL.contains(&code) {
        return Some(0);
    }
    if STRIPE_THREE_DECIMAL.contains(&code) {
        return Some(3);
    }
    match (code, iso_exponent(code)) {
        // Stripe keeps ISK two-decimal (amounts divisible by 100) although ISO gives it 0.
        ("ISK", _) => Some(2),
        (_, Some(2)) => Some(2),
        // ISO says 0, 3 or 4 and Stripe lists it neither way: refuse rather than guess.
        _ => None,
    }
}

/// The ISO 4217 minor-unit exponent of an upper-case code, or `None` for unknown codes and
/// for codes without minor units (precious metals, XDR, test codes).
fn iso_exponent(code: &str) -> Option<u32> {
    match code {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => Some(0),
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => Some(3),
        "CLF" | "UYW" => Some(4),
        "AED" | "AFN" | "ALL" | "AMD" | "ANG" | "AOA" | "ARS" | "AUD" | "AWG" | "AZN" | "BAM"
        | "BBD" | "BDT" | "BGN" | "BMD" | "BND" | "BOB" | "BOV" | "BRL" | "BSD" | "BTN" | "BWP"
        | "BYN" | "BZD" | "CAD" | "CDF" | "CHE" | "CHF" | "CHW" | "CNY" | "COP" | "COU" | "CRC"
        | "CUP" | "CVE" | "CZK" | "DKK" | "DOP" | "DZD" | "EGP" | "ERN" | "ETB" | "EUR" | "FJD"
        | "FKP" | "GBP" | "GEL" | "GHS" | "GIP" | "GMD" | "GTQ" | "GYD" | "HKD" | "HNL" | "HTG"
        | "HUF" | "IDR" | "ILS" | "INR" | "IRR" | "JMD" | "KES" | "KGS" | "KHR" | "KPW" | "KYD"
        | "KZT" | "LAK" | "LBP" | "LKR" | "LRD" | "LSL" | "MAD" | "MDL" | "MGA" | "MKD" | "MMK"
        | "MNT" | "MOP" | "MRU" | "MUR" | "MVR" | "MWK" | "MXN" | "MXV" | "MYR" | "MZN" | "NAD"
        | "NGN" | "NIO" | "NOK" | "NPR" | "NZD" | "PAB" | "PEN" | "PGK" | "PHP" | "PKR" | "PLN"
        | "QAR" | "RON" | "RSD" | "RUB" | "SAR" | "SBD" | "SCR" | "SDG" | "SEK" | "SGD" | "SHP"
        | "SLE" | "SOS" | "SRD" | "SSP" | "STN" | "SVC" | "SYP" | "SZL" | "THB" | "TJS" | "TMT"
        | "TOP" | "TRY" | "TTD" | "TWD" | "TZS" | "UAH" | "USD" | "USN" | "UYU" | "UZS" | "VED"
        | "VES" | "WST" | "XCD" | "XCG" | "YER" | "ZAR" | "ZMW" | "ZWG" => Some(2),
        // Withdrawn recently; still found in replayed or historical events.
        "CUC" | "HRK" | "SLL" | "ZWL" => Some(2),
        _ => None,
    }
}

/// One currency of the rates file.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateEntry {
    /// Its ISO 4217 exponent.
    pub exponent: u32,
    /// Units of the reporting currency per major unit; `None`: no rate, events are unrated.
    pub rate: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RatesFile {
    reporting_currency: String,
    as_of: String,
    #[serde(default)]
    note: Option<String>,
    currencies: BTreeMap<String, RateEntry>,
}

/// The rates file is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("currency rates: {0}")]
pub struct RatesError(pub String);

/// Reporting rates and extra currencies, from a rates file such as `rules/currencies/rates.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rates {
    reporting_currency: String,
    as_of: String,
    entries: BTreeMap<String, RateEntry>,
}

impl Rates {
    /// Parses and checks a rates file: upper-case ISO-shaped codes, each exponent the one ISO
    /// gives (for codes this module knows) and at most 4, rates finite and positive or null,
    /// and the reporting currency listed at rate 1.
    pub fn from_json(text: &str) -> Result<Rates, RatesError> {
        let file: RatesFile =
            serde_json::from_str(text).map_err(|e| RatesError(format!("not a rates file: {e}")))?;
        let _ = file.note;
        for (code, entry) in &file.currencies {
            if canonical_code(code).ok().as_deref() != Some(code.as_str()) {
                return Err(RatesError(format!(
                    "`{}` is not an upper-case currency code",
                    shown(code)
                )));
            }
            if let Some(iso) = iso_exponent(code)
                && iso != entry.exponent
            {
                return Err(RatesError(format!(
                    "{code} has exponent {} in the file, ISO 4217 gives {iso}",
                    entry.exponent
                )));
            }
            if entry.exponent > 4 {
                return Err(RatesError(format!(
                    "{code}: exponent {} is over 4",
                    entry.exponent
                )));
            }
            if entry
                .rate
                .is_some_and(|rate| !(rate.is_finite() && rate > 0.0))
            {
                return Err(RatesError(format!(
                    "{code}: a rate must be positive (or null)"
                )));
            }
        }
        match file.currencies.get(&file.reporting_currency) {
            Some(entry) if entry.rate == Some(1.0) => {}
            _ => {
                return Err(RatesError(format!(
                    "the reporting currency {} must be listed with rate 1",
                    shown(&file.reporting_currency)
                )));
            }
        }
        Ok(Rates {
            reporting_currency: file.reporting_currency,
            as_of: file.as_of,
            entries: file.currencies,
        })
    }

    /// The repository's `rules/currencies/rates.json`, as built in.
    pub fn bundled() -> Result<Rates, RatesError> {
        Rates::from_json(BUNDLED_RATES_JSON)
    }

    /// No rates file: only USD amounts are rated (at 1), every other currency is unrated.
    pub fn usd_only() -> Rates {
        Rates {
            reporting_currency: "USD".to_owned(),
            as_of: String::new(),
            entries: BTreeMap::from([(
                "USD".to_owned(),
                RateEntry {
                    exponent: 2,
                    rate: Some(1.0),
                },
            )]),
        }
    }

    /// The currency reporting amounts are in.
    pub fn reporting_currency(&self) -> &str {
        &self.reporting_currency
    }

    /// The date the rates are from.
    pub fn as_of(&self) -> &str {
        &self.as_of
    }

    /// Every currency the file lists, with its entry.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &RateEntry)> {
        self.entries
            .iter()
            .map(|(code, entry)| (code.as_str(), entry))
    }

    /// `currency`'s exponent in `provider`'s amounts: the built-in tables first, then the file
    /// for a currency they do not know.
    pub fn exponent(&self, provider: Provider, currency: &str) -> Result<u32, NormaliseError> {
        exponent(provider, currency).or_else(|err| {
            canonical_code(currency)
                .ok()
                .and_then(|code| self.entries.get(&code))
                .map(|entry| entry.exponent)
                .ok_or(err)
        })
    }

    /// `amount_minor` of `currency` (with `exponent` decimals) in the reporting currency,
    /// rounded to its cents and kept inside EventBridge's numeric range; `None` when the
    /// currency has no rate.
    pub fn reporting(&self, currency: &str, amount_minor: i64, exponent: u32) -> Option<f64> {
        let rate = self.entries.get(currency)?.rate?;
        let reporting_exponent = self
            .entries
            .get(&self.reporting_currency)
            .map_or(2, |entry| entry.exponent);
        // Straight to the reporting currency's minor units, then rounded once: going through
        // the major amount first would round 40.105 down to 40.10 in binary floating point.
        let scale = 10f64.powi(i32::try_from(reporting_exponent).unwrap_or(2))
            / 10f64.powi(i32::try_from(exponent).unwrap_or(0));
        let minor = (amount_minor as f64 * rate * scale).round();
        let value = minor / 10f64.powi(i32::try_from(reporting_exponent).unwrap_or(2));
        Some(value.clamp(-EVENTBRIDGE_NUMERIC_LIMIT, EVENTBRIDGE_NUMERIC_LIMIT))
    }
}

/// `amount_minor` with `exponent` decimals as an exact decimal string (`150000`, 3 →
/// `"150.000"`; `-5`, 2 → `"-0.05"`).
pub fn minor_to_decimal_string(amount_minor: i64, exponent: u32) -> String {
    let sign = if amount_minor < 0 { "-" } else { "" };
    let digits = amount_minor.unsigned_abs().to_string();
    let exponent = exponent as usize;
    if exponent == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = exponent + 1);
    let (whole, fraction) = padded.split_at(padded.len() - exponent);
    format!("{sign}{whole}.{fraction}")
}

/// `text` cut to a bounded length for error messages (bodies are not logged whole).
fn shown(text: &str) -> String {
    match text.char_indices().nth(MAX_SHOWN_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripe_table_overrides_iso_where_stripe_differs() {
        for (code, stripe, iso) in [("ISK", 2, 0), ("MGA", 0, 2)] {
            assert_eq!(exponent(Provider::Stripe, code), Ok(stripe), "{code}");
            assert_eq!(exponent(Provider::Square, code), Ok(iso), "{code}");
        }
    }

    #[test]
    fn every_stripe_listed_currency_is_an_iso_code() {
        for code in STRIPE_ZERO_DECIMAL
            .iter()
            .chain(STRIPE_THREE_DECIMAL.iter())
        {
            assert!(iso_exponent(code).is_some(), "{code}");
        }
    }

    #[test]
    fn the_bundled_rates_file_is_valid_and_rates_its_reporting_currency_at_one() {
        let rates = Rates::bundled().unwrap();
        assert_eq!(rates.reporting_currency(), "USD");
        assert_eq!(rates.reporting("USD", 150_000, 2), Some(1500.0));
        assert!(!rates.as_of().is_empty());
    }

    #[test]
    fn reporting_amounts_make_currencies_comparable() {
        let rates = Rates::from_json(
            r#"{"reporting_currency":"USD","as_of":"2026-12-01","currencies":{
                "USD":{"exponent":2,"rate":1},"JPY":{"exponent":0,"rate":0.0067},
                "KWD":{"exponent":3,"rate":3.25},"EUR":{"exponent":2,"rate":null}}}"#,
        )
        .unwrap();
        assert_eq!(rates.reporting("JPY", 1000, 0), Some(6.7));
        assert_eq!(rates.reporting("KWD", 999_000, 3), Some(3246.75));
        assert_eq!(rates.reporting("EUR", 100, 2), None, "null rate: unrated");
        assert_eq!(rates.reporting("GBP", 100, 2), None, "not listed: unrated");
        assert_eq!(
            rates.reporting("USD", i64::MAX, 0),
            Some(EVENTBRIDGE_NUMERIC_LIMIT),
            "kept inside EventBridge's numeric range"
        );
    }

    #[test]
    fn the_file_can_add_a_currency_and_cannot_contradict_iso() {
        let with = |entry: &str| {
            Rates::from_json(&format!(
                r#"{{"reporting_currency":"USD","as_of":"x","currencies":{{"USD":{{"exponent":2,"rate":1}},{entry}}}}}"#
            ))
        };
        let added = with(r#""XTS":{"exponent":2,"rate":null}"#).unwrap();
        assert!(exponent(Provider::Square, "XTS").is_err());
        assert_eq!(added.exponent(Provider::Square, "xts"), Ok(2));
        assert!(with(r#""JPY":{"exponent":2,"rate":0.0067}"#).is_err());
        assert!(with(r#""usd":{"exponent":2,"rate":1}"#).is_err());
        assert!(with(r#""EUR":{"exponent":2,"rate":-1}"#).is_err());
        assert!(with(r#""EUR":{"exponent":2,"rate":1,"extra":true}"#).is_err());
        assert!(
            Rates::from_json(r#"{"reporting_currency":"EUR","as_of":"x","currencies":{}}"#)
                .is_err()
        );
    }

    #[test]
    fn decimal_strings_are_exact() {
        assert_eq!(minor_to_decimal_string(150_000, 3), "150.000");
        assert_eq!(minor_to_decimal_string(1500, 0), "1500");
        assert_eq!(minor_to_decimal_string(-5, 2), "-0.05");
        assert_eq!(
            minor_to_decimal_string(i64::MIN, 2),
            "-92233720368547758.08"
        );
    }

    #[test]
    fn shown_cuts_long_text_on_a_char_boundary() {
        let long = "é".repeat(100);
        assert_eq!(shown(&long).chars().count(), MAX_SHOWN_CHARS + 1);
        assert_eq!(shown("usd"), "usd");
    }
}
