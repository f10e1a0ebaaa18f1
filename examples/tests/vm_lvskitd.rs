//! Tier 3: `lvskitd -C` (checkers and IPVS) on Debian's stock kernel, with
//! Debian's `ipvsadm` as the witness of what reaches the kernel.

use anyhow::{Context, Result, ensure};
use lvskit_testlab::vm::Vm;
use lvskit_testlab::{Lab, Node, Process};
use nix::sys::signal::Signal;
use std::io::Read as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::time::{Duration, Instant};

const SERVICE: &[&str] = &["-t", "10.0.0.100:80"];

/// `lvskitd -C -n -l -f <config>` on `node`, with its files in the node's
/// directory.
fn start_lvskitd(node: &Node, config: &str) -> Result<Process> {
    start_lvskitd_as(node, config, &["-C"])
}

/// `lvskitd <role> -n -l -f <config>` (`role`: `-C`, `-P` or nothing).
fn start_lvskitd_as(node: &Node, config: &str, role: &[&str]) -> Result<Process> {
    let dir = node.dir();
    let path = dir.join("lvskitd.conf");
    std::fs::write(&path, config)?;
    let file = |name: &str| dir.join(name).to_string_lossy().into_owned();
    node.spawn(
        "lvskitd",
        [
            env!("CARGO_BIN_EXE_lvskitd").to_owned(),
            "-n".into(),
            "-l".into(),
            "-f".into(),
            path.to_string_lossy().into_owned(),
            "-p".into(),
            file("lvskitd.pid"),
            "--status-socket".into(),
            file("lvskitd.sock"),
        ]
        .into_iter()
        .chain(role.iter().map(|r| (*r).to_owned())),
    )
}

fn start_app(node: &Node, name: &str) -> Result<Process> {
    let app = node.spawn(
        name,
        [
            env!("CARGO_BIN_EXE_lvskit-app"),
            "--name",
            name,
            "--vip",
            "10.0.0.100",
            "--listen",
            "0.0.0.0:80",
        ],
    )?;
    app.wait_for_output("ready on", Duration::from_secs(20))?;
    Ok(app)
}

/// A destination as `ipvsadm -Ln` lists it: address, method, weight.
type Row = (String, String, u32);

/// A destination as a test expects it: address, method, weight.
type Expected<'a> = (&'a str, &'a str, u32);

/// A service (`ipvsadm` words) and the destinations it should list.
type ServiceRows<'a> = (&'a [&'a str], &'a [Expected<'a>]);

/// The destinations of one service (`ipvsadm` words, e.g. `-t ADDR:PORT`
/// or `-f MARK`), sorted; none while the service does not exist.
fn real_servers(lb: &Node, service: &[&str]) -> Result<Vec<Row>> {
    let out = lb.exec(["/usr/sbin/ipvsadm", "-Ln"].iter().chain(service))?;
    let mut rows: Vec<Row> = out
        .stdout
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["->", address, method, weight, ..] if address.contains(':') => Some((
                    (*address).to_owned(),
                    (*method).to_owned(),
                    weight.parse().ok()?,
                )),
                _ => None,
            }
        })
        .collect();
    rows.sort();
    Ok(rows)
}

