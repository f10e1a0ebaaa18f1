//! Property test: for any configuration the model can hold (strings without
//! `"`), formatting it and parsing the text back gives the same model.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use lvskit_kconf::build::shell_split;
use lvskit_kconf::model::*;
use lvskit_kconf::{Options, format, parse_str};
use proptest::option::of;
use proptest::prelude::*;

fn ident() -> impl Strategy<Value = String> {
    "Q[a-zA-Z0-9_.-]{0,10}"
}

fn ms(max: u64) -> impl Strategy<Value = Duration> {
    (1..=max).prop_map(Duration::from_millis)
}

fn secs(max: u64) -> impl Strategy<Value = Duration> {
    (1..=max).prop_map(Duration::from_secs)
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|v| IpAddr::V4(Ipv4Addr::from(v))),
        any::<u128>().prop_map(|v| IpAddr::V6(Ipv6Addr::from(v))),
    ]
}

fn script() -> impl Strategy<Value = Script> {
    (
        "/[a-z]{1,8}(/[a-z]{1,8}){0,2}( [a-z0-9=#!{}-]{1,6}){0,3}",
        of((ident(), of(ident()))),
    )
        .prop_map(|(command, user)| Script {
            argv: shell_split(&command),
            command,
            user: user.as_ref().map(|u| u.0.clone()),
            group: user.and_then(|u| u.1),
        })
}

fn track_refs() -> impl Strategy<Value = Vec<TrackRef>> {
    prop::collection::vec(
        (ident(), of(-254i32..=254), any::<bool>()).prop_map(|(name, weight, reverse)| TrackRef {
            name,
            weight,
            reverse,
        }),
        0..3,
    )
}

fn global() -> impl Strategy<Value = GlobalDefs> {
    (
        of(ident()),
        prop::collection::vec("q[a-z]{0,6}@[a-z]{1,6}\\.com", 0..3),
        of(ip().prop_map(|a| a.to_string())),
        1u16..,
        (1u64..=4294).prop_map(Duration::from_secs),
        any::<bool>(),
        of((ident(), of(ident()))),
        any::<bool>(),
        2u8..=3,
    )
        .prop_map(
            |(router_id, mail, smtp, port, timeout, sec, user, strict, version)| GlobalDefs {
                router_id,
                notification_email: mail,
                notification_email_from: None,
                smtp_port: if smtp.is_some() { port } else { 25 },
                smtp_server: smtp,
                smtp_connect_timeout: timeout,
                enable_script_security: sec,
                script_user: user,
                vrrp_strict: strict,
                vrrp_version: version,
                extra: Vec::new(),
                ..GlobalDefs::default()
            },
        )
}

fn vrrp_script() -> impl Strategy<Value = VrrpScript> {
    (
        ident(),
        script(),
        ms(100_000),
        ms(100_000),
        -254i32..=254,
        any::<bool>(),
        1u32..100,
        1u32..100,
        of((ident(), of(ident()))),
        any::<bool>(),
    )
        .prop_map(
            |(name, s, interval, timeout, weight, rev, rise, fall, user, init_fail)| VrrpScript {
                name,
                script: Some(s),
                interval,
                timeout,
                weight,
                weight_reverse: rev,
                rise,
                fall,
                user,
                init_fail,
                extra: Vec::new(),
            },
        )
}

fn vip() -> impl Strategy<Value = VirtualAddress> {
    (
        ip(),
        any::<u8>(),
        of(ip()),
        of(ident()),
        of(ident()),
        of(ident()),
    )
        .prop_map(
            |(address, len, broadcast, dev, scope, label)| VirtualAddress {
                prefix_len: len % if address.is_ipv4() { 33 } else { 129 },
                address,
                broadcast,
                dev,
                scope,
                label,
                options: Vec::new(),
            },
        )
}

