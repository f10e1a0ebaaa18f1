//! The canonical formatter: one spelling for every configuration, with every
//! default written out, so that `parse(format(c)) == c`.
//!
//! Strings are written bare when that is unambiguous and in double quotes
//! otherwise. keepalived's syntax has no escape for `"` in a plain word, so a
//! string containing `"` cannot round-trip; nor can text that looks like a
//! `$NAME` reference to a definition.

use std::time::Duration;

use crate::model::*;

/// Formats a configuration in canonical form.
pub fn format(c: &Config) -> String {
    let mut f = Formatter {
        out: String::new(),
        depth: 0,
    };
    f.config(c);
    f.out
}

struct Formatter {
    out: String,
    depth: usize,
}

/// A word as keepalived reads it back: bare, or in double quotes.
pub fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && !s.starts_with(['@', '$', '~'])
        && !s.contains(|c: char| c.is_whitespace() || "{}#!\"\\".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("\"{s}\"")
    }
}

/// A script command in double quotes, with `\` and `"` escaped for
/// keepalived's shell-style splitting.
fn quote_command(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        if c == '"' || c == '\\' {
            o.push('\\');
        }
        o.push(c);
    }
    o.push('"');
    o
}

/// A timer in seconds, with up to six decimals.
pub fn seconds(d: Duration) -> String {
    if d.subsec_micros() == 0 {
        d.as_secs().to_string()
    } else {
        let s = format!("{}.{:06}", d.as_secs(), d.subsec_micros());
        s.trim_end_matches('0').to_string()
    }
}

impl Formatter {
    fn line(&mut self, words: &[String]) {
        for _ in 0..self.depth {
            self.out.push_str("    ");
        }
        self.out.push_str(&words.join(" "));
        self.out.push('\n');
    }

    fn kv(&mut self, k: &str, v: impl Into<String>) {
        self.line(&[k.to_string(), v.into()]);
    }

    fn word(&mut self, k: &str) {
        self.line(&[k.to_string()]);
    }

    fn open(&mut self, words: &[String]) {
        let mut w = words.to_vec();
        w.push("{".into());
        self.line(&w);
        self.depth += 1;
    }

    fn close(&mut self) {
        self.depth = self.depth.saturating_sub(1);
        self.line(&["}".to_string()]);
    }

    fn opt(&mut self, k: &str, v: &Option<String>) {
        if let Some(v) = v {
            self.kv(k, quote(v));
        }
    }

    fn flag(&mut self, k: &str, on: bool) {
        if on {
            self.word(k);
        }
    }

    fn script(&mut self, k: &str, s: &Option<Script>) {
        if let Some(s) = s {
            let mut w = vec![k.to_string(), quote_command(&s.command)];
            if let Some(u) = &s.user {
                w.push(quote(u));
                if let Some(g) = &s.group {
                    w.push(quote(g));
                }
            }
            self.line(&w);
        }
    }

    fn values(&mut self, k: &str, lines: &[Vec<String>]) {
        self.open(&[k.to_string()]);
        for l in lines {
            let w: Vec<String> = l.iter().map(|x| quote(x)).collect();
            self.line(&w);
        }
        self.close();
    }

    fn directives(&mut self, ds: &[Directive]) {
        for d in ds {
            let mut w = vec![d.keyword.clone()];
            w.extend(d.args.iter().map(|a| quote(a)));
            match &d.body {
                DirectiveBody::None => self.line(&w),
                DirectiveBody::Values(v) => {
                    self.open(&w);
                    for l in v {
                        let w: Vec<String> = l.iter().map(|x| quote(x)).collect();
                        self.line(&w);
                    }
                    self.close();
                }
                DirectiveBody::Block(b) => {
                    self.open(&w);
                    self.directives(b);
                    self.close();
                }
            }
        }
    }

    fn config(&mut self, c: &Config) {
        self.global(&c.global);
        for s in &c.vrrp_scripts {
            self.vrrp_script(s);
        }
        for t in &c.vrrp_track_files {
            self.open(&["vrrp_track_file".into(), quote(&t.name)]);
            self.opt("file", &t.file);
            self.kv("weight", t.weight.to_string());
            self.directives(&t.extra);
            self.close();
        }
        for g in &c.vrrp_sync_groups {
            self.sync_group(g);
        }
        for i in &c.vrrp_instances {
            self.instance(i);
        }
        for g in &c.virtual_server_groups {
            self.values(
                &format!("virtual_server_group {}", quote(&g.name)),
                &g.entries,
            );
        }
        for vs in &c.virtual_servers {
            self.virtual_server(vs);
        }
        if let Some(s) = &c.ssl {
            self.open(&["SSL".into()]);
            self.opt("password", &s.password);
            self.opt("ca", &s.ca);
            self.opt("certificate", &s.certificate);
            self.opt("key", &s.key);
            self.directives(&s.extra);
            self.close();
        }
        self.directives(&c.extra);
    }

