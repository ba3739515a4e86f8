//! The local stack: one process running the validator, one processor per provider (several
//! pollers each, as Lambda's concurrency would) over in-memory SQS FIFO queues, the local bus
//! routing with `rules/` to the event processor, and the conditional-write status store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayProxyResponse};
use payhook_aws::Traced;
use payhook_core::Provider;
use payhook_core::bus::{EventBus, PAYMENT_EVENTS_BUS};
use payhook_core::event_processor::{EventProcessor, RoutedEvent};
use payhook_core::memory_sqs::{MemorySqs, QueueStats, ReceivedMessage};
use payhook_core::pattern::load_rules;
use payhook_core::ports::{Clock, SystemClock};
use payhook_core::processor::{
    ProcessError, ProcessorConfig, ProviderProcessor, QueueRecord, RecordOutcome,
};
use payhook_core::status::{MemoryStatusStore, Status, StatusItem, StatusStore};
use payhook_core::validator::Validator;
use payhook_telemetry::{FunctionConfig, FunctionKind, FunctionTelemetry, Telemetry, TraceExport};
use serde::Serialize;
use tracing::instrument::WithSubscriber as _;

use super::bus::{EventTarget, LocalBus, RuleStats};
use super::faults::{Faults, FaultyBus, INJECTED_CRASH};
use super::sink::BufferedFileSink;
use super::xray::XrayListener;
use crate::CliError;
use crate::config::Config;

/// Pollers per provider queue (Lambda would run several concurrent batches too).
pub const POLLERS_PER_QUEUE: usize = 4;
/// Concurrent deliveries from the bus to the event processor.
pub const BUS_WORKERS: usize = 8;
/// A processor invocation's time budget: the Lambda timeout (the claims' lease).
pub const PROCESSOR_TIMEOUT_MS: i64 = 300_000;

/// How often buffered logs and metrics reach the run directory.
const FLUSH_EVERY: Duration = Duration::from_millis(250);

/// File names inside the run directory.
pub const LOGS_FILE: &str = "logs.jsonl";
/// EMF documents, one per line.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// X-Ray segment documents, one per line.
pub const SEGMENTS_FILE: &str = "xray.jsonl";

/// How to start the stack.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// The loaded config.
    pub config: Config,
    /// Where logs, metrics and segments go.
    pub run_dir: PathBuf,
    /// The routing rules.
    pub rules_dir: PathBuf,
    /// Faults to inject.
    pub faults: Faults,
}

/// Counts by status, queue depths, rule counters and whether the pipeline is idle.
#[derive(Debug, Clone, Serialize)]
pub struct StackStats {
    /// Items per status.
    pub statuses: BTreeMap<String, usize>,
    /// Per-provider queue: visible, in-flight, DLQ depth.
    pub queues: BTreeMap<String, QueueStats>,
    /// Per-rule counters.
    pub rules: BTreeMap<String, RuleStats>,
    /// Deliveries the bus dead-lettered.
    pub bus_dead_letters: usize,
    /// Nothing visible or in flight, no batch running and no delivery pending.
    pub idle: bool,
}

struct Processor {
    provider: Provider,
    handler: ProviderProcessor,
    telemetry: FunctionTelemetry,
}

struct EventProcessorTarget {
    handler: EventProcessor,
    telemetry: FunctionTelemetry,
}

#[async_trait]
impl EventTarget for EventProcessorTarget {
    async fn deliver(
        &self,
        routed: RoutedEvent,
        trace_header: Option<String>,
    ) -> Result<(), (bool, String)> {
        let id = routed
            .event
            .get("id")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned();
        let invocation = self.telemetry.start(&id, trace_header.as_deref());
        payhook_event_processor::invoke(&self.handler, invocation, &routed)
            .await
            .map(|_| ())
            .map_err(|e| (e.0.is_retryable(), e.to_string()))
    }
}

/// The running local stack.
pub struct Stack {
    config: Config,
    validator: Validator,
    validator_telemetry: FunctionTelemetry,
    store: Arc<MemoryStatusStore>,
    sqs: Arc<MemorySqs>,
    bus: Arc<LocalBus>,
    telemetry: Telemetry,
    xray: XrayListener,
    sinks: Vec<Arc<BufferedFileSink>>,
    busy_batches: Arc<AtomicUsize>,
    run_dir: PathBuf,
    shutdown: tokio::sync::watch::Sender<bool>,
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("run_dir", &self.run_dir)
            .finish_non_exhaustive()
    }
}

fn failed(what: &str, e: impl std::fmt::Display) -> CliError {
    CliError::Failed(format!("{what}: {e}"))
}

