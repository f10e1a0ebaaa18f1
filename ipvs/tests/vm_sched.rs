//! Differential test of the userspace schedulers against Debian's 6.1 kernel.
//!
//! Inside the VM: a client namespace with 200 addresses connects over a veth
//! to VIPs on a director namespace that runs IPVS (set up with `ipvsadm`).
//! The real servers are local addresses of the director (direct routing to
//! a local address delivers to the director's own listener), so each
//! connection completes a real TCP handshake. The kernel's choice for each
//! connection is read from `/proc/net/ip_vs_conn`, waiting until the kernel
//! shows it ESTABLISHED; the userspace [`Pool`] is fed the same destination
//! list, the same requests in the same order, and the same connection
//! accounting (bound inactive, then established).
//!
//! Deterministic schedulers (rr, wrr, sh, dh, mh, fo, ovf) must make every
//! pick the kernel made. The count-based ones (lc, wlc, sed, nq, lblc,
//! lblcr) see exactly the kernel's counters here, because each connection is
//! established before the next starts, so they must match exactly too.
//! twos is not built in Debian's kernel (`CONFIG_IP_VS_TWOS` unset).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use lvskit_ipvs::model::{SchedulerName, ServiceFlags};
use lvskit_ipvs::sched::{
    AddressFamily, ConnectionState, Destination, DestinationUpdate, Pool, Request, for_service,
};
use lvskit_testlab::{Lab, Node, vm};
use socket2::{Domain, Socket, Type};

/// Client addresses 10.1.0.1 ..= 10.1.0.CLIENTS.
const CLIENTS: u8 = 200;

fn client(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 1, 0, (i % usize::from(CLIENTS)) as u8 + 1)
}

/// VIP `k` of case `n`. Each case has its own VIPs: a destination deleted
/// with its service waits in the kernel's trash with its counters, and is
/// revived, counters and all, if the same VIP gets the same real server again
/// (`ip_vs_trash_get_dest`), which would carry connections over from the
/// previous case.
fn vip(n: u8, k: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 9, n, k)
}

fn real_server(k: u8) -> SocketAddr {
    SocketAddr::from(([10, 2, 0, k], 80))
}

/// One kernel-versus-userspace run.
struct Case {
    scheduler: SchedulerName,
    /// ipvsadm `-b` flags, e.g. "sh-port".
    flags: &'static str,
    service_flags: ServiceFlags,
    /// Weights of real servers 1..=n, added in this order.
    weights: Vec<u32>,
    /// Number of VIPs (one service each, same real servers).
    vips: u8,
    connections: usize,
    /// Before connection `.0`, set the weight of real server `.1` to 0
    /// (ipvsadm -e), in the kernel and in userspace.
    quiesce: Option<(usize, u8)>,
}

fn case(scheduler: &str, weights: &[u32], connections: usize) -> Case {
    Case {
        scheduler: SchedulerName::from(scheduler),
        flags: "",
        service_flags: ServiceFlags::empty(),
        weights: weights.to_vec(),
        vips: 1,
        connections,
        quiesce: None,
    }
}

/// `/proc/net/ip_vs_conn` opened inside the director's namespace; re-read
/// with a seek to 0.
struct ConnTable(File);

impl ConnTable {
    /// The real server and state of the connection from `from`, if listed.
    fn lookup(&mut self, from: SocketAddrV4) -> Result<Option<(SocketAddr, String)>> {
        let mut text = String::new();
        self.0.seek(SeekFrom::Start(0))?;
        self.0.read_to_string(&mut text)?;
        let want_ip = format!("{:08X}", u32::from(*from.ip()));
        let want_port = format!("{:04X}", from.port());
        for line in text.lines().skip(1) {
            // Pro FromIP FPrt ToIP TPrt DestIP DPrt State Expires ...
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() >= 8 && f[1] == want_ip && f[2] == want_port {
                let ip = u32::from_str_radix(f[5], 16)?;
                let port = u16::from_str_radix(f[6], 16)?;
                return Ok(Some((
                    SocketAddr::from((Ipv4Addr::from(ip), port)),
                    f[7].to_owned(),
                )));
            }
        }
        Ok(None)
    }
}

/// The real servers of the service on `vip` in the kernel's list order, from
/// `/proc/net/ip_vs`.
fn kernel_list_order(director: &Node, vip: Ipv4Addr) -> Result<Vec<SocketAddr>> {
    let text = director.run(["cat", "/proc/net/ip_vs"])?;
    let key = format!("TCP  {:08X}:0050", u32::from(vip));
    let mut order = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("TCP") || line.starts_with("UDP") || line.starts_with("FWM") {
            inside = line.starts_with(&key);
        } else if inside && let Some(rest) = line.trim().strip_prefix("-> ") {
            let addr = rest.split_whitespace().next().unwrap_or_default();
            if let Some((ip, port)) = addr.split_once(':') {
                let ip = u32::from_str_radix(ip, 16)?;
                let port = u16::from_str_radix(port, 16)?;
                order.push(SocketAddr::from((Ipv4Addr::from(ip), port)));
            }
        }
    }
    Ok(order)
}

