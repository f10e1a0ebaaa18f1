//! `--metrics-listen ADDR:PORT`: a Prometheus text-format endpoint at
//! `/metrics` with
//!
//! - per VRRP instance: its state, effective priority, master
//!   transitions, adverts sent and received, priority-0 adverts, and
//!   drops by reason (from the drivers' snapshots);
//! - per virtual server: quorum up, and per real server: up or down (from
//!   the checkers' view, published by the main loop) and how long its
//!   checks take (a histogram of every probe's duration, the last one, and
//!   the failed probes);
//! - per IPVS service and destination in the kernel's table: connections,
//!   packets and bytes, and active/inactive connections (read from the
//!   kernel at each scrape, through a handle of its own).

use super::dump::drop_kind_name;
use super::lvs::{ServiceHealth, service_name};
use super::monitor::VrrpMonitor;
use anyhow::{Context, Result};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use lvskit_ipvs::{AsyncHandle, Stats};
use lvskit_vrrp::linux::driver::InstanceSnapshot;
use lvskit_vrrp::{DropKind, State};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, watch};

/// What a scrape reads.
#[derive(Debug, Clone)]
pub struct Sources {
    /// The VRRP instances.
    pub vrrp: VrrpMonitor,
    /// The virtual servers' health, as the main loop last published it.
    pub health: watch::Receiver<Vec<ServiceHealth>>,
    /// The real servers' probe durations, as the checkers record them.
    pub check_durations: SharedCheckDurations,
}

/// Upper bounds (seconds) of the probe-duration histogram's buckets: from
/// a loopback connect to a `connect_timeout` of several seconds.
pub const CHECK_DURATION_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How long one real server's probes took, all its checkers together.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckDurations {
    /// Probes per bucket of [`CHECK_DURATION_BUCKETS`] (not cumulative).
    pub buckets: [u64; CHECK_DURATION_BUCKETS.len()],
    /// Probes in all (those above the last bound included).
    pub count: u64,
    /// Their total duration.
    pub sum: Duration,
    /// The latest probe's duration.
    pub last: Duration,
    /// Probes that failed.
    pub failures: u64,
}

impl CheckDurations {
    /// Records one probe.
    pub fn record(&mut self, duration: Duration, success: bool) {
        let seconds = duration.as_secs_f64();
        if let Some(bucket) = CHECK_DURATION_BUCKETS.iter().position(|le| seconds <= *le) {
            self.buckets[bucket] += 1;
        }
        self.count += 1;
        self.sum += duration;
        self.last = duration;
        self.failures += u64::from(!success);
    }
}

/// Probe durations by (virtual server, real server), in keepalived's
/// `[ADDR]:proto:PORT` names.
pub type CheckDurationTable = BTreeMap<(String, String), CheckDurations>;

/// The table, shared by the checkers (writing) and the scrapes (reading).
pub type SharedCheckDurations = Arc<std::sync::Mutex<CheckDurationTable>>;