fn instance() -> impl Strategy<Value = VrrpInstance> {
    (
        (
            ident(),
            any::<bool>(),
            of(ident()),
            1u8..=255,
            1u8..=255,
            1u64..=25_500,
            2u8..=3,
        ),
        (any::<bool>(), ms(1000), of((any::<bool>(), ident()))),
        (
            prop::collection::vec(vip(), 0..3),
            prop::collection::vec(vip(), 0..2),
            of(ip()),
            prop::collection::vec(ip(), 0..3),
        ),
        (
            track_refs(),
            track_refs(),
            of(script()),
            of(script()),
            any::<bool>(),
            0u64..=255,
        ),
    )
        .prop_map(|(a, b, c, d)| {
            let (name, master, interface, vrid, priority, advert, version) = a;
            let (nopreempt, preempt_delay, auth) = b;
            let (vips, excluded, src, peers) = c;
            let (ti, ts, nm, nb, smtp, garp) = d;
            VrrpInstance {
                name,
                state: if master {
                    InitialState::Master
                } else {
                    InitialState::Backup
                },
                interface,
                virtual_router_id: Some(vrid),
                priority,
                advert_int: Duration::from_millis(advert * 10),
                version,
                nopreempt: nopreempt && priority != 255,
                preempt_delay,
                authentication: auth.map(|(ah, pass)| Authentication {
                    auth_type: if ah { AuthType::Ah } else { AuthType::Pass },
                    auth_pass: pass,
                }),
                virtual_ipaddress: vips,
                virtual_ipaddress_excluded: excluded,
                unicast_src_ip: src,
                unicast_peer: peers,
                mcast_src_ip: None,
                track_interface: ti,
                track_script: ts,
                notify_master: nm,
                notify_backup: nb,
                notify_fault: None,
                notify_stop: None,
                notify: None,
                smtp_alert: smtp,
                garp_master_delay: Duration::from_secs(garp),
                extra: Vec::new(),
            }
        })
}

fn timing() -> impl Strategy<Value = CheckTiming> {
    (
        ms(1_000_000),
        ms(4_294_000),
        0u32..10,
        of(ms(100_000)),
        of(ms(100_000)),
    )
        .prop_map(
            |(delay_loop, connect_timeout, retry, delay_before_retry, warmup)| CheckTiming {
                delay_loop,
                connect_timeout,
                retry,
                delay_before_retry,
                warmup,
            },
        )
}

fn http() -> impl Strategy<Value = HttpCheck> {
    let url = (
        ident(),
        of("[0-9a-f]{32}"),
        prop::collection::vec("[1-5][0-9][0-9]", 0..3),
        of(ident()),
    )
        .prop_map(|(path, digest, status_code, virtualhost)| Url {
            path,
            digest,
            status_code,
            virtualhost,
            extra: Vec::new(),
        });
    (
        prop::collection::vec(url, 0..3),
        of(ident()),
        of(Just("1.1".to_string())),
    )
        .prop_map(|(urls, virtualhost, http_protocol)| HttpCheck {
            urls,
            virtualhost,
            http_protocol,
        })
}

fn checker_kind() -> impl Strategy<Value = CheckerKind> {
    prop_oneof![
        Just(CheckerKind::Tcp),
        http().prop_map(CheckerKind::Http),
        http().prop_map(CheckerKind::Ssl),
        of(ident()).prop_map(|helo_name| CheckerKind::Smtp(SmtpCheck {
            helo_name,
            hosts: Vec::new()
        })),
        (ident(), ident())
            .prop_map(|(query_type, name)| CheckerKind::Dns(DnsCheck { query_type, name })),
        (of(script()), of(secs(1000)), any::<bool>()).prop_map(|(path, timeout, dynamic)| {
            CheckerKind::Misc(MiscCheck {
                path,
                timeout,
                dynamic,
            })
        }),
        (of("[0-9a-f]{2,8}"), any::<bool>()).prop_map(|(payload, require_reply)| CheckerKind::Udp(
            UdpCheck {
                payload,
                require_reply
            }
        )),
        Just(CheckerKind::Ping),
        of(ident()).prop_map(|track_file| CheckerKind::File(FileCheck { track_file })),
        of(ident()).prop_map(CheckerKind::Bfd),
    ]
}

/// A checker as the parser builds it: what the checker cannot set itself
/// comes from the real server.
fn checker(rs_ip: IpAddr, rs_port: u16, rs_timing: CheckTiming) -> impl Strategy<Value = Checker> {
    (
        checker_kind(),
        ip(),
        any::<u16>(),
        of(ip()),
        of(any::<u16>()),
        timing(),
        ms(100_000),
        ms(100_000),
    )
        .prop_map(
            move |(kind, cip, cport, bind_ip, bind_port, t, dbr, warm)| {
                let own = matches!(
                    kind,
                    CheckerKind::Misc(_) | CheckerKind::File(_) | CheckerKind::Bfd(_)
                );
                let mut timing = CheckTiming {
                    delay_before_retry: Some(dbr),
                    warmup: Some(warm),
                    ..t
                };
                if own {
                    timing.connect_timeout = rs_timing.connect_timeout;
                }
                if matches!(kind, CheckerKind::File(_) | CheckerKind::Bfd(_)) {
                    timing = rs_timing;
                    timing.delay_before_retry = Some(
                        rs_timing
                            .delay_before_retry
                            .unwrap_or(Duration::from_secs(1)),
                    );
                    timing.warmup = Some(rs_timing.warmup.unwrap_or(rs_timing.delay_loop));
                }
                Checker {
                    kind,
                    connect_ip: if own { rs_ip } else { cip },
                    connect_port: if own { rs_port } else { cport },
                    bind_ip: if own { None } else { bind_ip },
                    bind_port: if own { None } else { bind_port },
                    timing,
                    extra: Vec::new(),
                }
            },
        )
}