fn ipvsadm(director: &Node, args: &[&str]) -> Result<()> {
    let mut all = vec!["/usr/sbin/ipvsadm"];
    all.extend_from_slice(args);
    director.run(all).map(drop)
}

/// Runs one case; returns (picks compared, mismatches as text).
fn run_case(
    director: &Node,
    clients: &Node,
    conns: &mut ConnTable,
    case: &Case,
    n: u8,
) -> Result<(usize, Vec<String>)> {
    let port_base = 10_000 + 1_000 * u16::from(n);
    ipvsadm(director, &["-C"])?;
    let name = case.scheduler.as_str();
    let mut pools = Vec::new();
    for k in 1..=case.vips {
        let service = format!("{}:80", vip(n, k));
        let mut args = vec!["-A", "-t", &service, "-s", name];
        if !case.flags.is_empty() {
            args.extend(["-b", case.flags]);
        }
        ipvsadm(director, &args)?;
        let scheduler = for_service(&case.scheduler, case.service_flags)?;
        let mut pool = Pool::new(AddressFamily::Inet, scheduler);
        for (i, &w) in case.weights.iter().enumerate() {
            let rs = real_server(i as u8 + 1).to_string();
            let weight = w.to_string();
            ipvsadm(
                director,
                &["-a", "-t", &service, "-r", &rs, "-g", "-w", &weight],
            )?;
            pool.add(Destination::new(real_server(i as u8 + 1), w))?;
        }
        let kernel = kernel_list_order(director, vip(n, k))?;
        let ours: Vec<SocketAddr> = pool.destinations().iter().map(|d| d.address()).collect();
        ensure!(
            kernel == ours,
            "{name}: list order: kernel {kernel:?}, ours {ours:?}"
        );
        pools.push(pool);
    }

    let mut mismatches = Vec::new();
    let mut streams = Vec::new();
    let now = Instant::now();
    for j in 0..case.connections {
        if let Some((at, server)) = case.quiesce
            && at == j
        {
            let rs = real_server(server);
            for (k, pool) in pools.iter_mut().enumerate() {
                let service = format!("{}:80", vip(n, k as u8 + 1));
                let rs_text = rs.to_string();
                ipvsadm(
                    director,
                    &["-e", "-t", &service, "-r", &rs_text, "-g", "-w", "0"],
                )?;
                pool.update(
                    rs,
                    DestinationUpdate {
                        weight: 0,
                        upper_threshold: 0,
                        lower_threshold: 0,
                    },
                )?;
            }
        }
        let k = (j % usize::from(case.vips)) as u8 + 1;
        let from = SocketAddrV4::new(client(j), port_base + j as u16);
        let to = SocketAddrV4::new(vip(n, k), 80);
        let pool = &mut pools[usize::from(k) - 1];
        let ours = pool.schedule(&Request::new(now, from.into(), to.into()));
        let connected = clients.in_netns(|| -> Result<Option<TcpStream>> {
            let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
            socket.set_reuse_address(true)?;
            socket.bind(&SocketAddr::V4(from).into())?;
            match socket.connect_timeout(&SocketAddr::V4(to).into(), Duration::from_secs(5)) {
                Ok(()) => Ok(Some(socket.into())),
                // With no destination available IPVS answers the SYN with
                // an ICMP port unreachable (ip_vs_leave).
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Ok(None),
                Err(e) => Err(e.into()),
            }
        })??;
        let kernel = match connected {
            None => None,
            Some(stream) => {
                streams.push(stream);
                // Wait until the kernel has the connection ESTABLISHED (the
                // client's ACK has passed IPVS), so its counters are settled.
                let deadline = Instant::now() + Duration::from_secs(5);
                let dest = loop {
                    match conns.lookup(from)? {
                        Some((dest, state)) if state == "ESTABLISHED" => break Some(dest),
                        _ if Instant::now() > deadline => break None,
                        _ => std::thread::sleep(Duration::from_millis(2)),
                    }
                };
                let Some(dest) = dest else {
                    bail!("{name}: connection {j} from {from} never showed ESTABLISHED");
                };
                Some(dest)
            }
        };
        let ours_addr = ours.map(|i| pool.destination(i).address());
        if ours_addr != kernel {
            mismatches.push(format!(
                "{name}{}: connection {j} from {from} to {to}: kernel {kernel:?}, ours {ours_addr:?}",
                if case.flags.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", case.flags)
                }
            ));
        }
        // Account the kernel's pick in userspace, as the kernel did.
        if let Some(i) = kernel.and_then(|k| pool.index_of(k)) {
            pool.bind(i, ConnectionState::Inactive);
            pool.establish(i);
        }
    }
    drop(streams);
    Ok((case.connections, mismatches))
}

