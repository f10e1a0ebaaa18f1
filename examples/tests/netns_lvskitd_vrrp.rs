//! Tier 2: lvskitd's sync groups and its VRRP reload, on real sockets in
//! network namespaces (`lvskitd -P`: the host kernel has no IPVS).
//!
//! - Two lvskitd nodes with a two-member `vrrp_sync_group` on two links:
//!   one link down on the master moves both VIPs to the other node, and
//!   the notify FIFO has the `GROUP` lines.
//! - SIGHUP against a keepalived peer: the master stays master (the peer
//!   never sees a gap over one advert interval and never advertises), a
//!   VIP added to an instance appears, a removed instance sends priority 0
//!   and releases its VIP, an added instance starts.

use anyhow::{Context, Result, ensure};
use lvskit_testlab::keepalived::{Keepalived, VrrpInstance};
use lvskit_testlab::{Frame, Lab, Node, Process, require_root};
use nix::sys::signal::Signal;
use std::io::Read as _;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

/// Slack on timings measured on a host shared with parallel builds.
const TOLERANCE: Duration = Duration::from_millis(50);

/// Starts `lvskitd -P -l` on `node` with `config` written to `NAME.conf`.
fn start_lvskitd(node: &Node, name: &str, config: &str) -> Result<Process> {
    let dir = node.dir();
    let path = dir.join(format!("{name}.conf"));
    std::fs::write(&path, config)?;
    let path = path.to_string_lossy().into_owned();
    let socket = dir.join(format!("{name}.sock"));
    let socket = socket.to_string_lossy().into_owned();
    node.spawn(
        name,
        [
            env!("CARGO_BIN_EXE_lvskitd"),
            "-P",
            "-n",
            "-l",
            "-f",
            &path,
            "--status-socket",
            &socket,
        ],
    )
}

