//! Support for the end-to-end tests: a local stack on a free loopback port with a fresh demo
//! config, and a client that signs and posts webhooks to it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use payhook::config::{self, Config};
use payhook::democa::DemoCa;
use payhook::local::faults::Faults;
use payhook::local::http::FrontDoor;
use payhook::local::stack::{Stack, StackOptions};
use payhook::payloads::{self, Payload, PayloadSpec};
use payhook::send::Sender;
use payhook::unix_now;
use payhook_core::Provider;
use payhook_core::conformance::workspace_root;

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

/// A fresh run directory for `name`.
pub(crate) fn run_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("e2e")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

impl Harness {
    /// Starts a stack; `tweak` may change the config (quota, retries) before it starts.
    pub(crate) async fn start(name: &str, tweak: impl FnOnce(&mut Config)) -> Harness {
        let dir = run_dir(name);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let port = listener.local_addr().expect("addr").port();
        let mut config =
            config::init_with_ca(&dir, port, true, || Ok(demo_ca())).expect("demo config");
        config.queues.visibility_timeout_seconds = 1;
        tweak(&mut config);
        let faults = Faults::default();
        let stack = Stack::start(StackOptions {
            config: config.clone(),
            run_dir: dir,
            rules_dir: workspace_root().join("rules"),
            faults: faults.clone(),
        })
        .await
        .expect("stack starts");
        let front = FrontDoor::serve(Arc::clone(&stack), listener).expect("front door");
        let sender = Sender::new(&config).expect("sender");
        Harness {
            stack,
            front,
            sender,
            faults,
        }
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

    /// GETs an admin path and parses the JSON.
    pub(crate) async fn admin(&self, path: &str) -> (u16, serde_json::Value) {
        let client = payhook::send::http_client().expect("client");
        let url = format!("http://{}{path}", self.front.addr);
        let (status, body) = payhook::send::get(&client, &url)
            .await
            .expect("admin answers");
        (
            status,
            serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
        )
    }
}
