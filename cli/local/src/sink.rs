//! A buffered line sink for the local stack's run directory: at thousands of webhooks per
//! second a write system call per log line costs more than the handlers, so lines are buffered
//! and flushed by the stack every few hundred milliseconds and at shutdown.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use payhook_telemetry::Sink;

/// Buffer size: large enough that a busy second costs a handful of writes.
const BUFFER_BYTES: usize = 256 * 1024;

/// Lines appended to a file through a buffer; whole lines only, flushed on demand.
#[derive(Debug)]
pub struct BufferedFileSink {
    file: Mutex<BufWriter<File>>,
}

impl BufferedFileSink {
    /// Opens `path` for appending, creating it if needed.
    pub fn append(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(BufferedFileSink {
            file: Mutex::new(BufWriter::with_capacity(BUFFER_BYTES, file)),
        })
    }

    /// Writes what is buffered to the file.
    pub fn flush(&self) {
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = file.flush();
    }
}

impl Sink for BufferedFileSink {
    fn write_line(&self, line: &str) {
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        // A line never straddles a flush: the buffer writes whole contents or grows.
        let _ = file.write_all(line.as_bytes());
        let _ = file.write_all(b"\n");
    }
}

impl Drop for BufferedFileSink {
    fn drop(&mut self) {
        self.flush();
    }
}
