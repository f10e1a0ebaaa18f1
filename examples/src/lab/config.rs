//! The article's keepalived.conf, made whole: addresses filled in, braces
//! closed, `BACKUP` instead of `SLAVE`, plus `lvs_sync_daemon` so that
//! connections survive a failover.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::time::Duration;

/// The addresses and timers of one lab run.
#[derive(Debug, Clone)]
pub struct Topology {
    /// The floating address.
    pub vip: Ipv4Addr,
    /// lb1 and lb2 (`eth0`).
    pub directors: [Ipv4Addr; 2],
    /// app1, app2, ... (`eth0`).
    pub apps: Vec<Ipv4Addr>,
    /// The client's addresses; the first is its primary one.
    pub clients: Vec<Ipv4Addr>,
    /// VRRP advertisement interval (below 1 s needs VRRPv3).
    pub advert_int: Duration,
    /// Health-check `delay_loop`.
    pub delay_loop: Duration,
    /// TCP_CHECK `connect_timeout`.
    pub connect_timeout: Duration,
    /// Checker `retry` (keepalived's default for TCP_CHECK is 1).
    pub retry: u32,
    /// Checker `delay_before_retry` (keepalived's default is 1 s).
    pub delay_before_retry: Duration,
    /// The article's `persistence_timeout`.
    pub persistence_timeout: Duration,
}

impl Topology {
    /// The lab's addresses on `10.0.0.0/24` with `n_apps` apps and
    /// `n_clients` client addresses.
    pub fn new(n_apps: usize, n_clients: usize) -> Topology {
        let host = |n: usize| Ipv4Addr::new(10, 0, 0, u8::try_from(n).unwrap_or(u8::MAX));
        Topology {
            vip: Ipv4Addr::new(10, 0, 0, 100),
            directors: [host(2), host(3)],
            apps: (0..n_apps).map(|i| host(11 + i)).collect(),
            clients: (0..n_clients).map(|i| host(51 + i)).collect(),
            advert_int: Duration::from_secs(1),
            delay_loop: Duration::from_secs(6),
            connect_timeout: Duration::from_secs(3),
            retry: 1,
            delay_before_retry: Duration::from_secs(1),
            persistence_timeout: Duration::from_secs(50),
        }
    }

    /// VRRP version: 2 (the article) unless the interval needs 3.
    pub fn vrrp_version(&self) -> u8 {
        if self.advert_int.subsec_nanos() == 0 {
            2
        } else {
            3
        }
    }

    /// Priority of lb1 (MASTER) and lb2 (BACKUP), as in the article.
    pub fn priority(director: usize) -> u8 {
        if director == 0 { 100 } else { 50 }
    }

    /// RFC 3768 §6.1 / RFC 5798 §6.1: Skew_Time of a backup with `priority`
    /// (v2: (256 − priority)/256 s; v3: scaled by the advert interval).
    pub fn skew(&self, priority: u8) -> Duration {
        let fraction = f64::from(256 - u16::from(priority)) / 256.0;
        if self.vrrp_version() == 2 {
            Duration::from_secs_f64(fraction)
        } else {
            self.advert_int.mul_f64(fraction)
        }
    }

    /// Master_Down_Interval of lb2: 3 × interval + Skew_Time, the expected
    /// gap between lb1's last advert and lb2's first.
    pub fn master_down_interval(&self) -> Duration {
        self.advert_int * 3 + self.skew(Topology::priority(1))
    }

    /// keepalived's bound for taking a dead real server out:
    /// `delay_loop + connect_timeout + retry × delay_before_retry`.
    pub fn removal_bound(&self) -> Duration {
        self.delay_loop + self.connect_timeout + self.delay_before_retry * self.retry
    }

