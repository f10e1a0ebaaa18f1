//! From the block tree to the typed [`Config`], filling in keepalived's
//! defaults and reporting the value errors keepalived reports.

use std::cell::LazyCell;
use std::net::IpAddr;
use std::sync::LazyLock;
use std::time::Duration;

use crate::diag::{Code, Diagnostic, KeepalivedClass, Severity};
use crate::model::*;
use crate::preprocess::Token;
use crate::source::Span;
use crate::tree::{Body, Node};

/// The schedulers by name, for `lb_algo`.
static SCHEDULERS: LazyLock<Vec<(&'static str, Scheduler)>> = LazyLock::new(|| {
    Scheduler::ALL
        .iter()
        .map(|x| (x.name(), x.clone()))
        .collect()
});

/// keepalived's longest timer: `ULONG_MAX - 1` microseconds.
const TIMER_MAX_SECS: f64 = 18_446_744_073_709.0;

/// A timer keepalived keeps in 32 bits of microseconds (`connect_timeout`).
const TIMER_U32_MAX_SECS: f64 = 4294.967295;

/// Builds the model from the tree.
pub fn build(nodes: &[Node<'_>], diags: &mut Vec<Diagnostic>) -> Config {
    let mut b = Builder {
        diags,
        retry_given_above: false,
    };
    b.config(nodes)
}

struct Builder<'a> {
    diags: &'a mut Vec<Diagnostic>,
    /// Whether the virtual or real server being built sets `retry`: the
    /// checker-specific default (DNS_CHECK 3, MISC_CHECK 0) applies only
    /// when no level does.
    retry_given_above: bool,
}

/// Whether a block sets `retry` itself.
fn sets_retry(n: &Node<'_>) -> bool {
    n.body.nodes().iter().any(|m| m.name() == "retry")
}

/// Converts a node to a kept directive (no positions).
pub fn directive(n: &Node<'_>) -> Directive {
    Directive {
        keyword: n.keyword().text.as_str().to_owned(),
        args: n
            .args()
            .iter()
            .map(|t| t.text.as_str().to_owned())
            .collect(),
        body: match &n.body {
            Body::None => DirectiveBody::None,
            Body::Values(v) => DirectiveBody::Values(
                v.iter()
                    .map(|l| {
                        l.tokens
                            .iter()
                            .map(|t| t.text.as_str().to_owned())
                            .collect()
                    })
                    .collect(),
            ),
            Body::Block(ns) => DirectiveBody::Block(ns.iter().map(directive).collect()),
        },
    }
}

