//! `DynamoStatusStore` against moto: conditional semantics identical to the in-memory store.

use std::sync::Arc;

use payhook_aws::aws_sdk_dynamodb::Client;
use payhook_aws::aws_sdk_dynamodb::types::TimeToLiveStatus;
use payhook_aws::aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use payhook_aws::moto::unique_name;
use payhook_aws::status_store::{OPEN_STATUS_INDEX, TTL_ATTRIBUTE};
use payhook_aws::{DynamoStatusStore, create_table};
use payhook_core::Provider;
use payhook_core::status::{
    MemoryStatusStore, PageCursor, PutOutcome, Status, StatusItem, StatusQuery, StatusStore,
    StoreError, Transition, TransitionOutcome, TransmissionOutcome, TransmissionRecord,
};

use crate::support::{config_for, moto_config, refused_endpoint};

const T0: i64 = 1_767_225_600_000;

async fn store() -> Option<DynamoStatusStore> {
    let config = moto_config().await?;
    let client = Client::new(&config);
    let table = unique_name("webhook-processing");
    create_table(&client, &table).await.expect("create table");
    Some(DynamoStatusStore::new(client).with_table_name(table))
}

fn received(id: &str) -> StatusItem {
    let mut item = StatusItem::new(
        id,
        Provider::Stripe,
        "payment_intent.succeeded",
        Status::Received,
        T0,
    );
    item.event_type = Some("payment.succeeded".into());
    item.payment_id = Some("pi_3Q".into());
    item.amount_minor = Some(125_000);
    item.currency = Some("EUR".into());
    item
}

fn applied(outcome: TransitionOutcome) -> StatusItem {
    match outcome {
        TransitionOutcome::Applied(item) => *item,
        other @ TransitionOutcome::Rejected(_) => panic!("expected Applied, got {other:?}"),
    }
}

#[tokio::test]
async fn put_new_twice_returns_the_existing_item() {
    let Some(store) = store().await else { return };
    let first = received("stripe:evt_put_twice");
    assert_eq!(store.put_new(&first).await.unwrap(), PutOutcome::Created);

    let mut second = first.clone();
    second.provider_event_type = "charge.refunded".into();
    match store.put_new(&second).await.unwrap() {
        PutOutcome::Exists(existing) => assert_eq!(*existing, first, "the first write wins"),
        other @ PutOutcome::Created => panic!("expected Exists, got {other:?}"),
    }
    assert_eq!(
        store.get("stripe:evt_put_twice").await.unwrap(),
        Some(first)
    );
}

#[tokio::test]
async fn every_field_round_trips_through_dynamodb() {
    let Some(store) = store().await else { return };
    let mut item = received("paypal:WH-ROUNDTRIP");
    item.provider = Provider::Paypal;
    item.status = Status::Failed;
    item.tier = Some("high".into());
    item.matched_rules = vec!["audit".into(), "fraud-review".into(), "high-value".into()];
    item.attempts = 3;
    item.last_error = Some("EventBridge PutEvents throttled".into());
    item.lease_until_ms = Some(T0 + 60_000);
    item.amount_minor = Some(-42);
    item.queued_at = Some("2026-01-01T00:00:00.010Z".into());
    item.published_at = Some("2026-01-01T00:00:00.020Z".into());
    item.processed_at = Some("2026-01-01T00:00:00.030Z".into());
    store.put_new(&item).await.unwrap();
    assert_eq!(store.get(&item.webhook_id).await.unwrap(), Some(item));
    assert_eq!(store.get("paypal:WH-MISSING").await.unwrap(), None);
}

