//! The local stack: one process running the validator, one processor per provider (several
//! pollers each, as Lambda's concurrency would), the bus routing with `rules/` to the event
//! processor, and the conditional-write status store.
//!
//! Its ports are either in memory (the default: [`MemorySqs`], [`MemoryBus`],
//! [`MemoryStatusStore`], secrets from the configuration) or, with [`StackOptions::aws`], the
//! AWS adapters against an AWS-compatible endpoint holding a bootstrapped stage (see
//! [`crate::aws`]). The handlers, the front door, the admin API and the telemetry are the same
//! either way.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayProxyResponse};
use payhook_aws::provision::StackNames;
use payhook_aws::{S3BlobStore, SqsConsumer, SsmSecretStore, Traced, s3_client};
use payhook_core::Provider;
use payhook_core::blob::{BlobStore, MemoryBlobStore};
use payhook_core::event_processor::{EventProcessor, RoutedEvent};
use payhook_core::payment::{MemoryPaymentStore, PaymentRecord, PaymentStore};
use payhook_core::ports::{
    Clock, EventBus, MessageVisibility, PAYMENT_EVENTS_BUS, Queue, SecretStore, SystemClock,
};
use payhook_core::processor::{
    ProcessError, ProcessorConfig, ProviderProcessor, QueueRecord, RecordOutcome, check_timeouts,
    delay_retries,
};
use payhook_core::status::{
    MemoryStatusStore, Status, StatusItem, StatusQuery, StatusStore, list_up_to,
};
use payhook_core::sweeper::{SweepReport, Sweeper, SweeperConfig};
use payhook_core::validator::{ReplayOutcome, Validator};
use payhook_memory::eventbridge::{EventTarget, MemoryBus, RuleStats};
use payhook_memory::sqs::{FifoQueue, MemorySqs, QueueStats, ReceivedMessage};
use payhook_pattern::load_rules;
use payhook_telemetry::{FunctionConfig, FunctionKind, FunctionTelemetry, Telemetry, TraceExport};
use serde::Serialize;
use tracing::instrument::WithSubscriber as _;

use crate::LocalError;
use crate::admin::{DEFAULT_LIST_MAX, LocalRedrive};
use crate::aws::{AwsPipeline, RECEIVE_WAIT_SECS, deliver_rule_queue};
use crate::config::Config;
use crate::faults::{Faults, FaultyBus, INJECTED_CRASH};
use crate::sink::BufferedFileSink;
use crate::xray::XrayListener;
use payhook_aws::dlq::{DlqMessage, RedrivenMessage};

/// Pollers per provider queue (Lambda would run several concurrent batches too).
pub const POLLERS_PER_QUEUE: usize = 4;
/// Concurrent deliveries from the bus to the event processor.
pub const BUS_WORKERS: usize = 8;
/// Pollers per rule queue when the stack runs on an AWS endpoint.
pub const POLLERS_PER_RULE_QUEUE: usize = 2;
/// A processor invocation's time budget as deployed (the Lambda timeout). Locally an
/// invocation gets the queue's visibility timeout if that is shorter, as the lease and retry
/// rules require ([`payhook_core::processor::check_timeouts`]).
pub const PROCESSOR_TIMEOUT_SECS: u32 = payhook_core::processor::DEFAULT_FUNCTION_TIMEOUT_SECS;

/// The local stack's processor timeout on a queue with `visibility_timeout_secs`.
pub fn local_processor_timeout_secs(visibility_timeout_secs: u32) -> u32 {
    PROCESSOR_TIMEOUT_SECS.min(visibility_timeout_secs)
}

/// How often buffered logs and metrics reach the run directory.
const FLUSH_EVERY: Duration = Duration::from_millis(250);

/// File names inside the run directory ([`crate::run_dir`]).
pub use crate::run_dir::{LOGS_FILE, METRICS_FILE, SEGMENTS_FILE};

/// An AWS-compatible endpoint holding a stage, for [`StackOptions::aws`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsTarget {
    /// The endpoint URL (moto server, LocalStack).
    pub endpoint: String,
    /// The region the clients use.
    pub region: String,
    /// The stage's resource names (as `payhook bootstrap` created them).
    pub names: StackNames,
}