/// A Prometheus label value, escaped (`\`, `"` and newlines).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Writes `# HELP` and `# TYPE` for a metric.
fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A series per `T`: name, type, help, and how to read its value.
type Series<T, V> = (&'static str, &'static str, &'static str, fn(&T) -> V);

/// The VRRP and checker part of a scrape.
pub fn render_state(
    instances: &[InstanceSnapshot],
    health: &[ServiceHealth],
    durations: &CheckDurationTable,
) -> String {
    let mut out = String::new();
    header(
        &mut out,
        "lvskit_vrrp_state",
        "gauge",
        "1 for the state the VRRP instance is in.",
    );
    for instance in instances {
        for state in [
            State::Initialize,
            State::Backup,
            State::Master,
            State::Fault,
        ] {
            let _ = writeln!(
                out,
                "lvskit_vrrp_state{{instance=\"{}\",state=\"{}\"}} {}",
                label(&instance.name),
                state.keepalived_name(),
                u8::from(instance.state == state)
            );
        }
    }
    let counters: [Series<InstanceSnapshot, u64>; 6] = [
        (
            "lvskit_vrrp_effective_priority",
            "gauge",
            "Priority after tracking adjustments.",
            |i| u64::from(i.effective_priority),
        ),
        (
            "lvskit_vrrp_master_transitions_total",
            "counter",
            "Transitions to MASTER (RFC 6527 vrrpv3StatisticsMasterTransitions).",
            |i| i.statistics.master_transitions,
        ),
        (
            "lvskit_vrrp_adverts_sent_total",
            "counter",
            "Advertisements sent.",
            |i| i.statistics.adverts_sent,
        ),
        (
            "lvskit_vrrp_adverts_received_total",
            "counter",
            "Valid advertisements received.",
            |i| i.statistics.adverts_received,
        ),
        (
            "lvskit_vrrp_priority_zero_sent_total",
            "counter",
            "Priority-0 advertisements sent.",
            |i| i.statistics.priority_zero_sent,
        ),
        (
            "lvskit_vrrp_priority_zero_received_total",
            "counter",
            "Priority-0 advertisements received.",
            |i| i.statistics.priority_zero_received,
        ),
    ];
    for (name, kind, help, value) in counters {
        header(&mut out, name, kind, help);
        for instance in instances {
            let _ = writeln!(
                out,
                "{name}{{instance=\"{}\"}} {}",
                label(&instance.name),
                value(instance)
            );
        }
    }
    header(
        &mut out,
        "lvskit_vrrp_drops_total",
        "counter",
        "Received packets dropped, by reason (RFC 9568 section 7.1 checks).",
    );
    for instance in instances {
        for kind in DropKind::ALL {
            let _ = writeln!(
                out,
                "lvskit_vrrp_drops_total{{instance=\"{}\",reason=\"{}\"}} {}",
                label(&instance.name),
                drop_kind_name(kind),
                instance.statistics.dropped(kind)
            );
        }
    }
    header(
        &mut out,
        "lvskit_virtual_server_quorum_up",
        "gauge",
        "1 when the virtual server's quorum is met.",
    );
    for service in health {
        let _ = writeln!(
            out,
            "lvskit_virtual_server_quorum_up{{virtual_server=\"{}\"}} {}",
            label(&service.name),
            u8::from(service.quorum_up)
        );
    }
    header(
        &mut out,
        "lvskit_real_server_up",
        "gauge",
        "1 when the real server's checkers say it is up.",
    );
    for service in health {
        for (real_server, up) in &service.real_servers {
            let _ = writeln!(
                out,
                "lvskit_real_server_up{{virtual_server=\"{}\",real_server=\"{}\"}} {}",
                label(&service.name),
                label(real_server),
                u8::from(*up)
            );
        }
    }
    render_check_durations(&mut out, durations);
    out
}

/// The probe-duration histogram, last duration and failures of each real
/// server.
fn render_check_durations(out: &mut String, durations: &CheckDurationTable) {
    let labels = |(service, real_server): &(String, String)| {
        format!(
            "virtual_server=\"{}\",real_server=\"{}\"",
            label(service),
            label(real_server)
        )
    };
    let name = "lvskit_real_server_check_duration_seconds";
    header(
        out,
        name,
        "histogram",
        "How long the real server's probes took, from start to outcome.",
    );
    for (key, entry) in durations {
        let labels = labels(key);
        let mut cumulative = 0;
        for (le, count) in CHECK_DURATION_BUCKETS.iter().zip(entry.buckets) {
            cumulative += count;
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", entry.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", entry.sum.as_secs_f64());
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", entry.count);
    }
    let per_server: [Series<CheckDurations, f64>; 2] = [
        (
            "lvskit_real_server_check_last_duration_seconds",
            "gauge",
            "How long the real server's latest probe took.",
            |d| d.last.as_secs_f64(),
        ),
        (
            "lvskit_real_server_check_failures_total",
            "counter",
            "The real server's probes that failed.",
            |d| d.failures as f64,
        ),
    ];
    for (name, kind, help, value) in per_server {
        header(out, name, kind, help);
        for (key, entry) in durations {
            let _ = writeln!(out, "{name}{{{}}} {}", labels(key), value(entry));
        }
    }
}

/// One service or destination's counters, labelled.
fn write_stats(out: &mut String, prefix: &str, labels: &str, stats: &Stats) {
    for (name, value) in [
        ("connections_total", stats.connections),
        ("in_packets_total", stats.in_packets),
        ("out_packets_total", stats.out_packets),
        ("in_bytes_total", stats.in_bytes),
        ("out_bytes_total", stats.out_bytes),
    ] {
        let _ = writeln!(out, "{prefix}_{name}{{{labels}}} {value}");
    }
}

/// The IPVS part of a scrape, from the kernel.
async fn render_ipvs(handle: &mut AsyncHandle) -> Result<String> {
    let mut out = String::new();
    header(
        &mut out,
        "lvskit_ipvs_service_connections_total",
        "counter",
        "IPVS service counters (connections, packets, bytes: *_total).",
    );
    let services = handle.services().await.context("IPVS services")?;
    let mut destinations = Vec::new();
    for status in &services {
        let name = label(&service_name(&status.service.key));
        write_stats(
            &mut out,
            "lvskit_ipvs_service",
            &format!("service=\"{name}\""),
            &status.stats,
        );
        for destination in handle
            .destinations(&status.service.key)
            .await
            .context("IPVS destinations")?
        {
            destinations.push((name.clone(), destination));
        }
    }
    header(
        &mut out,
        "lvskit_ipvs_destination_connections_total",
        "counter",
        "IPVS destination counters (connections, packets, bytes: *_total), and active/inactive connections.",
    );
    for (service, status) in &destinations {
        let address =
            std::net::SocketAddr::new(status.destination.address, status.destination.port);
        let labels = format!("service=\"{service}\",destination=\"{address}\"");
        write_stats(&mut out, "lvskit_ipvs_destination", &labels, &status.stats);
        let _ = writeln!(
            out,
            "lvskit_ipvs_destination_active_connections{{{labels}}} {}",
            status.active_connections
        );
        let _ = writeln!(
            out,
            "lvskit_ipvs_destination_inactive_connections{{{labels}}} {}",
            status.inactive_connections
        );
    }
    Ok(out)
}

/// A whole scrape. The IPVS part is left out when the kernel has no IPVS
/// (the handle cannot be opened): a VRRP-only director still has metrics.
async fn scrape(sources: &Sources, ipvs: &Mutex<Option<AsyncHandle>>) -> String {
    let health = sources.health.borrow().clone();
    let durations = sources
        .check_durations
        .lock()
        .map(|table| table.clone())
        .unwrap_or_default();
    let mut out = render_state(&sources.vrrp.instances(), &health, &durations);
    let mut ipvs = ipvs.lock().await;
    if ipvs.is_none() {
        *ipvs = AsyncHandle::open().await.ok();
    }
    if let Some(handle) = ipvs.as_mut() {
        match render_ipvs(handle).await {
            Ok(text) => out.push_str(&text),
            Err(e) => {
                tracing::warn!("metrics: {e:#}");
                *ipvs = None;
            }
        }
    }
    out
}

/// Serves `/metrics` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, sources: Sources) -> Result<()> {
    let sources = Arc::new(sources);
    let ipvs = Arc::new(Mutex::new(None));
    loop {
        let (stream, peer) = listener.accept().await.context("accept")?;
        let sources = sources.clone();
        let ipvs = ipvs.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let sources = sources.clone();
                let ipvs = ipvs.clone();
                async move {
                    let (status, body) = if request.uri().path() == "/metrics" {
                        (StatusCode::OK, scrape(&sources, &ipvs).await)
                    } else {
                        (StatusCode::NOT_FOUND, "not found\n".to_owned())
                    };
                    let mut response = Response::new(Full::new(Bytes::from(body)));
                    *response.status_mut() = status;
                    response.headers_mut().insert(
                        hyper::header::CONTENT_TYPE,
                        hyper::header::HeaderValue::from_static(
                            "text/plain; version=0.0.4; charset=utf-8",
                        ),
                    );
                    Ok::<_, Infallible>(response)
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                tracing::debug!("metrics client {peer}: {e}");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lvskit_vrrp::Statistics;

    #[test]
    fn the_state_part_has_one_series_per_instance_and_server() {
        let mut statistics = Statistics::default();
        statistics.adverts_sent = 42;
        let instance = InstanceSnapshot {
            name: "VI_1".into(),
            vrid: 51,
            state: State::Backup,
            effective_priority: 50,
            master_address: None,
            statistics,
        };
        let health = ServiceHealth {
            name: "[10.0.0.100]:tcp:80".into(),
            quorum_up: true,
            real_servers: vec![
                ("[10.0.0.11]:tcp:80".into(), true),
                ("[10.0.0.12]:tcp:80".into(), false),
            ],
        };
        let mut durations = CheckDurationTable::new();
        let entry = durations
            .entry(("[10.0.0.100]:tcp:80".into(), "[10.0.0.11]:tcp:80".into()))
            .or_default();
        entry.record(Duration::from_millis(3), true);
        entry.record(Duration::from_millis(40), true);
        entry.record(Duration::from_secs(12), false);
        let text = render_state(&[instance], &[health], &durations);
        for line in [
            "lvskit_vrrp_state{instance=\"VI_1\",state=\"BACKUP\"} 1",
            "lvskit_vrrp_state{instance=\"VI_1\",state=\"MASTER\"} 0",
            "lvskit_vrrp_adverts_sent_total{instance=\"VI_1\"} 42",
            "lvskit_vrrp_effective_priority{instance=\"VI_1\"} 50",
            "lvskit_vrrp_drops_total{instance=\"VI_1\",reason=\"auth_failure\"} 0",
            "lvskit_virtual_server_quorum_up{virtual_server=\"[10.0.0.100]:tcp:80\"} 1",
            "lvskit_real_server_up{virtual_server=\"[10.0.0.100]:tcp:80\",real_server=\"[10.0.0.12]:tcp:80\"} 0",
            "# TYPE lvskit_real_server_check_duration_seconds histogram",
            "lvskit_real_server_check_duration_seconds_bucket{virtual_server=\"[10.0.0.100]:tcp:80\",real_server=\"[10.0.0.11]:tcp:80\",le=\"0.001\"} 0",
            "lvskit_real_server_check_duration_seconds_bucket{virtual_server=\"[10.0.0.100]:tcp:80\",real_server=\"[10.0.0.11]:tcp:80\",le=\"0.005\"} 1",
            "lvskit_real_server_check_duration_seconds_bucket{virtual_server=\"[10.0.0.100]:tcp:80\",real_server=\"[10.0.0.11]:tcp:80\",le=\"0.05\"} 2",
            "lvskit_real_server_check_duration_seconds_bucket{virtual_server=\"[10.0.0.100]:tcp:80\",real_server=\"[10.0.0.11]:tcp:80\",le=\"10\"} 2",
            "lvskit_real_server_check_duration_seconds_bucket{virtual_server=\"[10.0.0.100]:tcp:80\",real_server=\"[10.0.0.11]:tcp:80\",le=\"+Inf\"} 3",
            "lvskit_real_server_check_duration_seconds_sum{virtual_server=\"[10.0.0.100]:tcp:80\",real_server=\"[10.0.0.11]:tcp:80\"} 12.043",
            "lvskit_real_server_check_duration_seconds_count{virtual_server=\"[10.0.0.100]:tcp:80\",real_server=\"[10.0.0.11]:tcp:80\"} 3",
            "lvskit_real_server_check_last_duration_seconds{virtual_server=\"[10.0.0.100]:tcp:80\",real_server=\"[10.0.0.11]:tcp:80\"} 12",
            "lvskit_real_server_check_failures_total{virtual_server=\"[10.0.0.100]:tcp:80\",real_server=\"[10.0.0.11]:tcp:80\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
