//! Delivery guarantees: order per payment, concurrent duplicates, signatures.

use crate::support::Harness;
use payhook_core::Provider;
use payhook_core::status::Status;
use payhook_devkit::payloads::{self, PayloadSpec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_one_payment_are_processed_in_order() {
    let h = Harness::start("order", |_| {}).await;
    let payment = payloads::new_payment_id(Provider::Square).unwrap();
    let ids = h
        .post_payment_events(
            Provider::Square,
            &payment,
            &[
                "payment.created",
                "payment.updated",
                "refund.created",
                "refund.updated",
            ],
        )
        .await;
    h.idle().await;
    let mut published = Vec::new();
    for id in &ids {
        let item = h.stack.status(id).await.unwrap();
        assert_eq!(item.status, Status::Processed, "{id}");
        assert_eq!(item.payment_id.as_deref(), Some(payment.as_str()));
        published.push(item.published_at.unwrap());
    }
    let mut sorted = published.clone();
    sorted.sort();
    assert_eq!(published, sorted, "published in the order sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicates_are_processed_once() {
    let h = Harness::start("duplicates", |_| {}).await;
    let p = h.payload(PayloadSpec::new(Provider::Stripe).amount("300.00", "USD"));
    let headers = h
        .sender
        .signer()
        .sign(Provider::Stripe, &p.body, payhook_devkit::unix_now())
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (sender, url, headers, body) = (
            h.sender.clone(),
            h.url(Provider::Stripe),
            headers.clone(),
            p.body.clone(),
        );
        tasks.push(tokio::spawn(async move {
            sender.post(&url, &headers, body).await.unwrap().0
        }));
    }
    for t in tasks {
        let status = t.await.unwrap();
        assert!(
            status == 202 || status == 200,
            "every copy is acknowledged, got {status}"
        );
    }
    h.idle().await;
    let item = h.stack.status(&p.webhook_id()).await.unwrap();
    assert_eq!(item.status, Status::Processed);
    assert_eq!(item.attempts, 1, "claimed once");
    assert_eq!(h.stack.put_count(), 1, "published once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_provider_and_event_type_flows_to_processed() {
    let h = Harness::start("all-types", |_| {}).await;
    let mut ids = Vec::new();
    for provider in Provider::ALL {
        for event_type in payloads::event_types(provider) {
            let p = h.payload(
                PayloadSpec::new(provider)
                    .event_type(*event_type)
                    .amount("150.00", "USD"),
            );
            let (status, body) = h.post(&p).await;
            if *event_type == payloads::unsupported_event_type(provider) {
                assert_eq!((status, body["status"].as_str()), (200, Some("ignored")));
            } else {
                assert_eq!(status, 202, "{provider} {event_type}: {body}");
                ids.push(p.webhook_id());
            }
        }
    }
    h.idle().await;
    for id in ids {
        let item = h.stack.status(&id).await.unwrap();
        assert_eq!(item.status, Status::Processed, "{id}");
        assert_eq!(
            item.matched_rules.len(),
            1,
            "{id}: {:?}",
            item.matched_rules
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signatures_are_401_and_leave_no_trace() {
    let h = Harness::start("bad-signature", |_| {}).await;
    for provider in Provider::ALL {
        let p = h.payload(PayloadSpec::new(provider));
        let mut headers = h
            .sender
            .signer()
            .sign(provider, &p.body, payhook_devkit::unix_now())
            .unwrap();
        let mut tampered = p.body.clone();
        tampered.push(b' ');
        let (status, body) = h
            .sender
            .post(&h.url(provider), &headers, tampered)
            .await
            .unwrap();
        assert_eq!(status, 401, "{provider}: {body}");
        headers.clear();
        let (status, _) = h
            .sender
            .post(&h.url(provider), &headers, p.body.clone())
            .await
            .unwrap();
        assert_eq!(status, 401, "{provider} without signature headers");
    }
    assert!(h.stack.items().await.unwrap().is_empty());
}
