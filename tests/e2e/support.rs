//! Support for the end-to-end tests: a local stack on a free loopback port with a fresh demo
//! config, and a client that signs and posts webhooks to it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use payhook_aws::aws_config::SdkConfig;
use payhook_aws::moto::{MotoServer, REGION};
use payhook_aws::provision::StackNames;
use payhook_core::Provider;
use payhook_devkit::democa::DemoCa;
use payhook_devkit::http::Sender;
use payhook_devkit::payloads::{self, Payload, PayloadSpec};
use payhook_devkit::unix_now;
use payhook_local::config::{self, Config};
use payhook_local::faults::Faults;
use payhook_local::http::FrontDoor;
use payhook_local::stack::{AwsTarget, Stack, StackOptions};
use payhook_testkit::conformance::workspace_root;

/// One demo CA for the whole test binary: RSA key generation is the slow part.
fn demo_ca() -> DemoCa {
    static CA: OnceLock<DemoCa> = OnceLock::new();
    CA.get_or_init(|| DemoCa::generate(unix_now()).expect("demo CA"))
        .clone()
}

/// A running stack with its front door and a sender.
pub(crate) struct Harness {
    /// The stack.
    pub(crate) stack: Arc<Stack>,
    /// The HTTP front door.
    pub(crate) front: FrontDoor,
    /// A sender with the config's API key and secrets.
    pub(crate) sender: Sender,
    /// The faults it was started with.
    pub(crate) faults: Faults,
}

