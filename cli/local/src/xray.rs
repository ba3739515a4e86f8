//! A stand-in for the X-Ray daemon: a UDP socket on loopback that receives segment documents
//! exactly as the daemon would (`{"format": "json", "version": 1}` header line, then the
//! document) and appends each document as one JSON line to `xray.jsonl` in the run directory,
//! through the buffered sink the stack flushes with its logs and metrics.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use payhook_telemetry::Sink as _;
use tokio::net::UdpSocket;

use crate::sink::BufferedFileSink;

/// The header every daemon datagram starts with.
pub const DAEMON_HEADER: &str = r#"{"format": "json", "version": 1}"#;

/// A running UDP listener.
#[derive(Debug)]
pub struct XrayListener {
    /// Where to send segments (`AWS_XRAY_DAEMON_ADDRESS`).
    pub addr: SocketAddr,
    received: Arc<AtomicU64>,
    rejected: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl XrayListener {
    /// Binds 127.0.0.1 on a free port and writes documents to `segments` (the stack flushes
    /// it with the other files of the run directory: every 250 ms and at shutdown, not once
    /// per datagram).
    pub async fn start(segments: Arc<BufferedFileSink>) -> std::io::Result<XrayListener> {
        let socket = UdpSocket::bind("127.0.0.1:0").await?;
        let addr = socket.local_addr()?;
        let received = Arc::new(AtomicU64::new(0));
        let rejected = Arc::new(AtomicU64::new(0));
        let (rx, rj) = (Arc::clone(&received), Arc::clone(&rejected));
        let task = tokio::spawn(async move {
            // The daemon's maximum datagram is 64 KiB.
            let mut buf = vec![0u8; 65_536];
            while let Ok((n, _)) = socket.recv_from(&mut buf).await {
                record(&buf[..n], &segments, &rx, &rj);
            }
        });
        Ok(XrayListener {
            addr,
            received,
            rejected,
            task,
        })
    }

    /// Segment documents received so far.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Datagrams that were not a header line plus a JSON document.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }
}

/// Appends one datagram's document as a line, or counts it rejected.
fn record(
    datagram: &[u8],
    segments: &BufferedFileSink,
    received: &AtomicU64,
    rejected: &AtomicU64,
) {
    let document = std::str::from_utf8(datagram)
        .ok()
        .and_then(|text| text.split_once('\n'))
        .filter(|(header, _)| is_daemon_header(header))
        .map(|(_, doc)| doc.trim())
        .filter(|doc| serde_json::from_str::<serde::de::IgnoredAny>(doc).is_ok());
    match document {
        Some(doc) => {
            received.fetch_add(1, Ordering::Relaxed);
            // Written as received when it is one line already (it always is from the SDKs).
            let line = if doc.contains('\n') {
                std::borrow::Cow::Owned(
                    serde_json::from_str::<serde_json::Value>(doc)
                        .map(|v| v.to_string())
                        .unwrap_or_default(),
                )
            } else {
                std::borrow::Cow::Borrowed(doc)
            };
            segments.write_line(&line);
        }
        None => {
            rejected.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Whether `line` is the daemon protocol's header (`{"format": "json", "version": 1}`, any
/// spacing).
fn is_daemon_header(line: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Header {
        format: String,
        version: u32,
    }
    // The SDKs send it byte for byte as written; other spellings are parsed.
    line == DAEMON_HEADER
        || serde_json::from_str::<Header>(line).is_ok_and(|h| h.format == "json" && h.version == 1)
}

impl Drop for XrayListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_after_a_daemon_header_in_any_spelling_are_kept_and_others_rejected() {
        let dir = std::env::temp_dir().join(format!("payhook-xray-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("xray.jsonl");
        let _ = std::fs::remove_file(&path);
        let sink = BufferedFileSink::append(&path).expect("sink");
        let (received, rejected) = (AtomicU64::new(0), AtomicU64::new(0));
        let doc = r#"{"name":"payhook-webhook-validator","id":"53995c3f42cd8ad8"}"#;
        for header in [
            DAEMON_HEADER,
            r#"{"format":"json","version":1}"#,
            r#"{ "version": 1, "format": "json" }"#,
        ] {
            record(
                format!("{header}\n{doc}").as_bytes(),
                &sink,
                &received,
                &rejected,
            );
        }
        for datagram in [
            format!("{{\"format\": \"json\", \"version\": 2}}\n{doc}"),
            format!("{{\"format\": \"text\", \"version\": 1}}\n{doc}"),
            doc.to_owned(),
            format!("{DAEMON_HEADER}\n{{\"name\": "),
        ] {
            record(datagram.as_bytes(), &sink, &received, &rejected);
        }
        sink.flush();
        assert_eq!(received.load(Ordering::Relaxed), 3);
        assert_eq!(rejected.load(Ordering::Relaxed), 4);
        let written = std::fs::read_to_string(&path).expect("read");
        assert_eq!(written.lines().collect::<Vec<_>>(), vec![doc; 3]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
