//! The API Gateway stand-in: API key (`?key=` or `x-api-key`), per-key daily quota, routes,
//! and the admin API.

use crate::support::Harness;
use payhook_core::Provider;
use payhook_devkit::payloads::PayloadSpec;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_key_is_401_and_unknown_key_is_403_as_api_gateway_answers_and_reach_nothing() {
    let h = Harness::start("api-key", |_| {}).await;
    let p = h.payload(PayloadSpec::new(Provider::Stripe));
    let headers = h
        .sender
        .signer()
        .sign(Provider::Stripe, &p.body, payhook_devkit::unix_now())
        .unwrap();
    let refused = [
        (h.sender.clone().with_api_key(None), 401, "Unauthorized"),
        (
            h.sender.clone().with_api_key(Some("phk_wrong".into())),
            403,
            "Forbidden",
        ),
        (
            h.sender
                .clone()
                .with_api_key(Some("phk_wrong".into()))
                .with_key_in_header(true),
            403,
            "Forbidden",
        ),
    ];
    for (sender, expected, message) in refused {
        let (status, body) = sender
            .post(&h.url(Provider::Stripe), &headers, p.body.clone())
            .await
            .unwrap();
        assert_eq!(status, expected, "{body}");
        assert_eq!(body, format!("{{\"message\":\"{message}\"}}"));
    }
    assert!(
        h.stack.items().await.unwrap().is_empty(),
        "nothing reached the validator"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_only_in_the_url_or_only_in_the_header_reaches_the_validator() {
    let h = Harness::start("key-forms", |_| {}).await;
    let config = h.stack.config();
    for in_header in [false, true] {
        let p = h.payload(PayloadSpec::new(Provider::Paypal));
        let sender = h.sender.clone().with_key_in_header(in_header);
        let (status, body) = sender
            .send(&h.url(Provider::Paypal), Provider::Paypal, p.body.clone())
            .await
            .unwrap();
        assert_eq!(status, 202, "key in header: {in_header}: {body}");
    }
    // The URL a provider is given, used as it is.
    let p = h.payload(PayloadSpec::new(Provider::Square));
    let registered = config.registered_url(Provider::Square);
    assert!(registered.contains("?key="));
    let (status, body) = h
        .sender
        .clone()
        .with_api_key(None)
        .send(&registered, Provider::Square, p.body.clone())
        .await
        .unwrap();
    assert_eq!(status, 202, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_provider_key_has_its_own_quota() {
    let h = Harness::start("quota-per-key", |c| c.api.daily_quota = 2).await;
    let mut square = Vec::new();
    for _ in 0..3 {
        let p = h.payload(PayloadSpec::new(Provider::Square));
        square.push(h.post(&p).await);
    }
    assert_eq!(
        square.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        [202, 202, 429]
    );
    assert_eq!(
        square[2].1,
        serde_json::json!({"message": "Limit Exceeded"})
    );
    let p = h.payload(PayloadSpec::new(Provider::Stripe));
    assert_eq!(
        h.post(&p).await.0,
        202,
        "Square's flood leaves Stripe's quota"
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
