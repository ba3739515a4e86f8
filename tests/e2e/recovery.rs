//! Recovery: poison → DLQ → redrive → processed, and a processor crash mid-batch.

use crate::support::Harness;
use payhook_core::Provider;
use payhook_core::status::Status;
use payhook_devkit::payloads::{self, PayloadSpec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_goes_to_the_dlq_and_is_processed_after_redrive() {
    let h = Harness::start("poison", |c| c.queues.max_receive_count = 3).await;
    let payment = payloads::new_payment_id(Provider::Stripe).unwrap();
    h.faults.reject_payment(&payment);
    let poison = h.payload(
        PayloadSpec::new(Provider::Stripe)
            .amount("42.00", "USD")
            .payment_id(payment),
    );
    let healthy = h.payload(PayloadSpec::new(Provider::Stripe).amount("43.00", "USD"));
    assert_eq!(h.post(&poison).await.0, 202);
    assert_eq!(h.post(&healthy).await.0, 202);
    h.idle().await;
    let item = h.stack.status(&poison.webhook_id()).await.unwrap();
    assert_eq!(item.status, Status::Failed);
    assert_eq!(item.attempts, 3);
    assert!(item.last_error.unwrap().contains("put_events_entry_failed"));
    assert_eq!(
        h.stack.status(&healthy.webhook_id()).await.unwrap().status,
        Status::Processed
    );

    let (status, dlq) = h.admin("/_payhook/dlq/stripe").await;
    assert_eq!(status, 200);
    assert_eq!(dlq["messages"].as_array().unwrap().len(), 1);
    assert_eq!(
        dlq["messages"][0]["webhook_id"],
        poison.webhook_id().as_str()
    );

    h.faults.clear_rejections();
    assert_eq!(h.redrive(Provider::Stripe).await, 1);
    h.idle().await;
    let item = h.stack.status(&poison.webhook_id()).await.unwrap();
    assert_eq!(item.status, Status::Processed, "redriven and processed");
    assert_eq!(
        h.stack.dlq_messages(Provider::Stripe).await.unwrap().len(),
        0
    );
    assert_eq!(h.stack.put_count(), 2, "each webhook published once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processor_crash_mid_batch_loses_nothing_and_records_once() {
    let h = Harness::start("crash", |_| {}).await;
    let crash_payment = payloads::new_payment_id(Provider::Square).unwrap();
    h.faults.crash_once_after_publishing(&crash_payment);
    let mut ids = Vec::new();
    for i in 0..6 {
        let mut spec = PayloadSpec::new(Provider::Square).amount(format!("{}.00", 10 + i), "USD");
        if i == 2 {
            spec = spec.payment_id(crash_payment.clone());
        }
        let p = h.payload(spec);
        assert_eq!(h.post(&p).await.0, 202);
        ids.push(p.webhook_id());
    }
    h.idle().await;
    for id in &ids {
        let item = h.stack.status(id).await.unwrap();
        assert_eq!(item.status, Status::Processed, "{id}");
        assert_eq!(item.matched_rules.len(), 1);
    }
    // The crashed attempt's event was on the bus before the crash; the retry published it
    // again and the event processor absorbed the second copy.
    assert_eq!(h.stack.put_count(), ids.len() as u64 + 1);
}
