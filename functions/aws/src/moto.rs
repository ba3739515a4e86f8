//! A [moto](https://docs.getmoto.org) server for integration tests (feature `moto`): the real
//! AWS APIs (DynamoDB, SQS, SSM, EventBridge…) on a loopback port, for this crate's tests and
//! any other crate's.
//!
//! ```no_run
//! # async fn run() {
//! use payhook_aws::moto::{MotoServer, unique_name};
//!
//! let Some(moto) = MotoServer::shared() else { return }; // moto not installed: skipped
//! let config = moto.sdk_config().await;
//! let dynamodb = aws_sdk_dynamodb::Client::new(&config);
//! let table = unique_name("webhook-processing");
//! payhook_aws::create_table(&dynamodb, &table).await.unwrap();
//! # }
//! ```
//!
//! The executable is `$PAYHOOK_MOTO_SERVER`, else `.venv/bin/moto_server` in the workspace root
//! (the test command creates that venv). Without it a test is skipped by
//! [`payhook_testkit::skip::skip_test`]: a `SKIP` line when run by hand, a failure under the test
//! command.
//!
//! Where moto differs from AWS: its DynamoDB backend checks a condition and writes without a
//! lock, so the harness serialises DynamoDB requests (conditional writes are then atomic, as in
//! DynamoDB); FIFO deduplication forgets a message once it is deleted; Lambdas are not invoked.
//!
//! The server runs under a small `sh` watchdog that holds a pipe from the test process: when
//! the [`MotoServer`] is dropped, or the test process ends in any way (a shared server is never
//! dropped), the pipe closes and the watchdog stops moto.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_config::{Region, SdkConfig};

/// Environment variable naming the `moto_server` executable.
pub const MOTO_SERVER_ENV: &str = "PAYHOOK_MOTO_SERVER";

/// How long moto may take to answer its first request.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// The region the tests' clients use.
pub const REGION: &str = "us-east-1";

/// The dummy access key id (and secret) moto is called with.
pub const ACCESS_KEY_ID: &str = "testing";

/// Runs its arguments (the moto command) in the background and stops them when the parent
/// closes our stdin, on drop or exit.
const WATCHDOG: &str = r#""$@" >/dev/null 2>&1 &
moto=$!
cat >/dev/null
kill "$moto" 2>/dev/null
wait "$moto" 2>/dev/null
exit 0"#;

