//! What instances print, a whole line at a time. A guest's `eprintln!`
//! reaches the host as several writes (the text, then the newline), and
//! instances run concurrently: passed straight through, two instances'
//! lines spliced into each other mid-line, and a log line could not be
//! trusted. Each instance's stdout and stderr gather bytes until a newline
//! and hand the host's stream only complete lines (whatever is left is
//! written when the instance ends), so lines stay whole however many run.

use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// A line longer than this is written in pieces rather than held.
const MAX_HELD_BYTES: usize = 64 * 1024;

#[derive(Clone, Copy)]
pub enum Target {
    Stdout,
    Stderr,
}

/// One instance's stdout or stderr. Every stream the guest opens on it
/// shares the one pending line.
pub struct LineBuffered {
    target: Output,
    pending: Arc<Mutex<Vec<u8>>>,
}

/// Where whole lines go: the host's own stream, or (`--log-format json`)
/// one log record per line inside the run's span, so each carries its
/// trace id and component.
#[derive(Clone)]
struct Output {
    target: Target,
    run: Option<tracing::Span>,
}

impl LineBuffered {
    pub fn new(target: Target, run: &tracing::Span) -> Self {
        let run = (crate::telemetry::log_format() == crate::telemetry::LogFormat::Json).then(|| run.clone());
        Self { target: Output { target, run }, pending: Arc::default() }
    }
}

impl Drop for LineBuffered {
    fn drop(&mut self) {
        let rest = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if !rest.is_empty() {
            emit(&self.target, &rest);
        }
    }
}

impl IsTerminal for LineBuffered {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LineBuffered {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(Writer { target: self.target.clone(), pending: self.pending.clone() })
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(Writer { target: self.target.clone(), pending: self.pending.clone() })
    }
}

struct Writer {
    target: Output,
    pending: Arc<Mutex<Vec<u8>>>,
}

impl Writer {
    fn push(&self, bytes: &[u8]) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.extend_from_slice(bytes);
        let whole = match pending.iter().rposition(|b| *b == b'\n') {
            Some(last_newline) => last_newline + 1,
            None if pending.len() > MAX_HELD_BYTES => pending.len(),
            None => return,
        };
        let lines: Vec<u8> = pending.drain(..whole).collect();
        drop(pending);
        emit(&self.target, &lines);
    }
}

/// One `write_all` under the stream's lock: nobody else's bytes in between.
fn emit(output: &Output, bytes: &[u8]) {
    if let Some(run) = &output.run {
        let stream = match output.target {
            Target::Stdout => "stdout",
            Target::Stderr => "stderr",
        };
        run.in_scope(|| {
            for line in String::from_utf8_lossy(bytes).lines() {
                tracing::info!(target: "shop_host::guest", stream, "{line}");
            }
        });
        return;
    }
    let _ = match output.target {
        Target::Stdout => std::io::stdout().lock().write_all(bytes),
        Target::Stderr => std::io::stderr().lock().write_all(bytes),
    };
}

impl OutputStream for Writer {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    /// Keeps a partial line: a guest flushes after every write.
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(MAX_HELD_BYTES)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Writer {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for Writer {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
