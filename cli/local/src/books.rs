//! The books of a run: every accepted webhook ends `PROCESSED` exactly once (published once,
//! recorded with its rules) or `FAILED` with its message in its provider's DLQ, and every
//! booked payment's record shows exactly the captures and refunds sent. `payhook demo` and the
//! load bench (`cli/src/commands/bench.rs`) check a run with it.

use std::collections::BTreeMap;

use payhook_core::Provider;
use payhook_core::status::Status;
use payhook_devkit::plan::BookedPayment;
use serde::Serialize;

use crate::stack::Stack;

/// What the demo saw and concluded.
#[derive(Debug, Clone, Serialize)]
pub struct DemoReport {
    /// Where the pipeline ran: `memory`, or `aws <endpoint> stage <stage>`.
    pub backend: String,
    /// Requests sent.
    pub sent: usize,
    /// Answers by HTTP status.
    pub by_status: BTreeMap<u16, usize>,
    /// 4xx answers by error code.
    pub rejected_by_reason: BTreeMap<String, usize>,
    /// Distinct webhooks acknowledged as queued (202).
    pub accepted: usize,
    /// Answers `duplicate` (200).
    pub duplicates: usize,
    /// Answers `ignored` (200).
    pub ignored: usize,
    /// Webhooks that ended PROCESSED.
    pub processed: usize,
    /// Events delivered per rule.
    pub processed_by_rule: BTreeMap<String, u64>,
    /// Webhooks PROCESSED without a business event: nothing new for their payment (a Square
    /// update on a completed payment) or older than what was known (stale).
    pub settled: usize,
    /// Payments whose books were checked from their payment record.
    pub payments_checked: usize,
    /// Business events of the checked payments, by type.
    pub business_events: BTreeMap<String, u64>,
    /// Webhooks that ended FAILED.
    pub failed: usize,
    /// Messages in the DLQs.
    pub dlq: usize,
    /// Events put on the bus.
    pub published: u64,
    /// Repeated deliveries the event processor absorbed (a retry re-published an event).
    pub absorbed: u64,
    /// Whether the pipeline went idle before the timeout.
    pub idle: bool,
    /// Problems found by the reconciliation (empty: the books balance).
    pub problems: Vec<String>,
}

impl DemoReport {
    /// A report with nothing counted yet.
    pub fn empty() -> Self {
        DemoReport {
            backend: "memory".to_owned(),
            sent: 0,
            by_status: BTreeMap::new(),
            rejected_by_reason: BTreeMap::new(),
            accepted: 0,
            duplicates: 0,
            ignored: 0,
            processed: 0,
            processed_by_rule: BTreeMap::new(),
            settled: 0,
            payments_checked: 0,
            business_events: BTreeMap::new(),
            failed: 0,
            dlq: 0,
            published: 0,
            absorbed: 0,
            idle: false,
            problems: Vec::new(),
        }
    }

    /// Whether every accepted webhook is accounted for exactly once.
    pub fn balanced(&self) -> bool {
        self.idle && self.problems.is_empty()
    }
}

/// Checks the books: every accepted webhook is PROCESSED (published exactly once, recorded with
/// its rules) or FAILED with its message in its provider's DLQ; nothing is left in between.
pub async fn reconcile(stack: &Stack, accepted: &[String], report: &mut DemoReport) {
    let mut dlq_ids: Vec<String> = Vec::new();
    for provider in Provider::ALL {
        match stack.dlq_messages(provider).await {
            Ok(messages) => dlq_ids.extend(messages.into_iter().filter_map(|m| m.webhook_id)),
            Err(e) => report
                .problems
                .push(format!("{provider} DLQ could not be read: {e}")),
        }
    }
    report.dlq = dlq_ids.len();
    // Rules recorded on PROCESSED items (only this run's webhooks: a table on an endpoint may
    // hold others).
    let mut recorded: u64 = 0;
    for id in accepted {
        match stack.status(id).await {
            Some(item) if item.status == Status::Processed => {
                report.processed += 1;
                recorded += item.matched_rules.len() as u64;
                let settled = matches!(item.payment_effect.as_deref(), Some("unchanged" | "stale"));
                match (item.matched_rules.is_empty(), settled) {
                    (true, true) => report.settled += 1,
                    (false, false) => {}
                    (true, false) => report
                        .problems
                        .push(format!("{id}: PROCESSED without a matched rule")),
                    (false, true) => report.problems.push(format!(
                        "{id}: changed nothing for its payment, yet a rule recorded it"
                    )),
                }
            }
            Some(item) if item.status == Status::Failed => {
                report.failed += 1;
                if !dlq_ids.contains(id) {
                    report
                        .problems
                        .push(format!("{id}: FAILED but not in the DLQ"));
                }
            }
            Some(item) => report.problems.push(format!("{id}: ended {}", item.status)),
            None => report
                .problems
                .push(format!("{id}: accepted but never recorded")),
        }
    }
    for id in &dlq_ids {
        if !accepted.contains(id) {
            report
                .problems
                .push(format!("{id}: in the DLQ but never accepted"));
        }
    }
    report.published = stack.put_count();
    let mut delivered = 0;
    for (rule, stats) in stack.rule_stats() {
        delivered += stats.delivered;
        report.processed_by_rule.insert(rule, stats.delivered);
    }
    // A delivery that did not add a rule to a PROCESSED item was absorbed as a repeat.
    report.absorbed = delivered.saturating_sub(recorded);
    // Each webhook that changed its payment publishes one business event; the settled ones
    // publish none. Every publication beyond that (a retry after a crash, a take-over) must
    // have been absorbed. Deliveries can exceed publications (a rule's queue delivers at least
    // once), so absorbed repeats may outnumber the extra publications, never the reverse.
    let publishing = (report.processed - report.settled) as u64;
    if report.published < publishing || report.published - publishing > report.absorbed {
        report.problems.push(format!(
            "{} events published for {} processed webhooks that changed their payment and {} absorbed repeats: an event was lost or a repeat was recorded",
            report.published, publishing, report.absorbed
        ));
    }
}

/// Checks each booked payment's record: captured once for the amount sent, refunded by exactly
/// the expected deltas, whatever updates and stale copies arrived in between.
pub async fn check_payments(stack: &Stack, booked: &[BookedPayment], report: &mut DemoReport) {
    use payhook_core::payment::BusinessEventType;
    for b in booked {
        let id = format!("{} payment {}", b.provider, b.payment_id);
        let Some(record) = stack.payment(b.provider, &b.payment_id).await else {
            report.problems.push(format!("{id}: no payment record"));
            continue;
        };
        report.payments_checked += 1;
        let events: Vec<_> = record.applied.iter().flat_map(|a| &a.events).collect();
        let succeeded = events
            .iter()
            .filter(|e| e.event_type == BusinessEventType::PaymentSucceeded)
            .count();
        let refunds: Vec<i64> = events
            .iter()
            .filter(|e| e.event_type == BusinessEventType::PaymentRefunded)
            .filter_map(|e| e.refund_delta_minor)
            .collect();
        if succeeded != 1 || record.captured_minor != Some(b.captured_minor) {
            report.problems.push(format!(
                "{id}: {succeeded} payment.succeeded, captured {:?} (expected one, {})",
                record.captured_minor, b.captured_minor
            ));
        }
        if refunds != b.refunds {
            report.problems.push(format!(
                "{id}: payment.refunded deltas {refunds:?} (expected {:?})",
                b.refunds
            ));
        }
        for e in events {
            *report
                .business_events
                .entry(e.event_type.as_str().to_owned())
                .or_default() += 1;
        }
    }
}
