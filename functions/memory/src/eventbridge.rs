//! An in-memory EventBridge bus, the counterpart of `payhook_aws::EventBridgeBus`: routes each
//! `PutEvents` entry through the bus's enabled rules (`rules/`, matched by `payhook-pattern`, as
//! `payhook rules test` does) and delivers `{"rule", "event"}` to an [`EventTarget`] (what the
//! input transformer does in AWS), with each target's retry policy and a dead-letter list for
//! deliveries that exhaust it. The local stack (`payhook serve`) runs its `payment-events` bus
//! on it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use payhook_core::event_processor::RoutedEvent;
use payhook_core::ports::{BusEntry, BusError, EntryResult, EventBus};
use payhook_core::status::rfc3339_ms;
use payhook_pattern::{Pattern, RetryPolicy, RuleFile, RuleState};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// The account id the in-memory bus stamps on events.
pub const LOCAL_ACCOUNT: &str = "000000000000";

/// Delay before the first retry of a failed delivery (doubles per attempt, capped).
const RETRY_BASE: Duration = Duration::from_millis(50);
const RETRY_CAP: Duration = Duration::from_secs(2);

/// Where the bus delivers routed events (the event processor, wrapped with telemetry).
#[async_trait]
pub trait EventTarget: Send + Sync {
    /// Delivers one routed event; `Err(retryable, message)` when it failed.
    async fn deliver(
        &self,
        routed: RoutedEvent,
        trace_header: Option<String>,
    ) -> Result<(), (bool, String)>;
}

/// One compiled rule of the bus.
#[derive(Debug)]
struct Route {
    name: String,
    pattern: Pattern,
    retry: RetryPolicy,
}

/// A delivery that used up its retries (the target DLQ in AWS).
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    /// The rule that matched.
    pub rule: String,
    /// The event.
    pub event: Value,
    /// The last error.
    pub error: String,
    /// Attempts made.
    pub attempts: u32,
}

#[derive(Debug)]
struct Delivery {
    route: usize,
    event: Arc<Value>,
    trace_header: Option<String>,
    attempt: u32,
}

/// Per-rule counters (what CloudWatch shows as `MatchedEvents` / `FailedInvocations`).
#[derive(Debug, Default, Clone, Serialize)]
pub struct RuleStats {
    /// Events the rule matched.
    pub matched: u64,
    /// Deliveries that succeeded.
    pub delivered: u64,
    /// Delivery attempts that failed (each retry counts).
    pub failed_invocations: u64,
    /// Deliveries dead-lettered.
    pub dead_lettered: u64,
}

#[derive(Debug, Default)]
struct Counters {
    matched: AtomicU64,
    delivered: AtomicU64,
    failed: AtomicU64,
    dead: AtomicU64,
}

/// The in-memory bus.
pub struct MemoryBus {
    name: String,
    region: String,
    routes: Arc<Vec<Route>>,
    counters: Arc<Vec<Counters>>,
    put_count: AtomicU64,
    pending: Arc<AtomicUsize>,
    sender: mpsc::UnboundedSender<Delivery>,
    dead_letters: Arc<Mutex<Vec<DeadLetter>>>,
}