impl AwsTarget {
    /// The stage `config` names (`aws.stage`, `aws.region`) on `endpoint`, with the default
    /// table and bus names.
    pub fn from_config(endpoint: impl Into<String>, config: &Config) -> Self {
        AwsTarget {
            endpoint: endpoint.into(),
            region: config.aws.region.clone(),
            names: StackNames::new(&config.aws.stage),
        }
    }
}

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
    /// Run every port on the AWS adapters against this endpoint instead of in memory.
    pub aws: Option<AwsTarget>,
}

/// Counts by status, queue depths, rule counters and whether the pipeline is idle.
#[derive(Debug, Clone, Serialize)]
pub struct StackStats {
    /// `memory`, or `aws` with the endpoint.
    pub backend: String,
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
    /// What could not be read (an AWS endpoint that did not answer), if anything.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
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

/// Where the stack's queues, bus and table are.
enum Backend {
    Memory {
        store: Arc<MemoryStatusStore>,
        sqs: Arc<MemorySqs>,
        bus: Arc<MemoryBus>,
    },
    Aws {
        endpoint: String,
        pipeline: Arc<AwsPipeline>,
    },
}

/// The running local stack.
pub struct Stack {
    config: Config,
    validator: Validator,
    validator_telemetry: FunctionTelemetry,
    store: Arc<dyn StatusStore>,
    payments: Arc<dyn PaymentStore>,
    backend: Backend,
    telemetry: Telemetry,
    xray: XrayListener,
    sinks: Vec<Arc<BufferedFileSink>>,
    busy_batches: Arc<AtomicUsize>,
    run_dir: PathBuf,
    shutdown: tokio::sync::watch::Sender<bool>,
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    replay: ReplayPorts,
}

/// The validator's ports, for replays of quarantined webhooks: each replay builds a validator
/// with the config's rates file as it is then, so a currency added while the stack runs counts.
struct ReplayPorts {
    secrets: Arc<dyn SecretStore>,
    store: Arc<dyn StatusStore>,
    queue: Arc<dyn Queue>,
    blobs: Arc<dyn BlobStore>,
    clock: Arc<dyn Clock>,
    /// The sweeper's too (`payhook sweep`, and every [`SWEEP_EVERY`]): it also reads the
    /// payment records.
    sweeper_payments: Arc<dyn PaymentStore>,
    sweeper_telemetry: FunctionTelemetry,
}

/// Where quarantined bodies too large for an item go: memory, or the stage's bucket on an
/// endpoint (`payhook bootstrap` creates it).
async fn quarantine_blobs(aws: Option<&AwsTarget>) -> Arc<dyn BlobStore> {
    match aws {
        Some(target) => {
            let sdk =
                payhook_aws::config::sdk_config_for(Some(&target.endpoint), Some(&target.region))
                    .await;
            let bucket = target.names.quarantine_bucket();
            Arc::new(Traced(S3BlobStore::new(s3_client(&sdk), bucket)))
        }
        None => Arc::new(Traced(MemoryBlobStore::new())),
    }
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("run_dir", &self.run_dir)
            .field("backend", &self.backend_name())
            .finish_non_exhaustive()
    }
}

fn failed(what: &str, e: impl std::fmt::Display) -> LocalError {
    LocalError::Stack(format!("{what}: {e}"))
}

/// The ports the handlers get, before the bus exists.
struct Ports {
    secrets: Arc<dyn SecretStore>,
    store: Arc<dyn StatusStore>,
    payments: Arc<dyn PaymentStore>,
    queue: Arc<dyn Queue>,
}

