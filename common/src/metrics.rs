//! `/metrics` in Prometheus's text format, served by every process on `--metrics-listen`.
//! A deliberately small HTTP/1.1 responder (GET only, bounded request, timeouts): the
//! values are read when scraped, from state the process keeps anyway, so nothing is
//! counted twice and there is no registry to keep in step.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Renders the current metrics.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

const MAX_REQUEST: usize = 8 * 1024;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A metrics page under construction: `# HELP`/`# TYPE` once per name, then samples.
#[derive(Default)]
pub struct Page {
    out: String,
    declared: std::collections::HashSet<&'static str>,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Page {
    fn sample(&mut self, kind: &str, name: &'static str, help: &str, labels: &[(&str, &str)], value: f64) {
        if self.declared.insert(name) {
            let _ = writeln!(self.out, "# HELP {name} {help}");
            let _ = writeln!(self.out, "# TYPE {name} {kind}");
        }
        let _ = write!(self.out, "{name}");
        if !labels.is_empty() {
            let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
            let _ = write!(self.out, "{{{}}}", l.join(","));
        }
        let _ = writeln!(self.out, " {value}");
    }

    pub fn gauge(&mut self, name: &'static str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.sample("gauge", name, help, labels, value);
    }

    pub fn counter(&mut self, name: &'static str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.sample("counter", name, help, labels, value);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// Serves `GET /metrics` until `cancel`.
pub async fn serve(listener: TcpListener, render: Render, cancel: CancellationToken) {
    loop {
        let (mut socket, _) = tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let render = render.clone();
        tokio::spawn(async move {
            let mut buf = Vec::with_capacity(1024);
            let read = tokio::time::timeout(REQUEST_TIMEOUT, async {
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < MAX_REQUEST {
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return false,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                true
            })
            .await;
            if !matches!(read, Ok(true)) {
                return;
            }
            let line = buf.split(|&b| b == b'\r').next().unwrap_or_default();
            let ok =
                line.starts_with(b"GET /metrics ") || line == b"GET /metrics" || line.starts_with(b"GET /metrics?");
            let (status, body) = if ok { ("200 OK", render()) } else { ("404 Not Found", "not found\n".to_string()) };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = tokio::time::timeout(REQUEST_TIMEOUT, async {
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(body.as_bytes()).await;
                let _ = socket.shutdown().await;
            })
            .await;
        });
    }
}
