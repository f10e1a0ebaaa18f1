//! Tier 2: Debian's keepalived as a live VRRP pair, timed from the wire.
//!
//! This is the baseline the VRRP interop tests reuse: two namespaces on a
//! bridge, keepalived 2.2.7 in each, a capture on the bridge, and the VRRP
//! header parsed from the captured frames.

use anyhow::{Context, Result, ensure};
use lvskit_testlab::keepalived::{Keepalived, VrrpInstance};
use lvskit_testlab::{Frame, Lab, require_root};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// IP protocol number of VRRP (RFC 3768 section 5.2.4 / RFC 5798 section 5.1.1.4).
const IPPROTO_VRRP: u8 = 112;

/// The fields of a VRRPv2 advertisement this test looks at (RFC 3768 section 5.3):
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// |Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
/// |   Auth Type   |   Adver Int   |          Checksum             |
/// |                         IP Address (1..n)                     |
/// |                     Authentication Data (1), (2)              |
/// ```
#[derive(Debug, Clone, PartialEq)]
struct Advert {
    time: std::time::SystemTime,
    src: Ipv4Addr,
    ttl: u8,
    version: u8,
    vrid: u8,
    priority: u8,
    advert_int: u8,
    addresses: Vec<Ipv4Addr>,
    checksum_ok: bool,
}

/// Parses a captured frame as a VRRPv2 advertisement, or `None`.
fn advert(frame: &Frame) -> Option<Advert> {
    let ip = frame.ipv4()?;
    if ip.protocol != IPPROTO_VRRP {
        return None;
    }
    let p = ip.payload;
    let count = usize::from(*p.get(3)?);
    let end = 8 + 4 * count;
    let addresses = p
        .get(8..end)?
        .chunks_exact(4)
        .map(|a| Ipv4Addr::new(a[0], a[1], a[2], a[3]))
        .collect();
    Some(Advert {
        time: frame.time,
        src: ip.src,
        ttl: ip.ttl,
        version: p[0] >> 4,
        vrid: p[1],
        priority: p[2],
        advert_int: p[5],
        addresses,
        checksum_ok: internet_checksum(p) == 0,
    })
}

/// RFC 1071 one's-complement sum; 0 over a packet with a correct checksum.
fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(u16::try_from(sum).unwrap_or(0xffff))
}

#[test]
fn netns_keepalived_failover_timing_from_the_wire() -> Result<()> {
    require_root();
    let lab = Lab::new()?;
    let lan = lab.bridge("lan")?;
    let lb1 = lab.node("lb1")?;
    let lb2 = lab.node("lb2")?;
    lab.connect(&lb1, "eth0", &lan)?;
    lab.connect(&lb2, "eth0", &lan)?;
    lb1.add_addr("eth0", "10.0.0.1/24")?;
    lb2.add_addr("eth0", "10.0.0.2/24")?;
    let (lb1_ip, lb2_ip) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
    let vip = Ipv4Addr::new(10, 0, 0, 100);
    let instance = |priority| {
        VrrpInstance::new("VI_1", "eth0", 51, priority)
            .version(2)
            .advert_int(Duration::from_secs(1))
            .vip("10.0.0.100/24")
    };

    let capture = lab.capture(&lan)?;
    let mut ka1 = Keepalived::start(&lb1, "lb1", &instance(100).config())?;
    ka1.wait_for_log("Entering MASTER STATE", Duration::from_secs(15))?;
    let ka2 = Keepalived::start(&lb2, "lb2", &instance(50).config())?;
    ka2.wait_for_log("Entering BACKUP STATE", Duration::from_secs(10))?;
    // Let the backup see a few adverts, so its master-down timer runs in
    // steady state.
    let settled = Instant::now();
    capture.wait_for(Duration::from_secs(10), |f| {
        settled.elapsed() > Duration::from_millis(2500)
            && advert(f).is_some_and(|a| a.src == lb1_ip)
            && f.time > std::time::SystemTime::now() - Duration::from_millis(500)
    })?;
    assert!(
        lb1.has_addr("eth0", "10.0.0.100")?,
        "the master holds the VIP"
    );

    ka1.kill(); // SIGKILL, whole group: no priority-0 advert
    ka2.wait_for_log("Entering MASTER STATE", Duration::from_secs(10))?;
    capture.wait_for(Duration::from_secs(5), |f| {
        advert(f).is_some_and(|a| a.src == lb2_ip)
    })?;
    let deadline = Instant::now() + Duration::from_secs(3);
    while !lb2.has_addr("eth0", "10.0.0.100")? {
        ensure!(
            Instant::now() < deadline,
            "the new master never added the VIP"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let frames = capture.stop();
    lvskit_testlab::capture::write_pcap(&lab.dir().join("lan.pcap"), &frames)?;

    let adverts: Vec<Advert> = frames.iter().filter_map(advert).collect();
    for a in &adverts {
        ensure!(a.checksum_ok, "bad VRRP checksum: {a:?}");
        ensure!(a.ttl == 255, "VRRP TTL must be 255 (RFC 3768 7.1): {a:?}");
        ensure!(
            a.version == 2 && a.vrid == 51 && a.advert_int == 1,
            "unexpected advert {a:?}"
        );
        ensure!(a.addresses == vec![vip], "advert without the VIP: {a:?}");
    }
    let last_master = adverts
        .iter()
        .rfind(|a| a.src == lb1_ip)
        .context("no advert from lb1")?;
    ensure!(last_master.priority == 100, "{last_master:?}");
    let first_backup = adverts
        .iter()
        .find(|a| a.src == lb2_ip && a.time > last_master.time)
        .context("no advert from lb2 after lb1 died")?;
    ensure!(first_backup.priority == 50, "{first_backup:?}");
    ensure!(
        !adverts
            .iter()
            .any(|a| a.src == lb2_ip && a.time < last_master.time),
        "the backup advertised while the master was alive"
    );

    // RFC 3768 6.1: Master_Down_Interval = 3 * Advertisement_Interval + Skew_Time,
    // Skew_Time = (256 - Priority) / 256 seconds.
    let expected = 3.0 + (256.0 - 50.0) / 256.0;
    let measured = first_backup
        .time
        .duration_since(last_master.time)?
        .as_secs_f64();
    println!("failover on the wire: {measured:.4} s (expected {expected:.4} s)");
    ensure!(
        (measured - expected).abs() <= 0.010,
        "first backup advert {measured:.4} s after the master's last one; expected {expected:.4} s ± 10 ms"
    );
    let addrs = lb2.run(["ip", "-4", "addr", "show", "dev", "eth0"])?;
    ensure!(
        addrs.contains("10.0.0.100/24"),
        "lb2 lacks the VIP:\n{addrs}"
    );
    Ok(())
}

#[test]
fn checksum_helper_matches_rfc1071_example() {
    // RFC 1071 section 3: the sum of 0001 f203 f4f5 f6f7 is ddf2 (before
    // the complement).
    assert_eq!(
        internet_checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
        !0xddf2
    );
}