    fn global(&mut self, g: &GlobalDefs) {
        self.open(&["global_defs".into()]);
        self.opt("router_id", &g.router_id);
        if !g.notification_email.is_empty() {
            let lines: Vec<Vec<String>> = g
                .notification_email
                .iter()
                .map(|e| vec![e.clone()])
                .collect();
            self.values("notification_email", &lines);
        }
        self.opt("notification_email_from", &g.notification_email_from);
        if let Some(s) = &g.smtp_server {
            self.line(&["smtp_server".into(), quote(s), g.smtp_port.to_string()]);
        }
        self.kv("smtp_connect_timeout", seconds(g.smtp_connect_timeout));
        self.flag("enable_script_security", g.enable_script_security);
        if let Some((u, grp)) = &g.script_user {
            let mut w = vec!["script_user".to_string(), quote(u)];
            if let Some(grp) = grp {
                w.push(quote(grp));
            }
            self.line(&w);
        }
        self.flag("vrrp_strict", g.vrrp_strict);
        self.kv("vrrp_version", g.vrrp_version.to_string());
        for (prefix, fifo) in [
            ("", &g.notify_fifo),
            ("vrrp_", &g.vrrp_notify_fifo),
            ("lvs_", &g.lvs_notify_fifo),
        ] {
            if let Some(path) = &fifo.path {
                let mut w = vec![format!("{prefix}notify_fifo"), quote(path)];
                if let Some((u, grp)) = &fifo.owner {
                    w.push(quote(u));
                    w.extend(grp.as_deref().map(quote));
                }
                self.line(&w);
            }
            self.script(&format!("{prefix}notify_fifo_script"), &fifo.script);
        }
        self.directives(&g.extra);
        self.close();
    }

    fn vrrp_script(&mut self, s: &VrrpScript) {
        self.open(&["vrrp_script".into(), quote(&s.name)]);
        self.script("script", &s.script);
        self.kv("interval", seconds(s.interval));
        self.kv("timeout", seconds(s.timeout));
        let mut w = vec!["weight".to_string(), s.weight.to_string()];
        if s.weight_reverse {
            w.push("reverse".into());
        }
        self.line(&w);
        self.kv("rise", s.rise.to_string());
        self.kv("fall", s.fall.to_string());
        if let Some((u, g)) = &s.user {
            let mut w = vec!["user".to_string(), quote(u)];
            if let Some(g) = g {
                w.push(quote(g));
            }
            self.line(&w);
        }
        self.flag("init_fail", s.init_fail);
        self.directives(&s.extra);
        self.close();
    }

    fn track_refs(&mut self, k: &str, refs: &[TrackRef]) {
        if refs.is_empty() {
            return;
        }
        self.open(&[k.to_string()]);
        for r in refs {
            let mut w = vec![quote(&r.name)];
            if let Some(x) = r.weight {
                w.push("weight".into());
                w.push(x.to_string());
            }
            if r.reverse {
                w.push("reverse".into());
            }
            self.line(&w);
        }
        self.close();
    }

    fn sync_group(&mut self, g: &SyncGroup) {
        self.open(&["vrrp_sync_group".into(), quote(&g.name)]);
        let lines: Vec<Vec<String>> = g.group.iter().map(|x| vec![x.clone()]).collect();
        self.values("group", &lines);
        self.script("notify_master", &g.notify_master);
        self.script("notify_backup", &g.notify_backup);
        self.script("notify_fault", &g.notify_fault);
        self.script("notify_stop", &g.notify_stop);
        self.script("notify", &g.notify);
        self.flag("smtp_alert", g.smtp_alert);
        self.track_refs("track_script", &g.track_script);
        self.track_refs("track_interface", &g.track_interface);
        self.directives(&g.extra);
        self.close();
    }

    fn vip(v: &VirtualAddress) -> Vec<String> {
        let mut w = vec![format!("{}/{}", v.address, v.prefix_len)];
        if let Some(b) = v.broadcast {
            w.extend(["brd".into(), b.to_string()]);
        }
        if let Some(d) = &v.dev {
            w.extend(["dev".into(), quote(d)]);
        }
        if let Some(s) = &v.scope {
            w.extend(["scope".into(), quote(s)]);
        }
        if let Some(l) = &v.label {
            w.extend(["label".into(), quote(l)]);
        }
        w.extend(v.options.iter().map(|o| quote(o)));
        w
    }

