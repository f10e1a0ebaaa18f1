//! keepalived.conf checker blocks → `lvskit-healthcheck` probe specs.
//!
//! kconf has already resolved the timers each checker inherits from its
//! real and virtual server (`delay_loop`, `connect_timeout`, `retry`,
//! `delay_before_retry`, `warmup`); this module maps what each kind needs
//! and the connection options kconf keeps as plain directives (`bind_if`,
//! `fwmark`, `alpha`). Options whose absence would make a check pass that
//! keepalived fails (an HTTP `regex`, a UDP reply pattern with `X`
//! wildcards, BFD_CHECK) are refused by name rather than ignored.

use anyhow::{Context, Result, bail};
use lvskit_healthcheck::config::{
    ClientCertificate, DnsCheck, FileCheck, HttpGet, HttpVersion, MiscCheck, SmtpCheck, SslGet,
    StatusCodes, UdpCheck, UrlCheck, parse_digest,
};
use lvskit_healthcheck::{CheckKind, CheckSpec};
use lvskit_kconf::model::{self as kconf, CheckerKind, Directive};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr as _;

/// keepalived's default `max_reply_length` for UDP_CHECK.
const UDP_MAX_REPLY_DEFAULT: usize = 255;

/// The probe specs of one checker block of `rs` in `vs`: one, except for an
/// SMTP_CHECK with `host` blocks (one per host; all must pass).
pub fn specs(
    config: &kconf::Config,
    vs: &kconf::VirtualServer,
    rs: &kconf::RealServer,
    checker: &kconf::Checker,
) -> Result<Vec<CheckSpec>> {
    let target = SocketAddr::new(rs.address, rs.port);
    let kind = match &checker.kind {
        CheckerKind::Tcp => CheckKind::Tcp,
        CheckerKind::Http(http) => CheckKind::Http(http_get(http, vs, rs)?),
        CheckerKind::Ssl(http) => CheckKind::Ssl(ssl_get(config, http, vs, rs, checker)?),
        CheckerKind::Smtp(smtp) => CheckKind::Smtp(SmtpCheck {
            helo_name: smtp
                .helo_name
                .clone()
                .unwrap_or_else(|| SmtpCheck::default().helo_name),
            ehlo: false,
        }),
        CheckerKind::Dns(dns) => CheckKind::Dns(DnsCheck {
            record_type: dns.query_type.clone(),
            name: dns.name.clone(),
        }),
        CheckerKind::Misc(misc) => CheckKind::Misc(misc_check(config, misc, checker)?),
        CheckerKind::Udp(udp) => CheckKind::Udp(udp_check(udp, checker)?),
        CheckerKind::Ping => CheckKind::Ping,
        CheckerKind::File(file) => CheckKind::File(file_check(config, file, checker)?),
        CheckerKind::Bfd(_) => bail!("BFD_CHECK is not supported by lvskitd (no BFD engine)"),
    };
    let mut spec = CheckSpec::new(target, kind, checker.timing.delay_loop);
    spec.connect.connect_ip = Some(checker.connect_ip);
    spec.connect.connect_port = Some(checker.connect_port);
    spec.connect.bindto = checker.bind_ip;
    spec.connect.bind_port = checker.bind_port;
    spec.connect.bind_if = word(&checker.extra, "bind_if").map(str::to_owned);
    spec.connect.fwmark = number(&checker.extra, "fwmark")?;
    spec.connect.connect_timeout = checker.timing.connect_timeout;
    spec.timing.retry = checker.timing.retry;
    if let Some(delay) = checker.timing.delay_before_retry {
        spec.timing.delay_before_retry = delay;
    }
    if let Some(warmup) = checker.timing.warmup {
        spec.timing.warmup = warmup;
    }
    // `alpha` is inherited like the timers: checker, real server, virtual
    // server.
    spec.timing.alpha = flag(&checker.extra, "alpha")
        .or_else(|| flag(&rs.extra, "alpha"))
        .unwrap_or(vs.alpha);
    match &checker.kind {
        CheckerKind::Smtp(smtp) if !smtp.hosts.is_empty() => smtp
            .hosts
            .iter()
            .map(|host| smtp_host(&spec, host))
            .collect(),
        _ => Ok(vec![spec]),
    }
}

