//! A stand-in for the X-Ray daemon: a UDP socket on loopback that receives segment documents
//! exactly as the daemon would (`{"format": "json", "version": 1}` header line, then the
//! document) and appends each document as one JSON line to `xray.jsonl` in the run directory.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::AsyncWriteExt;
use tokio::net::UdpSocket;

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
    /// Binds 127.0.0.1 on a free port and writes documents to `path`.
    pub async fn start(path: &Path) -> std::io::Result<XrayListener> {
        let socket = UdpSocket::bind("127.0.0.1:0").await?;
        let addr = socket.local_addr()?;
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await?;
        let received = Arc::new(AtomicU64::new(0));
        let rejected = Arc::new(AtomicU64::new(0));
        let (rx, rj) = (Arc::clone(&received), Arc::clone(&rejected));
        let task = tokio::spawn(async move {
            // The daemon's maximum datagram is 64 KiB.
            let mut buf = vec![0u8; 65_536];
            loop {
                let Ok((n, _)) = socket.recv_from(&mut buf).await else {
                    break;
                };
                let text = String::from_utf8_lossy(&buf[..n]);
                let document = text
                    .split_once('\n')
                    .filter(|(header, _)| {
                        serde_json::from_str::<serde_json::Value>(header).ok()
                            == serde_json::from_str::<serde_json::Value>(DAEMON_HEADER).ok()
                    })
                    .and_then(|(_, doc)| serde_json::from_str::<serde_json::Value>(doc).ok());
                match document {
                    Some(doc) => {
                        rx.fetch_add(1, Ordering::Relaxed);
                        let mut line = doc.to_string();
                        line.push('\n');
                        if file.write_all(line.as_bytes()).await.is_err() {
                            break;
                        }
                        let _ = file.flush().await;
                    }
                    None => {
                        rj.fetch_add(1, Ordering::Relaxed);
                    }
                }
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

impl Drop for XrayListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}