impl std::fmt::Debug for MemoryBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBus")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl MemoryBus {
    /// A bus named `name` routing with the enabled `rules` of that bus to `target`, with
    /// `workers` concurrent deliveries. Must be called inside a tokio runtime.
    pub fn start(
        name: &str,
        region: &str,
        rules: &[(std::path::PathBuf, RuleFile, Pattern)],
        target: Arc<dyn EventTarget>,
        workers: usize,
    ) -> Arc<MemoryBus> {
        let routes: Vec<Route> = rules
            .iter()
            .filter(|(_, file, _)| file.event_bus == name && file.state == RuleState::Enabled)
            .map(|(_, file, pattern)| Route {
                name: file.name.clone(),
                pattern: pattern.clone(),
                retry: file
                    .targets
                    .first()
                    .and_then(|t| t.retry_policy)
                    .unwrap_or(payhook_pattern::DEFAULT_RETRY_POLICY),
            })
            .collect();
        let routes = Arc::new(routes);
        let counters = Arc::new(
            (0..routes.len())
                .map(|_| Counters::default())
                .collect::<Vec<_>>(),
        );
        let (sender, receiver) = mpsc::unbounded_channel::<Delivery>();
        let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
        let pending = Arc::new(AtomicUsize::new(0));
        let dead_letters = Arc::new(Mutex::new(Vec::new()));
        for _ in 0..workers.max(1) {
            let receiver = Arc::clone(&receiver);
            let routes = Arc::clone(&routes);
            let counters = Arc::clone(&counters);
            let target = Arc::clone(&target);
            let pending = Arc::clone(&pending);
            let dead_letters = Arc::clone(&dead_letters);
            let sender = sender.clone();
            tokio::spawn(async move {
                loop {
                    let next = receiver.lock().await.recv().await;
                    let Some(mut delivery) = next else { break };
                    let route = &routes[delivery.route];
                    let routed = RoutedEvent::new(route.name.clone(), Arc::clone(&delivery.event));
                    delivery.attempt += 1;
                    match target.deliver(routed, delivery.trace_header.clone()).await {
                        Ok(()) => {
                            counters[delivery.route]
                                .delivered
                                .fetch_add(1, Ordering::Relaxed);
                            pending.fetch_sub(1, Ordering::AcqRel);
                        }
                        Err((retryable, error)) => {
                            counters[delivery.route]
                                .failed
                                .fetch_add(1, Ordering::Relaxed);
                            // The first attempt is not a retry: attempts = 1 + retries.
                            if retryable && delivery.attempt <= route.retry.maximum_retry_attempts {
                                let delay = RETRY_BASE
                                    .saturating_mul(1 << delivery.attempt.min(8))
                                    .min(RETRY_CAP);
                                let sender = sender.clone();
                                tokio::spawn(async move {
                                    tokio::time::sleep(delay).await;
                                    // A closed channel means the stack is shutting down.
                                    let _ = sender.send(delivery);
                                });
                            } else {
                                counters[delivery.route]
                                    .dead
                                    .fetch_add(1, Ordering::Relaxed);
                                if let Ok(mut dl) = dead_letters.lock() {
                                    dl.push(DeadLetter {
                                        rule: route.name.clone(),
                                        event: (*delivery.event).clone(),
                                        error,
                                        attempts: delivery.attempt,
                                    });
                                }
                                pending.fetch_sub(1, Ordering::AcqRel);
                            }
                        }
                    }
                }
            });
        }
        Arc::new(MemoryBus {
            name: name.to_owned(),
            region: region.to_owned(),
            routes,
            counters,
            put_count: AtomicU64::new(0),
            pending,
            sender,
            dead_letters,
        })
    }

    /// Deliveries matched but not yet delivered or dead-lettered.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }

    /// Per-rule counters by rule name.
    pub fn rule_stats(&self) -> BTreeMap<String, RuleStats> {
        self.routes
            .iter()
            .zip(self.counters.iter())
            .map(|(r, c)| {
                (
                    r.name.clone(),
                    RuleStats {
                        matched: c.matched.load(Ordering::Relaxed),
                        delivered: c.delivered.load(Ordering::Relaxed),
                        failed_invocations: c.failed.load(Ordering::Relaxed),
                        dead_lettered: c.dead.load(Ordering::Relaxed),
                    },
                )
            })
            .collect()
    }

    /// Deliveries that exhausted their retries.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.dead_letters
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default()
    }

    /// Events put on the bus so far.
    pub fn put_count(&self) -> u64 {
        self.put_count.load(Ordering::Relaxed)
    }

    fn envelope(&self, entry: &BusEntry, id: &str, detail: Value) -> Value {
        json!({
            "version": "0",
            "id": id,
            "detail-type": entry.detail_type,
            "source": entry.source,
            "account": LOCAL_ACCOUNT,
            "time": rfc3339_seconds(),
            "region": self.region,
            "resources": [],
            "detail": detail,
        })
    }
}

fn rfc3339_seconds() -> String {
    let now = payhook_core::ports::SystemClock;
    let ms = payhook_core::ports::Clock::now_ms(&now);
    // EventBridge's `time` has second precision.
    let mut s = rfc3339_ms(ms - ms.rem_euclid(1000));
    s.replace_range(s.len() - 5.., "Z");
    s
}

#[async_trait]
impl EventBus for MemoryBus {
    async fn put_events(&self, entries: &[BusEntry]) -> Result<Vec<EntryResult>, BusError> {
        let mut results = Vec::with_capacity(entries.len());
        for entry in entries {
            if entry.event_bus != self.name {
                results.push(EntryResult::Failed {
                    code: "ResourceNotFoundException".into(),
                    message: format!("Event bus {} does not exist.", entry.event_bus),
                });
                continue;
            }
            let detail: Value = match serde_json::from_str(&entry.detail) {
                Ok(d @ Value::Object(_)) => d,
                _ => {
                    results.push(EntryResult::Failed {
                        code: "MalformedDetail".into(),
                        message: "Detail is malformed.".into(),
                    });
                    continue;
                }
            };
            let id = uuid::Uuid::new_v4().to_string();
            let event = Arc::new(self.envelope(entry, &id, detail));
            self.put_count.fetch_add(1, Ordering::Relaxed);
            for (i, route) in self.routes.iter().enumerate() {
                if route.pattern.matches(&event) {
                    self.counters[i].matched.fetch_add(1, Ordering::Relaxed);
                    self.pending.fetch_add(1, Ordering::AcqRel);
                    let delivery = Delivery {
                        route: i,
                        event: Arc::clone(&event),
                        trace_header: entry.trace_header.clone(),
                        attempt: 0,
                    };
                    if self.sender.send(delivery).is_err() {
                        self.pending.fetch_sub(1, Ordering::AcqRel);
                        return Err(BusError("local bus is shut down".into()));
                    }
                }
            }
            results.push(EntryResult::Accepted(id));
        }
        Ok(results)
    }
}