impl Stack {
    /// Starts everything but the HTTP front door. With [`StackOptions::aws`], fails when the
    /// stage's queues are not on the endpoint (run `payhook bootstrap` first).
    #[expect(
        clippy::too_many_lines,
        reason = "the composition root of the local stack: every handler, queue, poller and the bus wired in one place, in memory or on an endpoint"
    )]
    pub async fn start(options: StackOptions) -> Result<Arc<Stack>, LocalError> {
        let StackOptions {
            config,
            run_dir,
            rules_dir,
            faults,
            aws,
        } = options;
        let rules = load_rules(&rules_dir).map_err(|e| failed("rules", e))?;
        // On an endpoint, resolve the stage first: a missing one fails before anything starts.
        let pipeline = match &aws {
            Some(target) => {
                let sdk = payhook_aws::config::sdk_config_for(
                    Some(&target.endpoint),
                    Some(&target.region),
                )
                .await;
                // Bootstrap puts every rule file on the stage's bus, whatever bus it names.
                let files: Vec<_> = rules.iter().map(|(_, file, _)| file.clone()).collect();
                let pipeline = AwsPipeline::connect(&sdk, target.names.clone(), &files).await?;
                let ssm = payhook_aws::aws_sdk_ssm::Client::new(&sdk);
                Some((target.endpoint.clone(), Arc::new(pipeline), ssm))
            }
            None => None,
        };

        std::fs::create_dir_all(&run_dir).map_err(|e| failed("run directory", e))?;
        let segments_sink = Arc::new(
            BufferedFileSink::append(&run_dir.join(SEGMENTS_FILE))
                .map_err(|e| failed("segments file", e))?,
        );
        let xray = XrayListener::start(Arc::clone(&segments_sink))
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
            .local_root_sampling(config.tracing.sampling)
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
        let blobs = quarantine_blobs(aws.as_ref()).await;
        // Every port is traced as the AWS service it is (or stands in for), so local traces look
        // like the deployed ones: an SQS, DynamoDB, SSM or EventBridge subsegment per call.
        let (ports, memory) = match &pipeline {
            Some((_, pipeline, ssm)) => (
                Ports {
                    secrets: Arc::new(Traced(SsmSecretStore::new(
                        ssm.clone(),
                        &pipeline.names.stage,
                    ))),
                    store: Arc::new(Traced(Arc::clone(&pipeline.store))),
                    payments: Arc::new(Traced(Arc::clone(&pipeline.store))),
                    queue: Arc::new(Traced(pipeline.queue.clone())),
                },
                None,
            ),
            None => {
                let store = Arc::new(MemoryStatusStore::new());
                let sqs = Arc::new(
                    MemorySqs::with_config(Arc::clone(&clock), |p| config.fifo_queue_config(p))
                        .map_err(|e| failed("queues", e))?,
                );
                (
                    Ports {
                        secrets: Arc::new(config.secret_store()),
                        store: Arc::new(Traced(Arc::clone(&store))),
                        payments: Arc::new(Traced(MemoryPaymentStore::new())),
                        queue: Arc::new(Traced(Arc::clone(&sqs))),
                    },
                    Some((store, sqs)),
                )
            }
        };
        let validator = Validator::new(
            Arc::clone(&ports.secrets),
            Arc::clone(&ports.store),
            Arc::clone(&ports.queue),
            config.paypal_certificate_cache()?,
            Arc::clone(&clock),
            config.validator_config(),
        )
        .with_quarantine_blobs(Arc::clone(&blobs));
        let replay = ReplayPorts {
            secrets: Arc::clone(&ports.secrets),
            store: Arc::clone(&ports.store),
            queue: Arc::clone(&ports.queue),
            blobs,
            clock: Arc::clone(&clock),
            sweeper_payments: Arc::clone(&ports.payments),
            sweeper_telemetry: function(FunctionKind::Sweeper, "sweeper"),
        };
        let target: Arc<dyn EventTarget> = Arc::new(EventProcessorTarget {
            handler: EventProcessor::new(Arc::clone(&ports.store), Arc::clone(&clock)),
            telemetry: function(FunctionKind::EventProcessor, "event-processor"),
        });
        let dispatch = telemetry.dispatch().clone();
        let (backend, read_store, bus, max_receive_count, visibility_timeout_secs, event_bus): (
            Backend,
            Arc<dyn StatusStore>,
            Arc<dyn EventBus>,
            u32,
            u32,
            String,
        ) = match (pipeline, memory) {
            (Some((endpoint, pipeline, _)), _) => (
                Backend::Aws {
                    endpoint,
                    pipeline: Arc::clone(&pipeline),
                },
                pipeline.store.clone(),
                pipeline.bus.clone(),
                pipeline.max_receive_count,
                pipeline.visibility_timeout_secs,
                pipeline.names.event_bus.clone(),
            ),
            (None, Some((store, sqs))) => {
                let bus = async {
                    MemoryBus::start(
                        PAYMENT_EVENTS_BUS,
                        &config.aws.region,
                        &rules,
                        Arc::clone(&target),
                        BUS_WORKERS,
                    )
                }
                .with_subscriber(dispatch.clone())
                .await;
                (
                    Backend::Memory {
                        store: Arc::clone(&store),
                        sqs,
                        bus: Arc::clone(&bus),
                    },
                    store,
                    bus,
                    config.queues.max_receive_count,
                    config.queues.visibility_timeout_seconds,
                    PAYMENT_EVENTS_BUS.to_owned(),
                )
            }
            (None, None) => unreachable!("one backend is always built"),
        };

        check_timeouts(
            local_processor_timeout_secs(visibility_timeout_secs),
            visibility_timeout_secs,
        )
        .map_err(|e| LocalError::Config(format!("queues.visibility_timeout_seconds: {e}")))?;
        let (shutdown, _) = tokio::sync::watch::channel(false);
        let stack = Arc::new(Stack {
            validator_telemetry: function(FunctionKind::WebhookValidator, "webhook-validator"),
            config: config.clone(),
            validator,
            store: read_store,
            payments: Arc::clone(&ports.payments),
            backend,
            telemetry: telemetry.clone(),
            xray,
            sinks: vec![
                Arc::clone(&log_sink),
                Arc::clone(&metrics_sink),
                segments_sink,
            ],
            busy_batches: Arc::new(AtomicUsize::new(0)),
            run_dir,
            shutdown,
            tasks: std::sync::Mutex::new(Vec::new()),
            replay,
        });

        let faulty: Arc<dyn EventBus> = Arc::new(Traced(FaultyBus::new(bus, faults)));
        let mut tasks = Vec::new();
        for provider in Provider::ALL {
            let mut pconfig = ProcessorConfig::new(provider);
            pconfig.max_receive_count = max_receive_count;
            pconfig.visibility_timeout_secs = visibility_timeout_secs;
            pconfig.tiers = config.tier_thresholds();
            pconfig.event_bus = event_bus.clone();
            let name = format!("{}-processor", provider.as_str());
            let processor = Arc::new(Processor {
                provider,
                handler: ProviderProcessor::new(
                    Arc::clone(&ports.store),
                    Arc::clone(&ports.payments),
                    Arc::clone(&faulty),
                    Arc::clone(&clock),
                    pconfig,
                )
                .with_tracing(payhook_provider_processor::record_tracing()),
                telemetry: function(FunctionKind::ProviderProcessor, &name),
            });
            let source: Arc<dyn BatchSource> = match &stack.backend {
                Backend::Memory { sqs, .. } => {
                    Arc::new(MemorySource(Arc::clone(sqs.queue(provider))))
                }
                Backend::Aws { pipeline, .. } => {
                    Arc::new(AwsSource(pipeline.providers[&provider].queue.clone()))
                }
            };
            for _ in 0..POLLERS_PER_QUEUE {
                let poller = poll(
                    Arc::clone(&stack),
                    Arc::clone(&processor),
                    Arc::clone(&source),
                    stack.shutdown.subscribe(),
                )
                .with_subscriber(dispatch.clone());
                tasks.push(tokio::spawn(poller));
            }
        }
        if let Backend::Aws { pipeline, .. } = &stack.backend {
            for index in 0..pipeline.rules.len() {
                for _ in 0..POLLERS_PER_RULE_QUEUE {
                    let deliverer = deliver_rule_queue(
                        Arc::clone(pipeline),
                        index,
                        Arc::clone(&target),
                        Arc::clone(&stack.busy_batches),
                        stack.shutdown.subscribe(),
                    )
                    .with_subscriber(dispatch.clone());
                    tasks.push(tokio::spawn(deliverer));
                }
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
        tasks.push(tokio::spawn(
            sweep_periodically(Arc::clone(&stack)).with_subscriber(dispatch.clone()),
        ));
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

    /// `memory`, or `aws <endpoint> stage <stage>`.
    pub fn backend_name(&self) -> String {
        match &self.backend {
            Backend::Memory { .. } => "memory".to_owned(),
            Backend::Aws { endpoint, pipeline } => {
                format!("aws {endpoint} stage {}", pipeline.names.stage)
            }
        }
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

    /// A payment's record (its state and the business events its webhooks produced); `None`
    /// also when the table cannot be read (that is logged).
    pub async fn payment(&self, provider: Provider, payment_id: &str) -> Option<PaymentRecord> {
        match self.payments.get_payment(provider, payment_id).await {
            Ok(record) => record,
            Err(e) => {
                tracing::error!(payment_id, error = %e, "payment record read failed");
                None
            }
        }
    }

    /// One status item (`None` also when the table cannot be read; that is logged).
    pub async fn status(&self, webhook_id: &str) -> Option<StatusItem> {
        match self.store.get(webhook_id).await {
            Ok(item) => item,
            Err(e) => {
                tracing::error!(webhook_id, error = %e, "status read failed");
                None
            }
        }
    }

    /// Every status item.
    pub async fn items(&self) -> Result<Vec<StatusItem>, LocalError> {
        match &self.backend {
            Backend::Memory { store, .. } => Ok(store.snapshot().await),
            Backend::Aws { pipeline, .. } => pipeline
                .store
                .inner
                .scan()
                .await
                .map_err(|e| failed("status table", e)),
        }
    }

    /// Events put on the bus so far.
    pub fn put_count(&self) -> u64 {
        match &self.backend {
            Backend::Memory { bus, .. } => bus.put_count(),
            Backend::Aws { pipeline, .. } => pipeline.bus.accepted(),
        }
    }

    /// Per-rule counters.
    pub fn rule_stats(&self) -> BTreeMap<String, RuleStats> {
        match &self.backend {
            Backend::Memory { bus, .. } => bus.rule_stats(),
            Backend::Aws { pipeline, .. } => pipeline.rule_stats(),
        }
    }

    /// Deliveries the bus dead-lettered.
    pub fn bus_dead_letters(&self) -> usize {
        match &self.backend {
            Backend::Memory { bus, .. } => bus.dead_letters().len(),
            Backend::Aws { pipeline, .. } => pipeline.dead_letters(),
        }
    }

    /// Counts and depths.
    pub async fn stats(&self) -> StackStats {
        let mut errors = Vec::new();
        let mut statuses: BTreeMap<String, usize> = Status::ALL
            .iter()
            .map(|s| (s.as_str().to_owned(), 0))
            .collect();
        match self.items().await {
            Ok(items) => {
                for item in items {
                    *statuses.entry(item.status.as_str().to_owned()).or_default() += 1;
                }
            }
            Err(e) => errors.push(e.to_string()),
        }
        let queues = match &self.backend {
            Backend::Memory { sqs, .. } => sqs.stats(),
            Backend::Aws { pipeline, .. } => pipeline.queue_stats().await.unwrap_or_else(|e| {
                errors.push(e.to_string());
                BTreeMap::new()
            }),
        };
        StackStats {
            backend: self.backend_name(),
            statuses,
            queues: queues
                .into_iter()
                .map(|(p, s)| (p.as_str().to_owned(), s))
                .collect(),
            rules: self.rule_stats(),
            bus_dead_letters: self.bus_dead_letters(),
            idle: errors.is_empty() && self.is_idle().await,
            errors,
        }
    }

    /// Whether nothing is queued, in flight, being processed or being delivered (`false` when
    /// the endpoint cannot be asked).
    pub async fn is_idle(&self) -> bool {
        if self.busy_batches.load(Ordering::Acquire) != 0 {
            return false;
        }
        let queues_idle = match &self.backend {
            Backend::Memory { sqs, bus, .. } => sqs.is_idle() && bus.pending() == 0,
            Backend::Aws { pipeline, .. } => pipeline.queues_empty().await.unwrap_or(false),
        };
        queues_idle && self.busy_batches.load(Ordering::Acquire) == 0
    }

    /// Waits until the pipeline is idle (calm at every check for a while, so a hand-over
    /// between stages is not mistaken for idleness), or the timeout passes.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        self.idle_since(timeout).await.is_some()
    }

    /// Waits as [`Stack::wait_idle`] does and returns when the pipeline went idle: the first
    /// check of the calm stretch that confirmed it, at most one check interval after the last
    /// work finished. `None` when the timeout passed first.
    pub async fn idle_since(&self, timeout: Duration) -> Option<tokio::time::Instant> {
        // How often to look, and how long it must stay calm. In memory a check is a few
        // atomic loads and one lock; on an endpoint it is a GetQueueAttributes per queue.
        let (every, confirm) = match self.backend {
            Backend::Memory { .. } => (Duration::from_millis(5), Duration::from_millis(40)),
            Backend::Aws { .. } => (Duration::from_millis(200), Duration::from_millis(400)),
        };
        let deadline = tokio::time::Instant::now() + timeout;
        let mut calm_since = None;
        loop {
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return None;
            }
            if self.is_idle().await {
                let since = *calm_since.get_or_insert(now);
                if now.duration_since(since) >= confirm {
                    return Some(since);
                }
            } else {
                calm_since = None;
            }
            tokio::time::sleep(every).await;
        }
    }

    /// `provider`'s dead letters, in queue order, with each webhook's status and last error
    /// from the table. In memory they are read in place; on an endpoint they are received and
    /// made visible again, as `payhook dlq list` does.
    pub async fn dlq_messages(&self, provider: Provider) -> Result<Vec<DlqMessage>, LocalError> {
        let mut messages = match &self.backend {
            Backend::Memory { sqs, .. } => sqs
                .dlq_messages(provider)
                .map_err(|e| failed("DLQ", e))?
                .into_iter()
                .map(|m| DlqMessage {
                    provider: None,
                    webhook_id: webhook_id_of(&m.body),
                    message_id: m.message_id,
                    group_id: m.attributes.message_group_id,
                    receive_count: m.attributes.approximate_receive_count,
                    sent_timestamp_ms: Some(m.attributes.sent_timestamp_ms),
                    in_flight: m.in_flight,
                    status: None,
                    last_error: None,
                })
                .collect(),
            Backend::Aws { pipeline, .. } => {
                let dlq = &pipeline.providers[&provider].dlq;
                payhook_aws::dlq::peek(&pipeline.sqs, dlq.queue_url(), DEFAULT_LIST_MAX).await?
            }
        };
        for message in &mut messages {
            if let Some(item) = match &message.webhook_id {
                Some(id) => self.status(id).await,
                None => None,
            } {
                message.status = Some(item.status.as_str().to_owned());
                message.last_error = item.last_error;
            }
        }
        Ok(messages)
    }

    /// Moves `provider`'s dead letters back to its queue, in order, each exactly once.
    pub async fn redrive(&self, provider: Provider) -> Result<LocalRedrive, LocalError> {
        match &self.backend {
            Backend::Memory { sqs, .. } => {
                let bodies: std::collections::HashMap<String, String> = sqs
                    .dlq_messages(provider)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|m| (m.message_id, m.body))
                    .collect();
                let mut moved = Vec::new();
                let n = sqs
                    .redrive(provider, |m| {
                        moved.push(RedrivenMessage {
                            provider: None,
                            message_id: m.message_id.clone(),
                            webhook_id: bodies.get(&m.message_id).and_then(|b| webhook_id_of(b)),
                            group_id: m.group_id.clone(),
                            deduplication_id: Some(m.deduplication_id.clone()),
                        });
                    })
                    .map_err(|e| failed("redrive", e))?;
                Ok(LocalRedrive {
                    moved: n,
                    messages: moved,
                })
            }
            Backend::Aws { pipeline, .. } => {
                let queues = &pipeline.providers[&provider];
                let mut moved = Vec::new();
                let mut failures = Vec::new();
                let mut record = |m: &RedrivenMessage| {
                    moved.push(RedrivenMessage {
                        provider: None,
                        ..m.clone()
                    });
                    Ok::<(), payhook_aws::dlq::BoxError>(())
                };
                let n = payhook_aws::dlq::redrive_queue(
                    &pipeline.sqs,
                    provider,
                    queues.dlq.queue_url(),
                    queues.queue.queue_url(),
                    &mut record,
                    &mut failures,
                )
                .await?;
                if !failures.is_empty() {
                    return Err(LocalError::Stack(format!(
                        "{n} moved; not moved: {}",
                        failures.join("; ")
                    )));
                }
                Ok(LocalRedrive {
                    moved: n,
                    messages: moved,
                })
            }
        }
    }

    /// Up to `max` quarantined webhooks, oldest change first.
    pub async fn quarantined(&self, max: usize) -> Result<Vec<StatusItem>, LocalError> {
        let query = StatusQuery::new(Status::Quarantined, SystemClock.now_ms().saturating_add(1));
        list_up_to(self.store.as_ref(), query, max)
            .await
            .map_err(|e| failed("status table", e))
    }

    /// A quarantined body kept in the blob store (`None` when the item holds it itself).
    pub async fn quarantined_blob(&self, item: &StatusItem) -> Result<Option<Vec<u8>>, LocalError> {
        match &item.raw_body_key {
            Some(key) => self
                .replay
                .blobs
                .get(key)
                .await
                .map_err(|e| failed("quarantine blobs", e)),
            None => Ok(None),
        }
    }

    /// Normalises a quarantined webhook again with the rates file as it is now and queues it
    /// if that succeeds (once: see [`Validator::replay_quarantined`]).
    pub async fn replay_quarantined(&self, webhook_id: &str) -> Result<ReplayOutcome, LocalError> {
        let ports = &self.replay;
        let validator = Validator::new(
            Arc::clone(&ports.secrets),
            Arc::clone(&ports.store),
            Arc::clone(&ports.queue),
            self.config.paypal_certificate_cache()?,
            Arc::clone(&ports.clock),
            self.config.validator_config(),
        )
        .with_quarantine_blobs(Arc::clone(&ports.blobs));
        validator
            .replay_quarantined(webhook_id)
            .with_subscriber(self.telemetry.dispatch().clone())
            .await
            .map_err(|e| {
                LocalError::Replay(format!("replaying `{webhook_id}`: {e} ({})", e.code()))
            })
    }

    /// One sweep (see [`payhook_core::sweeper`]) with the deployed thresholds, or every state's
    /// threshold `older_than_secs`; counted as `StuckWebhooks` like the deployed sweeper's.
    pub async fn sweep(&self, older_than_secs: Option<i64>) -> Result<SweepReport, LocalError> {
        let ports = &self.replay;
        let config = older_than_secs.map_or_else(SweeperConfig::default, SweeperConfig::older_than);
        let sweeper = Sweeper::new(
            Arc::clone(&ports.store),
            Arc::clone(&ports.sweeper_payments),
            Arc::clone(&ports.queue),
            Arc::clone(&ports.clock),
            config,
        );
        let request_id = uuid::Uuid::new_v4().to_string();
        let invocation = ports.sweeper_telemetry.start(&request_id, None);
        payhook_sweeper::invoke(&sweeper, invocation)
            .with_subscriber(self.telemetry.dispatch().clone())
            .await
            .map_err(|e| failed("sweep", e))
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

    /// Writes buffered logs, metrics and segments to the run directory (also done every
    /// 250 ms).
    pub fn flush_files(&self) {
        self.sinks.iter().for_each(|s| s.flush());
    }
}

/// How often the local stack sweeps by itself, as the deployed schedule does.
pub const SWEEP_EVERY: Duration = Duration::from_secs(300);

/// Sweeps once at start (a stack restarted after a crash finds what the crash stranded) and
/// then every [`SWEEP_EVERY`] until shutdown.
async fn sweep_periodically(stack: Arc<Stack>) {
    let mut shutdown = stack.shutdown.subscribe();
    let mut wait = Duration::ZERO;
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            () = tokio::time::sleep(wait) => {
                if let Err(e) = stack.sweep(None).await {
                    tracing::error!(error = %e, "periodic sweep failed");
                }
            }
        }
        wait = SWEEP_EVERY;
    }
}

