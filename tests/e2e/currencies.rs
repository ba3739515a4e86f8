//! Currency-aware tiers through the whole pipeline: amounts are compared in the reporting
//! currency of the rates file, and a currency without a rate is unrated, never guessed.

use crate::support::Harness;
use payhook_core::Provider;
use payhook_core::status::Status;
use payhook_devkit::payloads::PayloadSpec;

/// Posts a succeeded payment of `amount` `currency` from `provider`; returns its webhook id.
async fn pay(h: &Harness, provider: Provider, amount: &str, currency: &str) -> String {
    let p = h.payload(PayloadSpec::new(provider).amount(amount, currency));
    let (status, body) = h.post(&p).await;
    assert_eq!(status, 202, "{provider} {amount} {currency}: {body}");
    p.webhook_id()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yen_and_dinar_payments_land_in_the_tier_of_their_reporting_amount() {
    let h = Harness::start("currencies", |_| {}).await;
    let cases = [
        // ¥1,000 is about 7 USD, ¥200,000 about 1,340 USD.
        (
            pay(&h, Provider::Stripe, "1000", "JPY").await,
            "low",
            "low-value-payments",
        ),
        (
            pay(&h, Provider::Square, "200000", "JPY").await,
            "high",
            "high-value-payments",
        ),
        // KWD 999 is about 3,250 USD, KWD 50 about 160 USD.
        (
            pay(&h, Provider::Paypal, "999.000", "KWD").await,
            "high",
            "high-value-payments",
        ),
        (
            pay(&h, Provider::Stripe, "50.000", "KWD").await,
            "medium",
            "medium-value-payments",
        ),
    ];
    h.idle().await;
    for (id, tier, rule) in cases {
        let item = h.stack.status(&id).await.expect("recorded");
        assert_eq!(item.status, Status::Processed, "{id}");
        assert_eq!(item.tier.as_deref(), Some(tier), "{id}");
        assert_eq!(item.matched_rules, [rule], "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_currency_without_a_rate_is_processed_unrated_by_its_own_rule() {
    let dir = crate::support::run_dir("currencies-unrated-rates");
    std::fs::create_dir_all(&dir).unwrap();
    let rates = dir.join("rates.json");
    std::fs::write(
        &rates,
        r#"{"reporting_currency":"USD","as_of":"2026-12-01","currencies":{
            "USD":{"exponent":2,"rate":1},"EUR":{"exponent":2,"rate":null}}}"#,
    )
    .unwrap();
    let h = Harness::start("currencies-unrated", |c| {
        c.processing.currency_rates_file = Some(rates);
    })
    .await;
    let eur = pay(&h, Provider::Stripe, "5000.00", "EUR").await;
    let usd = pay(&h, Provider::Stripe, "5000.00", "USD").await;
    h.idle().await;
    let item = h.stack.status(&eur).await.expect("recorded");
    assert_eq!(item.status, Status::Processed);
    assert_eq!(item.tier.as_deref(), Some("unrated"));
    assert_eq!(item.matched_rules, ["unrated-payments"]);
    let item = h.stack.status(&usd).await.expect("recorded");
    assert_eq!(item.tier.as_deref(), Some("high"));
}
