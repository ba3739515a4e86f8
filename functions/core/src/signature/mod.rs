//! Webhook signature verification for Stripe, Square and PayPal.
