//! Where telemetry lines go. In Lambda, logs and EMF documents go to stdout (CloudWatch Logs
//! picks them up); `payhook serve` writes them to files; tests keep them in memory. Segment
//! documents go to the X-Ray daemon over UDP in Lambda, or to one of these sinks locally.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// A destination for complete lines of JSON (logs, EMF documents, segment documents).
///
/// Implementations must write each line whole (no interleaving with other threads) and must not
/// panic; write errors are swallowed because telemetry must never fail the handler.
pub trait Sink: Send + Sync + fmt::Debug + 'static {
    /// Writes one line. `line` has no trailing newline; the sink adds it.
    fn write_line(&self, line: &str);

    /// Writes several lines, each followed by a newline (`"a\nb\n"`), as one write where the
    /// sink can (one invocation's EMF documents). By default, line by line.
    fn write_lines(&self, lines: &str) {
        for line in lines.split_terminator('\n') {
            self.write_line(line);
        }
    }
}

impl<S: Sink + ?Sized> Sink for Arc<S> {
    fn write_line(&self, line: &str) {
        (**self).write_line(line);
    }

    fn write_lines(&self, lines: &str) {
        (**self).write_lines(lines);
    }
}

/// Standard output, one line per write: what Lambda captures into CloudWatch Logs.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdoutSink;

impl Sink for StdoutSink {
    fn write_line(&self, line: &str) {
        let mut out = io::stdout().lock();
        // Stdout is line-buffered: the newline flushes the line in one write.
        let _ = out.write_all(line.as_bytes());
        let _ = out.write_all(b"\n");
    }

    fn write_lines(&self, lines: &str) {
        // Ending in a newline, the whole goes out in one write.
        let _ = io::stdout().lock().write_all(lines.as_bytes());
    }
}

/// A file that lines are appended to (the local stack's `logs.jsonl`, `metrics.jsonl`, …).
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    file: Mutex<File>,
}

impl FileSink {
    /// Creates (or truncates) the file at `path`.
    pub fn create(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = File::create(&path)?;
        Ok(Self {
            path,
            file: Mutex::new(file),
        })
    }

    /// Opens the file at `path` for appending, creating it if needed.
    pub fn append(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(Self {
            path,
            file: Mutex::new(file),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Sink for FileSink {
    fn write_line(&self, line: &str) {
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        // One write per line, so a reader never sees half a line from this process.
        let _ = file.write_all(&buf);
    }

    fn write_lines(&self, lines: &str) {
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = file.write_all(lines.as_bytes());
    }
}

/// Lines kept in memory; clones share the same buffer. For tests and in-process inspection.
#[derive(Debug, Default, Clone)]
pub struct MemorySink {
    lines: Arc<Mutex<Vec<String>>>,
}

impl MemorySink {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of every line written so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Removes and returns every line written so far.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.lines.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Every line parsed as JSON.
    pub fn json(&self) -> Result<Vec<serde_json::Value>, serde_json::Error> {
        self.lines()
            .iter()
            .map(|l| serde_json::from_str(l))
            .collect()
    }

    /// How many lines were written.
    pub fn len(&self) -> usize {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Sink for MemorySink {
    fn write_line(&self, line: &str) {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line.to_owned());
    }
}

/// Drops every line (telemetry switched off for one signal).
#[derive(Debug, Default, Clone, Copy)]
pub struct DiscardSink;

impl Sink for DiscardSink {
    fn write_line(&self, _line: &str) {}

    fn write_lines(&self, _lines: &str) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_lines_are_written_line_by_line_or_at_once() {
        let memory = MemorySink::new();
        memory.write_lines("{\"a\":1}\n{\"b\":\"x\\ny\"}\n");
        assert_eq!(memory.lines(), vec!["{\"a\":1}", "{\"b\":\"x\\ny\"}"]);

        let path = std::env::temp_dir().join(format!("payhook-sink-{}.jsonl", std::process::id()));
        let file = FileSink::create(&path).expect("create");
        file.write_line("{\"a\":1}");
        file.write_lines("{\"b\":2}\n{\"c\":3}\n");
        let text = std::fs::read_to_string(&path).expect("read");
        let _ = std::fs::remove_file(&path);
        assert_eq!(text, "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n");
    }
}