/// Runs `moto_server` with its DynamoDB requests serialised. moto's DynamoDB backend checks a
/// condition and writes without a lock, so concurrent conditional writes could both succeed
/// under its threaded server; DynamoDB itself applies each one atomically. Other services stay
/// concurrent (an SQS long poll must not block the sends it waits for).
const SERIALISED_DYNAMODB: &str = r#"import sys, threading
import moto.server as server
lock = threading.Lock()
class Dispatcher(server.DomainDispatcherApplication):
    def __call__(self, environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
            with lock:
                return list(super().__call__(environ, start_response))
        return super().__call__(environ, start_response)
server.DomainDispatcherApplication = Dispatcher
sys.exit(server.main(sys.argv[1:]))
"#;

/// A running moto server on `127.0.0.1`, stopped on drop.
#[derive(Debug)]
pub struct MotoServer {
    /// Its endpoint URL, e.g. `http://127.0.0.1:40123`.
    pub endpoint: String,
    child: Child,
    lifeline: Option<ChildStdin>,
}

impl MotoServer {
    /// Starts a moto server of its own, waiting until it answers. `None` when moto is not
    /// installed, after [`skip_test`](payhook_testkit::skip::skip_test) (a failure under the test
    /// command); panics when it does not start.
    pub fn start() -> Option<MotoServer> {
        find_executable_or_skip().map(|executable| start_with_retries(&executable))
    }

    /// One server for the whole test process, started on first use (tests sharing it use
    /// [`unique_name`]s). Stopped when the process exits. Each caller that finds no moto is
    /// skipped (and counted) on its own.
    pub fn shared() -> Option<&'static MotoServer> {
        static SHARED: OnceLock<MotoServer> = OnceLock::new();
        if let Some(server) = SHARED.get() {
            return Some(server);
        }
        let executable = find_executable_or_skip()?;
        Some(SHARED.get_or_init(|| start_with_retries(&executable)))
    }

    /// SDK configuration for this server: payhook's [`config_loader`](crate::config_loader)
    /// with this endpoint, region [`REGION`] and dummy static credentials (no environment
    /// variables touched).
    pub async fn sdk_config(&self) -> SdkConfig {
        let credentials = aws_sdk_sqs::config::Credentials::new(
            ACCESS_KEY_ID,
            ACCESS_KEY_ID,
            None,
            None,
            "payhook-moto",
        );
        crate::config_loader(Some(&self.endpoint))
            .region(Region::from_static(REGION))
            .credentials_provider(credentials)
            .load()
            .await
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        // Closing the pipe tells the watchdog to stop moto; kill the watchdog only if it hangs.
        drop(self.lifeline.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A name no other test in any process uses: `{prefix}-{pid}-{n}-{nanos}`, lower case, short
/// enough for a table or a queue (append `.fifo` yourself).
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{n}-{nanos}", std::process::id())
}

/// The moto executable, or `None` after skipping the calling test.
fn find_executable_or_skip() -> Option<PathBuf> {
    let executable = find_executable();
    if executable.is_none() {
        payhook_testkit::skip::skip_test(&format!(
            "moto_server not found (run scripts/bootstrap-python.sh, or set {MOTO_SERVER_ENV})"
        ));
    }
    executable
}

/// Starts moto from `executable`, trying three ports before giving up (panics).
fn start_with_retries(executable: &Path) -> MotoServer {
    let mut last_error = String::new();
    for _ in 0..3 {
        match spawn(executable) {
            Ok(server) => return server,
            Err(err) => last_error = err,
        }
    }
    panic!(
        "moto server {} did not start: {last_error}",
        executable.display()
    );
}

fn find_executable() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(MOTO_SERVER_ENV).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "{MOTO_SERVER_ENV}={} does not exist",
            path.display()
        );
        return Some(path);
    }
    // This crate's directory (compile time) and the running test's crate (run time) both sit
    // inside the workspace; the venv is at its root.
    let starts = [
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR"))),
        std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from),
    ];
    starts
        .iter()
        .flatten()
        .flat_map(|start| start.ancestors())
        .map(|dir| dir.join(".venv").join("bin").join("moto_server"))
        .find(|candidate| candidate.is_file())
}

fn spawn(executable: &Path) -> Result<MotoServer, String> {
    let port = free_port().map_err(|err| format!("no free port: {err}"))?;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(WATCHDOG)
        .arg("moto-watchdog")
        .args(moto_command(executable))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|err| format!("spawning sh: {err}"))?;
    let lifeline = child.stdin.take();
    let server = MotoServer {
        endpoint: format!("http://127.0.0.1:{port}"),
        child,
        lifeline,
    };
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    while Instant::now() < deadline {
        if answers_http(address) {
            return Ok(server);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Dropping `server` stops whatever did start.
    Err(format!(
        "no answer on port {port} within {STARTUP_TIMEOUT:?}"
    ))
}

/// The command that runs moto: `moto_server`'s own Python interpreter (from its `#!` line)
/// with [`SERIALISED_DYNAMODB`], or the executable itself when it is not a Python script.
fn moto_command(executable: &Path) -> Vec<OsString> {
    let interpreter = std::fs::read(executable).ok().and_then(|script| {
        let first_line = script.split(|&b| b == b'\n').next()?;
        let shebang = std::str::from_utf8(first_line.strip_prefix(b"#!")?).ok()?;
        let words: Vec<&str> = shebang.split_whitespace().collect();
        let is_python = words.last()?.rsplit('/').next()?.starts_with("python");
        is_python.then(|| words.into_iter().map(OsString::from).collect::<Vec<_>>())
    });
    match interpreter {
        Some(mut command) => {
            command.extend([OsString::from("-c"), OsString::from(SERIALISED_DYNAMODB)]);
            command
        }
        None => vec![executable.as_os_str().to_owned()],
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

fn answers_http(address: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(200)) else {
        return false;
    };
    let timeout = Some(Duration::from_secs(2));
    if stream.set_read_timeout(timeout).is_err() || stream.set_write_timeout(timeout).is_err() {
        return false;
    }
    if stream
        .write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0_u8; 8];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}
