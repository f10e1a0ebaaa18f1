//! Tier 3: the whole lab, `lvskit-lab run`, is the end-to-end test. It
//! boots Debian's stock kernel (IPVS) under qemu by itself and exits
//! non-zero if any expectation fails.
//!
//! CI time is kept down with a 2 s `delay_loop` (the article's 6 s makes
//! the app-down phases three times longer).
//!
//! The failover gap (lb1's last advert to lb2's first, on the wire) must be
//! within 1 ms of 3·interval + skew, the target, at advert_int 1 s
//! (VRRPv2) and 100 ms (VRRPv3). The lab's VM counts guest instructions
//! for its clock (`GuestClock::InstructionCounted`), so the host's load
//! does not leak into guest timers; with qemu's default clock the gap was
//! 11 to 372 ms long for lvskitd and 3 to 28 ms for keepalived on a shared
//! 2-core host.
//! Measured on that host (load 9 to 17, debug builds), five runs of each
//! test, all passing; offset from 3·interval + skew, median / worst of the
//! four runs that printed it:
//!
//! | test | target | median | worst |
//! |---|---|---|---|
//! | `vm_lab_lvskitd_pair` (1 s) | 3.8047 s | +0.100 ms | +0.102 ms |
//! | `vm_lab_lvskitd_pair_vrrp3_100ms_adverts` | 0.3805 s | +0.099 ms | +0.102 ms |
//! | `vm_lab_mixed_pair_lb2_is_keepalived` (1 s) | 3.8047 s | +0.097 ms | +0.098 ms |
//!
//! Each test takes 2 to 4 minutes of host time there.

use std::process::Command;

fn lab(extra: &[&str]) {
    lvskit_testlab::require_root();
    let report = tempfile::tempdir().expect("report directory");
    let out = Command::new(env!("CARGO_BIN_EXE_lvskit-lab"))
        .args(["run", "--vm", "auto", "--delay-loop", "2"])
        .args(["--failover-tolerance-ms", "1"])
        .arg("--app-bin")
        .arg(env!("CARGO_BIN_EXE_lvskit-app"))
        .arg("--lvskitd-bin")
        .arg(env!("CARGO_BIN_EXE_lvskitd"))
        .arg("--report")
        .arg(report.path())
        .args(extra)
        .output()
        .expect("run lvskit-lab");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The narration and the final table come from the VM's console, on
    // stderr: shown with --nocapture, so the measured gap can be read.
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "lvskit-lab failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let html = std::fs::read_to_string(report.path().join("index.html")).expect("report");
    assert!(html.contains("<svg") && html.contains("PASSED"), "{html}");
}

#[test]
fn vm_lab_lvskitd_pair() {
    lab(&["--director", "lvskitd"]);
}

#[test]
fn vm_lab_lvskitd_pair_vrrp3_100ms_adverts() {
    lab(&["--director", "lvskitd", "--advert-int", "0.1"]);
}

#[test]
fn vm_lab_mixed_pair_lb2_is_keepalived() {
    lab(&["--director", "lvskitd", "--peer", "keepalived"]);
}