    fn instance(&mut self, i: &VrrpInstance) {
        self.open(&["vrrp_instance".into(), quote(&i.name)]);
        self.kv(
            "state",
            match i.state {
                InitialState::Master => "MASTER",
                InitialState::Backup => "BACKUP",
            },
        );
        self.opt("interface", &i.interface);
        if let Some(v) = i.virtual_router_id {
            self.kv("virtual_router_id", v.to_string());
        }
        self.kv("priority", i.priority.to_string());
        self.kv("advert_int", seconds(i.advert_int));
        self.kv("version", i.version.to_string());
        self.flag("nopreempt", i.nopreempt);
        self.kv("preempt_delay", seconds(i.preempt_delay));
        if let Some(a) = &i.authentication {
            self.open(&["authentication".into()]);
            self.kv(
                "auth_type",
                match a.auth_type {
                    AuthType::Pass => "PASS",
                    AuthType::Ah => "AH",
                },
            );
            self.kv("auth_pass", quote(&a.auth_pass));
            self.close();
        }
        for (k, list) in [
            ("virtual_ipaddress", &i.virtual_ipaddress),
            ("virtual_ipaddress_excluded", &i.virtual_ipaddress_excluded),
        ] {
            if k == "virtual_ipaddress" || !list.is_empty() {
                let lines: Vec<Vec<String>> = list.iter().map(Self::vip).collect();
                self.open(&[k.to_string()]);
                for l in lines {
                    self.line(&l);
                }
                self.close();
            }
        }
        if let Some(a) = i.unicast_src_ip {
            self.kv("unicast_src_ip", a.to_string());
        }
        if let Some(a) = i.mcast_src_ip {
            self.kv("mcast_src_ip", a.to_string());
        }
        if !i.unicast_peer.is_empty() {
            let lines: Vec<Vec<String>> =
                i.unicast_peer.iter().map(|a| vec![a.to_string()]).collect();
            self.values("unicast_peer", &lines);
        }
        self.track_refs("track_interface", &i.track_interface);
        self.track_refs("track_script", &i.track_script);
        self.script("notify_master", &i.notify_master);
        self.script("notify_backup", &i.notify_backup);
        self.script("notify_fault", &i.notify_fault);
        self.script("notify_stop", &i.notify_stop);
        self.script("notify", &i.notify);
        self.flag("smtp_alert", i.smtp_alert);
        self.kv(
            "garp_master_delay",
            i.garp_master_delay.as_secs().to_string(),
        );
        self.directives(&i.extra);
        self.close();
    }

    fn timing(&mut self, t: &CheckTiming) {
        self.kv("delay_loop", seconds(t.delay_loop));
        self.kv("connect_timeout", seconds(t.connect_timeout));
        self.kv("retry", t.retry.to_string());
        if let Some(d) = t.delay_before_retry {
            self.kv("delay_before_retry", seconds(d));
        }
        if let Some(d) = t.warmup {
            self.kv("warmup", seconds(d));
        }
    }

    fn virtual_server(&mut self, vs: &VirtualServer) {
        let head: Vec<String> = match &vs.service {
            ServiceAddress::Address { ip, port } => {
                vec!["virtual_server".into(), ip.to_string(), port.to_string()]
            }
            ServiceAddress::Fwmark(m) => {
                vec!["virtual_server".into(), "fwmark".into(), m.to_string()]
            }
            ServiceAddress::Group(g) => vec!["virtual_server".into(), "group".into(), quote(g)],
        };
        self.open(&head);
        self.timing(&vs.timing);
        self.kv("lb_algo", vs.lb_algo.name());
        let mut lb_kind = vec!["lb_kind".to_owned(), vs.lb_kind.name().to_owned()];
        lb_kind.extend(vs.lb_kind_options.iter().cloned());
        self.line(&lb_kind);
        self.kv("protocol", vs.protocol.name());
        if let Some(p) = vs.persistence_timeout {
            self.kv("persistence_timeout", seconds(p));
        }
        self.opt("virtualhost", &vs.virtualhost);
        if let Some((ip, port)) = vs.sorry_server {
            self.line(&["sorry_server".into(), ip.to_string(), port.to_string()]);
        }
        self.kv("quorum", vs.quorum.to_string());
        self.kv("hysteresis", vs.hysteresis.to_string());
        self.script("quorum_up", &vs.quorum_up);
        self.script("quorum_down", &vs.quorum_down);
        self.flag("ha_suspend", vs.ha_suspend);
        self.flag("alpha", vs.alpha);
        self.flag("omega", vs.omega);
        self.flag("inhibit_on_failure", vs.inhibit_on_failure);
        self.directives(&vs.extra);
        for rs in &vs.real_servers {
            self.open(&[
                "real_server".into(),
                rs.address.to_string(),
                rs.port.to_string(),
            ]);
            self.kv("weight", rs.weight.to_string());
            if rs.inhibit_on_failure != vs.inhibit_on_failure {
                self.kv("inhibit_on_failure", rs.inhibit_on_failure.to_string());
            }
            self.timing(&rs.timing);
            self.script("notify_up", &rs.notify_up);
            self.script("notify_down", &rs.notify_down);
            self.directives(&rs.extra);
            for c in &rs.checkers {
                self.checker(c);
            }
            self.close();
        }
        self.close();
    }

