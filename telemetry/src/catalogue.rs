//! The one catalogue of metrics the kit emits: name, unit, resolution, dimension sets, emitting
//! functions and a description, declared once here and exported as JSON ([`catalogue_json`]) so
//! that `dashboards/` and `alarms/` can be checked against it.
//!
//! Metrics are emitted through the [`Metric`] enum, so a metric that is not in the catalogue
//! cannot be emitted at all; its unit and dimensions come from here, never from the call site.

use serde_json::{Value, json};

use crate::metrics::DEFAULT_NAMESPACE;

/// A CloudWatch unit, spelled exactly as CloudWatch and the EMF schema expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // the variants are CloudWatch's own unit names
pub enum Unit {
    Seconds,
    Microseconds,
    Milliseconds,
    Bytes,
    Kilobytes,
    Megabytes,
    Gigabytes,
    Terabytes,
    Bits,
    Kilobits,
    Megabits,
    Gigabits,
    Terabits,
    Percent,
    Count,
    BytesPerSecond,
    KilobytesPerSecond,
    MegabytesPerSecond,
    GigabytesPerSecond,
    TerabytesPerSecond,
    BitsPerSecond,
    KilobitsPerSecond,
    MegabitsPerSecond,
    GigabitsPerSecond,
    TerabitsPerSecond,
    CountPerSecond,
    None,
}

impl Unit {
    /// Every unit CloudWatch accepts (27).
    pub const ALL: [Unit; 27] = [
        Unit::Seconds,
        Unit::Microseconds,
        Unit::Milliseconds,
        Unit::Bytes,
        Unit::Kilobytes,
        Unit::Megabytes,
        Unit::Gigabytes,
        Unit::Terabytes,
        Unit::Bits,
        Unit::Kilobits,
        Unit::Megabits,
        Unit::Gigabits,
        Unit::Terabits,
        Unit::Percent,
        Unit::Count,
        Unit::BytesPerSecond,
        Unit::KilobytesPerSecond,
        Unit::MegabytesPerSecond,
        Unit::GigabytesPerSecond,
        Unit::TerabytesPerSecond,
        Unit::BitsPerSecond,
        Unit::KilobitsPerSecond,
        Unit::MegabitsPerSecond,
        Unit::GigabitsPerSecond,
        Unit::TerabitsPerSecond,
        Unit::CountPerSecond,
        Unit::None,
    ];

    /// The unit's name as written in an EMF document (`"Milliseconds"`, `"Count/Second"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Unit::Seconds => "Seconds",
            Unit::Microseconds => "Microseconds",
            Unit::Milliseconds => "Milliseconds",
            Unit::Bytes => "Bytes",
            Unit::Kilobytes => "Kilobytes",
            Unit::Megabytes => "Megabytes",
            Unit::Gigabytes => "Gigabytes",
            Unit::Terabytes => "Terabytes",
            Unit::Bits => "Bits",
            Unit::Kilobits => "Kilobits",
            Unit::Megabits => "Megabits",
            Unit::Gigabits => "Gigabits",
            Unit::Terabits => "Terabits",
            Unit::Percent => "Percent",
            Unit::Count => "Count",
            Unit::BytesPerSecond => "Bytes/Second",
            Unit::KilobytesPerSecond => "Kilobytes/Second",
            Unit::MegabytesPerSecond => "Megabytes/Second",
            Unit::GigabytesPerSecond => "Gigabytes/Second",
            Unit::TerabytesPerSecond => "Terabytes/Second",
            Unit::BitsPerSecond => "Bits/Second",
            Unit::KilobitsPerSecond => "Kilobits/Second",
            Unit::MegabitsPerSecond => "Megabits/Second",
            Unit::GigabitsPerSecond => "Gigabits/Second",
            Unit::TerabitsPerSecond => "Terabits/Second",
            Unit::CountPerSecond => "Count/Second",
            Unit::None => "None",
        }
    }

    /// The unit with this exact (case-sensitive) CloudWatch name.
    pub fn from_name(name: &str) -> Option<Unit> {
        Unit::ALL.into_iter().find(|u| u.as_str() == name)
    }
}

