//! Tier 3: against the real IPVS of Debian's stock kernel, inside the
//! testlab's VM (the host kernel has no `ip_vs`). Every result is
//! cross-checked with `ipvsadm -Ln --exact`, `ipvsadm -S -n` and
//! `/proc/net/ip_vs`.

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use lvskit_ipvs::{
    AsyncHandle, DaemonState, Desired, DesiredService, Destination, Errno, Error, Family,
    ForwardingMethod, Handle, Netmask, OpenOptions, Operation, Protocol, SchedulerName, Scope,
    Service, ServiceFlags, ServiceKey, SyncDaemon, Timeouts, TunnelFlags, TunnelType,
};
use lvskit_testlab::vm::Vm;

fn sh(script: &str) -> Result<String> {
    let out = Command::new("/bin/bash").arg("-c").arg(script).output()?;
    ensure!(
        out.status.success(),
        "`{script}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

fn ipvsadm(args: &str) -> Result<String> {
    sh(&format!("/usr/sbin/ipvsadm {args}"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn tcp(addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Address {
        protocol: Protocol::Tcp,
        address: ip(addr),
        port,
    }
}

fn expect_errno<T: std::fmt::Debug>(
    result: Result<T, Error>,
    errno: Errno,
    what: &str,
) -> Result<()> {
    match result {
        Err(Error::Kernel { errno: e, .. }) if e == errno => Ok(()),
        other => anyhow::bail!("{what}: expected {errno}, got {other:?}"),
    }
}

fn contains_all(text: &str, lines: &[&str], source: &str) -> Result<()> {
    for line in lines {
        ensure!(
            text.lines().any(|l| l.trim_end() == *line),
            "{source} lacks `{line}`:\n{text}"
        );
    }
    Ok(())
}

/// Every command of the family, on IPv4, IPv6 and fwmark services, every
/// forwarding method, mixed-family destinations, the sync daemon, and the
/// typed errors.
#[test]
fn vm_every_command_cross_checked() {
    Vm::new().timeout(Duration::from_secs(600)).run_test(|| {
        let mut ipvs = Handle::open()?;
        let info = ipvs.info()?;
        ensure!(info.version == (1, 2, 1), "{info:?}");
        ensure!(info.connection_table_size == 4096, "{info:?}");
        ipvs.flush()?;

        // Timeouts: SET_CONFIG, GET_CONFIG.
        let t = Timeouts { tcp: 900, tcp_fin: 120, udp: 300 };
        ipvs.set_timeouts(&t)?;
        ensure!(ipvs.timeouts()? == t);
        contains_all(&ipvsadm("-L --timeout")?, &["Timeout (tcp tcpfin udp): 900 120 300"], "ipvsadm -L --timeout")?;

        // Sync daemons (before any mixed-family destination: the kernel
        // refuses to start one while such destinations exist).
        sh("ip link add sync0 type dummy && ip link set sync0 up && ip addr add 10.200.0.1/24 dev sync0")?;
        let master = SyncDaemon {
            state: DaemonState::Master,
            interface: "sync0".into(),
            sync_id: 5,
            max_len: Some(1400),
            group: Some(ip("239.1.2.3")),
            port: Some(8849),
            ttl: Some(2),
        };
        let mut backup = SyncDaemon::new(DaemonState::Backup, "sync0", 6);
        backup.group = Some(ip("ff02::1:3"));
        ipvs.start_daemon(&master)?;
        ipvs.start_daemon(&backup)?;
        expect_errno(ipvs.start_daemon(&master), Errno::EEXIST, "second master")?;
        let daemons = ipvs.daemons()?;
        ensure!(daemons.len() == 2, "{daemons:?}");
        ensure!(daemons[0] == master, "{daemons:?}");
        ensure!(daemons[1].group == backup.group && daemons[1].port == Some(8848), "{daemons:?}");
        contains_all(
            &ipvsadm("-L --daemon")?,
            &[
                "master sync daemon (mcast=sync0, syncid=5, maxlen=1400, group=239.1.2.3, port=8849, ttl=2)",
                "backup sync daemon (mcast=sync0, syncid=6, maxlen=1452, group=ff02::1:3, port=8848, ttl=1)",
            ],
            "ipvsadm -L --daemon",
        )?;
        ipvs.stop_daemon(DaemonState::Master)?;
        ipvs.stop_daemon(DaemonState::Backup)?;
        expect_errno(ipvs.stop_daemon(DaemonState::Master), Errno::ESRCH, "stopped master")?;
        ensure!(ipvs.daemons()?.is_empty());

        // Services: IPv4, IPv6, fwmark of both families, persistence engine.
        let web_key = tcp("10.0.0.1", 80);
        let web = Service::new(web_key, SchedulerName::Wrr);
        ipvs.add_service(&web)?;
        let again = ipvs.add_service(&web);
        ensure!(again.as_ref().is_err_and(Error::is_exists), "{again:?}");
        expect_errno(again, Errno::EEXIST, "second add")?;
        let mut dns6 = Service::new(
            ServiceKey::Address { protocol: Protocol::Udp, address: ip("2001:db8::1"), port: 53 },
            SchedulerName::Rr,
        );
        dns6.flags = ServiceFlags::PERSISTENT;
        dns6.timeout = 300;
        dns6.netmask = Some(Netmask::Ipv6Prefix(64));
        let mut fwm7 = Service::new(ServiceKey::Fwmark { family: Family::Ipv4, mark: 7 }, SchedulerName::Sh);
        fwm7.flags = ServiceFlags::PERSISTENT | ServiceFlags::SH_FALLBACK | ServiceFlags::SH_PORT;
        fwm7.timeout = 600;
        fwm7.netmask = Some(Netmask::Ipv4(Ipv4Addr::new(255, 255, 255, 0)));
        let mut fwm42 = Service::new(ServiceKey::Fwmark { family: Family::Ipv6, mark: 42 }, SchedulerName::Mh);
        fwm42.flags = ServiceFlags::MH_FALLBACK | ServiceFlags::MH_PORT;
        let mut sip = Service::new(
            ServiceKey::Address { protocol: Protocol::Udp, address: ip("10.0.0.3"), port: 5060 },
            SchedulerName::Lc,
        );
        sip.flags = ServiceFlags::PERSISTENT;
        sip.timeout = 60;
        sip.persistence_engine = Some("sip".into());
        let mut ops = Service::new(
            ServiceKey::Address { protocol: Protocol::Udp, address: ip("10.0.0.4"), port: 53 },
            SchedulerName::Wlc,
        );
        ops.flags = ServiceFlags::ONE_PACKET;
        for s in [&dns6, &fwm7, &fwm42, &sip, &ops] {
            ipvs.add_service(s).with_context(|| format!("adding {}", s.key))?;
        }

        // Destinations: every forwarding method; IPv6 behind IPv4 (tunnel).
        let mut masq = Destination::new(ip("192.168.1.11"), 8080, ForwardingMethod::Masq);
        masq.weight = 3;
        masq.upper_threshold = 100;
        masq.lower_threshold = 10;
        let mut route = Destination::new(ip("192.168.1.10"), 80, ForwardingMethod::DirectRoute);
        route.weight = 5;
        let ipip = Destination::new(ip("192.168.1.12"), 80, ForwardingMethod::TUNNEL);
        let gue = Destination::new(
            ip("192.168.1.13"),
            80,
            ForwardingMethod::Tunnel { tunnel_type: TunnelType::Gue, port: 6080, flags: TunnelFlags::REMCSUM },
        );
        let mut gre6 = Destination::new(
            ip("2001:db8::20"),
            80,
            ForwardingMethod::Tunnel { tunnel_type: TunnelType::Gre, port: 0, flags: TunnelFlags::CSUM },
        );
        gre6.weight = 2;
        let bypass = Destination::new(ip("192.168.1.14"), 80, ForwardingMethod::Bypass);
        for d in [&masq, &route, &ipip, &gue, &gre6, &bypass] {
            ipvs.add_destination(&web_key, d).with_context(|| format!("adding {}", d.key()))?;
        }
        // A local address is forwarded locally whatever was asked.
        sh("ip addr add 10.9.0.1/32 dev lo")?;
        let local = Destination::new(ip("10.9.0.1"), 80, ForwardingMethod::Local);
        ipvs.add_destination(&web_key, &local)?;
        let v6dest = Destination::new(ip("2001:db8::10"), 53, ForwardingMethod::Masq);
        ipvs.add_destination(&dns6.key, &v6dest)?;
        expect_errno(ipvs.add_destination(&web_key, &route), Errno::EEXIST, "second destination")?;
        expect_errno(ipvs.add_destination(&tcp("10.9.9.9", 80), &route), Errno::ESRCH, "destination of no service")?;

        // Edits.
        let mut web2 = web.clone();
        web2.scheduler = SchedulerName::Wlc;
        web2.flags = ServiceFlags::PERSISTENT;
        web2.timeout = 120;
        ipvs.edit_service(&web2)?;
        route.weight = 7;
        ipvs.edit_destination(&web_key, &route)?;
        expect_errno(ipvs.edit_service(&Service::new(tcp("10.9.9.9", 80), SchedulerName::Rr)), Errno::ESRCH, "edit of no service")?;
        let ghost = Destination::new(ip("192.168.1.99"), 8080, ForwardingMethod::Masq);
        expect_errno(ipvs.edit_destination(&web_key, &ghost), Errno::ENOENT, "edit of no destination")?;
        expect_errno(ipvs.delete_destination(&web_key, &ghost.key()), Errno::ENOENT, "delete of no destination")?;
        expect_errno(ipvs.delete_service(&tcp("10.9.9.9", 80)), Errno::ESRCH, "delete of no service")?;
        expect_errno(ipvs.service(&tcp("10.9.9.9", 80)), Errno::ESRCH, "get of no service")?;

        // Read back: GET_SERVICE (one and dump), GET_DEST.
        let got = ipvs.service(&web_key)?;
        ensure!(got.service.same_config(&web2), "{got:?}");
        let services = ipvs.services()?;
        ensure!(services.len() == 6, "{services:?}");
        for s in [&web2, &dns6, &fwm7, &fwm42, &sip, &ops] {
            let found = services.iter().find(|x| x.service.key == s.key).with_context(|| format!("{} missing", s.key))?;
            ensure!(found.service.same_config(s), "{found:?} != {s:?}");
        }
        let dests = ipvs.destinations(&web_key)?;
        ensure!(dests.len() == 7, "{dests:?}");
        for d in [&masq, &route, &ipip, &gue, &gre6, &bypass] {
            let found = dests.iter().find(|x| x.destination.key() == d.key()).with_context(|| format!("{} missing", d.key()))?;
            ensure!(&found.destination == d, "{found:?} != {d:?}");
        }
        let local_read = dests.iter().find(|x| x.destination.key() == local.key()).unwrap();
        ensure!(local_read.destination.forwarding == ForwardingMethod::Local, "{local_read:?}");
        let v6 = ipvs.destinations(&dns6.key)?;
        ensure!(v6.len() == 1 && v6[0].destination == v6dest, "{v6:?}");

        // Cross-checks.
        contains_all(
            &ipvsadm("-S -n")?,
            &[
                "-A -t 10.0.0.1:80 -s wlc -p 120",
                "-a -t 10.0.0.1:80 -r 192.168.1.10:80 -g -w 7",
                "-a -t 10.0.0.1:80 -r 192.168.1.11:8080 -m -w 3",
                "-a -t 10.0.0.1:80 -r 192.168.1.12:80 -i -w 1 --tun-type ipip",
                "-a -t 10.0.0.1:80 -r 192.168.1.13:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-remcsum",
                "-a -t 10.0.0.1:80 -r [2001:db8::20]:80 -i -w 2 --tun-type gre --tun-csum",
                "-A -u [2001:db8::1]:53 -s rr -p 300 -M 64",
                "-a -u [2001:db8::1]:53 -r [2001:db8::10]:53 -m -w 1",
                "-A -f 7 -s sh -p 600 -M 255.255.255.0 -b sh-fallback,sh-port",
                "-A -f 42 -6 -s mh -b mh-fallback,mh-port",
                "-A -u 10.0.0.3:5060 -s lc -p 60 --pe sip",
                "-A -u 10.0.0.4:53 -s wlc -o",
            ],
            "ipvsadm -S -n",
        )?;
        let thresholds = ipvsadm("-Ln --thresholds")?;
        ensure!(
            thresholds.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()[..]
                .starts_with(&["->", "192.168.1.11:8080", "100", "10"])),
            "{thresholds}"
        );
        let exact = ipvsadm("-Ln --exact")?;
        ensure!(exact.lines().filter(|l| l.trim_start().starts_with("->") && !l.contains("RemoteAddress")).count() == 8, "{exact}");
        let proc_ipvs = std::fs::read_to_string("/proc/net/ip_vs")?;
        // /proc/net/ip_vs prints timeouts in jiffies and addresses in hex.
        let proc_has = |start: &str, rest: &[&str]| {
            proc_ipvs.lines().any(|l| l.trim_start().starts_with(start) && rest.iter().all(|r| l.contains(r)))
        };
        ensure!(proc_has("TCP  0A000001:0050 wlc", &["persistent"]), "{proc_ipvs}");
        ensure!(proc_has("-> C0A8010A:0050", &["Route   7"]), "{proc_ipvs}");
        ensure!(proc_has("-> 0A090001:0050", &["Local"]), "{proc_ipvs}");
        ensure!(proc_has("-> [2001:0db8:0000:0000:0000:0000:0000:0020]:0050", &["Tunnel  2"]), "{proc_ipvs}");
        ensure!(proc_has("FWM  00000007 sh persistent", &["FFFFFF00"]), "{proc_ipvs}");
        ensure!(proc_has("UDP  [2001:0db8:0000:0000:0000:0000:0000:0001]:0035 rr persistent", &["40000000"]), "{proc_ipvs}");

        // ZERO, DEL_DEST, DEL_SERVICE, FLUSH.
        ipvs.zero(Some(&web_key))?;
        ipvs.zero(None)?;
        ipvs.delete_destination(&web_key, &masq.key())?;
        ensure!(ipvs.destinations(&web_key)?.len() == 6);
        ipvs.delete_service(&sip.key)?;
        ensure!(ipvs.services()?.len() == 5);
        ipvs.flush()?;
        ensure!(ipvs.services()?.is_empty());
        let after = std::fs::read_to_string("/proc/net/ip_vs")?;
        ensure!(
            !after.lines().any(|l| ["TCP", "UDP", "FWM"].iter().any(|p| l.starts_with(p))),
            "{after}"
        );
        Ok(())
    });
}

/// Every scheduler module the kernel has accepts a service and reads back
/// by name; a scheduler it lacks is a typed ENOENT.
#[test]
fn vm_every_scheduler_the_kernel_has() {
    Vm::new().run_test(|| {
        let release = sh("uname -r")?;
        let dir = format!("/lib/modules/{}/kernel/net/netfilter/ipvs", release.trim());
        let mut ipvs = Handle::open()?;
        ipvs.flush()?;
        let mut present = 0;
        for (i, name) in SchedulerName::ALL.iter().enumerate() {
            let key = tcp("10.1.0.1", 1000 + i as u16);
            let service = Service::new(key, name.clone());
            let module = std::path::Path::new(&dir).join(format!("ip_vs_{name}.ko"));
            let has = module.exists()
                || std::path::Path::new(&format!("{}.xz", module.display())).exists();
            let result = ipvs.add_service(&service);
            if has {
                result.with_context(|| format!("scheduler {name}"))?;
                ensure!(ipvs.service(&key)?.service.scheduler == *name);
                ipvs.add_destination(
                    &key,
                    &Destination::new(ip("10.2.0.1"), 80, ForwardingMethod::DirectRoute),
                )?;
                present += 1;
            } else {
                eprintln!("kernel has no ip_vs_{name}: expecting ENOENT");
                expect_errno(result, Errno::ENOENT, name.as_str())?;
            }
        }
        ensure!(present >= 13, "only {present} schedulers");
        let listing = ipvsadm("-Ln")?;
        for name in SchedulerName::ALL
            .iter()
            .filter(|n| **n != SchedulerName::Twos)
        {
            ensure!(
                listing
                    .lines()
                    .any(|l| l.trim_end().ends_with(&format!(" {name}"))),
                "{name} not in\n{listing}"
            );
        }
        Ok(())
    });
}

fn big_desired(services: u32) -> Desired {
    let mut desired = Desired {
        services: Vec::new(),
        scope: Scope::All,
    };
    for i in 0..services {
        let address = IpAddr::V4(Ipv4Addr::from(0x0a64_0000 + i));
        let key = ServiceKey::Address {
            protocol: Protocol::Tcp,
            address,
            port: 80,
        };
        desired.services.push(DesiredService {
            service: Service::new(key, SchedulerName::Wlc),
            destinations: (1..=4)
                .map(|d| {
                    Destination::new(
                        IpAddr::V4(Ipv4Addr::new(192, 168, (i % 200) as u8, d)),
                        80,
                        ForwardingMethod::DirectRoute,
                    )
                })
                .collect(),
        });
    }
    desired
}

/// The lines `ipvsadm -S -n` prints for a list of TCP services with
/// direct-routing destinations (in the list's order; ipvsadm sorts them).
fn save_lines(state: &[lvskit_ipvs::ServiceState]) -> Vec<String> {
    let mut lines = Vec::new();
    for s in state {
        let service = &s.service.service;
        let ServiceKey::Address { address, port, .. } = service.key else {
            panic!("address services only")
        };
        lines.push(format!("-A -t {address}:{port} -s {}", service.scheduler));
        for d in &s.destinations {
            let d = &d.destination;
            lines.push(format!(
                "-a -t {address}:{port} -r {}:{} -g -w {}",
                d.address, d.port, d.weight
            ));
        }
    }
    lines
}

/// 10,000 services × 4 destinations installed by `apply` from empty,
/// dumped whole (checked against `ipvsadm -S -n`), re-applied with no
/// operation, and a weight change applied
/// as exactly one operation.
#[test]
fn vm_ten_thousand_services_apply_and_dump() {
    Vm::new()
        .memory_mib(2048)
        .timeout(Duration::from_secs(900))
        .run_test(|| {
            let mut ipvs = Handle::open()?;
            ipvs.flush()?;
            let mut desired = big_desired(10_000);
            let report = ipvs.apply(&desired)?;
            ensure!(report.is_success(), "{:?}", report.failures().next());
            ensure!(
                report.operations() == 50_000,
                "{} operations",
                report.operations()
            );
            // Destination dumps on 4 sockets at once (on the VM's one vCPU
            // too), and on one: the same list, and what `ipvsadm -S` shows.
            let mut parallel = Handle::open_with(&OpenOptions::new().list_parallelism(4))?;
            let state = parallel.list()?;
            ensure!(state.len() == 10_000, "{} services dumped", state.len());
            ensure!(state.iter().all(|s| s.destinations.len() == 4));
            let mut one_socket = Handle::open_with(&OpenOptions::new().list_parallelism(1))?;
            ensure!(
                one_socket.list()? == state,
                "parallel and sequential lists differ"
            );
            // ipvsadm sorts services and destinations; each line names its
            // service, so equal sorted lines are equal sets.
            let saved = ipvsadm("-S -n")?;
            let mut theirs: Vec<&str> = saved.lines().collect();
            theirs.sort_unstable();
            let mut ours = save_lines(&state);
            ours.sort_unstable();
            ensure!(theirs.len() == ours.len(), "{} lines saved", theirs.len());
            for (theirs, ours) in theirs.iter().zip(&ours) {
                ensure!(theirs == ours, "ipvsadm -S: {theirs:?}, list: {ours:?}");
            }
            ensure!(
                ipvs.apply(&desired)?.operations() == 0,
                "second apply not empty"
            );
            desired.services[4321].destinations[2].weight = 9;
            let report = ipvs.apply(&desired)?;
            ensure!(
                report.operations() == 1 && report.is_success(),
                "{:?}",
                report.plan
            );
            ensure!(matches!(
                report.plan.operations[0],
                Operation::EditDestination { .. }
            ));
            let listing = ipvsadm("-Ln")?;
            ensure!(listing.lines().filter(|l| l.starts_with("TCP")).count() == 10_000);
            ensure!(listing.lines().filter(|l| l.contains("Route   9")).count() == 1);
            let proc_lines = std::fs::read_to_string("/proc/net/ip_vs")?;
            ensure!(proc_lines.lines().filter(|l| l.starts_with("TCP")).count() == 10_000);
            ipvs.flush()?;
            Ok(())
        });
}

/// `ENOBUFS` for real: a handle whose receive buffer holds only a few
/// acknowledgements sends 1,000 `NEW_SERVICE` requests pipelined (up to
/// 1,024 outstanding). The kernel applies every request but drops the
/// acknowledgements that do not fit and reports the overrun on the next
/// receive. The requests whose acknowledgement was lost end with
/// `Error::AckLost` at once (the handle neither waits for them nor spins),
/// the others succeed, and the handle keeps working. Linux drops every
/// message to an overrun netlink socket, silently, until its queue is
/// empty; this test found that the handle must drain the queue before it
/// sends more (the acknowledgements of the requests it sent next never came
/// and the batch ran into its receive timeout).
///
/// `NLM_F_DUMP_INTR` cannot be provoked the same way: Linux 6.1's IPVS dump
/// callbacks never record a table generation (`cb->seq`) nor call
/// `genl_dump_check_consistent`, so the kernel never marks an IPVS dump
/// interrupted, not even when the table changes under it. The restart on
/// that flag is covered by the unit tests of `netlink::exchange`.
#[test]
fn vm_receive_overrun_loses_acknowledgements_without_hanging() {
    Vm::new().run_test(|| {
        let mut ipvs = Handle::open()?;
        ipvs.flush()?;
        let operations: Vec<Operation> = (0..1_000u32)
            .map(|i| {
                let key = ServiceKey::Address {
                    protocol: Protocol::Tcp,
                    address: IpAddr::V4(Ipv4Addr::from(0x0a65_0000 + i)),
                    port: 80,
                };
                Operation::AddService(Service::new(key, SchedulerName::Rr))
            })
            .collect();
        let mut small = Handle::open_with(&OpenOptions::new().receive_buffer(4096))?;
        let results = small.execute(&operations)?;
        let lost = results
            .iter()
            .filter(|r| matches!(r, Err(Error::AckLost { .. })))
            .count();
        let ok = results.iter().filter(|r| r.is_ok()).count();
        ensure!(lost > 0, "no acknowledgement lost: ENOBUFS not provoked");
        ensure!(ok + lost == 1_000, "other errors: {results:?}");
        // Lost acknowledgements, not lost requests.
        ensure!(ipvs.services()?.len() == 1_000);
        ensure!(
            small.services()?.len() == 1_000,
            "the small handle is stuck"
        );
        ensure!(small.info().is_ok());
        println!("{lost} of 1000 acknowledgements lost to ENOBUFS, {ok} received");
        ipvs.flush()?;
        Ok(())
    });
}

/// The async handle, and both handles opened inside a network namespace:
/// IPVS is per namespace, so what one adds there is invisible outside; a
/// parallel list opens all its sockets there.
/// A dump abandoned half-way does not poison the socket. The async
/// handle's dump of 15,000 services comes in about 150 parts, one receive
/// each, more than tokio lets one poll make (its cooperative budget), so its
/// first poll returns `Pending` in the middle of the dump: the kernel makes
/// each next part only as the previous one is read. The future is dropped
/// there. Without reading that dump out, the kernel refuses every later
/// dump on the socket with `EBUSY`; the handle reads it out before its next
/// request, and the next `services` and `list` succeed.
#[test]
fn vm_abandoned_dump_does_not_poison_the_socket() {
    Vm::new().run_test(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let mut ipvs = AsyncHandle::open().await?;
            ipvs.flush().await?;
            let report = ipvs.apply(&big_desired(15_000)).await?;
            ensure!(report.is_success(), "{:?}", report.failures().next());
            {
                let mut listing = std::pin::pin!(ipvs.services());
                let first =
                    std::future::poll_fn(|cx| std::task::Poll::Ready(listing.as_mut().poll(cx)))
                        .await;
                ensure!(first.is_pending(), "the whole dump took one poll");
            }
            let services = ipvs.services().await?;
            ensure!(services.len() == 15_000, "{} services", services.len());
            let state = ipvs.list().await?;
            ensure!(state.len() == 15_000, "{} services listed", state.len());
            ensure!(state.iter().all(|s| s.destinations.len() == 4));
            ipvs.flush().await?;
            Ok(())
        })
    });
}

#[test]
fn vm_handles_in_network_namespace() {
    Vm::new().run_test(|| {
        // With lo down a fresh namespace has no local routing table, and the
        // kernel refuses real-server addresses it cannot classify (EINVAL).
        sh("ip netns add ipvs1 && ip -n ipvs1 link set lo up")?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let key = tcp("10.3.0.1", 443);
        runtime.block_on(async {
            let mut ipvs = AsyncHandle::open_in_netns("/run/netns/ipvs1").await?;
            ipvs.add_service(&Service::new(key, SchedulerName::Rr))
                .await?;
            ipvs.add_destination(
                &key,
                &Destination::new(ip("10.3.0.2"), 443, ForwardingMethod::Masq),
            )
            .await?;
            let listed = ipvs.list().await?;
            ensure!(
                listed.len() == 1 && listed[0].destinations.len() == 1,
                "{listed:?}"
            );
            let again = ipvs
                .add_service(&Service::new(key, SchedulerName::Rr))
                .await;
            ensure!(again.is_err_and(|e| e.is_exists()));
            anyhow::Ok(())
        })?;
        let mut root = Handle::open()?;
        ensure!(
            root.services()?.iter().all(|s| s.service.key != key),
            "leaked into the root namespace"
        );
        let mut inside = Handle::open_in_netns("/run/netns/ipvs1")?;
        ensure!(inside.services()?.len() == 1);
        // The extra sockets of a parallel list are opened in the namespace
        // too: from the root namespace their destination dumps would find
        // no service (ESRCH) and the list would lose them.
        for (i, port) in [444u16, 445].into_iter().enumerate() {
            let more = tcp("10.3.0.1", port);
            inside.add_service(&Service::new(more, SchedulerName::Rr))?;
            inside.add_destination(
                &more,
                &Destination::new(
                    ip(&format!("10.3.0.{}", i + 3)),
                    port,
                    ForwardingMethod::Masq,
                ),
            )?;
        }
        let mut parallel = Handle::open_with(
            &OpenOptions::new()
                .netns("/run/netns/ipvs1")
                .list_parallelism(3),
        )?;
        let listed = parallel.list()?;
        ensure!(
            listed.len() == 3 && listed.iter().all(|s| s.destinations.len() == 1),
            "{listed:?}"
        );
        let listing = sh("ip netns exec ipvs1 /usr/sbin/ipvsadm -Ln")?;
        ensure!(listing.contains("TCP  10.3.0.1:443 rr"), "{listing}");
        let missing = Handle::open_in_netns("/run/netns/nonexistent");
        ensure!(
            matches!(missing, Err(Error::Namespace { .. })),
            "{missing:?}"
        );
        Ok(())
    });
}

/// The `ipvsctl` example end to end: apply a JSON desired state, list it
/// (table and JSON), plan again (0 operations), info, flush.
#[test]
fn vm_ipvsctl_example() {
    // `cargo test` builds the examples next to the test binaries' directory.
    let ipvsctl = std::env::current_exe()
        .expect("current_exe")
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory")
        .join("examples/ipvsctl");
    let vm = if lvskit_testlab::vm::in_vm() {
        Vm::new()
    } else {
        assert!(
            ipvsctl.exists(),
            "{} not built (cargo test builds examples)",
            ipvsctl.display()
        );
        Vm::new().binary(&ipvsctl)
    };
    vm.run_test(|| {
        let ctl = |args: &str| sh(&format!("{} {args}", ipvsctl.display()));
        std::fs::write(
            "/tmp/desired.json",
            r#"{
                "scope": "all",
                "services": [{
                    "key": {"address": {"protocol": "tcp", "address": "192.0.2.10", "port": 80}},
                    "scheduler": "wrr",
                    "destinations": [
                        {"address": "10.0.0.11", "port": 80, "forwarding": "direct_route", "weight": 3},
                        {"address": "10.0.0.12", "port": 80, "forwarding": "direct_route", "weight": 1}
                    ]
                }]
            }"#,
        )?;
        let applied = ctl("apply /tmp/desired.json")?;
        ensure!(applied.contains("3 operations, 0 failed"), "{applied}");
        contains_all(
            &ipvsadm("-S -n")?,
            &[
                "-A -t 192.0.2.10:80 -s wrr",
                "-a -t 192.0.2.10:80 -r 10.0.0.11:80 -g -w 3",
                "-a -t 192.0.2.10:80 -r 10.0.0.12:80 -g -w 1",
            ],
            "ipvsadm -S -n",
        )?;
        let listed: Vec<lvskit_ipvs::ServiceState> = serde_json::from_str(&ctl("list --json")?)?;
        ensure!(listed.len() == 1 && listed[0].destinations.len() == 2, "{listed:?}");
        let table = ctl("list")?;
        ensure!(table.contains("TCP  192.0.2.10:80 wrr"), "{table}");
        let plan = ctl("plan /tmp/desired.json")?;
        ensure!(plan.trim_end().ends_with("0 operations"), "{plan}");
        ensure!(ctl("info")?.contains("IP Virtual Server version 1.2.1"));
        ctl("flush")?;
        ensure!(!ipvsadm("-Ln")?.contains("192.0.2.10"));
        Ok(())
    });
}