/// Waits until every service of `expected` lists exactly its destinations
/// (in any order); on timeout, the error shows the table and lvskitd's log.
fn wait_for_table(
    lb: &Node,
    lvskitd: &Process,
    expected: &[ServiceRows<'_>],
    timeout: Duration,
) -> Result<Duration> {
    let started = Instant::now();
    let wanted: Vec<Vec<Row>> = expected
        .iter()
        .map(|(_, rows)| {
            let mut rows: Vec<Row> = rows
                .iter()
                .map(|(a, m, w)| ((*a).to_owned(), (*m).to_owned(), *w))
                .collect();
            rows.sort();
            rows
        })
        .collect();
    loop {
        let seen = expected
            .iter()
            .map(|(service, _)| real_servers(lb, service))
            .collect::<Result<Vec<_>>>()?;
        if seen == wanted {
            return Ok(started.elapsed());
        }
        ensure!(
            started.elapsed() < timeout,
            "IPVS table {seen:?}, expected {wanted:?} within {timeout:?}\nlvskitd:\n{}",
            lvskitd.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Stops lvskitd with SIGTERM and checks it removed what it created.
fn stop_lvskitd(lb: &Node, mut lvskitd: Process) -> Result<()> {
    lvskitd.signal(Signal::SIGTERM);
    let status = lvskitd
        .wait_timeout(Duration::from_secs(20))
        .context("lvskitd did not stop")?;
    ensure!(status.success(), "lvskitd: {status}\n{}", lvskitd.stderr());
    let left = lb.run(["/usr/sbin/ipvsadm", "-Ln"])?;
    ensure!(
        !left
            .lines()
            .any(|l| l.starts_with("TCP") || l.starts_with("FWM")),
        "services left behind:\n{left}"
    );
    Ok(())
}

/// HTTP_GET, MISC_CHECK, FILE_CHECK and PING_CHECK, each on its own real
/// server, followed through the kernel's table as the servers come and go.
#[test]
fn vm_lvskitd_checkers_drive_the_ipvs_table() {
    Vm::new()
        .binary(env!("CARGO_BIN_EXE_lvskitd"))
        .binary(env!("CARGO_BIN_EXE_lvskit-app"))
        // Debug builds of both binaries unpack to about 300 MB in the
        // initramfs.
        .memory_mib(2048)
        .timeout(Duration::from_secs(600))
        .run_test(|| {
            let lab = Lab::new()?;
            let lan = lab.bridge("lan")?;
            let lb = lab.node("lb")?;
            let app1 = lab.node("app1")?;
            let app4 = lab.node("app4")?;
            for (node, address) in [(&lb, "10.0.0.2/24"), (&app1, "10.0.0.11/24"), (&app4, "10.0.0.14/24")] {
                lab.connect(node, "eth0", &lan)?;
                node.add_addr("eth0", address)?;
            }
            let dir = lb.dir().to_path_buf();
            let misc_flag = dir.join("misc-up");
            let weight_file = dir.join("weight");
            std::fs::write(&weight_file, "4\n")?;
            let config = format!(
                "track_file weightfile {{\n    file {weight}\n    weight 1\n}}\n\
                 virtual_server 10.0.0.100 80 {{\n    delay_loop 1\n    connect_timeout 2\n    \
                 delay_before_retry 1\n    lb_algo wrr\n    lb_kind DR\n    protocol TCP\n\
                 \x20   real_server 10.0.0.11 80 {{\n        weight 10\n        HTTP_GET {{\n            \
                 url {{\n                path /health\n                status_code 200\n            }}\n            \
                 retry 0\n        }}\n    }}\n\
                 \x20   real_server 10.0.0.12 80 {{\n        weight 20\n        MISC_CHECK {{\n            \
                 misc_path \"/bin/sh -c 'test -e {misc}'\"\n            misc_timeout 5\n        }}\n    }}\n\
                 \x20   real_server 10.0.0.13 80 {{\n        weight 30\n        FILE_CHECK {{\n            \
                 track_file weightfile\n        }}\n    }}\n\
                 \x20   real_server 10.0.0.14 80 {{\n        weight 40\n        PING_CHECK {{\n            \
                 retry 0\n        }}\n    }}\n}}\n",
                weight = weight_file.display(),
                misc = misc_flag.display(),
            );
            let mut app = start_app(&app1, "app1")?;
            let lvskitd = start_lvskitd(&lb, &config)?;
            let long = Duration::from_secs(60);
            // app1 answers /health; the MISC_CHECK script fails (no flag
            // file); the file's 4 moves the weight 30 → 34; app4 answers
            // pings.
            let up = wait_for_table(
                &lb,
                &lvskitd,
                &[(
                    SERVICE,
                    &[
                        ("10.0.0.11:80", "Route", 10),
                        ("10.0.0.13:80", "Route", 34),
                        ("10.0.0.14:80", "Route", 40),
                    ],
                )],
                long,
            )?;
            println!("initial table after {up:?}");

            std::fs::write(&misc_flag, "")?;
            std::fs::write(&weight_file, "-300\n")?;
            app.signal(Signal::SIGTERM);
            app.wait_timeout(Duration::from_secs(10))?;
            app4.link_down("eth0")?;
            let changed = wait_for_table(
                &lb,
                &lvskitd,
                &[(SERVICE, &[("10.0.0.12:80", "Route", 20)])],
                long,
            )?;
            println!("MISC up, FILE fault, HTTP and PING down after {changed:?}");

            let _app = start_app(&app1, "app1")?;
            std::fs::write(&weight_file, "0\n")?;
            app4.link_up("eth0")?;
            let back = wait_for_table(
                &lb,
                &lvskitd,
                &[(
                    SERVICE,
                    &[
                        ("10.0.0.11:80", "Route", 10),
                        ("10.0.0.12:80", "Route", 20),
                        ("10.0.0.13:80", "Route", 30),
                        ("10.0.0.14:80", "Route", 40),
                    ],
                )],
                long,
            )?;
            println!("all back after {back:?}");

            stop_lvskitd(&lb, lvskitd)?;
            Ok(())
        });
}

/// Runs `test` in a VM with a lab and its director namespace `lb` (`lo`
/// up, nothing else: checkers that need no network, MISC_CHECK scripts,
/// use it as it is).
fn run_on_director(test: impl FnOnce(&Lab, &Node) -> Result<()>) {
    Vm::new()
        .binary(env!("CARGO_BIN_EXE_lvskitd"))
        // Debug builds unpack to about 150 MB each in the initramfs.
        .memory_mib(2048)
        .timeout(Duration::from_secs(600))
        .run_test(|| {
            let lab = Lab::new()?;
            let lb = lab.node("lb")?;
            lb.run(["ip", "link", "set", "lo", "up"])?;
            test(&lab, &lb)
        });
}

/// A `virtual_server_group` (an address range and a fwmark) and a fwmark
/// virtual server: every member gets the same real servers; losing quorum
/// brings in the sorry server and keeps the `inhibit_on_failure` server at
/// weight 0; regaining it restores the pool. MISC_CHECK scripts testing for
/// flag files stand in for the real servers' health.
#[test]
fn vm_lvskitd_group_fwmark_and_sorry_server() {
    run_on_director(|_, lb| {
        let dir = lb.dir().to_path_buf();
        let flag = |n: u32| dir.join(format!("up{n}"));
        for n in 1..=3 {
            std::fs::write(flag(n), "")?;
        }
        let misc = |n: u32| {
            format!(
                "MISC_CHECK {{\n            misc_path \"/bin/sh -c 'test -e {}'\"\n            misc_timeout 5\n        }}",
                flag(n).display()
            )
        };
        let config = format!(
            "virtual_server_group web {{\n    10.0.0.100-101 80\n    fwmark 5\n}}\n\
                 virtual_server group web {{\n    delay_loop 1\n    lb_algo rr\n    lb_kind DR\n    \
                 protocol TCP\n    quorum 2\n    sorry_server 10.0.0.50 80\n\
                 \x20   real_server 10.0.0.11 80 {{\n        {}\n    }}\n\
                 \x20   real_server 10.0.0.12 80 {{\n        inhibit_on_failure\n        {}\n    }}\n}}\n\
                 virtual_server fwmark 9 {{\n    delay_loop 1\n    lb_algo rr\n    lb_kind NAT\n\
                 \x20   real_server 10.0.0.13 80 {{\n        {}\n    }}\n}}\n",
            misc(1),
            misc(2),
            misc(3),
        );
        let lvskitd = start_lvskitd(lb, &config)?;
        let long = Duration::from_secs(60);
        let members: [&[&str]; 3] = [
            &["-t", "10.0.0.100:80"],
            &["-t", "10.0.0.101:80"],
            &["-f", "5"],
        ];
        let fwmark9: &[&str] = &["-f", "9"];
        let healthy: &[Expected<'_>] =
            &[("10.0.0.11:80", "Route", 1), ("10.0.0.12:80", "Route", 1)];
        let mut expected: Vec<ServiceRows<'_>> = members.iter().map(|m| (*m, healthy)).collect();
        expected.push((fwmark9, &[("10.0.0.13:80", "Masq", 1)]));
        let up = wait_for_table(lb, &lvskitd, &expected, long)?;
        println!("group and fwmark services up after {up:?}");

        // 10.0.0.12 fails: the alive weight 1 is under quorum 2.
        std::fs::remove_file(flag(2))?;
        let sorry: &[Expected<'_>] = &[("10.0.0.12:80", "Route", 0), ("10.0.0.50:80", "Route", 1)];
        let lost: Vec<ServiceRows<'_>> = members.iter().map(|m| (*m, sorry)).collect();
        let took = wait_for_table(lb, &lvskitd, &lost, long)?;
        println!("quorum lost, sorry server in after {took:?}");

        std::fs::write(flag(2), "")?;
        let took = wait_for_table(lb, &lvskitd, &expected, long)?;
        println!("quorum regained after {took:?}");
        stop_lvskitd(lb, lvskitd)
    });
}

/// `ha_suspend`: the checkers of a virtual server run only while its
/// address is on the director. A MISC_CHECK script counts its runs in a
/// file and passes only while a flag file exists.
#[test]
fn vm_lvskitd_ha_suspend_follows_the_virtual_address() {
    run_on_director(|_, lb| {
        let dir = lb.dir().to_path_buf();
        let runs = dir.join("runs");
        let flag = dir.join("up");
        let config = format!(
            "virtual_server 10.0.0.100 80 {{\n    delay_loop 1\n    lb_algo rr\n    lb_kind DR\n    \
                 protocol TCP\n    ha_suspend\n    real_server 10.0.0.11 80 {{\n        MISC_CHECK {{\n            \
                 misc_path \"/bin/sh -c 'echo run >> {}; test -e {}'\"\n            misc_timeout 5\n        \
                 }}\n    }}\n}}\n",
            runs.display(),
            flag.display()
        );
        let count_runs =
            || -> usize { std::fs::read_to_string(&runs).map_or(0, |text| text.lines().count()) };
        let lvskitd = start_lvskitd(lb, &config)?;
        let long = Duration::from_secs(60);
        let present: &[Expected<'_>] = &[("10.0.0.11:80", "Route", 1)];
        wait_for_table(lb, &lvskitd, &[(SERVICE, present)], long)?;
        // The address is not here: no check runs, so the failing
        // script cannot remove the real server. Several delay_loops
        // pass.
        std::thread::sleep(Duration::from_secs(5));
        ensure!(
            count_runs() == 0,
            "{} checks ran while suspended",
            count_runs()
        );
        wait_for_table(lb, &lvskitd, &[(SERVICE, present)], Duration::ZERO)?;

        // The address arrives: the checks run, fail, and remove it.
        lb.run(["ip", "addr", "add", "10.0.0.100/32", "dev", "lo"])?;
        let took = wait_for_table(lb, &lvskitd, &[(SERVICE, &[])], long)?;
        println!("checks resumed and failed after {took:?}");
        ensure!(count_runs() > 0, "no check ran");

        // The address leaves: the state is frozen, even though the
        // script would now pass.
        lb.run(["ip", "addr", "del", "10.0.0.100/32", "dev", "lo"])?;
        lvskitd.wait_for_output("Suspending checkers", Duration::from_secs(20))?;
        // A check started just before the suspension may still finish.
        std::thread::sleep(Duration::from_secs(2));
        let frozen = count_runs();
        std::fs::write(&flag, "")?;
        std::thread::sleep(Duration::from_secs(5));
        ensure!(count_runs() == frozen, "checks ran while suspended");
        wait_for_table(lb, &lvskitd, &[(SERVICE, &[])], Duration::ZERO)?;

        // Back again: the passing check restores the real server.
        lb.run(["ip", "addr", "add", "10.0.0.100/32", "dev", "lo"])?;
        let took = wait_for_table(lb, &lvskitd, &[(SERVICE, present)], long)?;
        println!("checks resumed and passed after {took:?}");
        stop_lvskitd(lb, lvskitd)
    });
}

/// `lb_kind TUN` and `lvs_method TUN` with keepalived's tunnel options
/// reach the kernel: each destination carries its encapsulation (GUE with
/// its port and checksum flag, GRE), as Debian's `ipvsadm --tun-info`
/// lists them.
#[test]
fn vm_lvskitd_tunnel_options_reach_the_kernel() {
    run_on_director(|_, lb| {
        let config = "virtual_server 10.0.0.100 80 {\n    lb_algo rr\n    \
                      lb_kind TUN type gue port 6080 csum\n    protocol TCP\n    \
                      real_server 10.0.0.11 80 {\n    }\n    \
                      real_server 10.0.0.12 80 {\n        lvs_method TUN type gre\n    }\n}\n";
        let lvskitd = start_lvskitd(lb, config)?;
        let tunnelled = [("10.0.0.11:80", "Tunnel", 1), ("10.0.0.12:80", "Tunnel", 1)];
        wait_for_table(
            lb,
            &lvskitd,
            &[(SERVICE, &tunnelled)],
            Duration::from_secs(60),
        )?;
        let listed = lb
            .exec(["/usr/sbin/ipvsadm", "-Ln", "--tun-info"])?
            .stdout
            .to_lowercase();
        println!("{listed}");
        let row = |address: &str| {
            listed
                .lines()
                .find(|l| l.contains(address))
                .unwrap_or_default()
                .to_owned()
        };
        // ipvsadm writes type:port:checksum, `+c` for csum, `-c` for none.
        ensure!(row("10.0.0.11:80").contains(" gue:6080:+c "), "{listed}");
        ensure!(row("10.0.0.12:80").contains(" gre:-c "), "{listed}");
        stop_lvskitd(lb, lvskitd)
    });
}

/// `checker_rt_priority`: the runtime threads that run the checkers
/// (tokio's workers) run SCHED_RR (policy 2) at the configured priority;
/// the main thread keeps normal priority.
#[test]
fn vm_lvskitd_checker_rt_priority_schedules_the_checker_threads() {
    run_on_director(|_, lb| {
        let config = "global_defs {\n    checker_rt_priority 15\n}\n\
                      virtual_server 10.0.0.100 80 {\n    lb_algo rr\n    lb_kind DR\n    \
                      protocol TCP\n    real_server 10.0.0.11 80 {\n    }\n}\n";
        let lvskitd = start_lvskitd(lb, config)?;
        wait_for_table(
            lb,
            &lvskitd,
            &[(SERVICE, &[("10.0.0.11:80", "Route", 1)])],
            Duration::from_secs(60),
        )?;
        let threads = lvskitd.thread_scheduling()?;
        let workers: Vec<_> = threads
            .iter()
            .filter(|(name, ..)| name == "tokio-rt-worker")
            .collect();
        ensure!(
            !workers.is_empty()
                && workers
                    .iter()
                    .all(|(_, policy, priority)| (*policy, *priority) == (2, 15)),
            "{threads:?}\n{}",
            lvskitd.stderr()
        );
        ensure!(
            threads
                .iter()
                .any(|(name, policy, _)| name == "lvskitd" && *policy == 0),
            "{threads:?}"
        );
        stop_lvskitd(lb, lvskitd)
    });
}

/// `lb` on a captured bridge at 10.0.0.2/24, running lvskitd (`flags`)
/// with `config` after a master VRRP instance (`advert_int 1`, VIP
/// 10.0.0.100); returns once it holds the VIP.
fn master_on_lan(
    lab: &Lab,
    lb: &Node,
    config: &str,
    flags: &[&str],
) -> Result<(lvskit_testlab::Capture, Process)> {
    let lan = lab.bridge("lan")?;
    lab.connect(lb, "eth0", &lan)?;
    lb.add_addr("eth0", "10.0.0.2/24")?;
    let capture = lab.capture(&lan)?;
    let config = format!(
        "vrrp_instance VI_1 {{\n    state MASTER\n    interface eth0\n    virtual_router_id 51\n    \
         priority 100\n    advert_int 1\n    virtual_ipaddress {{\n        10.0.0.100/24\n    }}\n}}\n\
         {config}"
    );
    let lvskitd = start_lvskitd_as(lb, &config, flags)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !lb.has_addr("eth0", "10.0.0.100")? {
        ensure!(Instant::now() < deadline, "no VIP:\n{}", lvskitd.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((capture, lvskitd))
}

/// Isolation: checkers that hang until killed, crash, or wait for hosts
/// that never answer (60 per second) do not delay the VRRP adverts of the
/// same lvskitd, measured on the wire.
#[test]
fn vm_lvskitd_misbehaving_checkers_never_delay_adverts() {
    run_on_director(|lab, lb| {
        let mut config = String::from(
            "virtual_server 10.0.0.100 80 {\n    delay_loop 1\n    lb_algo rr\n    lb_kind DR\n    \
                 protocol TCP\n",
        );
        // Nothing answers at 10.0.0.11..30: the TCP checks wait for ARP.
        for host in 11..=30 {
            config.push_str(&format!(
                    "    real_server 10.0.0.{host} 80 {{\n        \
                     MISC_CHECK {{\n            misc_path \"/bin/sleep 30\"\n            misc_timeout 2\n        }}\n        \
                     MISC_CHECK {{\n            misc_path \"/bin/sh -c 'kill -SEGV $$'\"\n        }}\n        \
                     TCP_CHECK {{\n            connect_timeout 1\n        }}\n    }}\n"
                ));
        }
        config.push_str("}\n");
        let (capture, lvskitd) = master_on_lan(lab, lb, &config, &[])?;
        let window_start = std::time::SystemTime::now();
        std::thread::sleep(Duration::from_secs(12));
        let window_end = std::time::SystemTime::now();
        let log = lvskitd.stderr() + &lvskitd.stdout();
        ensure!(
            log.contains("failed"),
            "the checkers did not fail as intended:\n{log}"
        );
        let (adverts, largest) = advert_gaps(&capture, window_start, window_end);
        println!(
            "{adverts} adverts in 12 s under misbehaving checkers; largest gap {largest:.3} s"
        );
        ensure_steady_adverts(adverts, 11, largest)?;
        stop_lvskitd(lb, lvskitd)
    });
}

/// The VRRP adverts (IP protocol 112) `capture` saw between `start` and
/// `end`, and the largest gap between two of them, in seconds.
fn advert_gaps(
    capture: &lvskit_testlab::Capture,
    start: std::time::SystemTime,
    end: std::time::SystemTime,
) -> (usize, f64) {
    let times: Vec<std::time::SystemTime> = capture
        .frames()
        .iter()
        .filter(|f| f.time >= start && f.time <= end)
        .filter(|f| f.ipv4().is_some_and(|ip| ip.protocol == 112))
        .map(|f| f.time)
        .collect();
    let largest = times
        .windows(2)
        .map(|w| w[1].duration_since(w[0]).unwrap_or_default().as_secs_f64())
        .fold(0.0, f64::max);
    (times.len(), largest)
}

/// At `advert_int 1`: at least `expected` adverts and no gap of 1.25 s or
/// more. The slack covers qemu TCG timer jitter on a shared host, not a
/// stalled sender (that would be a gap of seconds).
fn ensure_steady_adverts(adverts: usize, expected: usize, largest: f64) -> Result<()> {
    ensure!(adverts >= expected, "only {adverts} adverts");
    ensure!(
        largest < 1.25,
        "an advert came {largest:.3} s after the one before"
    );
    Ok(())
}

/// Isolation under a real panic, forced from outside: lvskitd is moved
/// into a pids cgroup whose limit is below its thread count, so the kernel
/// refuses it any new thread. Its FILE_CHECK reads the file through tokio's
/// blocking pool, whose last thread has idled out between two probes
/// (`delay_loop 12`, threads idle out after 10 s); the pool then panics
/// ("OS can't spawn worker thread") inside the probe task. The checker side
/// must report the failed probe and go on, and the VRRP thread must keep
/// advertising on time throughout, measured on the wire.
#[test]
fn vm_lvskitd_panicking_checker_never_delays_adverts() {
    run_on_director(|lab, lb| {
        let dir = lb.dir().to_path_buf();
        let value = dir.join("value");
        std::fs::write(&value, "0\n")?;
        let config = format!(
            "track_file value {{\n    file {value}\n}}\n\
             virtual_server 10.0.0.100 80 {{\n    delay_loop 12\n    lb_algo rr\n    lb_kind DR\n    \
             protocol TCP\n    real_server 10.0.0.11 80 {{\n        warmup 0\n        FILE_CHECK {{\n            \
             track_file value\n        }}\n    }}\n}}\n",
            value = value.display(),
        );
        let (capture, lvskitd) = master_on_lan(lab, lb, &config, &["-D"])?;
        // A pids cgroup (cgroup v2) holding lvskitd, closed to new tasks.
        let root = dir.join("cgroup");
        std::fs::create_dir(&root)?;
        // In the VM's own mount namespace (`ip netns exec` makes its own).
        let mount = |args: &[&std::ffi::OsStr]| -> Result<()> {
            let status = std::process::Command::new(args[0])
                .args(&args[1..])
                .status()?;
            ensure!(status.success(), "{args:?}: {status}");
            Ok(())
        };
        mount(&[
            "mount".as_ref(),
            "-t".as_ref(),
            "cgroup2".as_ref(),
            "none".as_ref(),
            root.as_ref(),
        ])?;
        std::fs::write(root.join("cgroup.subtree_control"), "+pids")?;
        let group = root.join("lvskitd");
        std::fs::create_dir(&group)?;
        std::fs::write(group.join("cgroup.procs"), lvskitd.pid().to_string())?;
        std::fs::write(group.join("pids.max"), "1")?;
        let window_start = std::time::SystemTime::now();
        let deadline = Instant::now() + Duration::from_secs(40);
        while !lvskitd.stderr().contains("probe panicked") {
            ensure!(
                Instant::now() < deadline,
                "no probe panicked (pids.events {:?}):\n{}",
                std::fs::read_to_string(group.join("pids.events")),
                lvskitd.stderr()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        // Adverts on past the panic, then threads are allowed again (a
        // clean stop needs one).
        std::thread::sleep(Duration::from_secs(3));
        let window_end = std::time::SystemTime::now();
        std::fs::write(group.join("pids.max"), "max")?;
        let log = lvskitd.stderr();
        ensure!(
            log.contains("probe panicked: OS can't spawn worker thread"),
            "{log}"
        );
        ensure!(
            log.contains("Check on service [10.0.0.11]:tcp:80 failed"),
            "{log}"
        );
        let seconds = window_end
            .duration_since(window_start)
            .unwrap_or_default()
            .as_secs_f64();
        let (adverts, largest) = advert_gaps(&capture, window_start, window_end);
        println!(
            "{adverts} adverts in {seconds:.1} s while lvskitd could start no thread and a probe \
             panicked; largest gap {largest:.3} s"
        );
        ensure_steady_adverts(adverts, seconds as usize - 1, largest)?;
        stop_lvskitd(lb, lvskitd)?;
        mount(&["umount".as_ref(), root.as_ref()])
    });
}

/// Reads the FIFO until `wanted` lines have all arrived, or fails.
fn read_fifo_until(fifo: &mut std::fs::File, seen: &mut String, wanted: &[&str]) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut buffer = [0u8; 1024];
    while !wanted.iter().all(|w| seen.lines().any(|l| l == *w)) {
        ensure!(
            Instant::now() < deadline,
            "lvs_notify_fifo got {seen:?}, wanted {wanted:?}"
        );
        match fifo.read(&mut buffer) {
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buffer[..n])),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// What lvskitd tells the outside about its checkers and the kernel's
/// table: the `lvs_notify_fifo` lines and the `notify_down`/`notify_up`
/// and `quorum_down`/`quorum_up` scripts as a real server goes down and
/// comes back, and the Prometheus series (real server, quorum, check durations,
/// IPVS counters).
#[test]
fn vm_lvskitd_lvs_notify_fifo_and_ipvs_metrics() {
    run_on_director(|_, lb| {
        let dir = lb.dir().to_path_buf();
        let flag = dir.join("app-up");
        std::fs::write(&flag, "")?;
        let fifo_path = dir.join("lvs.fifo");
        let log = dir.join("scripts.log");
        let script = |words: &str| format!("\"/bin/sh -c 'echo {words} >> {}'\"", log.display());
        let config = format!(
            "global_defs {{\n    lvs_notify_fifo {fifo}\n}}\n\
             virtual_server 10.0.0.100 80 {{\n    delay_loop 1\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n\
             \x20   quorum_up {quorum_up}\n    quorum_down {quorum_down}\n\
             \x20   real_server 10.0.0.11 80 {{\n        notify_up {rs_up}\n        notify_down {rs_down}\n\
             \x20       MISC_CHECK {{\n            \
             misc_path \"/bin/sh -c 'test -e {flag}'\"\n            misc_timeout 5\n        }}\n    }}\n}}\n",
            fifo = fifo_path.display(),
            flag = flag.display(),
            quorum_up = script("quorum up"),
            quorum_down = script("quorum down"),
            rs_up = script("rs up"),
            rs_down = script("rs down"),
        );
        // The scripts run beside the FIFO lines: wait for their lines.
        let wait_for_scripts = |wanted: &[&str]| -> Result<()> {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let ran = std::fs::read_to_string(&log).unwrap_or_default();
                let mut lines: Vec<&str> = ran.lines().collect();
                lines.sort_unstable();
                if lines == wanted {
                    return Ok(());
                }
                ensure!(
                    Instant::now() < deadline,
                    "scripts ran {lines:?}, wanted {wanted:?}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        };
        let mut lvskitd =
            start_lvskitd_as(lb, &config, &["-C", "--metrics-listen", "127.0.0.1:9650"])?;
        lvskitd.wait_for_output("Startup complete", Duration::from_secs(60))?;
        let mut fifo = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
            .open(&fifo_path)
            .context("lvs_notify_fifo")?;
        let mut seen = String::new();

        std::fs::remove_file(&flag)?;
        read_fifo_until(
            &mut fifo,
            &mut seen,
            &[
                "RS [10.0.0.11]:tcp:80 [10.0.0.100]:tcp:80 DOWN",
                "VS [10.0.0.100]:tcp:80 DOWN",
            ],
        )?;
        wait_for_scripts(&["quorum down", "rs down"])?;
        let metrics = lb.in_netns(|| -> Result<String> {
            use std::io::Write as _;
            let mut stream = std::net::TcpStream::connect("127.0.0.1:9650")?;
            stream.set_read_timeout(Some(Duration::from_secs(10)))?;
            stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n")?;
            let mut answer = String::new();
            stream.read_to_string(&mut answer)?;
            Ok(answer)
        })??;
        for line in [
            "lvskit_real_server_up{virtual_server=\"[10.0.0.100]:tcp:80\",real_server=\"[10.0.0.11]:tcp:80\"} 0",
            "lvskit_virtual_server_quorum_up{virtual_server=\"[10.0.0.100]:tcp:80\"} 0",
            "lvskit_ipvs_service_connections_total{service=\"[10.0.0.100]:tcp:80\"} 0",
        ] {
            ensure!(
                metrics.lines().any(|l| l == line),
                "{line} missing:\n{metrics}"
            );
        }
        // Every probe is timed: the failed MISC_CHECK runs count, with
        // their durations in the histogram.
        let real_server =
            "{virtual_server=\"[10.0.0.100]:tcp:80\",real_server=\"[10.0.0.11]:tcp:80\"}";
        let value = |name: &str| -> Result<f64> {
            let prefix = format!("{name}{real_server} ");
            let line = metrics
                .lines()
                .find_map(|l| l.strip_prefix(&prefix))
                .with_context(|| format!("{prefix} missing:\n{metrics}"))?;
            Ok(line.parse()?)
        };
        let probes = value("lvskit_real_server_check_duration_seconds_count")?;
        let failures = value("lvskit_real_server_check_failures_total")?;
        let seconds = value("lvskit_real_server_check_duration_seconds_sum")?;
        let last = value("lvskit_real_server_check_last_duration_seconds")?;
        println!("{probes} probes, {failures} failed, {seconds} s in all, last {last} s");
        ensure!(probes >= 2.0 && failures >= 1.0 && failures < probes);
        // A shell testing a file: longer than nothing, far below its
        // misc_timeout.
        ensure!(seconds > 0.0 && last > 0.0 && last < 5.0);

        std::fs::write(&flag, "")?;
        read_fifo_until(
            &mut fifo,
            &mut seen,
            &[
                "RS [10.0.0.11]:tcp:80 [10.0.0.100]:tcp:80 UP",
                "VS [10.0.0.100]:tcp:80 UP",
            ],
        )?;
        wait_for_scripts(&["quorum down", "quorum up", "rs down", "rs up"])?;
        lvskitd.signal(Signal::SIGTERM);
        ensure!(lvskitd.wait_timeout(Duration::from_secs(20))?.success());
        Ok(())
    });
}
