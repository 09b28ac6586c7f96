//! A minimal HTTP/1.1 responder: `GET /metrics` (and `HEAD`) answer the registry as
//! OpenMetrics text when the client accepts it (Prometheus does), else in the classic
//! text format 0.0.4; anything else 404/405/400; one request per connection
//! (`Connection: close`). A scrape endpoint needs no more, and this keeps an HTTP
//! framework (hyper/axum and their trees) out of the daemon. Bounded: request heads of
//! at most [`MAX_REQUEST`] bytes, read within [`READ_TIMEOUT`], written within
//! [`WRITE_TIMEOUT`], at most [`MAX_CONNECTIONS`] at once.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// The OpenMetrics content type.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The classic Prometheus text format's content type.
pub const CLASSIC_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Largest request head read.
const MAX_REQUEST: usize = 8 * 1024;
/// Time allowed for the request head.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed for writing the response.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 16;

/// Serve `registry` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    registry: Arc<Registry>,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => return,
            p = Arc::clone(&slots).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            _ = &mut shutdown => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, _)) => {
                let registry = Arc::clone(&registry);
                tokio::spawn(async move {
                    if let Err(e) = answer(stream, &registry).await {
                        tracing::debug!("metrics request: {e}");
                    }
                    drop(permit);
                });
            }
            Err(e) => {
                tracing::warn!("metrics listener: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn answer(mut stream: TcpStream, registry: &Registry) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let complete = tokio::time::timeout(READ_TIMEOUT, async {
        let mut buf = [0u8; 1024];
        loop {
            if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
                return Ok::<bool, std::io::Error>(true);
            }
            if head.len() >= MAX_REQUEST {
                return Ok(false);
            }
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Ok(false);
            }
            head.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    let response = match complete {
        Ok(Ok(true)) => respond(&head, registry),
        Ok(Ok(false)) if head.len() >= MAX_REQUEST => {
            plain("431 Request Header Fields Too Large", "request too large\n")
        }
        Ok(Ok(false)) | Err(_) => return Ok(()),
        Ok(Err(e)) => return Err(e),
    };
    tokio::time::timeout(WRITE_TIMEOUT, async {
        stream.write_all(&response).await?;
        stream.shutdown().await
    })
    .await
    .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

/// The response to a complete request head.
fn respond(head: &[u8], registry: &Registry) -> Vec<u8> {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.trim_end().split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return plain("400 Bad Request", "bad request\n");
    };
    if !version.starts_with("HTTP/1.") {
        return plain("400 Bad Request", "bad request\n");
    }
    let path = target.split('?').next().unwrap_or_default();
    if path != "/metrics" {
        return plain("404 Not Found", "not found: try /metrics\n");
    }
    match method {
        "GET" | "HEAD" => {
            let open_metrics = String::from_utf8_lossy(head)
                .to_ascii_lowercase()
                .lines()
                .any(|l| l.starts_with("accept:") && l.contains("application/openmetrics-text"));
            let (body, content_type) = if open_metrics {
                (crate::render(registry), CONTENT_TYPE)
            } else {
                (crate::render_classic(registry), CLASSIC_CONTENT_TYPE)
            };
            let mut out = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
                 Cache-Control: no-store\r\nVary: Accept\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes();
            if method == "GET" {
                out.extend_from_slice(body.as_bytes());
            }
            out
        }
        _ => {
            let mut r = plain("405 Method Not Allowed", "only GET\n");
            // Insert `Allow:` after the status line.
            let at = r.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
            r.splice(at..at, b"Allow: GET, HEAD\r\n".iter().copied());
            r
        }
    }
}

fn plain(status: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
