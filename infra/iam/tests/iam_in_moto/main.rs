//! Each function's IAM policy, as the Pulumi program renders it, enforced by moto under that
//! function's real code paths (see the crate docs); the same paths failing when the policy
//! lacks one action the code calls; and every action a policy grants needed by one of them.

mod paths;
mod stage;

use payhook_core::Provider;
use payhook_core::processor::RecordOutcome;
use payhook_core::status::{Status, TRANSMISSION_KEY_PREFIX};
use payhook_core::validator::Accepted;

use crate::paths::quarantined_body;
use crate::stage::Stage;

/// One action of each function, removed to show the test fails without it.
const REMOVED: [(&str, &str); 3] = [
    ("webhook-validator", "sqs:SendMessage"),
    ("stripe-processor", "events:PutEvents"),
    ("event-processor", "dynamodb:UpdateItem"),
];

/// Actions no in-process path on moto can show, and why: something other than the function's
/// code calls them with its role, moto does not check them, or only a race reaches them.
/// `(function, action, why)`; `*` is every function.
const NOT_SHOWN_ON_MOTO: [(&str, &str, &str); 8] = [
    (
        "*",
        "logs:CreateLogStream",
        "Lambda writes the function's output to its log group",
    ),
    (
        "*",
        "logs:PutLogEvents",
        "Lambda writes the function's output to its log group",
    ),
    (
        "*",
        "xray:PutTraceSegments",
        "the Lambda environment's X-Ray daemon sends the traces",
    ),
    (
        "*",
        "xray:PutTelemetryRecords",
        "the Lambda environment's X-Ray daemon",
    ),
    (
        "webhook-validator",
        "kms:Decrypt",
        "SSM decrypts the SecureStrings with it; moto's SSM does not ask KMS",
    ),
    (
        "webhook-validator",
        "dynamodb:GetItem",
        "the status store reads an item when a conditional write failed without returning it \
         (the item vanished in between): a race",
    ),
    (
        "stripe-processor",
        "sqs:GetQueueAttributes",
        "the event source mapping reads the queue with the function's role",
    ),
    (
        "event-processor",
        "sqs:SendMessage",
        "Lambda's on-failure destination sends an exhausted invocation with it",
    ),
];

/// Whether `function`'s `action` is one of [`NOT_SHOWN_ON_MOTO`].
fn not_shown_on_moto(function: &str, action: &str) -> bool {
    NOT_SHOWN_ON_MOTO
        .iter()
        .any(|(f, a, _)| (*f == "*" || *f == function) && *a == action)
}

/// The functions whose every action is removed in turn (the other processors' policies have
/// the same actions as Stripe's, which the test checks).
const EVERY_ACTION_OF: [&str; 4] = [
    "webhook-validator",
    "stripe-processor",
    "event-processor",
    "sweeper",
];

/// Every record of the batch was published.
pub(crate) fn assert_all_published(outcomes: &[RecordOutcome], what: &str) {
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, RecordOutcome::Published { .. })),
        "{what}: {outcomes:?}"
    );
}

/// The failure is moto's AccessDenied for exactly `action`.
fn assert_denied(failure: &str, action: &str) {
    assert!(
        failure.contains(&format!("is not authorized to perform: {action}")),
        "expected AccessDenied for {action}, got: {failure}"
    );
}