    fn checker(&mut self, c: &Checker) {
        let name = match &c.kind {
            CheckerKind::Tcp => "TCP_CHECK",
            CheckerKind::Http(_) => "HTTP_GET",
            CheckerKind::Ssl(_) => "SSL_GET",
            CheckerKind::Smtp(_) => "SMTP_CHECK",
            CheckerKind::Dns(_) => "DNS_CHECK",
            CheckerKind::Misc(_) => "MISC_CHECK",
            CheckerKind::Udp(_) => "UDP_CHECK",
            CheckerKind::Ping => "PING_CHECK",
            CheckerKind::File(_) => "FILE_CHECK",
            CheckerKind::Bfd(_) => "BFD_CHECK",
        };
        self.open(&[name.into()]);
        let has_connect = !matches!(
            c.kind,
            CheckerKind::Misc(_) | CheckerKind::File(_) | CheckerKind::Bfd(_)
        );
        if has_connect {
            self.kv("connect_ip", c.connect_ip.to_string());
            self.kv("connect_port", c.connect_port.to_string());
            if let Some(b) = c.bind_ip {
                self.kv("bindto", b.to_string());
            }
            if let Some(p) = c.bind_port {
                self.kv("bind_port", p.to_string());
            }
        }
        match &c.kind {
            CheckerKind::File(_) | CheckerKind::Bfd(_) => {}
            CheckerKind::Misc(_) => {
                self.kv("delay_loop", seconds(c.timing.delay_loop));
                self.kv("retry", c.timing.retry.to_string());
                if let Some(d) = c.timing.delay_before_retry {
                    self.kv("delay_before_retry", seconds(d));
                }
                if let Some(d) = c.timing.warmup {
                    self.kv("warmup", seconds(d));
                }
            }
            _ => self.timing(&c.timing),
        }
        match &c.kind {
            CheckerKind::Http(h) | CheckerKind::Ssl(h) => {
                self.opt("virtualhost", &h.virtualhost);
                self.opt("http_protocol", &h.http_protocol);
                for u in &h.urls {
                    self.open(&["url".into()]);
                    self.kv("path", quote(&u.path));
                    self.opt("digest", &u.digest);
                    if !u.status_code.is_empty() {
                        let mut w = vec!["status_code".to_string()];
                        w.extend(u.status_code.iter().map(|s| quote(s)));
                        self.line(&w);
                    }
                    self.opt("virtualhost", &u.virtualhost);
                    self.directives(&u.extra);
                    self.close();
                }
            }
            CheckerKind::Smtp(s) => {
                self.opt("helo_name", &s.helo_name);
                for h in &s.hosts {
                    self.open(&["host".into()]);
                    self.directives(h);
                    self.close();
                }
            }
            CheckerKind::Dns(d) => {
                self.kv("type", quote(&d.query_type));
                self.kv("name", quote(&d.name));
            }
            CheckerKind::Misc(m) => {
                self.script("misc_path", &m.path);
                if let Some(t) = m.timeout {
                    self.kv("misc_timeout", t.as_secs().to_string());
                }
                self.flag("misc_dynamic", m.dynamic);
            }
            CheckerKind::Udp(u) => {
                self.opt("payload", &u.payload);
                self.flag("require_reply", u.require_reply);
            }
            CheckerKind::File(f) => self.opt("track_file", &f.track_file),
            CheckerKind::Bfd(n) => self.opt("name", n),
            CheckerKind::Tcp | CheckerKind::Ping => {}
        }
        self.directives(&c.extra);
        self.close();
    }
}

impl std::fmt::Display for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&format(self))
    }
}
