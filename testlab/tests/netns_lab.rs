//! Tier 2: the lab proves itself on the host's kernel (root only).

use anyhow::{Context, Result};
use lvskit_testlab::{Bridge, Lab, Node, Port, require_root};
use std::path::Path;
use std::time::Duration;

/// Two nodes `a` (10.0.0.1) and `b` (10.0.0.2) on bridge `lan`.
fn two_nodes(lab: &Lab, lan: &Bridge) -> Result<(Node, Node, Port, Port)> {
    let a = lab.node("a")?;
    let b = lab.node("b")?;
    let pa = lab.connect(&a, "eth0", lan)?;
    let pb = lab.connect(&b, "eth0", lan)?;
    a.add_addr("eth0", "10.0.0.1/24")?;
    b.add_addr("eth0", "10.0.0.2/24")?;
    Ok((a, b, pa, pb))
}

/// `(transmitted, received)` from ping's summary line.
fn ping_counts(output: &str) -> Result<(u32, u32)> {
    let line = output
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .with_context(|| format!("no ping summary in {output}"))?;
    let numbers: Vec<u32> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    Ok((numbers[0], numbers[1]))
}

#[test]
fn netns_loss_injection_30_percent() -> Result<()> {
    require_root();
    let lab = Lab::new()?;
    let lan = lab.bridge("lan")?;
    let (a, _b, pa, _pb) = two_nodes(&lab, &lan)?;
    // Resolve ARP before the fault, so the loss hits only the pings.
    a.run(["ping", "-c", "1", "-W", "2", "10.0.0.2"])?;
    let loss = lab.loss(&pa, 30)?;
    let out = a.exec([
        "ping", "-q", "-n", "-c", "300", "-i", "0.01", "-W", "1", "10.0.0.2",
    ])?;
    let (sent, received) = ping_counts(&out.stdout)?;
    assert_eq!(sent, 300, "{out}");
    let lost = f64::from(sent - received) / f64::from(sent) * 100.0;
    assert!(
        (20.0..=40.0).contains(&lost),
        "30% injected loss gave {lost:.1}% ({received}/{sent} received)"
    );
    // Lifting the fault restores the link.
    loss.remove()?;
    let out = a.run([
        "ping", "-q", "-n", "-c", "20", "-i", "0.01", "-W", "1", "10.0.0.2",
    ])?;
    assert_eq!(ping_counts(&out)?, (20, 20));
    Ok(())
}

#[test]
fn netns_partition_blackhole_and_link_down() -> Result<()> {
    require_root();
    let lab = Lab::new()?;
    let lan = lab.bridge("lan")?;
    let (a, b, pa, pb) = two_nodes(&lab, &lan)?;
    let c = lab.node("c")?;
    lab.connect(&c, "eth0", &lan)?;
    c.add_addr("eth0", "10.0.0.3/24")?;
    let ping = |from: &Node, to: &str| -> Result<bool> {
        Ok(from
            .exec(["ping", "-c", "1", "-W", "1", to])?
            .status
            .success())
    };
    assert!(ping(&a, "10.0.0.2")?);

    let partition = lab.partition(&pa, &pb)?;
    assert!(
        !ping(&a, "10.0.0.2")?,
        "a still reaches b across the partition"
    );
    assert!(
        !ping(&b, "10.0.0.1")?,
        "b still reaches a across the partition"
    );
    assert!(
        ping(&a, "10.0.0.3")? && ping(&b, "10.0.0.3")?,
        "c must stay reachable"
    );
    drop(partition);
    assert!(ping(&a, "10.0.0.2")?);

    let blackhole = lab.blackhole(&pa)?;
    assert!(!ping(&a, "10.0.0.3")?);
    drop(blackhole);

    a.link_down("eth0")?;
    assert!(!ping(&a, "10.0.0.2")?);
    a.link_up("eth0")?;
    assert!(ping(&a, "10.0.0.2")?);

    pb.down()?;
    assert!(!ping(&a, "10.0.0.2")?);
    pb.up()?;
    assert!(ping(&a, "10.0.0.2")?);
    Ok(())
}

#[test]
fn netns_ipv6_link_local_is_usable_at_once() -> Result<()> {
    require_root();
    let lab = Lab::new()?;
    let lan = lab.bridge("lan")?;
    let (a, b, _pa, _pb) = two_nodes(&lab, &lan)?;
    let b_ll = b.link_local("eth0")?;
    assert!(b_ll.is_unicast_link_local(), "{b_ll}");
    a.link_local("eth0")?;
    a.run(["ping", "-6", "-c", "1", "-W", "2", &format!("{b_ll}%eth0")])?;
    assert_eq!(a.sysctl_get("net.ipv6.conf.eth0.accept_dad")?, "0");
    a.sysctl("net.ipv4.ip_forward", "1")?;
    assert_eq!(a.sysctl_get("net.ipv4.ip_forward")?, "1");
    assert_eq!(
        b.sysctl_get("net.ipv4.ip_forward")?,
        "0",
        "sysctls are per namespace"
    );
    Ok(())
}