/// How finely CloudWatch stores a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resolution {
    /// One-minute resolution (`StorageResolution: 60`, the default).
    Standard,
    /// One-second resolution (`StorageResolution: 1`); costs more, use for latency you alarm on quickly.
    High,
}

impl Resolution {
    /// The `StorageResolution` value in seconds.
    pub const fn seconds(self) -> u32 {
        match self {
            Resolution::Standard => 60,
            Resolution::High => 1,
        }
    }
}

/// A dimension name used by the catalogue. Default dimensions configured per deployment come on
/// top of these (see [`crate::metrics::MetricsConfig::with_default_dimension`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    /// `service`: `POWERTOOLS_SERVICE_NAME`, added to every metric by the crate.
    Service,
    /// `function_name`: the Lambda function's name (only on `ColdStart`), added by the crate.
    FunctionName,
    /// `provider`: `stripe`, `paypal` or `square`.
    Provider,
    /// `reason`: the stable error code a webhook was rejected with (`invalid_signature`, …).
    Reason,
    /// `event_type`: the normalised event type (`payment.succeeded`, …).
    EventType,
    /// `tier`: the amount tier (`high`, `medium`, `low`).
    Tier,
    /// `rule`: the EventBridge rule that routed an event.
    Rule,
    /// `state`: a webhook's status (`RECEIVED`, `QUEUED`, …).
    State,
}

impl Dimension {
    /// Every dimension name.
    pub const ALL: [Dimension; 8] = [
        Dimension::Service,
        Dimension::FunctionName,
        Dimension::Provider,
        Dimension::Reason,
        Dimension::EventType,
        Dimension::Tier,
        Dimension::Rule,
        Dimension::State,
    ];

    /// The name as it appears in EMF documents and dashboards.
    pub const fn as_str(self) -> &'static str {
        match self {
            Dimension::Service => "service",
            Dimension::FunctionName => "function_name",
            Dimension::Provider => "provider",
            Dimension::Reason => "reason",
            Dimension::EventType => "event_type",
            Dimension::Tier => "tier",
            Dimension::Rule => "rule",
            Dimension::State => "state",
        }
    }

    /// Dimensions the crate fills in itself; call sites never pass them.
    pub const fn is_implicit(self) -> bool {
        matches!(self, Dimension::Service | Dimension::FunctionName)
    }
}

/// Which Lambda function emits a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FunctionKind {
    /// `webhook-validator`: API Gateway → verify, normalise, record, enqueue.
    WebhookValidator,
    /// `provider-processor`: SQS FIFO → claim, enrich, publish to EventBridge.
    ProviderProcessor,
    /// `event-processor`: EventBridge rule target → mark processed.
    EventProcessor,
    /// `sweeper`: on a schedule → find stuck webhooks, repair what is safe.
    Sweeper,
}

impl FunctionKind {
    /// Every function.
    pub const ALL: [FunctionKind; 4] = [
        FunctionKind::WebhookValidator,
        FunctionKind::ProviderProcessor,
        FunctionKind::EventProcessor,
        FunctionKind::Sweeper,
    ];

    /// The function's logical name (`webhook-validator`, …), the default `service`.
    pub const fn as_str(self) -> &'static str {
        match self {
            FunctionKind::WebhookValidator => "webhook-validator",
            FunctionKind::ProviderProcessor => "provider-processor",
            FunctionKind::EventProcessor => "event-processor",
            FunctionKind::Sweeper => "sweeper",
        }
    }
}

/// One catalogue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricDef {
    /// The metric this entry describes.
    pub metric: Metric,
    /// The CloudWatch metric name (CamelCase noun).
    pub name: &'static str,
    /// Its unit.
    pub unit: Unit,
    /// Its storage resolution.
    pub resolution: Resolution,
    /// The dimension sets it is published under (each set creates one CloudWatch metric).
    pub dimension_sets: &'static [&'static [Dimension]],
    /// The functions that emit it.
    pub functions: &'static [FunctionKind],
    /// What it counts or measures, for dashboards, alarms and runbooks.
    pub description: &'static str,
}