/// One `host { … }` of an SMTP_CHECK: the checker's spec with the host's
/// own connection options.
fn smtp_host(base: &CheckSpec, host: &[Directive]) -> Result<CheckSpec> {
    let mut spec = base.clone();
    if let Some(ip) = word(host, "connect_ip") {
        spec.connect.connect_ip = Some(ip.parse().context("SMTP_CHECK host connect_ip")?);
    }
    if let Some(port) = number(host, "connect_port")? {
        spec.connect.connect_port = Some(port);
    }
    if let Some(ip) = word(host, "bindto") {
        spec.connect.bindto = Some(ip.parse::<IpAddr>().context("SMTP_CHECK host bindto")?);
    }
    if let Some(port) = number(host, "bind_port")? {
        spec.connect.bind_port = Some(port);
    }
    if let Some(name) = word(host, "bind_if") {
        spec.connect.bind_if = Some(name.to_owned());
    }
    if let Some(mark) = number(host, "fwmark")? {
        spec.connect.fwmark = Some(mark);
    }
    Ok(spec)
}

/// HTTP_GET: `virtualhost` comes from the url, else the checker, else the
/// real server, else the virtual server.
fn http_get(
    http: &kconf::HttpCheck,
    vs: &kconf::VirtualServer,
    rs: &kconf::RealServer,
) -> Result<HttpGet> {
    let version = match http.http_protocol.as_deref() {
        None | Some("1.0" | "1.0C") => HttpVersion::Http10,
        Some("1.1") => HttpVersion::Http11,
        Some(other) => bail!("http_protocol {other}: expected 1.0, 1.0C or 1.1"),
    };
    let urls = http
        .urls
        .iter()
        .map(|url| {
            if let Some(unsupported) = url.extra.first() {
                bail!(
                    "HTTP_GET url {}: `{}` is not supported by lvskitd",
                    url.path,
                    unsupported.keyword
                );
            }
            let status_code = if url.status_code.is_empty() {
                StatusCodes::default()
            } else {
                StatusCodes::from_str(&url.status_code.join(" "))
                    .with_context(|| format!("url {}: status_code", url.path))?
            };
            let digest = url
                .digest
                .as_deref()
                .map(parse_digest)
                .transpose()
                .with_context(|| format!("url {}: digest", url.path))?;
            Ok(UrlCheck {
                path: url.path.clone(),
                status_code,
                digest,
                virtualhost: url.virtualhost.clone(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(HttpGet {
        urls,
        version,
        virtualhost: http
            .virtualhost
            .clone()
            .or_else(|| word(&rs.extra, "virtualhost").map(str::to_owned))
            .or_else(|| vs.virtualhost.clone()),
    })
}

/// SSL_GET: the HTTP part, the CA and client certificate of the global
/// `SSL` block, and SNI (the virtualhost) with `enable_sni`.
fn ssl_get(
    config: &kconf::Config,
    http: &kconf::HttpCheck,
    vs: &kconf::VirtualServer,
    rs: &kconf::RealServer,
    checker: &kconf::Checker,
) -> Result<SslGet> {
    let http = http_get(http, vs, rs)?;
    let ssl = config.ssl.clone().unwrap_or_default();
    if ssl.password.is_some() {
        bail!(
            "SSL block: password (an encrypted key) is not supported; give lvskitd the key unencrypted"
        );
    }
    let client_certificate = match (ssl.certificate, ssl.key) {
        (Some(certificate), Some(key)) => Some(ClientCertificate {
            certificate: PathBuf::from(certificate),
            key: PathBuf::from(key),
        }),
        (None, None) => None,
        _ => bail!("SSL block: certificate and key go together"),
    };
    let sni = if flag(&checker.extra, "enable_sni").unwrap_or(false) {
        let name = http
            .virtualhost
            .clone()
            .context("SSL_GET enable_sni needs a virtualhost to send")?;
        Some(name)
    } else {
        None
    };
    Ok(SslGet {
        http,
        ca_file: ssl.ca.map(PathBuf::from),
        sni,
        client_certificate,
    })
}

/// MISC_CHECK: the script runs as its own `user`, else `script_user`, else
/// as lvskitd; `misc_timeout` defaults to `delay_loop`.
fn misc_check(
    config: &kconf::Config,
    misc: &kconf::MiscCheck,
    checker: &kconf::Checker,
) -> Result<MiscCheck> {
    let script = misc.path.as_ref().context("MISC_CHECK without misc_path")?;
    let (program, args) = script
        .argv
        .split_first()
        .context("MISC_CHECK misc_path is empty")?;
    let user = match (&script.user, &config.global.script_user) {
        (Some(user), _) => Some(user_ids(user, script.group.as_deref())?),
        (None, Some((user, group))) => Some(user_ids(user, group.as_deref())?),
        (None, None) => None,
    };
    Ok(MiscCheck {
        program: PathBuf::from(program),
        args: args.to_vec(),
        timeout: misc.timeout.unwrap_or(checker.timing.delay_loop),
        dynamic: misc.dynamic,
        user,
    })
}

/// A user (and group, default: the user's) as ids.
fn user_ids(user: &str, group: Option<&str>) -> Result<(u32, u32)> {
    let entry = nix::unistd::User::from_name(user)
        .with_context(|| format!("look up user {user}"))?
        .with_context(|| format!("no user {user}"))?;
    let gid = match group {
        Some(group) => {
            nix::unistd::Group::from_name(group)
                .with_context(|| format!("look up group {group}"))?
                .with_context(|| format!("no group {group}"))?
                .gid
        }
        None => entry.gid,
    };
    Ok((entry.uid.as_raw(), gid.as_raw()))
}

/// UDP_CHECK: `payload` and `require_reply` as keepalived's free-form hex,
/// `min_reply_length` (0) and `max_reply_length` (255).
fn udp_check(udp: &kconf::UdpCheck, checker: &kconf::Checker) -> Result<UdpCheck> {
    let payload = match &udp.payload {
        Some(text) => keepalived_hex(text).context("UDP_CHECK payload")?,
        None => Vec::new(),
    };
    let expected_reply = checker
        .extra
        .iter()
        .find(|d| d.keyword == "require_reply" && !d.args.is_empty())
        .map(|d| keepalived_hex(&d.args.join(" ")).context("UDP_CHECK require_reply"))
        .transpose()?;
    let min_reply_length = number(&checker.extra, "min_reply_length")?.unwrap_or(0);
    let max_reply_length =
        number(&checker.extra, "max_reply_length")?.unwrap_or(UDP_MAX_REPLY_DEFAULT);
    Ok(UdpCheck {
        payload,
        require_reply: udp.require_reply,
        expected_reply,
        min_reply_length,
        max_reply_length: Some(max_reply_length),
    })
}

/// keepalived's hex strings: words of hex digits, read two digits to a byte
/// with an odd last digit a byte of its own (`Ab12f 3` is AB 12 0F 03).
pub fn keepalived_hex(text: &str) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    for word in text.split_whitespace() {
        let digits: Vec<u8> = word
            .chars()
            .map(|c| match c.to_digit(16) {
                Some(d) => Ok(d as u8),
                None if c == 'x' || c == 'X' => {
                    bail!("`{word}`: X (ignore this digit) is not supported by lvskitd")
                }
                None => bail!("`{word}` is not hexadecimal"),
            })
            .collect::<Result<_>>()?;
        for pair in digits.chunks(2) {
            bytes.push(match pair {
                [high, low] => high << 4 | low,
                [single] => *single,
                _ => unreachable!("chunks(2) yields one or two digits"),
            });
        }
    }
    Ok(bytes)
}

/// FILE_CHECK: the file of the named `track_file` block; the checker's
/// `weight W [reverse]`, else the block's weight.
fn file_check(
    config: &kconf::Config,
    file: &kconf::FileCheck,
    checker: &kconf::Checker,
) -> Result<FileCheck> {
    let name = file
        .track_file
        .as_deref()
        .context("FILE_CHECK without track_file")?;
    let tracked = config
        .vrrp_track_files
        .iter()
        .find(|t| t.name == name)
        .with_context(|| format!("FILE_CHECK: no track_file block named {name}"))?;
    let path = tracked
        .file
        .as_deref()
        .with_context(|| format!("track_file {name} names no file"))?;
    let weight_directive = checker.extra.iter().find(|d| d.keyword == "weight");
    let (weight, reverse) = match weight_directive {
        Some(d) => {
            let weight = d
                .args
                .first()
                .and_then(|w| w.parse().ok())
                .context("FILE_CHECK weight must be an integer")?;
            (weight, d.args.get(1).is_some_and(|r| r == "reverse"))
        }
        None => (tracked.weight, false),
    };
    Ok(FileCheck {
        path: PathBuf::from(path),
        weight,
        reverse,
    })
}

/// The first argument of `keyword` among `directives`.
fn word<'d>(directives: &'d [Directive], keyword: &str) -> Option<&'d str> {
    directives
        .iter()
        .find(|d| d.keyword == keyword)
        .and_then(|d| d.args.first())
        .map(String::as_str)
}

/// `keyword N`, parsed.
fn number<T: std::str::FromStr>(directives: &[Directive], keyword: &str) -> Result<Option<T>> {
    word(directives, keyword)
        .map(|text| {
            text.parse()
                .map_err(|_| anyhow::anyhow!("{keyword} {text}: not a valid number"))
        })
        .transpose()
}

/// A keepalived boolean keyword: bare means on, else `true/on/yes/1`.
fn flag(directives: &[Directive], keyword: &str) -> Option<bool> {
    let d = directives.iter().find(|d| d.keyword == keyword)?;
    Some(match d.args.first().map(String::as_str) {
        None => true,
        Some(value) => matches!(value, "true" | "on" | "yes" | "1"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// One virtual server whose only real server has the checker blocks
    /// `checkers`; timers set at the virtual server level.
    fn config(rs_extra: &str, checkers: &str) -> kconf::Config {
        let text = format!(
            "global_defs {{\n}}\n\
             vrrp_track_file weightfile {{\n file /run/weight\n weight 3\n}}\n\
             SSL {{\n ca /etc/ssl/ca.pem\n}}\n\
             virtual_server 10.0.0.100 80 {{\n delay_loop 6\n connect_timeout 4\n lb_algo rr\n \
             lb_kind DR\n protocol TCP\n virtualhost vs.example\n \
             real_server 10.0.0.11 80 {{\n delay_before_retry 2\n {rs_extra}\n {checkers}\n }}\n}}\n"
        );
        let parsed = lvskit_kconf::parse_str(&text, &lvskit_kconf::Options::offline());
        assert!(parsed.exit_code() != 4, "{}", parsed.render());
        parsed.config
    }

    fn map(rs_extra: &str, checkers: &str) -> Result<Vec<CheckSpec>> {
        let config = config(rs_extra, checkers);
        let vs = &config.virtual_servers[0];
        let rs = &vs.real_servers[0];
        let mut all = Vec::new();
        for checker in &rs.checkers {
            all.extend(specs(&config, vs, rs, checker)?);
        }
        Ok(all)
    }

    fn one(checker: &str) -> CheckSpec {
        let mut specs = map("", checker).unwrap();
        assert_eq!(specs.len(), 1);
        specs.remove(0)
    }

    #[test]
    fn timers_are_inherited_from_the_real_and_virtual_server() {
        let spec = one("TCP_CHECK {\n connect_port 8080\n }");
        assert_eq!(spec.kind, CheckKind::Tcp);
        assert_eq!(spec.destination(), "10.0.0.11:8080".parse().unwrap());
        assert_eq!(spec.timing.delay_loop, Duration::from_secs(6));
        assert_eq!(spec.connect.connect_timeout, Duration::from_secs(4));
        assert_eq!(spec.timing.delay_before_retry, Duration::from_secs(2));
        assert_eq!(spec.timing.retry, 1);
        assert_eq!(spec.timing.warmup, Duration::from_secs(6));
        assert!(!spec.timing.alpha);
    }

    #[test]
    fn http_get_urls_status_codes_digest_and_virtualhost() {
        let spec = one(
            "HTTP_GET {\n http_protocol 1.1\n url {\n path /health\n status_code 200 301-302\n \
             digest 9b3a0c85a887a256d6939da88aabd8cd\n }\n url {\n path /other\n virtualhost u.example\n }\n }",
        );
        let CheckKind::Http(http) = &spec.kind else {
            panic!("{:?}", spec.kind)
        };
        assert_eq!(http.version, HttpVersion::Http11);
        // Not set on the checker or the real server: the virtual server's.
        assert_eq!(http.virtualhost.as_deref(), Some("vs.example"));
        let health = &http.urls[0];
        assert_eq!(health.path, "/health");
        assert!(health.status_code.accepts(301) && !health.status_code.accepts(204));
        assert_eq!(health.digest.unwrap()[..2], [0x9b, 0x3a]);
        assert!(http.urls[1].status_code.accepts(204));
        assert_eq!(http.urls[1].virtualhost.as_deref(), Some("u.example"));
        // keepalived's delay_before_retry default for HTTP_GET is 3 s, but
        // the real server set 2 s.
        assert_eq!(spec.timing.delay_before_retry, Duration::from_secs(2));
    }

    #[test]
    fn virtualhost_of_the_real_server_beats_the_virtual_servers() {
        let specs = map(
            "virtualhost rs.example",
            "SSL_GET {\n enable_sni\n url {\n path /\n }\n }",
        )
        .unwrap();
        let CheckKind::Ssl(ssl) = &specs[0].kind else {
            panic!("{:?}", specs[0].kind)
        };
        assert_eq!(ssl.http.virtualhost.as_deref(), Some("rs.example"));
        assert_eq!(ssl.sni.as_deref(), Some("rs.example"));
        assert_eq!(ssl.ca_file, Some(PathBuf::from("/etc/ssl/ca.pem")));
    }

    #[test]
    fn the_ssl_block_s_certificate_and_key_are_presented_by_ssl_get() {
        let mut config = config("", "SSL_GET {\n url {\n path /\n }\n }");
        let map_ssl = |config: &kconf::Config| {
            let vs = &config.virtual_servers[0];
            let rs = &vs.real_servers[0];
            specs(config, vs, rs, &rs.checkers[0]).map(|mut specs| specs.remove(0).kind)
        };
        let ssl = config.ssl.as_mut().unwrap();
        ssl.certificate = Some("/etc/ssl/lb.pem".into());
        ssl.key = Some("/etc/ssl/lb.key".into());
        let CheckKind::Ssl(ssl_get) = map_ssl(&config).unwrap() else {
            panic!("not SSL_GET")
        };
        assert_eq!(
            ssl_get.client_certificate,
            Some(ClientCertificate {
                certificate: "/etc/ssl/lb.pem".into(),
                key: "/etc/ssl/lb.key".into(),
            })
        );
        // An encrypted key, or half a pair, is refused rather than dropped.
        config.ssl.as_mut().unwrap().password = Some("secret".into());
        let refused = map_ssl(&config).unwrap_err().to_string();
        assert!(refused.contains("password"), "{refused}");
        let ssl = config.ssl.as_mut().unwrap();
        ssl.password = None;
        ssl.key = None;
        let refused = map_ssl(&config).unwrap_err().to_string();
        assert!(refused.contains("go together"), "{refused}");
    }

    #[test]
    fn smtp_hosts_become_one_spec_each() {
        let specs = map(
            "",
            "SMTP_CHECK {\n helo_name lb.example\n host {\n connect_ip 10.0.0.21\n connect_port 25\n }\n \
             host {\n connect_ip 10.0.0.22\n connect_port 587\n }\n }",
        )
        .unwrap();
        let destinations: Vec<SocketAddr> = specs.iter().map(CheckSpec::destination).collect();
        assert_eq!(
            destinations,
            [
                "10.0.0.21:25".parse().unwrap(),
                "10.0.0.22:587".parse().unwrap()
            ]
        );
        let CheckKind::Smtp(smtp) = &specs[0].kind else {
            panic!("{:?}", specs[0].kind)
        };
        assert_eq!(smtp.helo_name, "lb.example");
    }

    #[test]
    fn dns_and_misc_get_their_own_retry_defaults() {
        let dns = one("DNS_CHECK {\n type A\n name example.org\n }");
        assert_eq!(
            dns.kind,
            CheckKind::Dns(DnsCheck {
                record_type: "A".into(),
                name: "example.org".into()
            })
        );
        assert_eq!(dns.timing.retry, 3);
        let misc = one("MISC_CHECK {\n misc_path \"/bin/check --port 80\"\n misc_dynamic\n }");
        let CheckKind::Misc(script) = &misc.kind else {
            panic!("{:?}", misc.kind)
        };
        assert_eq!(script.program, PathBuf::from("/bin/check"));
        assert_eq!(script.args, ["--port", "80"]);
        assert!(script.dynamic);
        // misc_timeout defaults to delay_loop.
        assert_eq!(script.timeout, Duration::from_secs(6));
        assert_eq!(misc.timing.retry, 0);
    }

    #[test]
    fn misc_check_user_is_resolved_to_ids() {
        let misc = one("MISC_CHECK {\n misc_path /bin/true root\n }");
        let CheckKind::Misc(script) = &misc.kind else {
            panic!("{:?}", misc.kind)
        };
        assert_eq!(script.user, Some((0, 0)));
    }

    #[test]
    fn udp_ping_and_file_checks() {
        let udp = one(
            "UDP_CHECK {\n payload Ab12f 3 456\n require_reply 0102\n max_reply_length 16\n \
             bind_if eth0\n fwmark 9\n alpha\n }",
        );
        let CheckKind::Udp(check) = &udp.kind else {
            panic!("{:?}", udp.kind)
        };
        assert_eq!(check.payload, [0xab, 0x12, 0x0f, 0x03, 0x45, 0x06]);
        assert!(check.require_reply);
        assert_eq!(check.expected_reply.as_deref(), Some(&[1u8, 2][..]));
        assert_eq!(check.max_reply_length, Some(16));
        assert_eq!(udp.connect.bind_if.as_deref(), Some("eth0"));
        assert_eq!(udp.connect.fwmark, Some(9));
        assert!(udp.timing.alpha);

        assert_eq!(one("PING_CHECK {\n }").kind, CheckKind::Ping);

        let file = one("FILE_CHECK {\n track_file weightfile\n }");
        let expected = FileCheck {
            path: "/run/weight".into(),
            weight: 3,
            reverse: false,
        };
        assert_eq!(file.kind, CheckKind::File(expected));
        let reversed = one("FILE_CHECK {\n track_file weightfile\n weight -2 reverse\n }");
        let CheckKind::File(check) = &reversed.kind else {
            panic!("{:?}", reversed.kind)
        };
        assert_eq!((check.weight, check.reverse), (-2, true));
    }

    #[test]
    fn alpha_on_the_real_server_is_inherited() {
        let specs = map("alpha", "TCP_CHECK {\n }\n PING_CHECK {\n alpha false\n }").unwrap();
        assert!(specs[0].timing.alpha);
        assert!(!specs[1].timing.alpha);
    }

    #[test]
    fn keepalived_hex_reads_the_manual_example() {
        // keepalived.conf(5): "Ab12f 3 456 546443123" is
        // AB 12 0F 03 45 06 54 64 43 12 03.
        assert_eq!(
            keepalived_hex("Ab12f 3 456 546443123").unwrap(),
            [
                0xab, 0x12, 0x0f, 0x03, 0x45, 0x06, 0x54, 0x64, 0x43, 0x12, 0x03
            ]
        );
        assert!(keepalived_hex("12 zz").is_err());
        assert!(keepalived_hex("1x").is_err());
    }

    #[test]
    fn checks_lvskitd_cannot_honour_are_refused_by_name() {
        let regex = map("", "HTTP_GET {\n url {\n path /\n regex ok\n }\n }").unwrap_err();
        assert!(regex.to_string().contains("`regex`"), "{regex}");
        let bfd = map("", "BFD_CHECK {\n name b\n }").unwrap_err();
        assert!(bfd.to_string().contains("BFD_CHECK"), "{bfd}");
        let missing = map("", "FILE_CHECK {\n track_file nosuch\n }").unwrap_err();
        assert!(missing.to_string().contains("nosuch"), "{missing}");
    }
}