/// The same transitions on DynamoDB and on the in-memory reference give the same items.
#[tokio::test]
async fn transitions_write_exactly_what_the_reference_store_writes() {
    let Some(dynamo) = store().await else { return };
    let memory = MemoryStatusStore::new();
    let id = "stripe:evt_parity";
    for store in [&dynamo as &dyn StatusStore, &memory] {
        assert_eq!(
            store.put_new(&received(id)).await.unwrap(),
            PutOutcome::Created
        );
    }

    let mut steps = Vec::new();
    steps.push(Transition::new(
        Status::Queued,
        &[Status::Received],
        T0 + 10,
    ));
    let mut claim = Transition::new(
        Status::Processing,
        &[Status::Queued, Status::Failed],
        T0 + 20,
    );
    claim.or_lease_expired_at_ms = Some(T0 + 20);
    claim.lease_until_ms = Some(T0 + 60_020);
    claim.increment_attempts = true;
    claim.tier = Some("high".into());
    claim.add_matched_rules = vec!["b-rule".into(), "a-rule".into(), "b-rule".into()];
    steps.push(claim.clone());
    let mut fail = Transition::new(Status::Failed, &[Status::Processing], T0 + 30);
    fail.last_error = Some("bus unavailable".into());
    steps.push(fail);
    let mut retry = claim.clone();
    retry.now_ms = T0 + 40;
    retry.add_matched_rules = vec!["c-rule".into(), "a-rule".into()];
    steps.push(retry);
    let mut publish = Transition::new(Status::Published, &[Status::Processing], T0 + 50);
    publish.tier = Some("medium".into());
    steps.push(publish);
    // The event's bus time comes along; the item's own PUBLISHED time stays.
    let mut processed = Transition::new(Status::Processed, &[Status::Published], T0 + 60);
    processed.published_at_ms = Some(T0 + 45);
    steps.push(processed);
    // A second rule matched the same event, recorded later: the first PROCESSED time stays.
    let mut second_rule = Transition::new(Status::Processed, &[Status::Processed], T0 + 65);
    second_rule.add_matched_rules = vec!["d-rule".into()];
    steps.push(second_rule);
    // Rejected: the item is PROCESSED, not RECEIVED.
    steps.push(Transition::new(
        Status::Queued,
        &[Status::Received],
        T0 + 70,
    ));

    for (n, step) in steps.iter().enumerate() {
        let expected = memory.transition(id, step).await.unwrap();
        let actual = dynamo.transition(id, step).await.unwrap();
        assert_eq!(actual, expected, "step {n}: {step:?}");
    }
    let last = dynamo.get(id).await.unwrap().unwrap();
    assert_eq!(last.status, Status::Processed);
    assert_eq!(last.attempts, 2);
    assert_eq!(last.matched_rules, ["a-rule", "b-rule", "c-rule", "d-rule"]);
    assert_eq!(
        last.processed_at.as_deref(),
        Some(payhook_core::status::rfc3339_ms(T0 + 60).as_str()),
        "a state's time is when it was first reached"
    );
    assert_eq!(
        last.lease_until_ms, None,
        "the lease is released after processing"
    );
    assert_eq!(last.last_error.as_deref(), Some("bus unavailable"));
    assert_eq!(last.tier.as_deref(), Some("medium"));
    assert!(last.queued_at.is_some() && last.published_at.is_some() && last.processed_at.is_some());
}

#[tokio::test]
async fn transition_from_the_wrong_state_is_rejected_with_the_current_item() {
    let Some(store) = store().await else { return };
    let id = "square:evt_wrong_state";
    store.put_new(&received(id)).await.unwrap();
    let publish = Transition::new(Status::Published, &[Status::Processing], T0 + 1);
    match store.transition(id, &publish).await.unwrap() {
        TransitionOutcome::Rejected(Some(current)) => assert_eq!(*current, received(id)),
        other => panic!("expected Rejected(Some), got {other:?}"),
    }
    assert_eq!(
        store
            .transition("square:evt_nobody", &publish)
            .await
            .unwrap(),
        TransitionOutcome::Rejected(None),
        "a transition never creates an item"
    );
    assert_eq!(store.get("square:evt_nobody").await.unwrap(), None);
    assert_eq!(
        store
            .transition(id, &Transition::new(Status::Queued, &[], T0))
            .await
            .unwrap(),
        TransitionOutcome::Rejected(Some(Box::new(received(id))))
    );
}

