//! Tier 2: `lvskitd -P` (VRRP only: the host kernel has no IPVS) against
//! Debian's keepalived on a bridge: mastership, `--status`, failover on
//! SIGKILL timed from the wire, preemption, and a clean SIGTERM (priority
//! 0, VIP and pid file removed).

use anyhow::{Context, Result, ensure};
use lvskit_testlab::keepalived::{Keepalived, VrrpInstance};
use lvskit_testlab::{Bridge, Frame, Lab, Node, Process, require_root};
use nix::sys::signal::Signal;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant, SystemTime};

const VIP: &str = "10.0.0.100";

/// How far a measured failover gap may be from 3 × 1 s + Skew_Time. The
/// target is 1 ms and is met on a quiet host (3.8052 s measured for 3.8047
/// s); this bound is looser because the host is shared by parallel builds,
/// and still catches a wrong formula (a missing skew is 0.8 s off).
const GAP_TOLERANCE: f64 = 0.050;

fn lvskitd_config() -> String {
    "global_defs {\n    router_id lb1\n}\n\
     vrrp_instance VI_1 {\n    state MASTER\n    interface eth0\n    virtual_router_id 51\n    priority 100\n    advert_int 1\n\
         authentication {\n        auth_type PASS\n        auth_pass pass\n    }\n\
         virtual_ipaddress {\n        10.0.0.100/24\n    }\n}\n"
        .to_owned()
}

fn start_lvskitd(node: &Node, name: &str) -> Result<Process> {
    let dir = node.dir();
    let config = dir.join(format!("{name}.conf"));
    std::fs::write(&config, lvskitd_config())?;
    node.spawn(
        name,
        [
            env!("CARGO_BIN_EXE_lvskitd").to_owned(),
            "-P".into(),
            "-n".into(),
            "-l".into(),
            "-f".into(),
            config.to_string_lossy().into_owned(),
            "-p".into(),
            dir.join(format!("{name}.pid"))
                .to_string_lossy()
                .into_owned(),
            "--status-socket".into(),
            dir.join(format!("{name}.sock"))
                .to_string_lossy()
                .into_owned(),
        ],
    )
}

/// Starts `lvskitd -P` on `node` with `config` (written to `NAME.conf`),
/// the status socket `NAME.sock`, `env` set and `extra` arguments.
fn spawn_vrrp_only(
    node: &Node,
    name: &str,
    config: &str,
    env: &[String],
    extra: &[&str],
) -> Result<Process> {
    let dir = node.dir();
    let path = dir.join(format!("{name}.conf"));
    std::fs::write(&path, config)?;
    let mut argv = vec!["env".to_owned()];
    argv.extend(env.iter().cloned());
    argv.extend([
        env!("CARGO_BIN_EXE_lvskitd").to_owned(),
        "-P".into(),
        "-f".into(),
        path.to_string_lossy().into_owned(),
        "--status-socket".into(),
        dir.join(format!("{name}.sock"))
            .to_string_lossy()
            .into_owned(),
    ]);
    argv.extend(extra.iter().map(|a| (*a).to_owned()));
    node.spawn(name, argv)
}

