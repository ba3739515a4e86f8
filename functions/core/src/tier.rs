//! Amount tiers: how large a payment is, for routing (the amount rules in `rules/`) and the
//! dashboards. The provider processors stamp each published event with its tier.
//!
//! Tiers compare the event's `amount_reporting` (the amount in the reporting currency, USD by
//! default, from the rates file `rules/currencies/rates.json`), so ¥1,000 is low and KWD 999 high. An
//! event whose currency has no rate is `unrated`, never guessed from its own-currency amount.

use serde::{Deserialize, Serialize};

use crate::event::PaymentEvent;

/// The amount tier of a payment, for routing and dashboards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// At or above the high threshold.
    High,
    /// At or above the medium threshold.
    Medium,
    /// Below the medium threshold.
    Low,
    /// The currency has no reporting rate: the amount cannot be compared.
    Unrated,
}

impl Tier {
    /// `high`, `medium` or `low`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Tier::High => "high",
            Tier::Medium => "medium",
            Tier::Low => "low",
            Tier::Unrated => "unrated",
        }
    }
}

/// Tier thresholds in the reporting currency (the same numbers the amount rules in `rules/` use
/// on `detail.amount_reporting`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TierThresholds {
    /// `amount >= high_min` is `high`.
    pub high_min: f64,
    /// `amount >= medium_min` is `medium`.
    pub medium_min: f64,
}

impl Default for TierThresholds {
    fn default() -> Self {
        TierThresholds {
            high_min: 1000.0,
            medium_min: 100.0,
        }
    }
}

impl TierThresholds {
    /// The tier of `event`: by its reporting amount, `unrated` without one.
    pub fn tier_of(&self, event: &PaymentEvent) -> Tier {
        event
            .amount_reporting
            .map_or(Tier::Unrated, |amount| self.tier(amount))
    }

    /// The tier of `amount` (in the reporting currency).
    pub fn tier(&self, amount: f64) -> Tier {
        if amount >= self.high_min {
            Tier::High
        } else if amount >= self.medium_min {
            Tier::Medium
        } else {
            Tier::Low
        }
    }
}