/// Waits until `address` is (or is not) on `node`'s `ifname`.
fn wait_addr(node: &Node, ifname: &str, address: &str, present: bool) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while node.has_addr(ifname, address)? != present {
        ensure!(
            Instant::now() < deadline,
            "{}: {address} present={present} not reached within 10 s",
            node.name()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// (time, source, VRID, priority) of the VRRP adverts captured.
fn adverts(frames: &[Frame]) -> Vec<(SystemTime, Ipv4Addr, u8, u8)> {
    frames
        .iter()
        .filter_map(|f| {
            let ip = f.ipv4()?;
            (ip.protocol == 112)
                .then(|| Some((f.time, ip.src, *ip.payload.get(1)?, *ip.payload.get(2)?)))?
        })
        .collect()
}

/// Opens `path` for reading once lvskitd has created the FIFO (lvskitd
/// holds it open, so the open does not wait).
fn open_fifo(path: &Path, daemon: &Process) -> Result<std::fs::File> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        ensure!(Instant::now() < deadline, "no FIFO:\n{}", daemon.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(std::fs::File::open(path)?)
}

/// One node's configuration: `VI_A` on eth0 and `VI_B` on eth1 in sync
/// group `VG_1`.
fn group_config(priority: u8, state: &str, fifo: Option<&Path>) -> String {
    let fifo = fifo.map_or(String::new(), |f| {
        format!("    vrrp_notify_fifo {}\n", f.display())
    });
    let instance = |name: &str, interface: &str, vrid: u8, vip: &str| {
        format!(
            "vrrp_instance {name} {{\n    state {state}\n    interface {interface}\n    virtual_router_id {vrid}\n\
             \x20   priority {priority}\n    advert_int 1\n    virtual_ipaddress {{\n        {vip}\n    }}\n}}\n"
        )
    };
    format!(
        "global_defs {{\n    router_id lb\n{fifo}}}\n\
         vrrp_sync_group VG_1 {{\n    group {{\n        VI_A\n        VI_B\n    }}\n}}\n{}{}",
        instance("VI_A", "eth0", 51, "10.0.0.100/24"),
        instance("VI_B", "eth1", 52, "10.0.1.100/24"),
    )
}

#[test]
fn netns_lvskitd_sync_group_moves_both_vips_when_one_link_fails() -> Result<()> {
    require_root();
    let lab = Lab::new()?;
    let (lan_a, lan_b) = (lab.bridge("lana")?, lab.bridge("lanb")?);
    let lb1 = lab.node("lb1")?;
    let lb2 = lab.node("lb2")?;
    for (node, host) in [(&lb1, 2), (&lb2, 3)] {
        lab.connect(node, "eth0", &lan_a)?;
        lab.connect(node, "eth1", &lan_b)?;
        node.add_addr("eth0", &format!("10.0.0.{host}/24"))?;
        node.add_addr("eth1", &format!("10.0.1.{host}/24"))?;
    }
    let fifo = lab.dir().join("lb1.fifo");
    let mut master = start_lvskitd(&lb1, "lb1", &group_config(100, "MASTER", Some(&fifo)))?;
    let mut reader = open_fifo(&fifo, &master)?;
    wait_addr(&lb1, "eth0", "10.0.0.100", true)?;
    wait_addr(&lb1, "eth1", "10.0.1.100", true)?;
    let socket = lab.dir().join("lb1.sock");
    let status = lb1.run([
        env!("CARGO_BIN_EXE_lvskitd"),
        "--status",
        "--status-socket",
        &socket.to_string_lossy(),
    ])?;
    let json: serde_json::Value = serde_json::from_str(&status).context("status JSON")?;
    for instance in json["vrrp_instances"].as_array().context("no instances")? {
        ensure!(instance["sync_group"] == "VG_1", "{json}");
        ensure!(instance["state"] == "MASTER", "{json}");
    }
    let mut backup = start_lvskitd(&lb2, "lb2", &group_config(50, "BACKUP", None))?;
    backup.wait_for_output("(VI_B) Entering BACKUP STATE", Duration::from_secs(10))?;
    std::thread::sleep(Duration::from_millis(1500));
    ensure!(!lb2.has_addr("eth0", "10.0.0.100")?, "lb2 took VI_A");

    // lb1 loses eth1: VI_B is in FAULT, so VI_A leaves MASTER too (with
    // priority 0 on eth0); on lb2 VI_A takes over after its skew time and
    // pulls VI_B along, without waiting for VI_B's Master_Down_Interval.
    let down = Instant::now();
    lb1.link_down("eth1")?;
    wait_addr(&lb2, "eth0", "10.0.0.100", true)?;
    wait_addr(&lb2, "eth1", "10.0.1.100", true)?;
    let moved = down.elapsed();
    ensure!(
        moved < Duration::from_secs(3),
        "both VIPs moved after {moved:?}: not together"
    );
    wait_addr(&lb1, "eth0", "10.0.0.100", false)?;
    master.wait_for_output("(VI_A) Entering FAULT STATE", Duration::from_secs(5))?;
    println!("sync group failover on one link down: both VIPs on lb2 after {moved:?}");

    master.signal(Signal::SIGTERM);
    ensure!(master.wait_timeout(Duration::from_secs(10))?.success());
    let mut lines = String::new();
    reader.read_to_string(&mut lines)?;
    let groups: Vec<&str> = lines.lines().filter(|l| l.starts_with("GROUP")).collect();
    ensure!(
        groups
            == [
                "GROUP \"VG_1\" BACKUP 0",
                "GROUP \"VG_1\" MASTER 0",
                "GROUP \"VG_1\" FAULT 0",
                "GROUP \"VG_1\" STOP 0",
            ],
        "vrrp_notify_fifo got:\n{lines}"
    );
    ensure!(
        lines.contains("INSTANCE \"VI_B\" FAULT 100\n")
            && lines.contains("INSTANCE \"VI_A\" FAULT 100\n"),
        "vrrp_notify_fifo got:\n{lines}"
    );
    backup.signal(Signal::SIGTERM);
    ensure!(backup.wait_timeout(Duration::from_secs(10))?.success());
    Ok(())
}

/// lb1's configuration before and after the reload.
fn reload_config(after: bool) -> String {
    let instance = |name: &str, vrid: u8, priority: u8, vips: &[&str]| {
        let vips: String = vips.iter().map(|v| format!("        {v}\n")).collect();
        format!(
            "vrrp_instance {name} {{\n    state MASTER\n    interface eth0\n    virtual_router_id {vrid}\n\
             \x20   priority {priority}\n    advert_int 1\n    authentication {{\n        auth_type PASS\n        auth_pass pass\n    }}\n\
             \x20   virtual_ipaddress {{\n{vips}    }}\n}}\n"
        )
    };
    let mut config = "global_defs {\n    router_id lb1\n}\n".to_owned();
    if after {
        config += &instance("VI_1", 51, 120, &["10.0.0.100/24"]);
        config += &instance("VI_2", 52, 100, &["10.0.0.101/24", "10.0.0.102/24"]);
        config += &instance("VI_4", 54, 100, &["10.0.0.104/24"]);
    } else {
        config += &instance("VI_1", 51, 100, &["10.0.0.100/24"]);
        config += &instance("VI_2", 52, 100, &["10.0.0.101/24"]);
        config += &instance("VI_3", 53, 100, &["10.0.0.103/24"]);
    }
    config
}

#[test]
fn netns_lvskitd_sighup_keeps_the_master_and_applies_vrrp_changes() -> Result<()> {
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

    let mut daemon = start_lvskitd(&lb1, "lb1", &reload_config(false))?;
    for vip in ["10.0.0.100", "10.0.0.101", "10.0.0.103"] {
        wait_addr(&lb1, "eth0", vip, true)?;
    }
    let peer_config = VrrpInstance::new("VI_1", "eth0", 51, 50)
        .auth_pass("pass")
        .vip("10.0.0.100/24")
        .config();
    let peer = Keepalived::start(&lb2, "lb2", &peer_config)?;
    peer.wait_for_log("Entering BACKUP STATE", Duration::from_secs(10))?;
    std::thread::sleep(Duration::from_millis(2500));

    std::fs::write(lab.dir().join("lb1.conf"), reload_config(true))?;
    let hup = SystemTime::now();
    daemon.signal(Signal::SIGHUP);
    daemon.wait_for_output("Reload finished", Duration::from_secs(10))?;
    wait_addr(&lb1, "eth0", "10.0.0.102", true)?;
    wait_addr(&lb1, "eth0", "10.0.0.103", false)?;
    // VI_4 starts in BACKUP and, alone, becomes master.
    wait_addr(&lb1, "eth0", "10.0.0.104", true)?;
    std::thread::sleep(Duration::from_millis(2500));

    ensure!(lb1.has_addr("eth0", "10.0.0.100")?, "VI_1 lost its VIP");
    ensure!(lb1.has_addr("eth0", "10.0.0.101")?, "VI_2 lost its VIP");
    ensure!(!lb2.has_addr("eth0", "10.0.0.100")?, "the peer took VI_1");
    ensure!(daemon.try_wait().is_none(), "lvskitd exited");
    let all = adverts(&capture.frames());
    ensure!(
        !all.iter().any(|a| a.1 == lb2_ip),
        "the keepalived peer advertised: it became master"
    );
    let vi_1: Vec<&(SystemTime, Ipv4Addr, u8, u8)> =
        all.iter().filter(|a| a.1 == lb1_ip && a.2 == 51).collect();
    let widest = vi_1
        .windows(2)
        .map(|w| w[1].0.duration_since(w[0].0).unwrap_or_default())
        .max()
        .context("no VI_1 adverts")?;
    println!("widest gap between VI_1 adverts across the reload: {widest:?}");
    ensure!(
        widest <= Duration::from_secs(1) + TOLERANCE,
        "VI_1 adverts {widest:?} apart"
    );
    ensure!(
        vi_1.iter().any(|a| a.0 < hup && a.3 == 100) && vi_1.last().is_some_and(|a| a.3 == 120),
        "VI_1 did not go from priority 100 to 120"
    );
    ensure!(
        all.iter()
            .any(|a| a.1 == lb1_ip && a.2 == 53 && a.3 == 0 && a.0 > hup),
        "the removed VI_3 sent no priority 0"
    );
    ensure!(
        !all.iter().any(|a| a.2 == 53 && a.0 > hup && a.3 != 0),
        "VI_3 still advertises"
    );
    daemon.signal(Signal::SIGTERM);
    ensure!(daemon.wait_timeout(Duration::from_secs(10))?.success());
    Ok(())
}