#[test]
fn vm_userspace_schedulers_pick_what_the_kernel_picks() {
    vm::run_test_in_vm(|| {
        let lab = Lab::new()?;
        let director = lab.node("lb")?;
        let clients = lab.node("cli")?;
        lab.veth(&clients, "eth0", &director, "eth0")?;
        clients.sh(&format!(
            "for i in $(seq 1 {CLIENTS}); do echo \"addr add 10.1.0.$i/24 dev eth0\"; done | /usr/sbin/ip -batch -"
        ))?;
        clients.run(["ip", "route", "add", "default", "via", "10.1.0.254"])?;
        director.add_addr("eth0", "10.1.0.254/24")?;
        director.sh(
            "for n in $(seq 0 31); do for k in $(seq 1 4); do echo \"addr add 10.9.$n.$k/32 dev lo\"; done; done | /usr/sbin/ip -batch - && \
             for i in $(seq 1 16); do echo \"addr add 10.2.0.$i/32 dev lo\"; done | /usr/sbin/ip -batch -",
        )?;
        let listener = director.in_netns(|| TcpListener::bind(("0.0.0.0", 80)))??;
        // The server ends stay open until their case is over (then they are
        // dropped, so the descriptors of all cases do not pile up).
        let held: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let accepted = Arc::clone(&held);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Ok(mut held) = accepted.lock() {
                    held.push(stream);
                }
            }
        });
        let mut conns = ConnTable(
            director
                .in_netns(|| File::open("/proc/thread-self/net/ip_vs_conn"))?
                .context("open ip_vs_conn in the director's namespace")?,
        );

        let mixed = [3, 1, 4, 1, 5, 9, 2, 6];
        let with_flags = |name: &str, flags: &'static str, bits: ServiceFlags| Case {
            flags,
            service_flags: bits,
            ..case(name, &mixed, 60)
        };
        let cases = vec![
            case("rr", &[1, 1, 0, 1, 1], 40),
            case("wrr", &mixed, 70),
            case("wrr", &[4, 6, 2, 8], 30),
            case("sh", &mixed, 60),
            with_flags("sh", "sh-port", ServiceFlags::SH_PORT),
            Case {
                vips: 4,
                ..case("dh", &mixed, 24)
            },
            case("mh", &mixed, 60),
            with_flags("mh", "mh-port", ServiceFlags::MH_PORT),
            case("fo", &[2, 7, 7, 3], 10),
            case("ovf", &[3, 1, 2], 12),
            case("lc", &[1, 2, 3], 30),
            case("wlc", &mixed, 60),
            case("sed", &mixed, 60),
            case("nq", &mixed, 60),
            case("lblc", &[2, 1, 3], 30),
            case("lblcr", &[2, 1, 3], 30),
            // An edit mid-run: rr keeps its cursor, wrr restarts from the
            // list head, sh/mh without fallback answer "no destination" for
            // the quiesced server's clients and with fallback probe on.
            Case {
                quiesce: Some((7, 2)),
                ..case("rr", &[1, 1, 1, 1], 20)
            },
            Case {
                quiesce: Some((9, 3)),
                ..case("wrr", &mixed, 40)
            },
            Case {
                quiesce: Some((20, 6)),
                ..case("sh", &mixed, 60)
            },
            Case {
                quiesce: Some((20, 6)),
                ..with_flags("sh", "sh-fallback", ServiceFlags::SH_FALLBACK)
            },
            Case {
                quiesce: Some((20, 6)),
                ..case("mh", &mixed, 60)
            },
            Case {
                quiesce: Some((20, 6)),
                ..with_flags("mh", "mh-fallback", ServiceFlags::MH_FALLBACK)
            },
        ];
        let mut compared = 0;
        let mut mismatches = Vec::new();
        for (n, case) in cases.iter().enumerate() {
            let (picks, bad) = run_case(&director, &clients, &mut conns, case, n as u8)?;
            println!(
                "{} {}: {} picks, {} differ",
                case.scheduler.as_str(),
                case.flags,
                picks,
                bad.len()
            );
            compared += picks;
            mismatches.extend(bad);
            if let Ok(mut held) = held.lock() {
                held.clear();
            }
        }
        ensure!(
            mismatches.is_empty(),
            "{} of {compared} picks differ from the kernel's:\n{}",
            mismatches.len(),
            mismatches.join("\n")
        );
        Ok(())
    });
}
