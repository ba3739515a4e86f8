//! Amount tiers: how large a payment is, for routing (the amount rules in `rules/`) and the
//! dashboards. The provider processors stamp each published event with its tier.

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
}

impl Tier {
    /// `high`, `medium` or `low`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Tier::High => "high",
            Tier::Medium => "medium",
            Tier::Low => "low",
        }
    }
}

/// Tier thresholds in major units of the event's currency (the same numbers the amount rules
/// in `rules/` use on `detail.amount`).
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
    /// The tier of `event`.
    pub fn tier_of(&self, event: &PaymentEvent) -> Tier {
        self.tier(event.amount)
    }

    /// The tier of `amount` (major units).
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