fn webhook_id_of(body: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["webhook_id"].as_str().map(str::to_owned))
}

/// A provider queue as its pollers see it: batches of records with their receipt handles.
#[async_trait]
trait BatchSource: Send + Sync {
    /// Up to 10 records, waiting a little for the first.
    async fn receive(&self) -> Result<Vec<(QueueRecord, String)>, String>;
    /// Acknowledges these deliveries.
    async fn delete(&self, receipt_handles: &[&str]) -> Result<(), String>;
    /// Changes one delivery's visibility (a failed record's retry delay).
    fn visibility(&self) -> &dyn MessageVisibility;
}

struct MemorySource(Arc<FifoQueue>);

fn record_of(message: &ReceivedMessage) -> QueueRecord {
    QueueRecord {
        message_id: message.message_id.clone(),
        body: message.body.clone(),
        group_id: message.attributes.message_group_id.clone(),
        receive_count: message.attributes.approximate_receive_count,
        trace_header: message.attributes.aws_trace_header.clone(),
    }
}

#[async_trait]
impl BatchSource for MemorySource {
    async fn receive(&self) -> Result<Vec<(QueueRecord, String)>, String> {
        let messages = self
            .0
            .receive_wait(10, Duration::from_millis(500))
            .await
            .map_err(|e| e.to_string())?;
        Ok(messages
            .iter()
            .map(|m| (record_of(m), m.receipt_handle.clone()))
            .collect())
    }