fn wait_vip(node: &Node, present: bool, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while node.has_addr("eth0", VIP)? != present {
        ensure!(
            Instant::now() < deadline,
            "{}: VIP present={} not reached within {timeout:?}",
            node.name(),
            present
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// (time, source, priority) of VRRP adverts.
fn adverts(frames: &[Frame]) -> Vec<(SystemTime, Ipv4Addr, u8)> {
    frames
        .iter()
        .filter_map(|f| {
            let ip = f.ipv4()?;
            (ip.protocol == 112).then(|| Some((f.time, ip.src, *ip.payload.get(2)?)))?
        })
        .collect()
}

#[test]
fn netns_lvskitd_vrrp_against_keepalived() -> Result<()> {
    require_root();
    let lab = Lab::new()?;
    let lan = lab.bridge("lan")?;
    let lb1 = lab.node("lb1")?;
    let lb2 = lab.node("lb2")?;
    lab.connect(&lb1, "eth0", &lan)?;
    lab.connect(&lb2, "eth0", &lan)?;
    lb1.add_addr("eth0", "10.0.0.2/24")?;
    lb2.add_addr("eth0", "10.0.0.3/24")?;
    let (lb1_ip, lb2_ip) = (Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 3));
    let capture = lab.capture(&lan)?;

    let mut daemon = start_lvskitd(&lb1, "lvskitd-1")?;
    wait_vip(&lb1, true, Duration::from_secs(10))?;
    let peer_config = VrrpInstance::new("VI_1", "eth0", 51, 50)
        .auth_pass("pass")
        .vip("10.0.0.100/24")
        .config();
    let peer = Keepalived::start(&lb2, "lb2", &peer_config)?;
    peer.wait_for_log("Entering BACKUP STATE", Duration::from_secs(10))?;

    // --status: JSON naming the instance and its role.
    let socket = lab.dir().join("lvskitd-1.sock");
    let status = lb1.run([
        env!("CARGO_BIN_EXE_lvskitd"),
        "--status",
        "--status-socket",
        &socket.to_string_lossy(),
    ])?;
    let json: serde_json::Value = serde_json::from_str(&status).context("status JSON")?;
    ensure!(json["vrrp_instances"][0]["name"] == "VI_1", "{json}");
    ensure!(json["vrrp_instances"][0]["role"] == "MASTER", "{json}");
    // The engine's own view too, with its counters.
    ensure!(json["vrrp_instances"][0]["state"] == "MASTER", "{json}");
    ensure!(
        json["vrrp_instances"][0]["adverts_sent"].as_u64() >= Some(1),
        "{json}"
    );
    let pid_file = lab.dir().join("lvskitd-1.pid");
    ensure!(std::fs::read_to_string(&pid_file)?.trim() == daemon.pid().to_string());

    // SIGKILL: keepalived takes over after Master_Down_Interval.
    std::thread::sleep(Duration::from_millis(2500));
    let kill = SystemTime::now();
    daemon.kill();
    peer.wait_for_log("Entering MASTER STATE", Duration::from_secs(10))?;
    capture.wait_for(Duration::from_secs(5), |f| {
        f.time > kill
            && f.ipv4()
                .is_some_and(|ip| ip.protocol == 112 && ip.src == lb2_ip)
    })?;
    let all = adverts(&capture.frames());
    let last = all
        .iter()
        .filter(|a| a.1 == lb1_ip && a.0 < kill)
        .map(|a| a.0)
        .max()
        .context("no advert from lvskitd")?;
    let first = all
        .iter()
        .filter(|a| a.1 == lb2_ip && a.0 > kill)
        .map(|a| a.0)
        .min()
        .context("no advert from keepalived")?;
    let gap = first.duration_since(last)?.as_secs_f64();
    let expected = 3.0 + (256.0 - 50.0) / 256.0;
    println!("failover lvskitd → keepalived on the wire: {gap:.4} s (expected {expected:.4} s)");
    ensure!((gap - expected).abs() < GAP_TOLERANCE, "gap {gap:.4} s");
    ensure!(
        all.iter().filter(|a| a.1 == lb1_ip).all(|a| a.2 == 100),
        "lvskitd advertised a priority other than 100 before the kill"
    );

    // lvskitd comes back and preempts; then SIGTERM sends priority 0.
    let mut daemon = start_lvskitd(&lb1, "lvskitd-2")?;
    wait_vip(&lb1, true, Duration::from_secs(10))?;
    peer.wait_for_log("Entering BACKUP STATE", Duration::from_secs(10))?;
    wait_vip(&lb2, false, Duration::from_secs(5))?;
    let term = SystemTime::now();
    daemon.signal(Signal::SIGTERM);
    let status = daemon.wait_timeout(Duration::from_secs(10))?;
    ensure!(
        status.success(),
        "lvskitd exited with {status}:\n{}",
        daemon.stderr()
    );
    ensure!(!lb1.has_addr("eth0", VIP)?, "lvskitd left its VIP behind");
    ensure!(
        !lab.dir().join("lvskitd-2.pid").exists(),
        "the pid file was not removed"
    );
    let all = adverts(&capture.frames());
    ensure!(
        all.iter().any(|a| a.1 == lb1_ip && a.2 == 0 && a.0 > term),
        "no priority-0 advert on SIGTERM"
    );
    wait_vip(&lb2, true, Duration::from_secs(3))?;
    Ok(())
}

#[test]
fn netns_lvskitd_as_backup_takes_over_from_keepalived() -> Result<()> {
    require_root();
    let lab = Lab::new()?;
    let lan = lab.bridge("lan")?;
    let lb1 = lab.node("lb1")?;
    let lb2 = lab.node("lb2")?;
    lab.connect(&lb1, "eth0", &lan)?;
    lab.connect(&lb2, "eth0", &lan)?;
    lb1.add_addr("eth0", "10.0.0.2/24")?;
    lb2.add_addr("eth0", "10.0.0.3/24")?;
    let (lb1_ip, lb2_ip) = (Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 3));
    let capture = lab.capture(&lan)?;

    let master_config = VrrpInstance::new("VI_1", "eth0", 51, 100)
        .state("MASTER")
        .auth_pass("pass")
        .vip("10.0.0.100/24")
        .config();
    let mut master = Keepalived::start(&lb1, "lb1", &master_config)?;
    master.wait_for_log("Entering MASTER STATE", Duration::from_secs(10))?;
    // lvskitd as lb2: the same instance with BACKUP and priority 50.
    let config = lvskitd_config()
        .replace("state MASTER", "state BACKUP")
        .replace("priority 100", "priority 50");
    let mut daemon = spawn_vrrp_only(&lb2, "lb2", &config, &[], &[])?;
    daemon.wait_for_output("Entering BACKUP STATE", Duration::from_secs(10))?;
    std::thread::sleep(Duration::from_millis(3500));
    ensure!(!lb2.has_addr("eth0", VIP)?, "the backup holds the VIP");

    let kill = SystemTime::now();
    master.kill();
    wait_vip(&lb2, true, Duration::from_secs(10))?;
    capture.wait_for(Duration::from_secs(5), |f| {
        f.time > kill
            && f.ipv4()
                .is_some_and(|ip| ip.protocol == 112 && ip.src == lb2_ip)
    })?;
    let all = adverts(&capture.frames());
    let last = all
        .iter()
        .filter(|a| a.1 == lb1_ip && a.0 < kill)
        .map(|a| a.0)
        .max()
        .context("no advert from keepalived")?;
    let first = all
        .iter()
        .filter(|a| a.1 == lb2_ip && a.0 > kill)
        .map(|a| a.0)
        .min()
        .context("no advert from lvskitd")?;
    ensure!(
        !all.iter().any(|a| a.1 == lb2_ip && a.0 < kill),
        "lvskitd advertised as a backup"
    );
    let gap = first.duration_since(last)?.as_secs_f64();
    let expected = 3.0 + (256.0 - 50.0) / 256.0;
    println!("failover keepalived → lvskitd on the wire: {gap:.4} s (expected {expected:.4} s)");
    ensure!((gap - expected).abs() < GAP_TOLERANCE, "gap {gap:.4} s");
    daemon.signal(Signal::SIGTERM);
    ensure!(daemon.wait_timeout(Duration::from_secs(10))?.success());
    ensure!(!lb2.has_addr("eth0", VIP)?, "lvskitd left its VIP behind");
    Ok(())
}

/// Waits until `path` is a regular file (dumps appear whole, by rename).
fn wait_file(path: &std::path::Path, timeout: Duration) -> Result<String> {
    let deadline = Instant::now() + timeout;
    loop {
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file()) {
            return Ok(std::fs::read_to_string(path)?);
        }
        ensure!(
            Instant::now() < deadline,
            "{} did not appear within {timeout:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A lab with lb1 alone on a bridge, at 10.0.0.2/24 on eth0.
fn one_director() -> Result<(Lab, Node, Bridge)> {
    require_root();
    let lab = Lab::new()?;
    let lan = lab.bridge("lan")?;
    let lb1 = lab.node("lb1")?;
    lab.connect(&lb1, "eth0", &lan)?;
    lb1.add_addr("eth0", "10.0.0.2/24")?;
    Ok((lab, lb1, lan))
}

#[test]
fn netns_lvskitd_dumps_on_signals_without_following_symlinks() -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let (lab, lb1, _) = one_director()?;
    let dumps = lab.dir().join("dumps");
    std::fs::create_dir(&dumps)?;
    // A local user's trap (CVE-2018-19044): the data dump's name links to
    // a file root must not overwrite.
    let victim = lab.dir().join("victim");
    std::fs::write(&victim, "precious")?;
    std::os::unix::fs::symlink(&victim, dumps.join("keepalived.data"))?;

    let daemon = spawn_vrrp_only(
        &lb1,
        "lb1",
        &lvskitd_config(),
        &[format!("TMPDIR={}", dumps.display())],
        &[],
    )?;
    wait_vip(&lb1, true, Duration::from_secs(10))?;
    // A few adverts to count.
    std::thread::sleep(Duration::from_millis(2200));

    let signum = |name: &str| -> Result<i32> {
        let out = lb1.run([env!("CARGO_BIN_EXE_lvskitd"), &format!("--signum={name}")])?;
        Ok(out.trim().parse()?)
    };
    let send = |name: &str| -> Result<()> {
        let status = std::process::Command::new("kill")
            .arg(format!("-{}", signum(name)?))
            .arg(daemon.pid().to_string())
            .status()?;
        ensure!(status.success(), "kill -{name}: {status}");
        Ok(())
    };
    for name in ["DATA", "STATS", "JSON"] {
        send(name)?;
    }
    let data = wait_file(&dumps.join("keepalived.data"), Duration::from_secs(5))?;
    let stats = wait_file(&dumps.join("keepalived.stats"), Duration::from_secs(5))?;
    let json = wait_file(&dumps.join("keepalived.json"), Duration::from_secs(5))?;
    ensure!(
        std::fs::read_to_string(&victim)? == "precious",
        "the dump was written through the symlink"
    );
    for name in ["keepalived.data", "keepalived.stats", "keepalived.json"] {
        let meta = std::fs::symlink_metadata(dumps.join(name))?;
        ensure!(
            meta.permissions().mode() & 0o777 == 0o600,
            "{name} has mode {:o}",
            meta.permissions().mode()
        );
    }
    ensure!(
        std::fs::read_dir(&dumps)?.count() == 3,
        "temporary files were left behind"
    );
    ensure!(
        data.contains(" VRRP Instance = VI_1\n   State = MASTER\n"),
        "{data}"
    );
    ensure!(data.contains("     10.0.0.100/24\n"), "{data}");
    ensure!(stats.starts_with("VRRP Instance: VI_1\n"), "{stats}");
    let sent_in = |stats: &str| -> Result<u64> {
        Ok(stats
            .lines()
            .skip_while(|l| l.trim() != "Advertisements:")
            .find_map(|l| l.trim().strip_prefix("Sent: "))
            .with_context(|| format!("no Sent line:\n{stats}"))?
            .parse()?)
    };
    let sent = sent_in(&stats)?;
    ensure!(sent >= 2, "only {sent} adverts counted:\n{stats}");
    let json: serde_json::Value = serde_json::from_str(&json)?;
    ensure!(json[0]["data"]["iname"] == "VI_1", "{json}");
    ensure!(json[0]["data"]["state"] == 2, "{json}");
    ensure!(json[0]["stats"]["become_master"] == 1, "{json}");

    // STATS_CLEAR writes the stats as STATS does, then clears them: a
    // STATS right after counts from zero (at most the one advert that may
    // leave in between; advert_int is 1 s).
    let stats_after = |name: &str| -> Result<u64> {
        std::fs::remove_file(dumps.join("keepalived.stats"))?;
        send(name)?;
        sent_in(&wait_file(
            &dumps.join("keepalived.stats"),
            Duration::from_secs(5),
        )?)
    };
    let before_clear = stats_after("STATS_CLEAR")?;
    ensure!(before_clear >= sent, "{before_clear} adverts, then {sent}");
    let after_clear = stats_after("STATS")?;
    ensure!(after_clear <= 1, "{after_clear} adverts just after a clear");
    Ok(())
}

#[test]
fn netns_lvskitd_notify_fifos_and_scripts() -> Result<()> {
    use std::io::Read as _;
    use std::os::unix::fs::PermissionsExt as _;
    let (lab, lb1, _) = one_director()?;
    let dir = lab.dir();
    let script = |name: &str, body: &str| -> Result<String> {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n"))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        Ok(path.to_string_lossy().into_owned())
    };
    let reader = script(
        "reader.sh",
        &format!("cat \"$1\" > {}", dir.join("reader.out").display()),
    )?;
    let master = script(
        "master.sh",
        &format!("touch {}", dir.join("master.out").display()),
    )?;
    let notify = script(
        "notify.sh",
        &format!("echo \"$@\" >> {}", dir.join("notify.out").display()),
    )?;
    let vrrp_fifo = dir.join("vrrp.fifo");
    let all_fifo = dir.join("all.fifo");
    let config = lvskitd_config().replace(
        "    router_id lb1\n",
        &format!(
            "    router_id lb1\n    vrrp_notify_fifo {}\n    notify_fifo {}\n    notify_fifo_script {reader}\n",
            vrrp_fifo.display(),
            all_fifo.display()
        ),
    ).replace(
        "    advert_int 1\n",
        &format!("    advert_int 1\n    notify_master {master}\n    notify {notify}\n"),
    );
    let mut daemon = spawn_vrrp_only(&lb1, "lb1", &config, &[], &[])?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !vrrp_fifo.exists() {
        ensure!(Instant::now() < deadline, "no FIFO:\n{}", daemon.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    // lvskitd holds the FIFO open, so this open does not wait; the lines
    // stay buffered in the pipe until read.
    let mut fifo = std::fs::File::open(&vrrp_fifo)?;
    wait_vip(&lb1, true, Duration::from_secs(10))?;
    let notified = wait_file(&dir.join("master.out"), Duration::from_secs(5)).and_then(|_| {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let text = std::fs::read_to_string(dir.join("notify.out")).unwrap_or_default();
            if text.contains("MASTER") || Instant::now() > deadline {
                return Ok(text);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })?;
    ensure!(
        notified.lines().any(|l| l == "INSTANCE VI_1 MASTER 100"),
        "notify got:\n{notified}"
    );

    // SIGTERM to lvskitd alone (not its process group, which holds the
    // FIFO's reader): the reader must see the STOP line and the end.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(daemon.pid())?),
        Signal::SIGTERM,
    )?;
    ensure!(daemon.wait_timeout(Duration::from_secs(10))?.success());
    let mut lines = String::new();
    fifo.read_to_string(&mut lines)?;
    let lines: Vec<&str> = lines.lines().collect();
    // Every transition, in order: startup to BACKUP, then MASTER (the
    // configured `state MASTER`), then STOP on SIGTERM.
    ensure!(
        lines.len() == 3
            && lines[..2]
                == [
                    "INSTANCE \"VI_1\" BACKUP 100",
                    "INSTANCE \"VI_1\" MASTER 100"
                ],
        "vrrp_notify_fifo got {lines:?}"
    );
    ensure!(
        lines
            .last()
            .is_some_and(|l| l.starts_with("INSTANCE \"VI_1\" STOP ")),
        "no STOP last: {lines:?}"
    );
    // notify_fifo got the same lines, read by its script from the path
    // given as its last argument.
    let read = std::fs::read_to_string(dir.join("reader.out"))?;
    ensure!(
        read.lines().eq(lines.iter().copied()),
        "reader.sh got:\n{read}"
    );
    let notified = std::fs::read_to_string(dir.join("notify.out"))?;
    ensure!(
        notified
            .lines()
            .any(|l| l.starts_with("INSTANCE VI_1 STOP ")),
        "notify got:\n{notified}"
    );
    Ok(())
}

#[test]
fn netns_lvskitd_metrics_endpoint_is_scraped() -> Result<()> {
    use std::io::{Read as _, Write as _};
    let (_lab, lb1, _) = one_director()?;
    lb1.link_up("lo")?;
    let mut daemon = spawn_vrrp_only(
        &lb1,
        "lb1",
        &lvskitd_config(),
        &[],
        &["--metrics-listen", "127.0.0.1:9650"],
    )?;
    wait_vip(&lb1, true, Duration::from_secs(10))?;
    std::thread::sleep(Duration::from_millis(1200));
    let scrape = |path: &'static str| {
        lb1.in_netns(move || -> Result<String> {
            let mut stream = std::net::TcpStream::connect("127.0.0.1:9650")?;
            stream.set_read_timeout(Some(Duration::from_secs(5)))?;
            write!(
                stream,
                "GET {path} HTTP/1.1\r\nHost: lb1\r\nConnection: close\r\n\r\n"
            )?;
            let mut answer = String::new();
            stream.read_to_string(&mut answer)?;
            Ok(answer)
        })?
    };
    let answer = scrape("/metrics")?;
    ensure!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    ensure!(
        answer.contains("\nlvskit_vrrp_state{instance=\"VI_1\",state=\"MASTER\"} 1\n"),
        "{answer}"
    );
    ensure!(
        answer.contains("\nlvskit_vrrp_master_transitions_total{instance=\"VI_1\"} 1\n"),
        "{answer}"
    );
    let sent: u64 = answer
        .lines()
        .find_map(|l| l.strip_prefix("lvskit_vrrp_adverts_sent_total{instance=\"VI_1\"} "))
        .context("no adverts_sent series")?
        .parse()?;
    ensure!(sent >= 1, "{answer}");
    ensure!(
        answer.contains("\nlvskit_vrrp_drops_total{instance=\"VI_1\",reason=\"ttl\"} 0\n"),
        "{answer}"
    );
    ensure!(scrape("/other")?.starts_with("HTTP/1.1 404"));
    daemon.signal(Signal::SIGTERM);
    ensure!(daemon.wait_timeout(Duration::from_secs(10))?.success());
    Ok(())
}

#[test]
fn netns_lvskitd_tells_systemd_ready_reloading_stopping() -> Result<()> {
    let (lab, lb1, _) = one_director()?;
    // systemd's side: a datagram socket named by $NOTIFY_SOCKET.
    let path = lab.dir().join("notify.sock");
    let systemd = std::os::unix::net::UnixDatagram::bind(&path)?;
    systemd.set_read_timeout(Some(Duration::from_secs(10)))?;
    let next = || -> Result<String> {
        let mut buffer = [0u8; 512];
        let n = systemd.recv(&mut buffer).context("no sd_notify message")?;
        Ok(String::from_utf8_lossy(&buffer[..n]).into_owned())
    };
    let mut daemon = spawn_vrrp_only(
        &lb1,
        "lb1",
        &lvskitd_config(),
        &[format!("NOTIFY_SOCKET={}", path.display())],
        &[],
    )?;
    let ready = next()?;
    ensure!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");

    let pid = nix::unistd::Pid::from_raw(i32::try_from(daemon.pid())?);
    let before = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)?;
    nix::sys::signal::kill(pid, Signal::SIGHUP)?;
    let reloading = next()?;
    ensure!(
        reloading.lines().any(|l| l == "RELOADING=1"),
        "{reloading:?}"
    );
    let usec: i64 = reloading
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .context("no MONOTONIC_USEC")?
        .parse()?;
    let before_usec = before.tv_sec() * 1_000_000 + before.tv_nsec() / 1_000;
    ensure!(usec >= before_usec, "MONOTONIC_USEC {usec} < {before_usec}");
    let ready = next()?;
    ensure!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");

    nix::sys::signal::kill(pid, Signal::SIGTERM)?;
    let stopping = next()?;
    ensure!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping:?}");
    ensure!(daemon.wait_timeout(Duration::from_secs(10))?.success());
    Ok(())
}

#[test]
fn netns_lvskitd_dont_release_vrrp_keeps_the_vip_on_exit() -> Result<()> {
    let (lab, lb1, lan) = one_director()?;
    let capture = lab.capture(&lan)?;
    let mut daemon = spawn_vrrp_only(&lb1, "lb1", &lvskitd_config(), &[], &["-V"])?;
    wait_vip(&lb1, true, Duration::from_secs(10))?;
    let term = SystemTime::now();
    daemon.signal(Signal::SIGTERM);
    ensure!(daemon.wait_timeout(Duration::from_secs(10))?.success());
    ensure!(lb1.has_addr("eth0", VIP)?, "-V: the VIP was removed");
    // As keepalived -V: priority 0 still tells the backups to take over.
    capture.wait_for(Duration::from_secs(3), |f| {
        f.time > term
            && f.ipv4()
                .is_some_and(|ip| ip.protocol == 112 && ip.payload.get(2) == Some(&0))
    })?;
    Ok(())
}

/// `vrrp_rt_priority`: the VRRP thread runs SCHED_RR (policy 2) at the
/// configured priority, and the rest of lvskitd at normal priority.
#[test]
fn netns_lvskitd_vrrp_rt_priority_schedules_the_vrrp_thread() -> Result<()> {
    let (_lab, lb1, _) = one_director()?;
    let config = lvskitd_config().replace(
        "    router_id lb1\n",
        "    router_id lb1\n    vrrp_rt_priority 20\n",
    );
    let daemon = spawn_vrrp_only(&lb1, "lb1", &config, &[], &[])?;
    wait_vip(&lb1, true, Duration::from_secs(10))?;
    let threads = daemon.thread_scheduling()?;
    let vrrp: Vec<_> = threads.iter().filter(|(name, ..)| name == "vrrp").collect();
    ensure!(
        vrrp.len() == 1 && (vrrp[0].1, vrrp[0].2) == (2, 20),
        "{threads:?}\n{}",
        daemon.stderr()
    );
    ensure!(
        threads
            .iter()
            .filter(|(name, ..)| name != "vrrp")
            .all(|(_, policy, priority)| (*policy, *priority) == (0, 0)),
        "{threads:?}"
    );
    ensure!(
        daemon
            .stderr()
            .contains("VRRP runs with realtime priority 20 (SCHED_RR)"),
        "{}",
        daemon.stderr()
    );
    Ok(())
}