#[tokio::test]
async fn expired_lease_is_taken_over_but_a_held_one_is_not() {
    let Some(store) = store().await else { return };
    let id = "stripe:evt_lease";
    let mut item = received(id);
    item.status = Status::Processing;
    item.lease_until_ms = Some(T0 + 1_000);
    item.attempts = 1;
    store.put_new(&item).await.unwrap();

    let mut takeover = Transition::new(Status::Processing, &[Status::Queued], T0 + 999);
    takeover.or_lease_expired_at_ms = Some(T0 + 999);
    takeover.lease_until_ms = Some(T0 + 61_000);
    takeover.increment_attempts = true;
    match store.transition(id, &takeover).await.unwrap() {
        TransitionOutcome::Rejected(Some(current)) => assert_eq!(*current, item),
        other => panic!("a held lease was taken: {other:?}"),
    }
    takeover.or_lease_expired_at_ms = Some(T0 + 1_000);
    assert!(
        matches!(
            store.transition(id, &takeover).await.unwrap(),
            TransitionOutcome::Rejected(_)
        ),
        "a lease ending exactly now is still held"
    );

    takeover.or_lease_expired_at_ms = Some(T0 + 1_001);
    takeover.now_ms = T0 + 1_001;
    let taken = applied(store.transition(id, &takeover).await.unwrap());
    assert_eq!(taken.lease_until_ms, Some(T0 + 61_000));
    assert_eq!(taken.attempts, 2);

    // A PROCESSING item without a lease (a claim written before leases) can be taken too.
    let bare_id = "stripe:evt_no_lease";
    let mut bare = received(bare_id);
    bare.status = Status::Processing;
    store.put_new(&bare).await.unwrap();
    assert_eq!(
        applied(store.transition(bare_id, &takeover).await.unwrap()).attempts,
        1
    );
}

#[tokio::test]
async fn concurrent_claims_from_ten_tasks_apply_exactly_once() {
    let Some(store) = store().await else { return };
    let store = Arc::new(store);
    let id = "paypal:WH-CONCURRENT";
    let mut item = received(id);
    item.status = Status::Queued;
    store.put_new(&item).await.unwrap();

    let claims = (0..10).map(|n| {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let mut claim = Transition::new(Status::Processing, &[Status::Queued], T0 + n);
            claim.or_lease_expired_at_ms = Some(T0 + n);
            claim.lease_until_ms = Some(T0 + 60_000 + n);
            claim.increment_attempts = true;
            store.transition(id, &claim).await
        })
    });
    let mut outcomes = Vec::new();
    for claim in claims.collect::<Vec<_>>() {
        outcomes.push(claim.await.unwrap().unwrap());
    }
    let winners: Vec<_> = outcomes
        .iter()
        .filter_map(|o| match o {
            TransitionOutcome::Applied(item) => Some(item.clone()),
            TransitionOutcome::Rejected(_) => None,
        })
        .collect();
    assert_eq!(winners.len(), 1, "outcomes: {outcomes:?}");
    for outcome in &outcomes {
        if let TransitionOutcome::Rejected(current) = outcome {
            let current = current.as_ref().expect("the item exists");
            assert_eq!(current.status, Status::Processing);
        }
    }
    let stored = store.get(id).await.unwrap().unwrap();
    assert_eq!(stored.attempts, 1);
    assert_eq!(stored, *winners[0]);
}

#[tokio::test]
async fn create_table_is_idempotent_and_turns_on_ttl() {
    let Some(config) = moto_config().await else {
        return;
    };
    let client = Client::new(&config);
    let table = unique_name("webhook-processing");
    create_table(&client, &table).await.unwrap();
    create_table(&client, &table)
        .await
        .expect("second run is a no-op");
    let ttl = client
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.attribute_name(), Some(TTL_ATTRIBUTE));
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
}

#[tokio::test]
async fn missing_table_is_unavailable() {
    let Some(config) = moto_config().await else {
        return;
    };
    let store = DynamoStatusStore::new(Client::new(&config)).with_table_name(unique_name("absent"));
    assert!(matches!(
        store.get("stripe:evt_1").await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        store.put_new(&received("stripe:evt_1")).await,
        Err(StoreError::Unavailable(_))
    ));
}