impl Builder<'_> {
    fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn error(&mut self, code: Code, class: KeepalivedClass, span: Span, msg: impl Into<String>) {
        self.push(Diagnostic::error(code, class, span, msg));
    }

    /// A keyword lvskit keeps but does not act on.
    fn keep(&mut self, n: &Node<'_>, extra: &mut Vec<Directive>) {
        self.push(Diagnostic::new(
            Severity::Warning,
            Code::NotSupported,
            None,
            Some(n.keyword().span),
            format!(
                "`{}` is not supported yet by lvskit: kept, not acted on",
                n.name()
            ),
        ));
        extra.push(directive(n));
    }

    /// The argument at `i` (0 = first after the keyword). A missing one
    /// makes keepalived stop reading the configuration.
    fn arg<'n>(&mut self, n: &Node<'n>, i: usize) -> Option<&'n Token> {
        let t = n.args().get(i);
        if t.is_none() {
            let mut d = Diagnostic::error(
                Code::MissingParameter,
                KeepalivedClass::MissingParameter,
                n.keyword().span,
                format!(
                    "`{}` is missing a parameter at word position {}",
                    n.name(),
                    i + 2
                ),
            );
            d.aborts = true;
            self.push(d);
        }
        t
    }

    fn number(&mut self, t: &Token, min: i64, max: i64) -> Option<i64> {
        let s = t.text.trim_start();
        match s.parse::<i64>() {
            Ok(v) if v >= min && v <= max => Some(v),
            Ok(_) => {
                self.error(
                    Code::InvalidNumber,
                    KeepalivedClass::InvalidNumber,
                    t.span,
                    format!("number '{}' outside range [{min}, {max}]", t.text),
                );
                None
            }
            Err(_) => {
                self.error(
                    Code::InvalidNumber,
                    KeepalivedClass::InvalidNumber,
                    t.span,
                    format!("invalid number '{}'", t.text),
                );
                None
            }
        }
    }

    fn unsigned(&mut self, n: &Node<'_>, i: usize, min: i64, max: i64) -> Option<i64> {
        let t = self.arg(n, i)?;
        self.number(t, min, max)
    }

    /// A timer in seconds with up to 6 decimals, as keepalived's `read_timer`.
    fn timer(&mut self, n: &Node<'_>, i: usize, min_secs: f64) -> Option<Duration> {
        self.timer_max(n, i, min_secs, TIMER_MAX_SECS)
    }

    /// A timer with an upper bound in seconds.
    fn timer_max(
        &mut self,
        n: &Node<'_>,
        i: usize,
        min_secs: f64,
        max_secs: f64,
    ) -> Option<Duration> {
        let t = self.arg(n, i)?;
        let seconds = match t.text.as_str() {
            // Whole seconds, the usual case, without the float parser (the
            // same value: below 1e9 every step of the conversion is exact).
            s if (1..=9).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) => {
                Ok(s.bytes().fold(0.0, |v, b| v * 10.0 + f64::from(b - b'0')))
            }
            s => s.parse::<f64>(),
        };
        match seconds {
            Ok(v) if v.is_finite() && v >= min_secs && v <= max_secs => {
                Some(Duration::from_micros((v * 1e6).round() as u64))
            }
            Ok(_) => {
                self.error(
                    Code::InvalidNumber,
                    KeepalivedClass::InvalidNumber,
                    t.span,
                    format!(
                        "timer '{}' outside range [{min_secs}, {max_secs}] seconds",
                        t.text
                    ),
                );
                None
            }
            Err(_) => {
                self.error(
                    Code::InvalidNumber,
                    KeepalivedClass::InvalidNumber,
                    t.span,
                    format!("invalid number '{}'", t.text),
                );
                None
            }
        }
    }

    fn ip(&mut self, t: &Token, what: &str) -> Option<IpAddr> {
        match t.text.parse::<IpAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.error(
                    Code::InvalidAddress,
                    KeepalivedClass::General,
                    t.span,
                    format!("invalid {what} address '{}'", t.text),
                );
                None
            }
        }
    }

    fn string(&mut self, n: &Node<'_>, i: usize) -> Option<String> {
        self.arg(n, i).map(|t| t.text.as_str().to_owned())
    }

    /// An optional boolean argument (`keyword [true|false]`); true if absent.
    fn flag(&mut self, n: &Node<'_>) -> bool {
        match n.args().first().map(|t| t.text.as_str()) {
            None | Some("true" | "on" | "yes") => true,
            Some("false" | "off" | "no") => false,
            Some(_) => true,
        }
    }

    /// A script keyword: re-split the raw line with shell quoting.
    fn script(&mut self, n: &Node<'_>) -> Option<Script> {
        let words = shell_split(n.raw);
        let mut it = words.into_iter().skip(1);
        let Some(command) = it.next() else {
            self.arg(n, 0);
            return None;
        };
        let argv = shell_split(&command);
        let (user, group) = match (it.next(), it.next()) {
            (Some(u), Some(g)) => (Some(u), Some(g)),
            (Some(u), None) => match u.split_once(':') {
                Some((a, b)) => (Some(a.to_string()), Some(b.to_string())),
                None => (Some(u), None),
            },
            _ => (None, None),
        };
        Some(Script {
            command,
            argv,
            user,
            group,
        })
    }

    /// The first argument, which must be one of `options`.
    fn choice<T: Clone>(
        &mut self,
        n: &Node<'_>,
        options: &[(&str, T)],
        message: impl Fn(&str) -> String,
    ) -> Option<T> {
        let t = self.arg(n, 0)?;
        match options.iter().find(|(k, _)| *k == t.text) {
            Some((_, v)) => Some(v.clone()),
            None => {
                let names: Vec<&str> = options.iter().map(|(k, _)| *k).collect();
                let d = Diagnostic::error(
                    Code::InvalidValue,
                    KeepalivedClass::General,
                    t.span,
                    message(&t.text),
                )
                .with_help(format!("one of: {}", names.join(", ")));
                self.push(d);
                None
            }
        }
    }

    fn name(&mut self, n: &Node<'_>, what: &str) -> String {
        match n.args().first() {
            Some(t) => t.text.as_str().to_owned(),
            None => {
                self.error(
                    Code::MissingParameter,
                    KeepalivedClass::General,
                    n.keyword().span,
                    format!("{what} must have a name"),
                );
                String::new()
            }
        }
    }

    fn user_group(&mut self, n: &Node<'_>) -> Option<(String, Option<String>)> {
        let u = self.string(n, 0)?;
        Some((u, n.args().get(1).map(|t| t.text.as_str().to_owned())))
    }

    fn config(&mut self, nodes: &[Node<'_>]) -> Config {
        let mut c = Config::default();
        // Exact sizes: a model holds thousands of these, and memory that is
        // never touched is never faulted in.
        let virtual_servers = nodes.iter().filter(|n| n.name() == "virtual_server");
        c.virtual_servers.reserve_exact(virtual_servers.count());
        for n in nodes {
            match n.name() {
                "global_defs" => self.global_defs(n, &mut c.global),
                "vrrp_script" => {
                    let s = self.vrrp_script(n);
                    c.vrrp_scripts.push(s);
                }
                "vrrp_track_file" | "track_file" => {
                    let f = self.track_file(n);
                    c.vrrp_track_files.push(f);
                }
                "vrrp_sync_group" => {
                    let g = self.sync_group(n);
                    c.vrrp_sync_groups.push(g);
                }
                "vrrp_instance" => {
                    let i = self.vrrp_instance(n, c.global.vrrp_version);
                    c.vrrp_instances.push(i);
                }
                "virtual_server_group" => {
                    let name = self.name(n, "virtual_server_group");
                    for l in n.body.values() {
                        self.vsg_entry(l);
                    }
                    c.virtual_server_groups.push(VirtualServerGroup {
                        name,
                        entries: n
                            .body
                            .values()
                            .iter()
                            .map(|l| {
                                l.tokens
                                    .iter()
                                    .map(|t| t.text.as_str().to_owned())
                                    .collect()
                            })
                            .collect(),
                    });
                }
                "virtual_server" => {
                    if let Some(vs) = self.virtual_server(n) {
                        c.virtual_servers.push(vs);
                    }
                }
                "SSL" => {
                    let mut s = SslSettings::default();
                    for m in n.body.nodes() {
                        match m.name() {
                            "password" => s.password = self.string(m, 0),
                            "ca" => s.ca = self.string(m, 0),
                            "certificate" => s.certificate = self.string(m, 0),
                            "key" => s.key = self.string(m, 0),
                            _ => self.keep(m, &mut s.extra),
                        }
                    }
                    c.ssl = Some(s);
                }
                _ => self.keep(n, &mut c.extra),
            }
        }
        self.cross_checks(&c, nodes);
        c
    }

    fn global_defs(&mut self, n: &Node<'_>, g: &mut GlobalDefs) {
        for m in n.body.nodes() {
            match m.name() {
                "router_id" => match m.args().first() {
                    Some(t) => g.router_id = Some(t.text.as_str().to_owned()),
                    None => self.error(
                        Code::MissingParameter,
                        KeepalivedClass::General,
                        m.keyword().span,
                        "routerid name missing - ignoring",
                    ),
                },
                "notification_email" => {
                    for l in m.body.values() {
                        g.notification_email
                            .extend(l.tokens.iter().map(|t| t.text.as_str().to_owned()));
                    }
                }
                "notification_email_from" => g.notification_email_from = self.string(m, 0),
                "smtp_server" => {
                    if let Some(t) = self.arg(m, 0) {
                        if host_syntax_ok(&t.text) {
                            g.smtp_server = Some(t.text.as_str().to_owned());
                        } else {
                            self.error(
                                Code::InvalidAddress,
                                KeepalivedClass::General,
                                t.span,
                                format!("invalid smtp server '{}'", t.text),
                            );
                        }
                    }
                    if let Some(p) = m.args().get(1)
                        && let Some(v) = self.number(p, 1, 65535)
                    {
                        g.smtp_port = v as u16;
                    }
                }
                "smtp_connect_timeout" => {
                    if let Some(v) = self.unsigned(m, 0, 1, 4294) {
                        g.smtp_connect_timeout = Duration::from_secs(v as u64);
                    }
                }
                "enable_script_security" => g.enable_script_security = self.flag(m),
                "script_user" => g.script_user = self.user_group(m),
                "notify_fifo" | "vrrp_notify_fifo" | "lvs_notify_fifo" => {
                    let fifo = notify_fifo_of(g, m.name());
                    fifo.path = self.string(m, 0);
                    fifo.owner = m.args().get(1).map(|u| {
                        (
                            u.text.as_str().to_owned(),
                            m.args().get(2).map(|t| t.text.as_str().to_owned()),
                        )
                    });
                }
                "notify_fifo_script" | "vrrp_notify_fifo_script" | "lvs_notify_fifo_script" => {
                    let script = self.script(m);
                    notify_fifo_of(g, m.name()).script = script;
                }
                "vrrp_strict" => g.vrrp_strict = self.flag(m),
                "vrrp_version" => {
                    if let Some(v) = self.unsigned(m, 0, 2, 3) {
                        g.vrrp_version = v as u8;
                    }
                }
                // Kept as written for lvskitd, which starts the sync daemon from it.
                "lvs_sync_daemon" => g.extra.push(directive(m)),
                // Kept as written for lvskitd, which schedules its VRRP
                // thread and its checkers' threads with them.
                "vrrp_rt_priority" | "checker_rt_priority" => g.extra.push(directive(m)),
                _ => self.keep(m, &mut g.extra),
            }
        }
    }

    fn vrrp_script(&mut self, n: &Node<'_>) -> VrrpScript {
        let mut s = VrrpScript {
            name: self.name(n, "vrrp_script"),
            script: None,
            interval: Duration::from_secs(1),
            timeout: Duration::ZERO,
            weight: 0,
            weight_reverse: false,
            rise: 1,
            fall: 1,
            user: None,
            init_fail: false,
            extra: Vec::new(),
        };
        let mut timeout = None;
        for m in n.body.nodes() {
            match m.name() {
                "script" => s.script = self.script(m),
                "interval" => {
                    if let Some(d) = self.timer(m, 0, 0.000001) {
                        s.interval = d;
                    }
                }
                "timeout" => timeout = self.timer(m, 0, 0.000001),
                "weight" => {
                    if let Some(w) = self.unsigned(m, 0, -254, 254) {
                        s.weight = w as i32;
                    }
                    s.weight_reverse = m.args().get(1).is_some_and(|t| t.text == "reverse");
                }
                "rise" => {
                    if let Some(v) = self.unsigned(m, 0, 1, i64::from(u32::MAX)) {
                        s.rise = v as u32;
                    }
                }
                "fall" => {
                    if let Some(v) = self.unsigned(m, 0, 1, i64::from(u32::MAX)) {
                        s.fall = v as u32;
                    }
                }
                "user" => s.user = self.user_group(m),
                "init_fail" => s.init_fail = true,
                _ => self.keep(m, &mut s.extra),
            }
        }
        s.timeout = timeout.unwrap_or(s.interval);
        if s.script.is_none() {
            self.error(
                Code::Semantic,
                KeepalivedClass::General,
                n.keyword().span,
                format!("no script set for vrrp_script {} - removing", s.name),
            );
        }
        s
    }

    fn track_file(&mut self, n: &Node<'_>) -> TrackFile {
        let mut f = TrackFile {
            name: self.name(n, "vrrp_track_file"),
            file: None,
            weight: 1,
            extra: Vec::new(),
        };
        for m in n.body.nodes() {
            match m.name() {
                "file" => f.file = self.string(m, 0),
                "weight" => {
                    if let Some(w) = self.unsigned(m, 0, -254, 254) {
                        f.weight = w as i32;
                    }
                }
                _ => self.keep(m, &mut f.extra),
            }
        }
        f
    }

    fn track_refs(&mut self, n: &Node<'_>) -> Vec<TrackRef> {
        let mut out = Vec::new();
        for l in n.body.values() {
            let mut r = TrackRef {
                name: l.tokens[0].text.as_str().to_owned(),
                weight: None,
                reverse: false,
            };
            let mut i = 1;
            while i < l.tokens.len() {
                match l.tokens[i].text.as_str() {
                    "weight" => {
                        if let Some(t) = l.tokens.get(i + 1) {
                            r.weight = self.number(t, -254, 254).map(|v| v as i32);
                        }
                        i += 2;
                    }
                    "reverse" => {
                        r.reverse = true;
                        i += 1;
                    }
                    _ => i += 1,
                }
            }
            out.push(r);
        }
        out
    }

    fn sync_group(&mut self, n: &Node<'_>) -> SyncGroup {
        let mut g = SyncGroup {
            name: self.name(n, "vrrp_sync_group"),
            group: Vec::new(),
            notify_master: None,
            notify_backup: None,
            notify_fault: None,
            notify_stop: None,
            notify: None,
            smtp_alert: false,
            track_script: Vec::new(),
            track_interface: Vec::new(),
            extra: Vec::new(),
        };
        for m in n.body.nodes() {
            match m.name() {
                "group" => {
                    for l in m.body.values() {
                        g.group
                            .extend(l.tokens.iter().map(|t| t.text.as_str().to_owned()));
                    }
                }
                "notify_master" => g.notify_master = self.script(m),
                "notify_backup" => g.notify_backup = self.script(m),
                "notify_fault" => g.notify_fault = self.script(m),
                "notify_stop" => g.notify_stop = self.script(m),
                "notify" => g.notify = self.script(m),
                "smtp_alert" => g.smtp_alert = self.flag(m),
                "track_script" => g.track_script = self.track_refs(m),
                "track_interface" => g.track_interface = self.track_refs(m),
                _ => self.keep(m, &mut g.extra),
            }
        }
        g
    }

    fn vip(&mut self, l: &crate::preprocess::Line<'_>) -> Option<VirtualAddress> {
        let t = &l.tokens[0];
        let (addr, len) = match t.text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (t.text.as_str(), None),
        };
        let Ok(address) = addr.parse::<IpAddr>() else {
            self.error(
                Code::InvalidAddress,
                KeepalivedClass::General,
                t.span,
                format!("VRRP parsed invalid IP {}. skipping IP...", t.text),
            );
            return None;
        };
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix_len = match len {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(v) if v <= max => v,
                _ => {
                    self.error(
                        Code::InvalidAddress,
                        KeepalivedClass::General,
                        t.span,
                        format!("invalid prefix length in {}", t.text),
                    );
                    return None;
                }
            },
        };
        let mut v = VirtualAddress {
            address,
            prefix_len,
            broadcast: None,
            dev: None,
            scope: None,
            label: None,
            options: Vec::new(),
        };
        let mut i = 1;
        while i < l.tokens.len() {
            let k = l.tokens[i].text.as_str();
            let val = l.tokens.get(i + 1).map(|t| t.text.as_str().to_owned());
            match (k, val) {
                ("dev", Some(x)) => v.dev = Some(x),
                ("scope", Some(x)) => v.scope = Some(x),
                ("label", Some(x)) => v.label = Some(x),
                ("brd" | "broadcast", Some(x)) => match x.parse::<IpAddr>() {
                    Ok(a) => v.broadcast = Some(a),
                    Err(_) => v.options.extend([k.to_string(), x]),
                },
                _ => {
                    v.options.push(k.to_string());
                    i += 1;
                    continue;
                }
            }
            i += 2;
        }
        Some(v)
    }

    fn vrrp_instance(&mut self, n: &Node<'_>, version: u8) -> VrrpInstance {
        let mut v = VrrpInstance {
            name: self.name(n, "vrrp_instance"),
            state: InitialState::Backup,
            interface: None,
            virtual_router_id: None,
            priority: 0,
            advert_int: Duration::from_secs(1),
            version,
            nopreempt: false,
            preempt_delay: Duration::ZERO,
            authentication: None,
            virtual_ipaddress: Vec::new(),
            virtual_ipaddress_excluded: Vec::new(),
            unicast_src_ip: None,
            unicast_peer: Vec::new(),
            mcast_src_ip: None,
            track_interface: Vec::new(),
            track_script: Vec::new(),
            notify_master: None,
            notify_backup: None,
            notify_fault: None,
            notify_stop: None,
            notify: None,
            smtp_alert: false,
            garp_master_delay: Duration::from_secs(5),
            extra: Vec::new(),
        };
        let mut state: Option<InitialState> = None;
        for m in n.body.nodes() {
            match m.name() {
                "state" => {
                    let Some(t) = self.arg(m, 0) else {
                        continue;
                    };
                    state = Some(match t.text.as_str() {
                        "MASTER" => InitialState::Master,
                        "BACKUP" => InitialState::Backup,
                        other => {
                            let mut d = Diagnostic::error(
                                Code::InvalidValue,
                                KeepalivedClass::General,
                                t.span,
                                format!(
                                    "({}) unknown state '{other}', defaulting to BACKUP",
                                    v.name
                                ),
                            );
                            d.help = Some(if other.eq_ignore_ascii_case("slave") {
                                "VRRP has no SLAVE state: write `state BACKUP` (the instance runs as BACKUP)".to_string()
                            } else {
                                "the state is MASTER or BACKUP".to_string()
                            });
                            self.push(d);
                            InitialState::Backup
                        }
                    });
                }
                "interface" => v.interface = self.string(m, 0),
                "virtual_router_id" => {
                    if let Some(x) = self.unsigned(m, 0, 1, 255) {
                        v.virtual_router_id = Some(x as u8);
                    }
                }
                "priority" => {
                    if let Some(x) = self.unsigned(m, 0, 1, 255) {
                        v.priority = x as u8;
                    }
                }
                "advert_int" => {
                    if let Some(d) = self.timer(m, 0, 0.01)
                        && d <= Duration::from_secs(255)
                    {
                        v.advert_int = d;
                    }
                }
                "version" => {
                    if let Some(x) = self.unsigned(m, 0, 2, 3) {
                        v.version = x as u8;
                    }
                }
                "nopreempt" => v.nopreempt = true,
                "preempt" => v.nopreempt = false,
                "preempt_delay" => {
                    if let Some(d) = self.timer(m, 0, 0.0) {
                        v.preempt_delay = d;
                    }
                }
                "authentication" => v.authentication = self.authentication(m),
                "virtual_ipaddress" => {
                    for l in m.body.values() {
                        if let Some(a) = self.vip(l) {
                            v.virtual_ipaddress.push(a);
                        }
                    }
                }
                "virtual_ipaddress_excluded" => {
                    for l in m.body.values() {
                        if let Some(a) = self.vip(l) {
                            v.virtual_ipaddress_excluded.push(a);
                        }
                    }
                }
                "unicast_src_ip" => {
                    if let Some(t) = self.arg(m, 0) {
                        v.unicast_src_ip = self.ip(t, "unicast source");
                    }
                }
                "mcast_src_ip" => {
                    if let Some(t) = self.arg(m, 0) {
                        v.mcast_src_ip = self.ip(t, "multicast source");
                    }
                }
                "unicast_peer" => {
                    for l in m.body.values() {
                        let t = &l.tokens[0];
                        if let Some(a) = self.ip(t, "unicast peer") {
                            v.unicast_peer.push(a);
                        }
                    }
                }
                "track_interface" => v.track_interface = self.track_refs(m),
                "track_script" => v.track_script = self.track_refs(m),
                "notify_master" => v.notify_master = self.script(m),
                "notify_backup" => v.notify_backup = self.script(m),
                "notify_fault" => v.notify_fault = self.script(m),
                "notify_stop" => v.notify_stop = self.script(m),
                "notify" => v.notify = self.script(m),
                "smtp_alert" => v.smtp_alert = self.flag(m),
                "garp_master_delay" => {
                    if let Some(x) = self.unsigned(m, 0, 0, 255) {
                        v.garp_master_delay = Duration::from_secs(x as u64);
                    }
                }
                _ => self.keep(m, &mut v.extra),
            }
        }
        // keepalived: no priority means 255 for state MASTER, 100 otherwise;
        // no state means MASTER for priority 255, BACKUP otherwise.
        if v.priority == 0 {
            v.priority = if state == Some(InitialState::Master) {
                255
            } else {
                100
            };
        }
        v.state = state.unwrap_or(if v.priority == 255 {
            InitialState::Master
        } else {
            InitialState::Backup
        });
        let span = n.keyword().span;
        if v.virtual_router_id.is_none() {
            self.error(
                Code::Semantic,
                KeepalivedClass::General,
                span,
                format!("({}) the virtual router id must be set", v.name),
            );
        }
        if v.virtual_ipaddress.is_empty() {
            self.error(
                Code::Semantic,
                KeepalivedClass::General,
                span,
                format!("({}) no VIP specified; at least one is sensible", v.name),
            );
        }
        if v.state == InitialState::Master
            && v.authentication
                .as_ref()
                .is_some_and(|a| a.auth_type == AuthType::Ah)
        {
            self.error(
                Code::Semantic,
                KeepalivedClass::General,
                span,
                format!(
                    "({}) initial state master is incompatible with AH authentication",
                    v.name
                ),
            );
        }
        if v.priority == 255 && v.nopreempt {
            self.error(
                Code::Semantic,
                KeepalivedClass::General,
                span,
                format!("({}) nopreempt is incompatible with priority 255", v.name),
            );
            v.nopreempt = false;
        }
        v
    }

    fn authentication(&mut self, n: &Node<'_>) -> Option<Authentication> {
        let mut auth_type = None;
        let mut pass = String::new();
        for m in n.body.nodes() {
            match m.name() {
                "auth_type" => {
                    let options = [("PASS", AuthType::Pass), ("AH", AuthType::Ah)];
                    auth_type = self.choice(m, &options, |o| {
                        format!("unknown authentication type '{o}'")
                    });
                }
                "auth_pass" => pass = self.string(m, 0).unwrap_or_default(),
                _ => {}
            }
        }
        auth_type.map(|auth_type| Authentication {
            auth_type,
            auth_pass: pass,
        })
    }

    fn timing_keyword(&mut self, m: &Node<'_>, t: &mut CheckTiming) -> bool {
        match m.name() {
            "delay_loop" => {
                if let Some(d) = self.timer(m, 0, 0.000001) {
                    t.delay_loop = d;
                }
            }
            "connect_timeout" => {
                if let Some(d) = self.timer_max(m, 0, 0.000001, TIMER_U32_MAX_SECS) {
                    t.connect_timeout = d;
                }
            }
            "retry" => {
                if let Some(v) = self.unsigned(m, 0, 0, i64::from(u32::MAX)) {
                    t.retry = v as u32;
                }
            }
            "delay_before_retry" => t.delay_before_retry = self.timer(m, 0, 0.0),
            "warmup" => t.warmup = self.timer(m, 0, 0.0),
            _ => return false,
        }
        true
    }

    fn service(&mut self, n: &Node<'_>) -> Option<ServiceAddress> {
        let first = self.arg(n, 0)?;
        match first.text.as_str() {
            "fwmark" => {
                let t = self.arg(n, 1)?;
                let v = self.number(t, 1, i64::from(u32::MAX))?;
                Some(ServiceAddress::Fwmark(v as u32))
            }
            "group" => Some(ServiceAddress::Group(
                self.arg(n, 1)?.text.as_str().to_owned(),
            )),
            text => {
                let Ok(ip) = text.parse::<IpAddr>() else {
                    let mut d = Diagnostic::error(
                        Code::InvalidAddress,
                        KeepalivedClass::General,
                        first.span,
                        format!("virtual server address missing or invalid: '{text}'"),
                    )
                    .with_label(n.keyword().span, "this virtual server is skipped");
                    d.help = Some(if text.parse::<u16>().is_ok() {
                        format!(
                            "write the virtual IP before the port: `virtual_server <IP> {text}`"
                        )
                    } else {
                        "use `virtual_server <IP> <PORT>`, `virtual_server fwmark <N>` or `virtual_server group <NAME>`".to_string()
                    });
                    self.push(d);
                    return None;
                };
                let port = match n.args().get(1) {
                    Some(p) => self.number(p, 0, 65535)? as u16,
                    None => 0,
                };
                Some(ServiceAddress::Address { ip, port })
            }
        }
    }

    fn virtual_server(&mut self, n: &Node<'_>) -> Option<VirtualServer> {
        let service = self.service(n);
        let mut vs = VirtualServer {
            service: service.clone().unwrap_or(ServiceAddress::Fwmark(0)),
            lb_algo: Scheduler::Wlc,
            lb_kind: ForwardingMethod::Nat,
            lb_kind_options: Vec::new(),
            protocol: Protocol::Udp,
            persistence_timeout: None,
            virtualhost: None,
            sorry_server: None,
            quorum: 1,
            hysteresis: 0,
            quorum_up: None,
            quorum_down: None,
            ha_suspend: false,
            alpha: false,
            omega: false,
            inhibit_on_failure: false,
            timing: CheckTiming::default(),
            real_servers: Vec::new(),
            extra: Vec::new(),
        };
        let (mut algo, mut kind, mut proto) = (false, false, false);
        // Virtual-server-level settings first: real servers inherit them
        // wherever they stand in the block.
        for m in n.body.nodes() {
            if self.timing_keyword(m, &mut vs.timing) {
                continue;
            }
            match m.name() {
                "real_server" => {}
                "lb_algo" | "lvs_sched" => {
                    let options = &*SCHEDULERS;
                    if let Some(x) = self.choice(m, options, |o| {
                        format!("invalid lvs_scheduler '{o}' - ignoring")
                    }) {
                        vs.lb_algo = x;
                        algo = true;
                    }
                }
                "lb_kind" | "lvs_method" => {
                    let options = [
                        ("NAT", ForwardingMethod::Nat),
                        ("DR", ForwardingMethod::Dr),
                        ("TUN", ForwardingMethod::Tun),
                    ];
                    if let Some(x) = self.choice(m, &options, |o| {
                        format!("unknown [{o}] routing method for virtual server")
                    }) {
                        vs.lb_kind = x;
                        vs.lb_kind_options = m
                            .args()
                            .iter()
                            .skip(1)
                            .map(|t| t.text.to_string())
                            .collect();
                        kind = true;
                    }
                }
                "protocol" => {
                    let options = [
                        ("TCP", Protocol::Tcp),
                        ("UDP", Protocol::Udp),
                        ("SCTP", Protocol::Sctp),
                    ];
                    if let Some(x) = self.choice(m, &options, |o| format!("unknown protocol '{o}'"))
                    {
                        vs.protocol = x;
                        proto = true;
                    }
                }
                "persistence_timeout" => {
                    vs.persistence_timeout = self
                        .unsigned(m, 0, 1, 2_678_400)
                        .map(|v| Duration::from_secs(v as u64));
                }
                "virtualhost" => vs.virtualhost = self.string(m, 0),
                "sorry_server" => {
                    let Some(t) = self.arg(m, 0) else {
                        continue;
                    };
                    if let Some(ip) = self.ip(t, "sorry server") {
                        let port = match m.args().get(1) {
                            Some(p) => self.number(p, 0, 65535).unwrap_or(0) as u16,
                            None => 0,
                        };
                        vs.sorry_server = Some((ip, port));
                    }
                }
                "quorum" => {
                    if let Some(v) = self.unsigned(m, 0, 1, i64::from(u32::MAX)) {
                        vs.quorum = v as u32;
                    }
                }
                "hysteresis" => {
                    if let Some(v) = self.unsigned(m, 0, 0, i64::from(u32::MAX)) {
                        vs.hysteresis = v as u32;
                    }
                }
                "quorum_up" => vs.quorum_up = self.script(m),
                "quorum_down" => vs.quorum_down = self.script(m),
                "ha_suspend" => vs.ha_suspend = true,
                "alpha" => vs.alpha = true,
                "omega" => vs.omega = true,
                "inhibit_on_failure" => vs.inhibit_on_failure = self.flag(m),
                // Kept as written for lvskitd, which acts on them.
                "sorry_server_inhibit" | "sorry_server_lvs_method" => {
                    vs.extra.push(directive(m));
                }
                _ => self.keep(m, &mut vs.extra),
            }
        }
        let Some(service) = service else {
            // Still look at the real servers, for their own mistakes.
            for m in n.body.nodes() {
                if m.name() == "real_server" {
                    let _ = self.real_server(m, &vs, 0);
                }
            }
            return None;
        };
        // Only formatted for a message.
        let label_of = service.clone();
        let label = LazyCell::new(|| match &label_of {
            ServiceAddress::Address { ip, port } => format!("[{ip}]:{port}"),
            ServiceAddress::Fwmark(f) => format!("FWM {f}"),
            ServiceAddress::Group(g) => format!("group {g}"),
        });
        let span = n.keyword().span;
        let fwmark = matches!(service, ServiceAddress::Fwmark(_));
        if proto && fwmark {
            self.error(
                Code::Semantic,
                KeepalivedClass::General,
                span,
                format!(
                    "virtual server {}: protocol specified for fwmark - protocol will be ignored",
                    *label
                ),
            );
        }
        if !proto && !fwmark {
            self.error(
                Code::Semantic,
                KeepalivedClass::General,
                span,
                format!(
                    "virtual server {}: no protocol set - defaulting to UDP",
                    *label
                ),
            );
        }
        if !algo {
            self.error(
                Code::Semantic,
                KeepalivedClass::General,
                span,
                format!(
                    "virtual server {}: no scheduler set, setting default 'wlc'",
                    *label
                ),
            );
        }
        if !kind {
            self.error(
                Code::Semantic,
                KeepalivedClass::General,
                span,
                format!(
                    "virtual server {}: no forwarding method set, setting default NAT",
                    *label
                ),
            );
        }
        if let ServiceAddress::Address { port: 0, .. } = service
            && vs.persistence_timeout.is_none()
        {
            self.error(
                Code::Semantic,
                KeepalivedClass::General,
                span,
                format!(
                    "virtual server {}: zero port only valid for persistent services",
                    *label
                ),
            );
        }
        vs.service = service;
        let vs_port = match vs.service {
            ServiceAddress::Address { port, .. } => port,
            _ => 0,
        };
        self.retry_given_above = sets_retry(n);
        let real_servers = n.body.nodes().iter().filter(|m| m.name() == "real_server");
        vs.real_servers.reserve_exact(real_servers.count());
        for m in n.body.nodes() {
            if m.name() == "real_server"
                && let Some(rs) = self.real_server(m, &vs, vs_port)
            {
                vs.real_servers.push(rs);
            }
        }
        self.retry_given_above = false;
        if vs.real_servers.is_empty() {
            self.error(
                Code::Semantic,
                KeepalivedClass::General,
                span,
                format!("virtual server {} has no real servers", *label),
            );
        }
        Some(vs)
    }

    fn real_server(
        &mut self,
        n: &Node<'_>,
        vs: &VirtualServer,
        vs_port: u16,
    ) -> Option<RealServer> {
        let t = self.arg(n, 0)?;
        let Ok(address) = t.text.parse::<IpAddr>() else {
            let mut d = Diagnostic::error(
                Code::InvalidAddress,
                KeepalivedClass::General,
                t.span,
                format!("invalid real server address '{}' - skipping", t.text),
            );
            if t.text.parse::<u16>().is_ok() {
                d.help = Some(format!(
                    "write the real server's IP before the port: `real_server <IP> {}`",
                    t.text
                ));
            }
            self.push(d);
            return None;
        };
        let port = match n.args().get(1) {
            Some(p) => self.number(p, 0, 65535)? as u16,
            None => vs_port,
        };
        let mut rs = RealServer {
            address,
            port,
            weight: 1,
            inhibit_on_failure: vs.inhibit_on_failure,
            notify_up: None,
            notify_down: None,
            timing: vs.timing,
            checkers: Vec::new(),
            extra: Vec::new(),
        };
        for m in n.body.nodes() {
            if self.timing_keyword(m, &mut rs.timing) {
                continue;
            }
            match m.name() {
                "weight" => {
                    if let Some(w) = self.unsigned(m, 0, 0, 65535) {
                        rs.weight = w as u32;
                    }
                }
                "inhibit_on_failure" => rs.inhibit_on_failure = self.flag(m),
                // Kept as written for lvskitd's checkers, which inherit them.
                "alpha" | "virtualhost" | "lvs_method" => rs.extra.push(directive(m)),
                "notify_up" => rs.notify_up = self.script(m),
                "notify_down" => rs.notify_down = self.script(m),
                name if is_checker(name) => {}
                _ => self.keep(m, &mut rs.extra),
            }
        }
        let checkers = n.body.nodes().iter().filter(|m| is_checker(m.name()));
        rs.checkers.reserve_exact(checkers.count());
        let vs_retry = self.retry_given_above;
        self.retry_given_above = vs_retry || sets_retry(n);
        for m in n.body.nodes() {
            let c = match m.name() {
                "TCP_CHECK" => self.checker(m, &rs, CheckerKind::Tcp),
                "HTTP_GET" => self.checker(m, &rs, CheckerKind::Http(HttpCheck::default())),
                "SSL_GET" => self.checker(m, &rs, CheckerKind::Ssl(HttpCheck::default())),
                "SMTP_CHECK" => self.checker(m, &rs, CheckerKind::Smtp(SmtpCheck::default())),
                "DNS_CHECK" => self.checker(
                    m,
                    &rs,
                    CheckerKind::Dns(DnsCheck {
                        query_type: "SOA".into(),
                        name: ".".into(),
                    }),
                ),
                "MISC_CHECK" => self.checker(
                    m,
                    &rs,
                    CheckerKind::Misc(MiscCheck {
                        path: None,
                        timeout: None,
                        dynamic: false,
                    }),
                ),
                "UDP_CHECK" => self.checker(m, &rs, CheckerKind::Udp(UdpCheck::default())),
                "PING_CHECK" => self.checker(m, &rs, CheckerKind::Ping),
                "FILE_CHECK" => self.checker(m, &rs, CheckerKind::File(FileCheck::default())),
                "BFD_CHECK" => self.checker(m, &rs, CheckerKind::Bfd(None)),
                _ => continue,
            };
            rs.checkers.push(c);
        }
        self.retry_given_above = vs_retry;
        Some(rs)
    }

    fn checker(&mut self, n: &Node<'_>, rs: &RealServer, mut kind: CheckerKind) -> Checker {
        let mut c = Checker {
            kind: CheckerKind::Tcp,
            connect_ip: rs.address,
            connect_port: rs.port,
            bind_ip: None,
            bind_port: None,
            timing: rs.timing,
            extra: Vec::new(),
        };
        for m in n.body.nodes() {
            if self.timing_keyword(m, &mut c.timing) {
                continue;
            }
            match (m.name(), &mut kind) {
                ("connect_ip", _) => {
                    if let Some(t) = self.arg(m, 0)
                        && let Some(a) = self.ip(t, "connect_ip")
                    {
                        c.connect_ip = a;
                    }
                }
                ("connect_port", _) => {
                    if let Some(v) = self.unsigned(m, 0, 0, 65535) {
                        c.connect_port = v as u16;
                    }
                }
                ("bindto", _) => {
                    if let Some(t) = self.arg(m, 0) {
                        c.bind_ip = self.ip(t, "bindto");
                    }
                }
                ("bind_port", _) => {
                    c.bind_port = self.unsigned(m, 0, 0, 65535).map(|v| v as u16);
                }
                ("url", CheckerKind::Http(h) | CheckerKind::Ssl(h)) => {
                    if h.urls.capacity() == 0 {
                        let urls = n.body.nodes().iter().filter(|m| m.name() == "url");
                        h.urls.reserve_exact(urls.count());
                    }
                    let u = self.url(m);
                    h.urls.push(u);
                }
                ("virtualhost", CheckerKind::Http(h) | CheckerKind::Ssl(h)) => {
                    h.virtualhost = self.string(m, 0);
                }
                ("http_protocol", CheckerKind::Http(h) | CheckerKind::Ssl(h)) => {
                    h.http_protocol = self.string(m, 0);
                }
                ("helo_name", CheckerKind::Smtp(s)) => s.helo_name = self.string(m, 0),
                ("host", CheckerKind::Smtp(s)) => {
                    // Same keywords and checks as a checker's own connection.
                    let _ = self.checker(m, rs, CheckerKind::Tcp);
                    s.hosts.push(m.body.nodes().iter().map(directive).collect());
                }
                ("type", CheckerKind::Dns(d)) => {
                    if let Some(t) = self.string(m, 0) {
                        d.query_type = t;
                    }
                }
                ("name", CheckerKind::Dns(d)) => {
                    if let Some(t) = self.string(m, 0) {
                        d.name = t;
                    }
                }
                ("misc_path", CheckerKind::Misc(x)) => x.path = self.script(m),
                ("misc_timeout", CheckerKind::Misc(x)) => {
                    x.timeout = self
                        .unsigned(m, 0, 1, i64::from(u32::MAX))
                        .map(|v| Duration::from_secs(v as u64));
                }
                ("misc_dynamic", CheckerKind::Misc(x)) => x.dynamic = true,
                ("payload", CheckerKind::Udp(u)) => {
                    // Free-form hex: the words together are the payload.
                    if self.arg(m, 0).is_some() {
                        let words: Vec<&str> = m.args().iter().map(|t| &*t.text).collect();
                        u.payload = Some(words.join(" "));
                    }
                }
                ("require_reply", CheckerKind::Udp(u)) => {
                    u.require_reply = true;
                    // The expected reply, when given, is read from `extra`.
                    if !m.args().is_empty() {
                        c.extra.push(directive(m));
                    }
                }
                (
                    "bind_if" | "fwmark" | "alpha" | "enable_sni" | "min_reply_length"
                    | "max_reply_length",
                    _,
                )
                | ("weight", CheckerKind::File(_)) => {
                    // Kept as written for lvskitd, which acts on them.
                    c.extra.push(directive(m));
                }
                ("track_file", CheckerKind::File(f)) => f.track_file = self.string(m, 0),
                ("name", CheckerKind::Bfd(b)) => *b = self.string(m, 0),
                _ => self.keep(m, &mut c.extra),
            }
        }
        // Defaults that depend on the checker kind.
        if !self.retry_given_above && !sets_retry(n) {
            match kind {
                CheckerKind::Dns(_) => c.timing.retry = 3,
                CheckerKind::Misc(_) => c.timing.retry = 0,
                _ => {}
            }
        }
        if c.timing.delay_before_retry.is_none() {
            c.timing.delay_before_retry = Some(match kind {
                CheckerKind::Http(_) | CheckerKind::Ssl(_) => Duration::from_secs(3),
                CheckerKind::Dns(_) => c.timing.delay_loop,
                _ => Duration::from_secs(1),
            });
        }
        if c.timing.warmup.is_none() {
            c.timing.warmup = Some(c.timing.delay_loop);
        }
        c.kind = kind;
        c
    }

    fn url(&mut self, n: &Node<'_>) -> Url {
        let mut u = Url::default();
        for m in n.body.nodes() {
            match m.name() {
                "path" => u.path = self.string(m, 0).unwrap_or_default(),
                "digest" => u.digest = self.string(m, 0),
                "status_code" => u
                    .status_code
                    .extend(m.args().iter().map(|t| t.text.as_str().to_owned())),
                "virtualhost" => u.virtualhost = self.string(m, 0),
                _ => self.keep(m, &mut u.extra),
            }
        }
        u
    }

    /// One `virtual_server_group` line: `IP[-LAST] PORT` or `fwmark N`.
    fn vsg_entry(&mut self, l: &crate::preprocess::Line<'_>) {
        let t = &l.tokens;
        if t[0].text == "fwmark" {
            match t.get(1) {
                Some(m) => {
                    let m = m.clone();
                    self.number(&m, 1, i64::from(u32::MAX));
                }
                None => self.error(
                    Code::MissingParameter,
                    KeepalivedClass::General,
                    t[0].span,
                    "virtual server group fwmark without a mark",
                ),
            }
            return;
        }
        let addr = t[0]
            .text
            .split_once('-')
            .map(|(a, _)| a)
            .unwrap_or(&t[0].text);
        let addr = addr.split_once('/').map(|(a, _)| a).unwrap_or(addr);
        if addr.parse::<IpAddr>().is_err() {
            self.error(
                Code::InvalidAddress,
                KeepalivedClass::General,
                t[0].span,
                format!("invalid virtual server group address '{}'", t[0].text),
            );
            return;
        }
        if let Some(p) = t.get(1) {
            self.number(p, 0, 65535);
        }
    }

    /// Checks across blocks: references to things that must exist.
    fn cross_checks(&mut self, c: &Config, nodes: &[Node<'_>]) {
        for (i, inst) in c.vrrp_instances.iter().enumerate() {
            let span = nodes
                .iter()
                .filter(|n| n.name() == "vrrp_instance")
                .nth(i)
                .map(|n| n.keyword().span);
            let Some(span) = span else { continue };
            for t in &inst.track_script {
                let ok = c
                    .vrrp_scripts
                    .iter()
                    .any(|s| s.name == t.name && s.script.is_some());
                if !ok {
                    self.error(
                        Code::Semantic,
                        KeepalivedClass::General,
                        span,
                        format!(
                            "({}) track script {} not found, ignoring...",
                            inst.name, t.name
                        ),
                    );
                }
            }
        }
    }
}

