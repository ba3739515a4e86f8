//! `DynamoPaymentStore` against moto: the same conditional semantics as the in-memory store,
//! in the same table as the status items, invisible to their scans and index.

use payhook_aws::aws_sdk_dynamodb::Client;
use payhook_aws::moto::unique_name;
use payhook_aws::{DynamoPaymentStore, DynamoStatusStore, create_table};
use payhook_core::payment::{MemoryPaymentStore, PaymentRecord, PaymentState, PaymentStore};
use payhook_core::status::{Status, StatusQuery, StatusStore};
use payhook_core::{EventType, PaymentEvent, Provider};

use crate::support::moto_config;

const T0: i64 = 1_767_225_600_000;

fn capture(id: &str, payment: &str) -> PaymentEvent {
    PaymentEvent {
        webhook_id: format!("square:{id}"),
        provider: Provider::Square,
        provider_event_id: id.into(),
        provider_event_type: "payment.updated".into(),
        event_type: EventType::PaymentSucceeded,
        payment_id: payment.into(),
        object_id: None,
        amount_minor: 150_000,
        amount: 1_500.0,
        amount_decimal: "1500.00".into(),
        amount_reporting: Some(1_500.0),
        reporting_currency: Some("USD".into()),
        currency: "USD".into(),
        provider_status: Some("COMPLETED".into()),
        failure_code: None,
        occurred_at: "2026-01-01T00:00:00.000Z".into(),
        received_at: None,
        livemode: None,
        account: None,
        merchant_id: None,
        object_updated_at: Some("2026-01-01T00:00:00.000Z".into()),
        object_version: Some(2),
        refunded_total_minor: None,
    }
}

/// Both stores go through the same writes and must answer the same.
async fn same_answers(store: &dyn PaymentStore, reference: &dyn PaymentStore) {
    for s in [store, reference] {
        assert_eq!(
            s.get_payment(Provider::Square, "pay_1").await.unwrap(),
            None
        );
        let (first, _) =
            PaymentRecord::new(Provider::Square, "pay_1").apply(&capture("e1", "pay_1"));
        assert!(
            s.put_payment(&first, 0, T0).await.unwrap(),
            "the first write"
        );
        assert!(
            !s.put_payment(&first, 0, T0).await.unwrap(),
            "a second first write loses"
        );
        let stored = s
            .get_payment(Provider::Square, "pay_1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored, first, "every field round-trips");
        assert_eq!(stored.state(), PaymentState::Succeeded);
        let (second, applied) = stored.apply(&capture("e2", "pay_1"));
        assert!(
            applied.events.is_empty(),
            "a second capture changes nothing"
        );
        assert!(
            !s.put_payment(&second, 0, T0).await.unwrap(),
            "a stale revision loses"
        );
        assert!(s.put_payment(&second, stored.revision, T0).await.unwrap());
        assert_eq!(
            s.get_payment(Provider::Square, "pay_1")
                .await
                .unwrap()
                .unwrap()
                .revision,
            2
        );
    }
}

#[tokio::test]
async fn payment_records_are_written_conditionally_as_in_memory() {
    let Some(config) = moto_config().await else {
        return;
    };
    let client = Client::new(&config);
    let table = unique_name("webhook-processing");
    create_table(&client, &table).await.expect("create table");
    let store = DynamoPaymentStore::new(client.clone()).with_table_name(&table);
    same_answers(&store, &MemoryPaymentStore::new()).await;

    // Beside the webhooks, never one of them.
    let webhooks = DynamoStatusStore::new(client).with_table_name(&table);
    assert!(
        webhooks.scan().await.unwrap().is_empty(),
        "scans list webhooks only"
    );
    for status in [
        Status::Received,
        Status::Queued,
        Status::Processing,
        Status::Published,
    ] {
        let page = webhooks
            .list_by_status(&StatusQuery::new(status, T0 + 1_000_000_000))
            .await
            .unwrap();
        assert!(page.items.is_empty(), "{status:?}: {page:?}");
    }
}
