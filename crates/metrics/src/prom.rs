//! `GET /metrics`: the Prometheus text exposition format (0.0.4), which
//! every scraper and `promtool check metrics` accept. Counters end in
//! `_total`, units are in the names (`_bytes`), every family has HELP and
//! TYPE, and series are labelled by `lb`, `vserver`, `backend` ids only.
//!
//! Written by hand rather than through `prometheus-client`: that crate
//! encodes OpenMetrics (TYPE lines without `_total`, `# EOF`), and the
//! values already live in our own sharded counters, so a registry would
//! only be copied into on every scrape.

use std::fmt::Write;

use crate::counters::{BackendStat, Stat};
use crate::reading::Reading;

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

struct Family<'a> {
    out: &'a mut String,
    name: String,
}

fn family<'a>(out: &'a mut String, name: &str, kind: &str, help: &str) -> Family<'a> {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    Family {
        out,
        name: name.to_string(),
    }
}

impl Family<'_> {
    fn sample(&mut self, labels: &[(&str, &str)], v: u64) {
        self.out.push_str(&self.name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"");
                escape(self.out, val);
                self.out.push('"');
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {v}");
    }
}

fn escape(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// The per-LB and per-VServer counter families: (stat, name, kind, help).
const TRAFFIC: &[(Stat, &str, &str, &str)] = &[
    (
        Stat::Connections,
        "connections_total",
        "counter",
        "Connections accepted (UDP: new flows).",
    ),
    (
        Stat::Active,
        "active_connections",
        "gauge",
        "Connections open now (UDP: live flows).",
    ),
    (
        Stat::BytesIn,
        "received_bytes_total",
        "counter",
        "Bytes received from clients (after TLS decryption).",
    ),
    (
        Stat::BytesOut,
        "sent_bytes_total",
        "counter",
        "Bytes sent to clients (before TLS encryption).",
    ),
    (
        Stat::PacketsIn,
        "received_packets_total",
        "counter",
        "TCP segments (kernel TCP_INFO) and UDP datagrams received from clients.",
    ),
    (
        Stat::PacketsOut,
        "sent_packets_total",
        "counter",
        "TCP segments (kernel TCP_INFO) and UDP datagrams sent to clients.",
    ),
    (
        Stat::Dropped,
        "dropped_connections_total",
        "counter",
        "New connections and UDP datagrams refused by the security group.",
    ),
    (
        Stat::Requests,
        "http_requests_total",
        "counter",
        "HTTP requests received.",
    ),
];

fn gauge_value(v: u64) -> u64 {
    // Gauges are wrapping sums of +1/-1: never show a transient negative.
    if (v as i64) < 0 { 0 } else { v }
}

/// The whole exposition of `r`.
pub fn render(r: &Reading) -> String {
    let mut out = String::with_capacity(4096 + 2048 * (r.vservers.len() + r.backends.len()));
    for (name, v) in &r.process {
        family(
            &mut out,
            &format!("weir_dataplane_{name}_total"),
            "counter",
            &format!("Data plane events: {}.", name.replace('_', " ")),
        )
        .sample(&[], *v);
    }
    for (stat, suffix, kind, help) in TRAFFIC {
        let mut f = family(&mut out, &format!("weir_lb_{suffix}"), kind, help);
        for lb in &r.lbs {
            let v = lb.counters[*stat as usize];
            let v = if *kind == "gauge" { gauge_value(v) } else { v };
            f.sample(&[("lb", &lb.id)], v);
        }
        let mut f = family(&mut out, &format!("weir_vserver_{suffix}"), kind, help);
        for vs in &r.vservers {
            let v = vs.counters[*stat as usize];
            let v = if *kind == "gauge" { gauge_value(v) } else { v };
            f.sample(&[("lb", &vs.lb_id), ("vserver", &vs.id)], v);
        }
    }
    let classes = [
        Stat::Http1xx,
        Stat::Http2xx,
        Stat::Http3xx,
        Stat::Http4xx,
        Stat::Http5xx,
    ];
    let help = "HTTP responses sent to clients by status class, Weir's own included.";
    let mut f = family(&mut out, "weir_lb_http_responses_total", "counter", help);
    for lb in &r.lbs {
        for (i, s) in classes.iter().enumerate() {
            let class = format!("{}xx", i + 1);
            f.sample(&[("lb", &lb.id), ("class", &class)], lb.counters[*s as usize]);
        }
    }
    let mut f = family(&mut out, "weir_vserver_http_responses_total", "counter", help);
    for vs in &r.vservers {
        for (i, s) in classes.iter().enumerate() {
            let class = format!("{}xx", i + 1);
            f.sample(
                &[("lb", &vs.lb_id), ("vserver", &vs.id), ("class", &class)],
                vs.counters[*s as usize],
            );
        }
    }
    let help = "Enabled backends isolated by health checks.";
    let mut f = family(&mut out, "weir_lb_unhealthy_backends", "gauge", help);
    for lb in &r.lbs {
        f.sample(&[("lb", &lb.id)], lb.unhealthy_backends);
    }
    let mut f = family(&mut out, "weir_vserver_unhealthy_backends", "gauge", help);
    for vs in &r.vservers {
        f.sample(&[("lb", &vs.lb_id), ("vserver", &vs.id)], vs.unhealthy_backends);
    }
    let backend: &[(Option<BackendStat>, &str, &str, &str)] = &[
        (
            Some(BackendStat::Connections),
            "weir_backend_connections_total",
            "counter",
            "Connections opened to the backend (UDP: flows).",
        ),
        (
            None,
            "weir_backend_active_connections",
            "gauge",
            "Connections (UDP: flows) open to the backend now.",
        ),
        (
            Some(BackendStat::BytesOut),
            "weir_backend_sent_bytes_total",
            "counter",
            "Bytes relayed to the backend by layer-4 VServers and upgraded (WebSocket) connections.",
        ),
        (
            Some(BackendStat::BytesIn),
            "weir_backend_received_bytes_total",
            "counter",
            "Bytes relayed from the backend by layer-4 VServers and upgraded (WebSocket) connections.",
        ),
        (
            Some(BackendStat::Failures),
            "weir_backend_failures_total",
            "counter",
            "Connects to the backend that failed or timed out.",
        ),
    ];
    for (stat, name, kind, help) in backend {
        let mut f = family(&mut out, name, kind, help);
        for b in &r.backends {
            let v = stat.map_or(b.active, |s| b.counters[s as usize]);
            f.sample(&[("lb", &b.lb_id), ("vserver", &b.vserver_id), ("backend", &b.id)], v);
        }
    }
    let mut f = family(
        &mut out,
        "weir_backend_up",
        "gauge",
        "1 when the backend gets new traffic (enabled, not isolated by health checks), else 0.",
    );
    for b in &r.backends {
        f.sample(
            &[("lb", &b.lb_id), ("vserver", &b.vserver_id), ("backend", &b.id)],
            u64::from(b.up),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::reading::{BackendReading, LbReading, VsReading};

    #[test]
    fn every_family_is_typed_and_counters_end_in_total() {
        let mut c = [0u64; crate::counters::STATS];
        c[Stat::Http4xx as usize] = 100;
        c[Stat::Active as usize] = u64::MAX; // transiently -1
        let r = Reading {
            lbs: vec![LbReading {
                id: "lb-1".into(),
                counters: c,
                unhealthy_backends: 1,
            }],
            vservers: vec![VsReading {
                id: "vs-1".into(),
                lb_id: "lb-1".into(),
                counters: c,
                unhealthy_backends: 1,
            }],
            backends: vec![BackendReading {
                id: "rs-1".into(),
                vserver_id: "vs-1".into(),
                lb_id: "lb-1".into(),
                counters: [1, 2, 3, 4],
                active: 2,
                up: true,
            }],
            process: vec![("tcp_accepted", 7)],
        };
        let text = render(&r);
        assert!(text.contains("weir_vserver_http_responses_total{lb=\"lb-1\",vserver=\"vs-1\",class=\"4xx\"} 100\n"));
        assert!(text.contains("weir_lb_active_connections{lb=\"lb-1\"} 0\n"));
        assert!(text.contains("weir_backend_failures_total{lb=\"lb-1\",vserver=\"vs-1\",backend=\"rs-1\"} 4\n"));
        assert!(text.contains("weir_dataplane_tcp_accepted_total 7\n"));
        let mut typed = std::collections::HashMap::new();
        for l in text.lines() {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(
                    typed.insert(name.to_string(), kind.to_string()).is_none(),
                    "{name} typed twice"
                );
                if kind == "counter" {
                    assert!(name.ends_with("_total"), "{name}");
                }
            } else if !l.starts_with("# HELP ") {
                let name = l.split(['{', ' ']).next().unwrap();
                assert!(typed.contains_key(name), "{name} has no TYPE");
            }
        }
    }
}