    async fn delete(&self, receipt_handles: &[&str]) -> Result<(), String> {
        self.0
            .delete_batch(receipt_handles)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn visibility(&self) -> &dyn MessageVisibility {
        self.0.as_ref()
    }
}

struct AwsSource(SqsConsumer);

#[async_trait]
impl BatchSource for AwsSource {
    async fn receive(&self) -> Result<Vec<(QueueRecord, String)>, String> {
        let received = self
            .0
            .receive(10, RECEIVE_WAIT_SECS, None)
            .await
            .map_err(|e| e.to_string())?;
        Ok(received
            .into_iter()
            .map(|r| (r.record, r.receipt_handle))
            .collect())
    }

    async fn delete(&self, receipt_handles: &[&str]) -> Result<(), String> {
        match self.0.delete(receipt_handles).await {
            Ok(0) => Ok(()),
            Ok(n) => Err(format!("{n} deletes failed")),
            Err(e) => Err(e.to_string()),
        }
    }

    fn visibility(&self) -> &dyn MessageVisibility {
        &self.0
    }
}

/// One poller: receives batches from its provider's queue, runs the processor handler on each
/// (as the event source mapping invokes the Lambda) and deletes what succeeded; failed records
/// stay and come back after the visibility timeout, or go to the DLQ after `maxReceiveCount`.
async fn poll(
    stack: Arc<Stack>,
    processor: Arc<Processor>,
    source: Arc<dyn BatchSource>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let visibility_ms = i64::from(processor.handler.config().visibility_timeout_secs) * 1000;
    loop {
        if *shutdown.borrow() {
            break;
        }
        // Before the receive: the batch's messages are visible again no sooner than this plus
        // the visibility timeout, so no lease reckoned from it outlives them.
        let receiving_at = SystemClock.now_ms();
        let received = tokio::select! {
            _ = shutdown.changed() => break,
            r = source.receive() => r,
        };
        let batch = match received {
            Ok(m) if !m.is_empty() => m,
            Ok(_) => continue,
            Err(e) => {
                tracing::error!(error = %e, "receive failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        stack.busy_batches.fetch_add(1, Ordering::AcqRel);
        let (records, handles): (Vec<QueueRecord>, Vec<String>) = batch.into_iter().unzip();
        let request_id = uuid::Uuid::new_v4().to_string();
        let invocation = processor.telemetry.start(
            &request_id,
            records.first().and_then(|r| r.trace_header.as_deref()),
        );
        let deadline = receiving_at + visibility_ms.min(i64::from(PROCESSOR_TIMEOUT_SECS) * 1000);
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
            let done: Vec<&str> = records
                .iter()
                .zip(&handles)
                .filter(|(r, _)| !failed.contains(&r.message_id))
                .map(|(_, h)| h.as_str())
                .collect();
            if !done.is_empty()
                && let Err(e) = source.delete(&done).await
            {
                tracing::error!(error = %e, "delete failed");
            }
            let deliveries: Vec<(String, String)> = records
                .iter()
                .map(|r| r.message_id.clone())
                .zip(handles.iter().cloned())
                .collect();
            delay_retries(&outcome, &deliveries, source.visibility()).await;
        }
        stack.busy_batches.fetch_sub(1, Ordering::AcqRel);
    }
}