    /// The keepalived.conf of director `index` (0 = lb1, 1 = lb2), with
    /// per-app weights (the article uses 10).
    pub fn keepalived_conf(&self, index: usize, weights: &[u32]) -> String {
        let name = format!("lb{}", index + 1);
        let state = if index == 0 { "MASTER" } else { "BACKUP" };
        let mut s = String::new();
        let _ = writeln!(
            s,
            "! {name}: the article's LVS-DR configuration, made whole"
        );
        let _ = writeln!(s, "global_defs {{");
        let _ = writeln!(s, "    router_id {name}");
        let _ = writeln!(s, "    lvs_sync_daemon eth0 VI_1");
        let _ = writeln!(s, "}}\n");
        let _ = writeln!(s, "vrrp_instance VI_1 {{");
        let _ = writeln!(s, "    state {state}");
        let _ = writeln!(s, "    interface eth0");
        let _ = writeln!(s, "    virtual_router_id 51");
        let _ = writeln!(s, "    priority {}", Topology::priority(index));
        let _ = writeln!(s, "    version {}", self.vrrp_version());
        let _ = writeln!(s, "    advert_int {}", seconds(self.advert_int));
        if self.vrrp_version() == 2 {
            // VRRPv3 has no authentication (RFC 5798 §9): only v2 keeps it.
            let _ = writeln!(s, "    authentication {{");
            let _ = writeln!(s, "        auth_type PASS");
            let _ = writeln!(s, "        auth_pass pass");
            let _ = writeln!(s, "    }}");
        }
        let _ = writeln!(s, "    virtual_ipaddress {{");
        let _ = writeln!(s, "        {}/24", self.vip);
        let _ = writeln!(s, "    }}");
        let _ = writeln!(s, "}}\n");
        let _ = writeln!(s, "virtual_server {} 80 {{", self.vip);
        let _ = writeln!(s, "    delay_loop {}", seconds(self.delay_loop));
        let _ = writeln!(s, "    lb_algo rr");
        let _ = writeln!(s, "    lb_kind DR");
        let _ = writeln!(
            s,
            "    persistence_timeout {}",
            self.persistence_timeout.as_secs()
        );
        let _ = writeln!(s, "    protocol TCP\n");
        for (i, app) in self.apps.iter().enumerate() {
            let weight = weights.get(i).copied().unwrap_or(10);
            let _ = writeln!(s, "    real_server {app} 80 {{");
            let _ = writeln!(s, "        weight {weight}");
            let _ = writeln!(s, "        TCP_CHECK {{");
            let _ = writeln!(
                s,
                "            connect_timeout {}",
                seconds(self.connect_timeout)
            );
            let _ = writeln!(s, "            connect_port 80");
            let _ = writeln!(s, "            retry {}", self.retry);
            let _ = writeln!(
                s,
                "            delay_before_retry {}",
                seconds(self.delay_before_retry)
            );
            let _ = writeln!(s, "        }}");
            let _ = writeln!(s, "    }}");
        }
        let _ = writeln!(s, "}}");
        s
    }
}

/// Seconds as keepalived reads them (`1`, `0.1`).
fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if d.subsec_nanos() == 0 {
        format!("{}", d.as_secs())
    } else {
        format!("{s}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lvskit_kconf::model::{ForwardingMethod, Scheduler};

    #[test]
    fn the_article_config_made_whole_parses_cleanly_with_kconf() {
        let topology = Topology::new(2, 4);
        for index in 0..2 {
            let text = topology.keepalived_conf(index, &[10, 10]);
            let parsed = lvskit_kconf::parse_str(&text, &lvskit_kconf::Options::offline());
            assert_eq!(parsed.exit_code(), 0, "{text}\n{:?}", parsed.diagnostics);
            let vi = &parsed.config.vrrp_instances[0];
            assert_eq!(vi.priority, Topology::priority(index));
            let vs = &parsed.config.virtual_servers[0];
            assert_eq!(vs.lb_algo, Scheduler::Rr);
            assert_eq!(vs.lb_kind, ForwardingMethod::Dr);
            assert_eq!(vs.real_servers.len(), 2);
            assert_eq!(vs.real_servers[1].address.to_string(), "10.0.0.12");
            assert!(text.contains(if index == 0 { "MASTER" } else { "BACKUP" }));
        }
    }

    #[test]
    fn fast_adverts_use_vrrp3_without_authentication() {
        let mut topology = Topology::new(2, 4);
        topology.advert_int = Duration::from_millis(100);
        let text = topology.keepalived_conf(1, &[10, 10]);
        assert!(text.contains("advert_int 0.1\n") && text.contains("version 3"));
        assert!(!text.contains("auth_type"));
        let parsed = lvskit_kconf::parse_str(&text, &lvskit_kconf::Options::offline());
        assert_eq!(parsed.exit_code(), 0, "{:?}", parsed.diagnostics);
    }

    #[test]
    fn timer_formulas_follow_the_rfcs_and_keepalived() {
        let mut topology = Topology::new(2, 1);
        // v2, 1 s: 3 + 206/256 s.
        assert_eq!(
            topology.master_down_interval(),
            Duration::from_secs(3) + Duration::from_secs_f64(206.0 / 256.0)
        );
        topology.advert_int = Duration::from_millis(100);
        // v3, 100 ms: 300 ms + 206/256 × 100 ms.
        let expected = Duration::from_millis(300) + Duration::from_secs_f64(0.1 * 206.0 / 256.0);
        assert!(topology.master_down_interval().abs_diff(expected) < Duration::from_nanos(2));
        assert_eq!(topology.removal_bound(), Duration::from_secs(10));
    }
}
