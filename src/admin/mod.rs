//! Admin HTTP: `GET /health` and `GET /metrics` (Prometheus text format). A deliberately small
//! HTTP/1.1 responder on tokio; the full admin API (axum) comes with the operations work.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Counters and gauges of the service.
#[derive(Debug, Default)]
pub struct Metrics {
    pub active_calls: AtomicU64,
    pub calls_total: AtomicU64,
    pub calls_rejected_total: AtomicU64,
    pub messages_saved_total: AtomicU64,
    pub messages_discarded_total: AtomicU64,
    pub mails_sent_total: AtomicU64,
    pub mail_failures_total: AtomicU64,
    pub sip_malformed_total: AtomicU64,
    pub rtp_packets_in_total: AtomicU64,
    pub rtp_packets_out_total: AtomicU64,
    pub rtp_foreign_total: AtomicU64,
    pub outbox_pending: AtomicU64,
    pub outbox_failed: AtomicU64,
    pub fax_rx_total: AtomicU64,
    pub fax_rx_ok_total: AtomicU64,
    pub fax_rx_failed_total: AtomicU64,
    pub udptl_datagrams_in_total: AtomicU64,
    pub udptl_datagrams_out_total: AtomicU64,
    /// Unix time the oldest pending mail was queued (0: none).
    pub outbox_oldest_created: AtomicI64,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus exposition text.
    pub fn render(&self) -> String {
        let rows: [(&str, &str, &str, &AtomicU64); 16] = [
            (
                "coda_active_calls",
                "gauge",
                "Calls in progress.",
                &self.active_calls,
            ),
            (
                "coda_calls_total",
                "counter",
                "Calls answered.",
                &self.calls_total,
            ),
            (
                "coda_calls_rejected_total",
                "counter",
                "INVITEs refused (4xx/5xx).",
                &self.calls_rejected_total,
            ),
            (
                "coda_messages_saved_total",
                "counter",
                "Voicemails stored.",
                &self.messages_saved_total,
            ),
            (
                "coda_messages_discarded_total",
                "counter",
                "Recordings too short to keep.",
                &self.messages_discarded_total,
            ),
            (
                "coda_mails_sent_total",
                "counter",
                "Notification mails handed to the transport.",
                &self.mails_sent_total,
            ),
            (
                "coda_mail_failures_total",
                "counter",
                "Mails the transport refused.",
                &self.mail_failures_total,
            ),
            (
                "coda_sip_malformed_total",
                "counter",
                "SIP datagrams or messages that did not parse.",
                &self.sip_malformed_total,
            ),
            (
                "coda_rtp_packets_in_total",
                "counter",
                "RTP packets received from the negotiated peer.",
                &self.rtp_packets_in_total,
            ),
            (
                "coda_rtp_packets_out_total",
                "counter",
                "RTP packets sent.",
                &self.rtp_packets_out_total,
            ),
            (
                "coda_rtp_foreign_total",
                "counter",
                "RTP packets dropped: wrong source or not RTP.",
                &self.rtp_foreign_total,
            ),
            (
                "coda_fax_rx_total",
                "counter",
                "Fax receptions started.",
                &self.fax_rx_total,
            ),
            (
                "coda_fax_rx_ok_total",
                "counter",
                "Faxes received complete and clean.",
                &self.fax_rx_ok_total,
            ),
            (
                "coda_fax_rx_failed_total",
                "counter",
                "Fax receptions that failed, were partial or could not be stored.",
                &self.fax_rx_failed_total,
            ),
            (
                "coda_udptl_datagrams_in_total",
                "counter",
                "UDPTL (T.38) datagrams received.",
                &self.udptl_datagrams_in_total,
            ),
            (
                "coda_udptl_datagrams_out_total",
                "counter",
                "UDPTL (T.38) datagrams sent.",
                &self.udptl_datagrams_out_total,
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, v) in rows {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}\n",
                v.load(Ordering::Relaxed)
            ));
        }
        let oldest = self.outbox_oldest_created.load(Ordering::Relaxed);
        let age = if oldest > 0 {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(oldest);
            (now - oldest).max(0)
        } else {
            0
        };
        for (name, kind, help, v) in [
            (
                "coda_outbox_pending",
                "gauge",
                "Mails waiting to be sent.",
                self.outbox_pending.load(Ordering::Relaxed) as i64,
            ),
            (
                "coda_outbox_failed",
                "gauge",
                "Mails given up (see `coda mail queue`).",
                self.outbox_failed.load(Ordering::Relaxed) as i64,
            ),
            (
                "coda_outbox_oldest_age_seconds",
                "gauge",
                "Age of the oldest pending mail.",
                age,
            ),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"
            ));
        }
        out
    }
}

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut n = 0;
            // Read the request head (bounded); the body, if any, is ignored.
            let read = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                while n < buf.len() {
                    match sock.read(&mut buf[n..]).await {
                        Ok(0) | Err(_) => break,
                        Ok(k) => n += k,
                    }
                    if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            })
            .await;
            if read.is_err() {
                return;
            }
            let head = String::from_utf8_lossy(&buf[..n]);
            let path = head.split_whitespace().nth(1).unwrap_or("");
            let (status, ctype, body) = match (head.split_whitespace().next(), path) {
                (Some("GET"), "/health") => ("200 OK", "text/plain", "ok\n".to_string()),
                (Some("GET"), "/metrics") => {
                    ("200 OK", "text/plain; version=0.0.4", metrics.render())
                }
                (Some("GET"), _) => ("404 Not Found", "text/plain", "not found\n".into()),
                _ => (
                    "405 Method Not Allowed",
                    "text/plain",
                    "method not allowed\n".into(),
                ),
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
        });
    }
}

/// Binds the admin listener.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_render_prometheus_text() {
        let m = Metrics::default();
        Metrics::inc(&m.calls_total);
        let t = m.render();
        assert!(t.contains("# TYPE coda_active_calls gauge\ncoda_active_calls 0\n"));
        assert!(t.contains("coda_calls_total 1\n"));
    }
}