/// Whether a real server keyword opens a checker block.
fn is_checker(keyword: &str) -> bool {
    matches!(
        keyword,
        "TCP_CHECK"
            | "HTTP_GET"
            | "SSL_GET"
            | "SMTP_CHECK"
            | "DNS_CHECK"
            | "MISC_CHECK"
            | "UDP_CHECK"
            | "PING_CHECK"
            | "FILE_CHECK"
            | "BFD_CHECK"
    )
}

/// An IP address, or something that can be a DNS name (not all digits).
/// The FIFO a `*notify_fifo*` keyword configures, by its prefix.
fn notify_fifo_of<'g>(g: &'g mut GlobalDefs, keyword: &str) -> &'g mut NotifyFifo {
    if keyword.starts_with("vrrp_") {
        &mut g.vrrp_notify_fifo
    } else if keyword.starts_with("lvs_") {
        &mut g.lvs_notify_fifo
    } else {
        &mut g.notify_fifo
    }
}

fn host_syntax_ok(s: &str) -> bool {
    s.parse::<IpAddr>().is_ok()
        || (!s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            && !s.chars().all(|c| c.is_ascii_digit() || c == '.'))
}

/// keepalived's shell-style splitting for script keywords: whitespace
/// separates words; single and double quotes group; backslash escapes
/// (`\n`, `\t`, `\xHH`, octal…).
pub fn shell_split(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (Some('\''), c) if c != '\\' => cur.push(c),
            (_, '\\') => {
                in_word = true;
                let Some(e) = chars.next() else { break };
                match e {
                    'a' => cur.push('\x07'),
                    'b' => cur.push('\x08'),
                    'E' => cur.push('\x1b'),
                    'f' => cur.push('\x0c'),
                    'n' => cur.push('\n'),
                    'r' => cur.push('\r'),
                    't' => cur.push('\t'),
                    'v' => cur.push('\x0b'),
                    'x' if chars.peek().is_some_and(|c| c.is_ascii_hexdigit()) => {
                        let mut v = 0u32;
                        while let Some(d) = chars.peek().and_then(|c| c.to_digit(16)) {
                            v = (v << 4 | d) & 0xff;
                            chars.next();
                        }
                        cur.push(char::from_u32(v).unwrap_or('?'));
                    }
                    '0'..='7' => {
                        let mut v = e.to_digit(8).unwrap_or(0);
                        for _ in 0..2 {
                            match chars.peek().and_then(|c| c.to_digit(8)) {
                                Some(d) => {
                                    v = v * 8 + d;
                                    chars.next();
                                }
                                None => break,
                            }
                        }
                        cur.push(char::from_u32(v & 0xff).unwrap_or('?'));
                    }
                    other => cur.push(other),
                }
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (_, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::shell_split;
    use crate::model::CheckerKind;

    /// The kept directives as (keyword, arguments), for comparing.
    fn kept_directives(extra: &[crate::model::Directive]) -> Vec<(&str, Vec<&str>)> {
        extra
            .iter()
            .map(|d| {
                (
                    d.keyword.as_str(),
                    d.args.iter().map(String::as_str).collect(),
                )
            })
            .collect()
    }

    /// The `retry` of each checker of the only real server in `text`.
    fn retries(text: &str) -> Vec<(String, u32)> {
        let config = crate::parse_str(text, &crate::Options::offline()).config;
        config.virtual_servers[0].real_servers[0]
            .checkers
            .iter()
            .map(|c| {
                let kind = match c.kind {
                    CheckerKind::Dns(_) => "DNS",
                    CheckerKind::Misc(_) => "MISC",
                    _ => "other",
                };
                (kind.to_owned(), c.timing.retry)
            })
            .collect()
    }

    fn with_checkers(vs_extra: &str, rs_extra: &str) -> String {
        format!(
            "virtual_server 10.0.0.1 53 {{\n protocol UDP\n lb_algo rr\n lb_kind DR\n {vs_extra}\n \
             real_server 10.0.0.2 53 {{\n {rs_extra}\n \
             DNS_CHECK {{\n }}\n MISC_CHECK {{\n misc_path /bin/true\n }}\n \
             MISC_CHECK {{\n misc_path /bin/true\n retry 2\n }}\n TCP_CHECK {{\n }}\n }}\n}}\n"
        )
    }

    #[test]
    fn whole_second_timers_read_as_the_float_parser_reads_them() {
        use std::time::Duration;
        // (delay_loop as written, what it is; None: rejected, default 60 s)
        let cases = [
            ("6", Some(Duration::from_secs(6))),
            ("000000007", Some(Duration::from_secs(7))),
            ("999999999", Some(Duration::from_secs(999_999_999))),
            ("1234567890", Some(Duration::from_secs(1_234_567_890))),
            ("1.5", Some(Duration::from_millis(1500))),
            ("0", None),
            ("6x", None),
        ];
        for (written, expected) in cases {
            let text = with_checkers(&format!("delay_loop {written}"), "");
            let parsed = crate::parse_str(&text, &crate::Options::offline());
            let vs = &parsed.config.virtual_servers[0];
            let rejected = parsed
                .diagnostics
                .iter()
                .any(|d| d.code == crate::diag::Code::InvalidNumber);
            assert_eq!(rejected, expected.is_none(), "{written}");
            let default = Duration::from_secs(60);
            assert_eq!(
                vs.timing.delay_loop,
                expected.unwrap_or(default),
                "{written}"
            );
        }
    }

    #[test]
    fn lvs_sync_daemon_is_kept_for_lvskitd_without_a_warning() {
        let text = "global_defs {\n lvs_sync_daemon eth0 VI_1 id 7\n}\n";
        let parsed = crate::parse_str(text, &crate::Options::offline());
        assert!(
            parsed
                .diagnostics
                .iter()
                .all(|d| d.code != crate::diag::Code::NotSupported),
            "{:?}",
            parsed.diagnostics
        );
        let kept = kept_directives(&parsed.config.global.extra);
        assert_eq!(kept, [("lvs_sync_daemon", vec!["eth0", "VI_1", "id", "7"])]);
    }

    #[test]
    fn lb_kind_keeps_its_tunnel_options_through_a_format() {
        let text = "virtual_server 10.0.0.1 80 {\n lb_kind TUN type gue port 6080 csum\n}\n";
        let parsed = crate::parse_str(text, &crate::Options::offline());
        let vs = &parsed.config.virtual_servers[0];
        assert_eq!(vs.lb_kind, crate::model::ForwardingMethod::Tun);
        assert_eq!(vs.lb_kind_options, ["type", "gue", "port", "6080", "csum"]);
        let again = crate::parse_str(
            &crate::format::format(&parsed.config),
            &crate::Options::offline(),
        );
        assert_eq!(again.config.virtual_servers, parsed.config.virtual_servers);
    }

    #[test]
    fn connection_options_for_lvskitd_are_kept_without_a_warning() {
        let text = "virtual_server 10.0.0.1 53 {\n protocol UDP\n lb_algo rr\n lb_kind DR\n \
             sorry_server 10.0.0.9 53\n sorry_server_inhibit\n sorry_server_lvs_method NAT\n \
             real_server 10.0.0.2 53 {\n alpha\n virtualhost rs.example\n lvs_method TUN\n \
             UDP_CHECK {\n payload Ab12f 3\n require_reply 0102\n bind_if eth0\n fwmark 7\n \
             min_reply_length 2\n }\n }\n}\n";
        let parsed = crate::parse_str(text, &crate::Options::offline());
        let unsupported: Vec<String> = parsed
            .diagnostics
            .iter()
            .filter(|d| d.code == crate::diag::Code::NotSupported)
            .map(|d| d.message.clone())
            .collect();
        assert!(unsupported.is_empty(), "{unsupported:?}");
        let rs = &parsed.config.virtual_servers[0].real_servers[0];
        let rs_kept: Vec<&str> = rs.extra.iter().map(|d| d.keyword.as_str()).collect();
        assert_eq!(rs_kept, ["alpha", "virtualhost", "lvs_method"]);
        let vs_kept: Vec<&str> = parsed.config.virtual_servers[0]
            .extra
            .iter()
            .map(|d| d.keyword.as_str())
            .collect();
        assert_eq!(vs_kept, ["sorry_server_inhibit", "sorry_server_lvs_method"]);
        let checker = &rs.checkers[0];
        let CheckerKind::Udp(udp) = &checker.kind else {
            panic!("{:?}", checker.kind)
        };
        assert_eq!(udp.payload.as_deref(), Some("Ab12f 3"));
        assert!(udp.require_reply);
        let kept = kept_directives(&checker.extra);
        assert_eq!(
            kept,
            [
                ("require_reply", vec!["0102"]),
                ("bind_if", vec!["eth0"]),
                ("fwmark", vec!["7"]),
                ("min_reply_length", vec!["2"]),
            ]
        );
    }

    #[test]
    fn retry_defaults_per_checker_unless_some_level_sets_it() {
        let owned = |v: &[(&str, u32)]| -> Vec<(String, u32)> {
            v.iter().map(|(k, r)| ((*k).to_owned(), *r)).collect()
        };
        assert_eq!(
            retries(&with_checkers("", "")),
            owned(&[("DNS", 3), ("MISC", 0), ("MISC", 2), ("other", 1)])
        );
        assert_eq!(
            retries(&with_checkers("retry 4", "")),
            owned(&[("DNS", 4), ("MISC", 4), ("MISC", 2), ("other", 4)])
        );
        assert_eq!(
            retries(&with_checkers("", "retry 5")),
            owned(&[("DNS", 5), ("MISC", 5), ("MISC", 2), ("other", 5)])
        );
    }

    #[test]
    fn shell_words() {
        assert_eq!(
            shell_split(r#"notify "/bin/x a 'b c'" 'q r' s\ t \x41"#),
            ["notify", "/bin/x a 'b c'", "q r", "s t", "A"]
        );
    }
}