#[test]
fn netns_capture_timestamps_frames_on_the_bridge() -> Result<()> {
    require_root();
    let lab = Lab::new()?;
    let lan = lab.bridge("lan")?;
    let (a, _b, pa, _pb) = two_nodes(&lab, &lan)?;
    let capture = lab.capture(&lan)?;
    let node_capture = a.capture("eth0")?;
    a.run(["ping", "-c", "3", "-i", "0.2", "10.0.0.2"])?;
    let frames = capture.stop();
    let echo_requests: Vec<_> = frames
        .iter()
        .filter(|f| {
            f.ipv4()
                .is_some_and(|ip| ip.protocol == 1 && ip.payload.first() == Some(&8))
        })
        .collect();
    assert_eq!(echo_requests.len(), 3, "one copy per frame");
    assert!(echo_requests.iter().all(|f| f.interface == pa.name()));
    for pair in echo_requests.windows(2) {
        let gap = pair[1].time.duration_since(pair[0].time)?;
        assert!(
            gap >= Duration::from_millis(150) && gap <= Duration::from_millis(400),
            "ping -i 0.2 gap seen as {gap:?}"
        );
    }
    let at_node = node_capture.stop();
    assert!(at_node.iter().any(|f| f.outgoing));
    assert!(at_node.iter().any(|f| !f.outgoing));
    lvskit_testlab::capture::write_pcap(&lab.dir().join("lan.pcap"), &frames)?;
    Ok(())
}

#[test]
fn netns_processes_and_namespaces_are_gone_after_drop() -> Result<()> {
    require_root();
    let lab = Lab::new()?;
    let prefix = lab.prefix().to_owned();
    let dir = lab.dir().to_owned();
    let node = lab.node("a")?;
    let sleeper = node.spawn("sleeper", ["sleep", "600"])?;
    // A grandchild in its own session escapes the process group, but not the
    // namespace sweep.
    node.run(["sh", "-c", "setsid sleep 600 >/dev/null 2>&1 < /dev/null &"])?;
    let pids: Vec<u32> = node
        .run(["sh", "-c", "ip netns pids $(ip netns identify $$)"])
        .ok()
        .map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let sleeper_pid = sleeper.pid();
    std::mem::forget(sleeper); // leak the handle: the lab must still kill it
    drop(lab);
    std::thread::sleep(Duration::from_millis(100));
    let left: Vec<String> = std::fs::read_dir("/run/netns")?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "namespaces left: {left:?}");
    assert!(!dir.exists(), "lab directory left: {}", dir.display());
    for pid in pids.iter().chain([&sleeper_pid]) {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Gone, or a zombie waiting for its parent (us) to reap it.
        assert!(
            stat.is_empty() || stat.contains(") Z "),
            "process {pid} still runs: {stat}"
        );
    }
    Ok(())
}

#[test]
fn netns_leftovers_of_dead_runs_are_reaped() -> Result<()> {
    require_root();
    // A pid that surely belongs to no live process: a child we started and reaped.
    let mut child = std::process::Command::new("true").spawn()?;
    let dead = child.id();
    child.wait()?;
    let netns = format!("lvsk{dead}x1-a");
    let status = std::process::Command::new("ip")
        .args(["netns", "add", &netns])
        .status()?;
    assert!(status.success());
    let mut sleeper = std::process::Command::new("ip")
        .args(["netns", "exec", &netns, "sleep", "600"])
        .spawn()?;
    let dir = std::env::temp_dir().join(format!("lvsk{dead}x1"));
    std::fs::create_dir_all(&dir)?;
    // Somebody else's live lab must survive.
    let live = Lab::new()?;
    let live_node = live.node("a")?;

    let reaped = lvskit_testlab::reap::reap_leftovers();
    assert!(reaped.namespaces.contains(&netns), "{reaped:?}");
    assert!(!Path::new("/run/netns").join(&netns).exists());
    assert!(!dir.exists());
    let status = sleeper.wait()?;
    assert!(!status.success(), "the process inside was killed");
    assert!(live_node.netns_path().exists(), "a live lab was reaped");
    live_node.run(["true"])?;
    Ok(())
}

#[test]
fn netns_labs_with_the_same_names_do_not_collide() -> Result<()> {
    require_root();
    // Two labs with identical bridge, node and interface names and
    // addresses, side by side; a fault in one does not touch the other.
    let lab1 = Lab::new()?;
    let lab2 = Lab::new()?;
    assert_ne!(lab1.prefix(), lab2.prefix());
    let lan1 = lab1.bridge("lan")?;
    let lan2 = lab2.bridge("lan")?;
    let (a1, _b1, pa1, pb1) = two_nodes(&lab1, &lan1)?;
    let (a2, _b2, _pa2, _pb2) = two_nodes(&lab2, &lan2)?;
    let _partition = lab1.partition(&pa1, &pb1)?;
    let (r1, r2) = std::thread::scope(|s| {
        let t1 = s.spawn(|| a1.exec(["ping", "-c", "3", "-i", "0.2", "-W", "1", "10.0.0.2"]));
        let t2 = s.spawn(|| a2.exec(["ping", "-c", "3", "-i", "0.2", "-W", "1", "10.0.0.2"]));
        (t1.join().expect("thread"), t2.join().expect("thread"))
    });
    assert!(!r1?.status.success(), "lab 1 is partitioned");
    let r2 = r2?;
    assert!(
        r2.status.success(),
        "lab 2 must not see lab 1's fault: {r2}"
    );
    Ok(())
}