fn without(function: &str, action: &str) -> String {
    format!("{function}-without-{action}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_runs_its_path_under_exactly_its_rendered_policy() {
    let Some(stage) = Stage::start("granted", &[]).await else {
        return;
    };
    let accepted = stage
        .deliver("webhook-validator")
        .await
        .expect("validator allowed");
    assert!(matches!(accepted, Accepted::Queued { .. }), "{accepted:?}");

    let outcomes = stage
        .process_queue("stripe-processor", Provider::Stripe, false)
        .await;
    assert_all_published(&outcomes, "processed");
    stage
        .record_routed_event("event-processor")
        .await
        .expect("event processor allowed");

    // A late redrive after the status item expired: the processor records it again (PutItem).
    stage.deliver("webhook-validator").await.expect("validator");
    let outcomes = stage
        .process_queue("stripe-processor", Provider::Stripe, true)
        .await;
    assert_all_published(&outcomes, "missing status item");

    // The retry after a crash: the crashed attempt's lease has ended, the claim is taken over.
    let accepted = stage.deliver("webhook-validator").await.expect("validator");
    stage.crashed_claim(accepted.webhook_id()).await;
    let outcomes = stage
        .process_queue("stripe-processor", Provider::Stripe, false)
        .await;
    assert_all_published(&outcomes, "taken over after a crash");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paypal_transmissions_and_quarantine_run_under_the_rendered_policies() {
    let Some(stage) = Stage::start("paypal", &[]).await else {
        return;
    };
    // A PayPal delivery records its transmission (body digest) before the webhook, and the
    // retry of the same transmission finds that record.
    let accepted = stage
        .deliver_new("webhook-validator", Provider::Paypal)
        .await
        .expect("validator allowed");
    assert!(matches!(accepted, Accepted::Queued { .. }), "{accepted:?}");
    let keys = stage.table_keys().await;
    assert!(
        keys.iter().any(|k| k.starts_with(TRANSMISSION_KEY_PREFIX)),
        "no transmission record: {keys:?}"
    );
    let outcomes = stage
        .process_queue("paypal-processor", Provider::Paypal, false)
        .await;
    assert_all_published(&outcomes, "paypal processed");

    // A verified body that cannot be normalised is kept whole, and its retry is a duplicate.
    let body = quarantined_body("evt_iam_quarantine");
    let quarantined = stage
        .deliver_body("webhook-validator", Provider::Stripe, body.as_bytes())
        .await
        .expect("validator allowed");
    let Accepted::Quarantined { webhook_id, .. } = quarantined else {
        panic!("not quarantined: {quarantined:?}");
    };
    assert_eq!(stage.status(&webhook_id).await, Status::Quarantined);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lettered_webhook_is_redriven_and_processed_under_the_rendered_policies() {
    let Some(stage) = Stage::start("redrive", &[]).await else {
        return;
    };
    let accepted = stage.deliver("webhook-validator").await.expect("validator");
    let Accepted::Queued { event, .. } = accepted else {
        panic!("not queued: {accepted:?}");
    };
    let webhook_id = event.webhook_id;
    // Every receive fails (the processor may not publish) until the last marks it FAILED;
    // everything else those attempts do (claim, release, retry delay) is under the policy.
    let failing = without("stripe-processor", "events:PutEvents");
    let receives = stage.config.queues.max_receive_count;
    for receive in 1..=receives {
        let outcomes = stage.process_queue(&failing, Provider::Stripe, false).await;
        let [RecordOutcome::Failed { final_attempt, .. }] = outcomes.as_slice() else {
            panic!("receive {receive}: {outcomes:?}");
        };
        assert_eq!(*final_attempt, receive == receives, "receive {receive}");
    }
    assert_eq!(stage.status(&webhook_id).await, Status::Failed);
    assert_eq!(stage.dead_letters(Provider::Stripe).await.len(), 1);

    assert_eq!(stage.redrive(Provider::Stripe).await, 1);
    let outcomes = stage
        .process_queue("stripe-processor", Provider::Stripe, false)
        .await;
    assert_all_published(&outcomes, "redriven");
    stage
        .record_routed_event("event-processor")
        .await
        .expect("event processor allowed");
    assert_eq!(stage.status(&webhook_id).await, Status::Processed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_function_fails_without_one_action_its_code_calls() {
    let Some(stage) = Stage::start("removed", &[]).await else {
        return;
    };
    let [validator, processor, event_processor] = REMOVED;

    let refused = stage.deliver(&without(validator.0, validator.1)).await;
    assert!(
        refused.is_err(),
        "validator without {}: {refused:?}",
        validator.1
    );

    stage.deliver("webhook-validator").await.expect("validator");
    let outcomes = stage
        .process_queue(&without(processor.0, processor.1), Provider::Stripe, false)
        .await;
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, RecordOutcome::Failed { .. })),
        "processor without {}: {outcomes:?}",
        processor.1
    );
    assert_denied(&format!("{outcomes:?}"), processor.1);

    let outcomes = stage
        .process_queue("stripe-processor", Provider::Stripe, false)
        .await;
    assert_all_published(&outcomes, "processed");
    let refused = stage
        .record_routed_event(&without(event_processor.0, event_processor.1))
        .await;
    assert_denied(&format!("{refused:?}"), event_processor.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_a_policy_grants_is_needed_by_a_path_or_not_shown_on_moto() {
    let Some(stage) = Stage::start("needed", &EVERY_ACTION_OF).await else {
        return;
    };
    // Every function's policy is checked here: a new function brings its paths.
    let checked = |f: &str| {
        EVERY_ACTION_OF.contains(&f)
            || f == "api-key-authorizer"
            || f == "paypal-processor"
            || f == "square-processor"
    };
    let unchecked: Vec<_> = stage.actions.keys().filter(|f| !checked(f)).collect();
    assert!(
        unchecked.is_empty(),
        "no paths for {unchecked:?}: add them to EVERY_ACTION_OF"
    );
    // Stripe's processor stands for the three: their policies differ only in resources.
    for provider in ["paypal", "square"] {
        assert_eq!(
            stage.actions[&format!("{provider}-processor")],
            stage.actions["stripe-processor"]
        );
    }
    // The authorizer calls no AWS API.
    assert!(
        stage.actions["api-key-authorizer"]
            .iter()
            .all(|a| not_shown_on_moto("api-key-authorizer", a)),
        "{:?}",
        stage.actions["api-key-authorizer"]
    );
    for (function, action, _) in NOT_SHOWN_ON_MOTO {
        if function != "*" {
            assert!(
                stage.actions[function].iter().any(|a| a == action),
                "{function} is no longer granted {action}: drop it from NOT_SHOWN_ON_MOTO"
            );
        }
    }

    // With the whole policy every path succeeds, so a failure below is the missing action's.
    stage
        .validator_paths("webhook-validator")
        .await
        .expect("validator paths");
    stage
        .processor_paths("stripe-processor")
        .await
        .expect("processor paths");
    stage
        .event_processor_paths("event-processor")
        .await
        .expect("event processor paths");
    stage.sweeper_paths("sweeper").await.expect("sweeper paths");

    let mut unneeded = Vec::new();
    for function in EVERY_ACTION_OF {
        for action in &stage.actions[function] {
            if not_shown_on_moto(function, action) {
                continue;
            }
            let user = without(function, action);
            let result = match function {
                "webhook-validator" => stage.validator_paths(&user).await,
                "stripe-processor" => stage.processor_paths(&user).await,
                "sweeper" => stage.sweeper_paths(&user).await,
                _ => stage.event_processor_paths(&user).await,
            };
            // The same paths succeeded with the whole policy: any failure is this action's
            // (the validator, say, only logs a refused UpdateItem, and its retry then finds
            // the webhook not QUEUED).
            if result.is_ok() {
                unneeded.push(format!("{function}: {action}"));
            }
        }
    }
    assert!(
        unneeded.is_empty(),
        "granted, but no path of the function fails without it (remove it, or say in \
         NOT_SHOWN_ON_MOTO who uses it):\n{}",
        unneeded.join("\n")
    );
}