fn real_server(vs_inhibit: bool, vs_timing: CheckTiming) -> impl Strategy<Value = RealServer> {
    (
        ip(),
        any::<u16>(),
        0u32..=65535,
        any::<bool>(),
        of(script()),
        timing(),
    )
        .prop_flat_map(move |(address, port, weight, inhibit, up, own)| {
            // What the real server does not set, it inherits.
            let timing = CheckTiming {
                delay_before_retry: own.delay_before_retry.or(vs_timing.delay_before_retry),
                warmup: own.warmup.or(vs_timing.warmup),
                ..own
            };
            prop::collection::vec(checker(address, port, timing), 0..3).prop_map(move |checkers| {
                RealServer {
                    address,
                    port,
                    weight,
                    inhibit_on_failure: inhibit || vs_inhibit,
                    notify_up: up.clone(),
                    notify_down: None,
                    timing,
                    checkers,
                    extra: Vec::new(),
                }
            })
        })
}

fn virtual_server() -> impl Strategy<Value = VirtualServer> {
    let service = prop_oneof![
        (ip(), 1u16..).prop_map(|(ip, port)| ServiceAddress::Address { ip, port }),
        (1u32..).prop_map(ServiceAddress::Fwmark),
        ident().prop_map(ServiceAddress::Group),
    ];
    (
        service,
        (
            0usize..14,
            0usize..3,
            0usize..3,
            of(1u64..=2_678_400),
            of(ident()),
        ),
        (
            of((ip(), any::<u16>())),
            1u32..10,
            0u32..10,
            of(script()),
            any::<[bool; 4]>(),
        ),
        timing(),
    )
        .prop_flat_map(|(service, a, b, timing)| {
            let inhibit = b.4[3];
            prop::collection::vec(real_server(inhibit, timing), 0..3).prop_map(
                move |real_servers| {
                    let (algo, kind, proto, persistence, vhost) = a.clone();
                    let (sorry, quorum, hysteresis, up, flags) = b.clone();
                    VirtualServer {
                        service: service.clone(),
                        lb_algo: Scheduler::ALL[algo].clone(),
                        lb_kind: [
                            ForwardingMethod::Nat,
                            ForwardingMethod::Dr,
                            ForwardingMethod::Tun,
                        ][kind],
                        lb_kind_options: Vec::new(),
                        protocol: [Protocol::Tcp, Protocol::Udp, Protocol::Sctp][proto],
                        persistence_timeout: persistence.map(Duration::from_secs),
                        virtualhost: vhost,
                        sorry_server: sorry,
                        quorum,
                        hysteresis,
                        quorum_up: up,
                        quorum_down: None,
                        ha_suspend: flags[0],
                        alpha: flags[1],
                        omega: flags[2],
                        inhibit_on_failure: flags[3],
                        timing,
                        real_servers,
                        extra: Vec::new(),
                    }
                },
            )
        })
}

fn config() -> impl Strategy<Value = Config> {
    (
        global(),
        prop::collection::vec(vrrp_script(), 0..2),
        prop::collection::vec(instance(), 0..3),
        prop::collection::vec(virtual_server(), 0..3),
    )
        .prop_map(
            |(global, vrrp_scripts, vrrp_instances, virtual_servers)| Config {
                global,
                vrrp_scripts,
                vrrp_instances,
                virtual_servers,
                ..Config::default()
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn format_then_parse_is_identity(c in config()) {
        let text = format(&c);
        let parsed = parse_str(&text, &Options::offline());
        prop_assert_eq!(&parsed.config, &c, "canonical text:\n{}", text);
        prop_assert_eq!(format(&parsed.config), text);
    }
}