impl MetricDef {
    /// Every dimension the call site must supply (the union of the sets, minus the implicit
    /// `service` / `function_name`), in a fixed order.
    pub fn explicit_dimensions(&self) -> Vec<Dimension> {
        let mut dims: Vec<Dimension> = self
            .dimension_sets
            .iter()
            .flat_map(|set| set.iter().copied())
            .filter(|d| !d.is_implicit())
            .collect();
        dims.sort();
        dims.dedup();
        dims
    }

    /// This entry as JSON (one element of [`catalogue_json`]'s `metrics`).
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "unit": self.unit.as_str(),
            "storage_resolution": self.resolution.seconds(),
            "dimensions": self
                .dimension_sets
                .iter()
                .map(|set| set.iter().map(|d| d.as_str()).collect::<Vec<_>>())
                .collect::<Vec<_>>(),
            "functions": self.functions.iter().map(|f| f.as_str()).collect::<Vec<_>>(),
            "description": self.description,
        })
    }
}

use Dimension as D;
use FunctionKind as F;

/// Declares the `Metric` enum and the catalogue array from one list, so the two cannot drift:
/// the metric name is the variant name.
macro_rules! catalogue {
    ($(
        $(#[$doc:meta])*
        $variant:ident {
            unit: $unit:expr,
            resolution: $res:expr,
            dimensions: [$([$($dim:expr),* $(,)?]),* $(,)?],
            functions: [$($func:expr),* $(,)?],
            description: $desc:expr $(,)?
        }
    )*) => {
        /// Every metric the kit emits. The variant name is the CloudWatch metric name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Metric {
            $( $(#[$doc])* $variant, )*
        }

        static CATALOGUE: &[MetricDef] = &[
            $( MetricDef {
                metric: Metric::$variant,
                name: stringify!($variant),
                unit: $unit,
                resolution: $res,
                dimension_sets: &[$(&[$($dim),*]),*],
                functions: &[$($func),*],
                description: $desc,
            }, )*
        ];

        impl Metric {
            /// Every metric, in catalogue order.
            pub const ALL: &'static [Metric] = &[$(Metric::$variant),*];
        }
    };
}

catalogue! {
    /// A webhook POST reached the validator.
    WebhooksReceived {
        unit: Unit::Count, resolution: Resolution::Standard,
        dimensions: [[D::Service, D::Provider]],
        functions: [F::WebhookValidator],
        description: "Webhook deliveries that reached the validator (any outcome).",
    }
    /// A webhook was verified, recorded and durably queued (2xx to the provider).
    WebhooksAccepted {
        unit: Unit::Count, resolution: Resolution::Standard,
        dimensions: [[D::Service, D::Provider]],
        functions: [F::WebhookValidator],
        description: "Webhooks verified, recorded and queued to the provider's FIFO queue; the provider got a 2xx.",
    }
    /// A webhook whose id was already recorded (a provider retry); acknowledged, not re-queued.
    WebhooksDuplicate {
        unit: Unit::Count, resolution: Resolution::Standard,
        dimensions: [[D::Service, D::Provider]],
        functions: [F::WebhookValidator],
        description: "Repeated deliveries of an already recorded webhook id; acknowledged without queueing again.",
    }
    /// A verified webhook of an unsupported event type; acknowledged with status IGNORED.
    WebhooksIgnored {
        unit: Unit::Count, resolution: Resolution::Standard,
        dimensions: [[D::Service, D::Provider]],
        functions: [F::WebhookValidator],
        description: "Verified webhooks payhook does not process (unsupported event types, Stripe test mode where live mode is required); acknowledged (2xx) and recorded IGNORED.",
    }
    /// A verified Stripe test-mode event on a stage that requires live mode (also counted in
    /// WebhooksIgnored).
    TestModeWebhooksIgnored {
        unit: Unit::Count, resolution: Resolution::Standard,
        dimensions: [[D::Service, D::Provider]],
        functions: [F::WebhookValidator],
        description: "Verified test-mode events answered 200 ignored because the stage requires live mode (stripe.require_livemode).",
    }
    /// A verified webhook that could not be normalised, kept whole as QUARANTINED (202).
    WebhooksQuarantined {
        unit: Unit::Count, resolution: Resolution::Standard,
        dimensions: [[D::Service, D::Provider]],
        functions: [F::WebhookValidator],
        description: "Verified webhooks that could not be normalised (unknown currency or status, a schema change): kept whole with the reason as QUARANTINED, answered 202, replayable with payhook quarantine replay.",
    }
    /// A queued event whose currency has no rate in the rates file (tier `unrated`).
    UnratedPayments {
        unit: Unit::Count, resolution: Resolution::Standard,
        dimensions: [[D::Service, D::Provider]],
        functions: [F::WebhookValidator],
        description: "Queued events whose currency has no rate in the rates file: no amount_reporting, tier unrated, no amount rule matches them.",
    }
    /// A webhook answered with 4xx or 5xx; `reason` is the error's stable code.
    WebhooksRejected {
        unit: Unit::Count, resolution: Resolution::Standard,
        dimensions: [[D::Service, D::Provider, D::Reason]],
        functions: [F::WebhookValidator],
        description: "Webhooks answered with an error; reason is the stable error code (invalid_signature, timestamp_too_old, payload_too_large, ...).",
    }
    /// A signature that did not verify (also counted in WebhooksRejected).
    SignatureFailures {
        unit: Unit::Count, resolution: Resolution::Standard,
        dimensions: [[D::Service, D::Provider]],
        functions: [F::WebhookValidator],
        description: "Signature verification failures: a wrong or rotated secret, or forged requests.",
    }
    /// Time from receipt to the validator's answer.
    ValidationLatency {
        unit: Unit::Milliseconds, resolution: Resolution::Standard,
        dimensions: [[D::Service, D::Provider]],
        functions: [F::WebhookValidator],
        description: "Validator handler time per webhook, from receipt to response, in milliseconds.",
    }
    /// An SQS record processed and published.
    RecordsProcessed {
        unit: Unit::Count, resolution: Resolution::Standard,
        dimensions: [[D::Service, D::Provider]],
        functions: [F::ProviderProcessor],
        description: "SQS records claimed, enriched and published to EventBridge.",
    }
    /// An SQS record skipped because it was already processed (claim lost or already published).
    RecordsSkipped {
        unit: Unit::Count, resolution: Resolution::Standard,
        dimensions: [[D::Service, D::Provider]],
        functions: [F::ProviderProcessor],
        description: "SQS records skipped because another attempt already claimed or published them.",
    }
    /// An SQS record reported as a batch item failure (it will be retried).
    RecordsFailed {
        unit: Unit::Count, resolution: Resolution::Standard,
        dimensions: [[D::Service, D::Provider]],
        functions: [F::ProviderProcessor],
        description: "SQS records returned as batch item failures (retried; later records of the same message group fail with them).",
    }
    /// A PaymentEvent put on the payment-events bus.
    EventsPublished {
        unit: Unit::Count, resolution: Resolution::Standard,
        dimensions: [[D::Service, D::Provider, D::EventType]],
        functions: [F::ProviderProcessor],
        description: "Payment events put on the payment-events bus, by normalised event type.",
    }
    /// A PutEvents call or entry that failed.
    PublishFailures {
        unit: Unit::Count, resolution: Resolution::Standard,
        dimensions: [[D::Service, D::Provider]],
        functions: [F::ProviderProcessor],
        description: "PutEvents calls or entries that failed; the record is retried.",
    }
    /// The amount of a published payment, in major units of its currency.
    PaymentAmount {
        unit: Unit::None, resolution: Resolution::Standard,
        dimensions: [[D::Service, D::Provider, D::Tier]],
        functions: [F::ProviderProcessor],
        description: "Amount of each published payment in major currency units (unit None: currencies are mixed).",
    }
    /// A published payment, counted by amount tier.
    PaymentsByTier {
        unit: Unit::Count, resolution: Resolution::Standard,
        dimensions: [[D::Service, D::Tier]],
        functions: [F::ProviderProcessor],
        description: "Published payments by amount tier (high, medium, low).",
    }
    /// A record on its last receive that will move to the provider's DLQ.
    MessagesToDlq {
        unit: Unit::Count, resolution: Resolution::Standard,
        dimensions: [[D::Service, D::Provider]],
        functions: [F::ProviderProcessor],
        description: "Records that failed on their last receive (status FAILED) and move to the provider's dead-letter queue.",
    }
    /// Time a record waited in SQS before processing.
    QueueLag {
        unit: Unit::Milliseconds, resolution: Resolution::Standard,
        dimensions: [[D::Service, D::Provider]],
        functions: [F::ProviderProcessor],
        description: "Time from SQS SentTimestamp to the start of processing, in milliseconds (backlog indicator).",
    }
    /// A routed event handled by the event processor.
    EventsProcessed {
        unit: Unit::Count, resolution: Resolution::Standard,
        dimensions: [[D::Service, D::Rule]],
        functions: [F::EventProcessor],
        description: "Events delivered by an EventBridge rule and marked PROCESSED, by rule.",
    }
    /// A redelivered event absorbed by the status table's conditional write.
    DuplicateEventsAbsorbed {
        unit: Unit::Count, resolution: Resolution::Standard,
        dimensions: [[D::Service]],
        functions: [F::EventProcessor],
        description: "EventBridge redeliveries of an already processed event, absorbed by the conditional write.",
    }
    /// Time from the webhook's receipt to its processing by the event processor.
    EndToEndLatency {
        unit: Unit::Milliseconds, resolution: Resolution::Standard,
        dimensions: [[D::Service, D::Provider]],
        functions: [F::EventProcessor],
        description: "Time from the webhook's received_at to the event processor marking it PROCESSED, in milliseconds.",
    }
    /// Webhooks found stuck in one state past its threshold by a sweep (repaired or not).
    StuckWebhooks {
        unit: Unit::Count, resolution: Resolution::Standard,
        dimensions: [[D::Service, D::Provider, D::State]],
        functions: [F::Sweeper],
        description: "Webhooks the sweeper found stuck past their state's threshold (RECEIVED 10 min, QUEUED and PROCESSING 1 h, PUBLISHED 30 min), by provider and state, one value per sweep including zeros; RECEIVED are enqueued again and PUBLISHED published again once, the rest is reported.",
    }
    /// The first invocation of a new execution environment.
    ColdStart {
        unit: Unit::Count, resolution: Resolution::Standard,
        dimensions: [[D::Service, D::FunctionName]],
        functions: [F::WebhookValidator, F::ProviderProcessor, F::EventProcessor, F::Sweeper],
        description: "Cold starts (first invocation of an execution environment), in a document of its own as Powertools does.",
    }
}

impl Metric {
    /// This metric's catalogue entry.
    pub fn def(self) -> &'static MetricDef {
        &CATALOGUE[self as usize]
    }

    /// The CloudWatch metric name.
    pub fn name(self) -> &'static str {
        self.def().name
    }

    /// The catalogued metric with this name.
    pub fn from_name(name: &str) -> Option<Metric> {
        CATALOGUE.iter().find(|d| d.name == name).map(|d| d.metric)
    }
}

/// Every metric the kit emits.
pub fn catalogue() -> &'static [MetricDef] {
    CATALOGUE
}

/// The catalogue as JSON: `{"default_namespace": "Payhook", "metrics": [{name, unit,
/// storage_resolution, dimensions, functions, description}, …]}`.
pub fn catalogue_json() -> Value {
    json!({
        "default_namespace": DEFAULT_NAMESPACE,
        "metrics": CATALOGUE.iter().map(MetricDef::to_json).collect::<Vec<_>>(),
    })
}
