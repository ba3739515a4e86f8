//! The API Gateway stand-in: API key, daily quota, routes, and the admin API.

use crate::support::Harness;
use payhook::payloads::PayloadSpec;
use payhook_core::Provider;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_wrong_api_key_is_403_and_reaches_nothing() {
    let h = Harness::start("api-key", |_| {}).await;
    let p = h.payload(PayloadSpec::new(Provider::Stripe));
    let headers = h
        .sender
        .signer()
        .sign(Provider::Stripe, &p.body, payhook::unix_now())
        .unwrap();
    for sender in [
        h.sender.clone().with_api_key(None),
        h.sender.clone().with_api_key(Some("phk_wrong".into())),
    ] {
        let (status, body) = sender
            .post(&h.url(Provider::Stripe), &headers, p.body.clone())
            .await
            .unwrap();
        assert_eq!(status, 403, "{body}");
    }
    assert!(
        h.stack.items().await.unwrap().is_empty(),
        "nothing reached the validator"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_exhaustion_answers_429_until_the_day_ends() {
    let h = Harness::start("quota", |c| c.api.daily_quota = 3).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let p = h.payload(PayloadSpec::new(Provider::Square));
        statuses.push(h.post(&p).await.0);
    }
    assert_eq!(statuses, [202, 202, 202, 429, 429]);
    h.idle().await;
    assert_eq!(h.stack.items().await.unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_provider_is_404_and_unknown_route_is_403() {
    let h = Harness::start("routes", |_| {}).await;
    let p = h.payload(PayloadSpec::new(Provider::Stripe));
    let url = format!("http://{}/webhooks/adyen", h.front.addr);
    let (status, body) = h.sender.post(&url, &[], p.body.clone()).await.unwrap();
    assert_eq!(status, 404);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"],
        "unknown_provider"
    );
    let (status, _) = h.admin("/nowhere").await;
    assert_eq!(
        status, 403,
        "API Gateway answers 403 Missing Authentication Token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_shows_the_status_item_and_the_stats() {
    let h = Harness::start("admin", |_| {}).await;
    let p = h.payload(PayloadSpec::new(Provider::Paypal).amount("1500.00", "USD"));
    assert_eq!(h.post(&p).await.0, 202);
    h.idle().await;
    let (status, item) = h
        .admin(&format!("/_payhook/webhooks/{}", p.webhook_id()))
        .await;
    assert_eq!(status, 200);
    assert_eq!(item["status"], "PROCESSED");
    assert_eq!(item["tier"], "high");
    assert_eq!(
        item["matched_rules"],
        serde_json::json!(["high-value-payments"])
    );
    let (status, stats) = h.admin("/_payhook/stats").await;
    assert_eq!(status, 200);
    assert_eq!(stats["idle"], true);
    assert_eq!(stats["statuses"]["PROCESSED"], 1);
    assert_eq!(stats["queues"]["paypal"]["visible"], 0);
    let (status, _) = h.admin("/_payhook/webhooks/stripe:evt_nope").await;
    assert_eq!(status, 404);
}