impl Stack {
    /// Starts everything but the HTTP front door.
    pub async fn start(options: StackOptions) -> Result<Arc<Stack>, CliError> {
        let StackOptions {
            config,
            run_dir,
            rules_dir,
            faults,
        } = options;
        std::fs::create_dir_all(&run_dir).map_err(|e| failed("run directory", e))?;
        let xray = XrayListener::start(&run_dir.join(SEGMENTS_FILE))
            .await
            .map_err(|e| failed("X-Ray listener", e))?;
        let log_sink = Arc::new(
            BufferedFileSink::append(&run_dir.join(LOGS_FILE))
                .map_err(|e| failed("log file", e))?,
        );
        let telemetry = Telemetry::builder()
            .service("payhook-local")
            .log_sink(Arc::clone(&log_sink))
            .trace_export(TraceExport::Daemon(xray.addr))
            .local_root_segments(true)
            .build()
            .map_err(|e| failed("telemetry", e))?;
        let metrics_sink = Arc::new(
            BufferedFileSink::append(&run_dir.join(METRICS_FILE))
                .map_err(|e| failed("metrics file", e))?,
        );
        let function = |kind: FunctionKind, name: &str| {
            telemetry.function(
                FunctionConfig::new(kind)
                    .service(name)
                    .function_name(name)
                    .memory_size_mb(1024)
                    .metrics_sink(metrics_sink.clone()),
            )
        };

        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let store = Arc::new(MemoryStatusStore::new());
        let sqs = Arc::new(
            MemorySqs::with_config(Arc::clone(&clock), |p| config.fifo_queue_config(p))
                .map_err(|e| failed("queues", e))?,
        );
        // The stand-ins are traced as the AWS services they replace, so local traces look like
        // the deployed ones (an SQS, DynamoDB or EventBridge subsegment per call).
        let traced_store: Arc<dyn StatusStore> = Arc::new(Traced(Arc::clone(&store)));
        let validator = Validator::new(
            Arc::new(config.secret_store()),
            Arc::clone(&traced_store),
            Arc::new(Traced(Arc::clone(&sqs))),
            config.paypal_certificate_cache()?,
            Arc::clone(&clock),
            config.validator_config(),
        );

        let rules = load_rules(&rules_dir).map_err(|e| failed("rules", e))?;
        let target = Arc::new(EventProcessorTarget {
            handler: EventProcessor::new(Arc::clone(&traced_store), Arc::clone(&clock)),
            telemetry: function(FunctionKind::EventProcessor, "event-processor"),
        });
        let dispatch = telemetry.dispatch().clone();
        let bus = async {
            LocalBus::start(
                PAYMENT_EVENTS_BUS,
                &config.aws.region,
                &rules,
                target,
                BUS_WORKERS,
            )
        }
        .with_subscriber(dispatch.clone())
        .await;

        let (shutdown, _) = tokio::sync::watch::channel(false);
        let stack = Arc::new(Stack {
            validator_telemetry: function(FunctionKind::WebhookValidator, "webhook-validator"),
            config: config.clone(),
            validator,
            store: store.clone(),
            sqs: sqs.clone(),
            bus: bus.clone(),
            telemetry: telemetry.clone(),
            xray,
            sinks: vec![Arc::clone(&log_sink), Arc::clone(&metrics_sink)],
            busy_batches: Arc::new(AtomicUsize::new(0)),
            run_dir,
            shutdown,
            tasks: std::sync::Mutex::new(Vec::new()),
        });

        let faulty: Arc<dyn EventBus> = Arc::new(Traced(FaultyBus::new(bus, faults)));
        let mut tasks = Vec::new();
        for provider in Provider::ALL {
            let mut pconfig = ProcessorConfig::new(provider);
            pconfig.max_receive_count = config.queues.max_receive_count;
            pconfig.tiers = config.tier_thresholds();
            let name = format!("{}-processor", provider.as_str());
            let processor = Arc::new(Processor {
                provider,
                handler: ProviderProcessor::new(
                    Arc::clone(&traced_store),
                    Arc::clone(&faulty),
                    Arc::clone(&clock),
                    pconfig,
                ),
                telemetry: function(FunctionKind::ProviderProcessor, &name),
            });
            for _ in 0..POLLERS_PER_QUEUE {
                let poller = poll(
                    Arc::clone(&stack),
                    Arc::clone(&processor),
                    stack.shutdown.subscribe(),
                )
                .with_subscriber(dispatch.clone());
                tasks.push(tokio::spawn(poller));
            }
        }
        let flusher = {
            let sinks = stack.sinks.clone();
            let mut shutdown = stack.shutdown.subscribe();
            async move {
                loop {
                    tokio::select! {
                        _ = shutdown.changed() => break,
                        () = tokio::time::sleep(FLUSH_EVERY) => sinks.iter().for_each(|s| s.flush()),
                    }
                }
            }
        };
        tasks.push(tokio::spawn(flusher));
        if let Ok(mut t) = stack.tasks.lock() {
            t.extend(tasks);
        }
        Ok(stack)
    }

    /// The config the stack runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The run directory.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// The in-memory queues (for `dlq` tools and tests).
    pub fn sqs(&self) -> &Arc<MemorySqs> {
        &self.sqs
    }

    /// The local bus.
    pub fn bus(&self) -> &Arc<LocalBus> {
        &self.bus
    }

    /// The X-Ray listener.
    pub fn xray(&self) -> &XrayListener {
        &self.xray
    }

