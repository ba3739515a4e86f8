//! Normalisation of provider payloads into the canonical [`crate::PaymentEvent`].