#[tokio::test]
async fn unreachable_dynamodb_is_unavailable_not_a_hang() {
    let config = config_for(&refused_endpoint(), false).await;
    let store = DynamoStatusStore::new(Client::new(&config));
    let t = Transition::new(Status::Queued, &[Status::Received], T0);
    let result = crate::support::within(
        std::time::Duration::from_secs(20),
        store.transition("stripe:evt_1", &t),
    )
    .await;
    match result {
        Err(err @ StoreError::Unavailable(_)) => assert_eq!(err.code(), "state_store_unavailable"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn scan_returns_every_item_across_pages() {
    let Some(store) = store().await else {
        return;
    };
    assert!(store.scan().await.unwrap().is_empty());
    // Items large enough that moto's 1 MB page limit is not what is tested, but many enough
    // to be more than one default page on real DynamoDB would need far more; the loop over
    // LastEvaluatedKey is exercised by moto paginating at its own limit.
    let ids: Vec<String> = (0..25).map(|i| format!("stripe:evt_scan_{i:02}")).collect();
    for id in &ids {
        assert_eq!(
            store.put_new(&received(id)).await.unwrap(),
            PutOutcome::Created
        );
    }
    let mut scanned: Vec<String> = store
        .scan()
        .await
        .unwrap()
        .into_iter()
        .map(|item| {
            assert_eq!(item.status, Status::Received);
            item.webhook_id
        })
        .collect();
    scanned.sort();
    assert_eq!(scanned, ids);
}

#[tokio::test]
async fn processed_before_published_records_the_bus_time_like_the_reference_store() {
    let Some(dynamo) = store().await else { return };
    let memory = MemoryStatusStore::new();
    let id = "stripe:evt_fast_bus";
    let mut claim = Transition::new(Status::Processing, &[Status::Received], T0 + 10);
    claim.lease_until_ms = Some(T0 + 60_010);
    let mut processed = Transition::new(Status::Processed, &[Status::Processing], T0 + 30);
    processed.published_at_ms = Some(T0 + 20);
    processed.add_matched_rules = vec!["low-value-payments".into()];
    // The processor's PUBLISHED, arriving after: rejected, the item stays as it is.
    let published = Transition::new(Status::Published, &[Status::Processing], T0 + 40);
    for store in [&dynamo as &dyn StatusStore, &memory] {
        store.put_new(&received(id)).await.unwrap();
    }
    for (n, step) in [claim, processed, published].iter().enumerate() {
        let expected = memory.transition(id, step).await.unwrap();
        let actual = dynamo.transition(id, step).await.unwrap();
        assert_eq!(actual, expected, "step {n}: {step:?}");
    }
    let item = dynamo.get(id).await.unwrap().unwrap();
    assert_eq!(item.status, Status::Processed);
    assert_eq!(
        item.published_at.as_deref(),
        Some(payhook_core::status::rfc3339_ms(T0 + 20).as_str())
    );
}

#[tokio::test]
async fn a_transmission_id_keeps_its_first_body_in_dynamodb_as_in_memory() {
    let Some(dynamo) = store().await else { return };
    let memory = MemoryStatusStore::new();
    let now = T0 / 1000;
    let first = TransmissionRecord::new("8d0bd1a0-c7a5-11f0", b"{\"id\":\"WH-1\"}", now + 600);
    let same = TransmissionRecord::new("8d0bd1a0-c7a5-11f0", b"{\"id\":\"WH-1\"}", now + 900);
    let forged = TransmissionRecord::new("8d0bd1a0-c7a5-11f0", b"{\"id\":\"WH-X\"}", now + 900);
    let stores: [&dyn StatusStore; 2] = [&dynamo, &memory];
    for store in stores {
        assert_eq!(
            store.record_transmission(&first, now).await.unwrap(),
            TransmissionOutcome::Recorded
        );
        assert_eq!(
            store.record_transmission(&same, now + 10).await.unwrap(),
            TransmissionOutcome::SameBody
        );
        assert_eq!(
            store.record_transmission(&forged, now + 20).await.unwrap(),
            TransmissionOutcome::DifferentBody
        );
        // Past its expiry the record no longer counts, whether or not TTL has deleted it.
        assert_eq!(
            store.record_transmission(&forged, now + 601).await.unwrap(),
            TransmissionOutcome::Recorded
        );
        assert_eq!(
            store.record_transmission(&first, now + 602).await.unwrap(),
            TransmissionOutcome::DifferentBody
        );
    }
    // The record shares the table without being mistaken for a webhook.
    dynamo
        .put_new(&received("stripe:evt_beside_a_transmission"))
        .await
        .unwrap();
    let items = dynamo.scan().await.unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].webhook_id, "stripe:evt_beside_a_transmission");
}

async fn listed_ids(
    store: &dyn StatusStore,
    query: &StatusQuery,
) -> (Vec<String>, Option<PageCursor>) {
    let page = store.list_by_status(query).await.expect("list");
    (
        page.items.into_iter().map(|i| i.webhook_id).collect(),
        page.next,
    )
}

async fn put_at(store: &dyn StatusStore, id: &str, status: Status, at_ms: i64) {
    let item = StatusItem::new(
        id,
        Provider::Stripe,
        "payment_intent.succeeded",
        status,
        at_ms,
    );
    assert_eq!(store.put_new(&item).await.unwrap(), PutOutcome::Created);
}

/// The same listing, page by page, from DynamoDB's sparse index as from the reference store;
/// an item that reaches a final state leaves the index.
#[tokio::test]
async fn listing_by_status_pages_the_sparse_index_like_the_reference_store() {
    let Some(dynamo) = store().await else { return };
    let memory = MemoryStatusStore::new();
    for store in [&dynamo as &dyn StatusStore, &memory] {
        put_at(store, "stripe:evt_l3", Status::Received, T0 + 3_000).await;
        put_at(store, "stripe:evt_l1", Status::Received, T0 + 1_000).await;
        put_at(store, "stripe:evt_l2", Status::Received, T0 + 2_000).await;
        put_at(store, "stripe:evt_late", Status::Received, T0 + 60_000).await;
        put_at(store, "stripe:evt_pub", Status::Published, T0).await;
        let done = Transition::new(Status::Processed, &[Status::Published], T0 + 500);
        applied(store.transition("stripe:evt_pub", &done).await.unwrap());

        let mut query = StatusQuery::new(Status::Received, T0 + 10_000);
        query.limit = 2;
        let (first, next) = listed_ids(store, &query).await;
        assert_eq!(first, ["stripe:evt_l1", "stripe:evt_l2"]);
        query.after = next;
        let (second, _) = listed_ids(store, &query).await;
        assert_eq!(
            second,
            ["stripe:evt_l3"],
            "oldest first, the late one left out"
        );

        let published = StatusQuery::new(Status::Published, T0 + 10_000);
        assert!(
            listed_ids(store, &published).await.0.is_empty(),
            "PROCESSED left the index"
        );
        let processed = StatusQuery::new(Status::Processed, T0 + 10_000);
        assert!(
            listed_ids(store, &processed).await.0.is_empty(),
            "final states are not listed"
        );
    }
}

/// `payhook bootstrap` on a stage whose table predates the index adds it.
#[tokio::test]
async fn create_table_adds_the_open_status_index_to_an_older_table() {
    let Some(config) = moto_config().await else {
        return;
    };
    let client = Client::new(&config);
    let table = unique_name("webhook-processing-old");
    client
        .create_table()
        .table_name(&table)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("webhook_id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("webhook_id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("an index-less table");
    create_table(&client, &table)
        .await
        .expect("create_table on it");
    let described = client
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let indexes: Vec<_> = described
        .table()
        .map(|t| {
            t.global_secondary_indexes()
                .iter()
                .filter_map(|i| i.index_name())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(indexes, [OPEN_STATUS_INDEX]);

    let store = DynamoStatusStore::new(client).with_table_name(&table);
    put_at(&store, "stripe:evt_after_upgrade", Status::Quarantined, T0).await;
    let (listed, _) = listed_ids(&store, &StatusQuery::new(Status::Quarantined, T0 + 1)).await;
    assert_eq!(listed, ["stripe:evt_after_upgrade"]);
}