    /// Runs the validator on an API Gateway proxy event, as the Lambda would.
    pub async fn handle_webhook(&self, event: &ApiGatewayProxyRequest) -> ApiGatewayProxyResponse {
        let request_id = event.request_context.request_id.clone().unwrap_or_default();
        let invocation = self.validator_telemetry.start(&request_id, None);
        payhook_webhook_validator::invoke(&self.validator, invocation, event)
            .with_subscriber(self.telemetry.dispatch().clone())
            .await
    }

    /// One status item.
    pub async fn status(&self, webhook_id: &str) -> Option<StatusItem> {
        self.store.get(webhook_id).await.ok().flatten()
    }

    /// Every status item.
    pub async fn items(&self) -> Vec<StatusItem> {
        self.store.snapshot().await
    }

    /// Counts and depths.
    pub async fn stats(&self) -> StackStats {
        let mut statuses: BTreeMap<String, usize> = Status::ALL
            .iter()
            .map(|s| (s.as_str().to_owned(), 0))
            .collect();
        for item in self.store.snapshot().await {
            *statuses.entry(item.status.as_str().to_owned()).or_default() += 1;
        }
        StackStats {
            statuses,
            queues: self
                .sqs
                .stats()
                .into_iter()
                .map(|(p, s)| (p.as_str().to_owned(), s))
                .collect(),
            rules: self.bus.rule_stats(),
            bus_dead_letters: self.bus.dead_letters().len(),
            idle: self.is_idle(),
        }
    }

    /// Whether nothing is queued, in flight, being processed or being delivered.
    pub fn is_idle(&self) -> bool {
        self.sqs.is_idle()
            && self.busy_batches.load(Ordering::Acquire) == 0
            && self.bus.pending() == 0
    }

    /// Waits until the pipeline is idle (three checks in a row, so a hand-over between
    /// stages is not mistaken for idleness), or the timeout passes.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut calm = 0;
        while tokio::time::Instant::now() < deadline {
            if self.is_idle() {
                calm += 1;
                if calm >= 3 {
                    return true;
                }
            } else {
                calm = 0;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// Stops the pollers and flushes telemetry.
    pub async fn shutdown(&self) {
        let _ = self.shutdown.send(true);
        let tasks = self
            .tasks
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        for task in tasks {
            let _ = task.await;
        }
        self.telemetry.flush();
        // Give the last UDP datagrams a moment to land in the run directory.
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.flush_files();
    }

    /// Writes buffered logs and metrics to the run directory (also done every 250 ms).
    pub fn flush_files(&self) {
        self.sinks.iter().for_each(|s| s.flush());
    }
}

fn record_of(message: &ReceivedMessage) -> QueueRecord {
    QueueRecord {
        message_id: message.message_id.clone(),
        body: message.body.clone(),
        group_id: message.attributes.message_group_id.clone(),
        receive_count: message.attributes.approximate_receive_count,
        trace_header: message.attributes.aws_trace_header.clone(),
    }
}

/// One poller: long-polls its provider's queue, runs the processor handler on each batch (as
/// the event source mapping invokes the Lambda) and deletes what succeeded; failed records stay
/// and come back after the visibility timeout, or go to the DLQ after `maxReceiveCount`.
async fn poll(
    stack: Arc<Stack>,
    processor: Arc<Processor>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let queue = Arc::clone(stack.sqs.queue(processor.provider));
    loop {
        if *shutdown.borrow() {
            break;
        }
        let received = tokio::select! {
            _ = shutdown.changed() => break,
            r = queue.receive_wait(10, Duration::from_millis(500)) => r,
        };
        let messages = match received {
            Ok(m) if !m.is_empty() => m,
            Ok(_) => continue,
            Err(e) => {
                tracing::error!(error = %e, "receive failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        stack.busy_batches.fetch_add(1, Ordering::AcqRel);
        let records: Vec<QueueRecord> = messages.iter().map(record_of).collect();
        let request_id = uuid::Uuid::new_v4().to_string();
        let invocation = processor.telemetry.start(
            &request_id,
            records.first().and_then(|r| r.trace_header.as_deref()),
        );
        let deadline = SystemClock.now_ms() + PROCESSOR_TIMEOUT_MS;
        let outcome =
            payhook_provider_processor::invoke(&processor.handler, invocation, &records, deadline)
                .await;
        let crashed = outcome.records.iter().any(|(_, o)| {
            matches!(o, RecordOutcome::Failed { error: ProcessError::Bus(e), .. } if e.0 == INJECTED_CRASH)
        });
        if crashed {
            tracing::error!(
                provider = processor.provider.as_str(),
                "injected crash: the batch is not acknowledged"
            );
        } else {
            let failed = outcome.failed_message_ids();
            let done: Vec<&str> = messages
                .iter()
                .filter(|m| !failed.contains(&m.message_id))
                .map(|m| m.receipt_handle.as_str())
                .collect();
            if !done.is_empty()
                && let Err(e) = queue.delete_batch(&done)
            {
                tracing::error!(error = %e, "delete failed");
            }
        }
        stack.busy_batches.fetch_sub(1, Ordering::AcqRel);
    }
}