/// Creates a stage of its own on the shared moto server with `payhook bootstrap`, from the
/// config (written next to it as `payhook.toml`) and the repository's rules: its own table and
/// bus, so tests running at once do not share rules or items.
pub(crate) async fn bootstrap_on_moto(dir: &Path, config: &Config) -> MotoStage {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let moto = MotoServer::shared().expect("moto");
    let stage = format!(
        "e2e-{}-{}",
        std::process::id() % 100_000,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let names = StackNames::new(&stage)
        .with_table(format!("webhook-processing-{stage}"))
        .with_event_bus(format!("payment-events-{stage}"));
    payhook_local::stage::bootstrap_stage(
        &moto.endpoint,
        REGION,
        dir,
        config,
        &names,
        workspace_root().join("rules"),
    )
    .await
    .expect("bootstrap");
    MotoStage {
        target: AwsTarget {
            endpoint: moto.endpoint.clone(),
            region: REGION.to_owned(),
            names,
        },
        sdk: moto.sdk_config().await,
    }
}

/// A fresh run directory for `name`.
pub(crate) fn run_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("e2e")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A stage bootstrapped on the shared moto server for one test.
pub(crate) struct MotoStage {
    /// The endpoint and names the stack runs against.
    pub(crate) target: AwsTarget,
    /// SDK configuration for checking moto's state independently of the stack.
    pub(crate) sdk: SdkConfig,
}

impl Harness {
    /// Starts a stack with its ports in memory; `tweak` may change the config (quota, retries)
    /// before it starts.
    pub(crate) async fn start(name: &str, tweak: impl FnOnce(&mut Config)) -> Harness {
        Harness::start_with(name, tweak, false).await.0
    }

    /// Starts a stack whose every port is on the shared moto server, in a stage of its own that
    /// `payhook bootstrap` creates from the test's config; `None` when moto is not installed
    /// (skipped when run by hand, a failure under the test command).
    pub(crate) async fn start_on_moto(
        name: &str,
        tweak: impl FnOnce(&mut Config),
    ) -> Option<(Harness, MotoStage)> {
        MotoServer::shared()?;
        let (harness, stage) = Harness::start_with(name, tweak, true).await;
        Some((harness, stage.expect("moto stage")))
    }

    async fn start_with(
        name: &str,
        tweak: impl FnOnce(&mut Config),
        on_moto: bool,
    ) -> (Harness, Option<MotoStage>) {
        let dir = run_dir(name);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let port = listener.local_addr().expect("addr").port();
        let mut config =
            config::init_with_ca(&dir, port, true, || Ok(demo_ca())).expect("demo config");
        // Failed records come back within seconds (their retry delay). On moto every status and
        // payment call is an HTTP round trip to a Python server, so a loaded machine can hold
        // an attempt past a 1 s lease and have the next receive take it over (published again,
        // absorbed): the moto stages get a few seconds.
        config.queues.visibility_timeout_seconds = if on_moto { 5 } else { 1 };
        tweak(&mut config);
        let stage = if on_moto {
            Some(bootstrap_on_moto(&dir, &config).await)
        } else {
            None
        };
        let faults = Faults::default();
        let stack = Stack::start(StackOptions {
            config: config.clone(),
            run_dir: dir.join("run"),
            rules_dir: workspace_root().join("rules"),
            faults: faults.clone(),
            aws: stage.as_ref().map(|s| s.target.clone()),
        })
        .await
        .expect("stack starts");
        let front = FrontDoor::serve(Arc::clone(&stack), listener).expect("front door");
        let sender = config.sender().expect("sender");
        let harness = Harness {
            stack,
            front,
            sender,
            faults,
        };
        (harness, stage)
    }

    /// The webhook URL of `provider`.
    pub(crate) fn url(&self, provider: Provider) -> String {
        format!("http://{}/webhooks/{}", self.front.addr, provider.as_str())
    }

    /// Builds a payload.
    pub(crate) fn payload(&self, spec: PayloadSpec) -> Payload {
        payloads::build(&spec.at(unix_now())).expect("payload builds")
    }

    /// Signs and posts a payload; returns status and parsed body.
    pub(crate) async fn post(&self, payload: &Payload) -> (u16, serde_json::Value) {
        let (status, body) = self
            .sender
            .send(
                &self.url(payload.provider),
                payload.provider,
                payload.body.clone(),
            )
            .await
            .expect("request answered");
        (
            status,
            serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
        )
    }

    /// Waits until the pipeline is idle (panics after 30 s).
    pub(crate) async fn idle(&self) {
        assert!(
            self.stack.wait_idle(Duration::from_secs(30)).await,
            "pipeline did not go idle: {:?}",
            serde_json::to_string(&self.stack.stats().await)
        );
    }

    /// Posts `event_types` of one payment of `provider`, in order, each answered 202; returns
    /// their webhook ids.
    pub(crate) async fn post_payment_events(
        &self,
        provider: Provider,
        payment: &str,
        event_types: &[&str],
    ) -> Vec<String> {
        let mut ids = Vec::new();
        for event_type in event_types {
            let p = self.payload(
                PayloadSpec::new(provider)
                    .event_type(*event_type)
                    .amount("80.00", "USD")
                    .payment_id(payment.to_owned()),
            );
            assert_eq!(self.post(&p).await.0, 202, "{event_type}");
            ids.push(p.webhook_id());
        }
        ids
    }

    /// Redrives `provider`'s DLQ through the admin API; returns how many messages moved.
    pub(crate) async fn redrive(&self, provider: Provider) -> u64 {
        let client = payhook_devkit::http::http_client().expect("client");
        let url = format!(
            "http://{}/_payhook/dlq/{}/redrive",
            self.front.addr,
            provider.as_str()
        );
        let (status, body) = payhook_devkit::http::post_empty(&client, &url)
            .await
            .expect("admin answers");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<serde_json::Value>(&body).expect("JSON")["moved"]
            .as_u64()
            .expect("moved")
    }

    /// GETs an admin path and parses the JSON.
    pub(crate) async fn admin(&self, path: &str) -> (u16, serde_json::Value) {
        let client = payhook_devkit::http::http_client().expect("client");
        let url = format!("http://{}{path}", self.front.addr);
        let (status, body) = payhook_devkit::http::get(&client, &url)
            .await
            .expect("admin answers");
        (
            status,
            serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
        )
    }
}
