//! Tier 1: `lvskitd`'s command line without privileges: `-t` verdicts with
//! keepalived's exit codes, `--version`, `--signum`, every flag of
//! keepalived's that the issue names, and refusals of what it cannot do.

use std::process::Command;

fn lvskitd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lvskitd"))
}

/// The lab's lb1 configuration (the article's, made whole), on an
/// interface this machine has (`-t` checks interfaces, as keepalived does,
/// and refuses `lo` for VRRP).
fn article_config() -> String {
    let interface = std::fs::read_dir("/sys/class/net")
        .expect("/sys/class/net")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name != "lo")
        .min()
        .expect("a network interface other than lo");
    lvskit::lab::Topology::new(2, 4)
        .keepalived_conf(0, &[10, 10])
        .replace("eth0", &interface)
}

#[test]
fn config_test_accepts_the_article_config_made_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keepalived.conf");
    std::fs::write(&path, article_config()).unwrap();
    let out = lvskitd().arg("-t").arg("-f").arg(&path).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn config_test_reports_errors_with_keepalived_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.conf");
    let out = lvskitd()
        .arg("--config-test")
        .arg("--use-file")
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "a missing file cannot run");

    // The article's mistake: `state SLAVE` is unknown to keepalived.
    let path = dir.path().join("slave.conf");
    let text = article_config().replace("state MASTER", "state SLAVE");
    std::fs::write(&path, text).unwrap();
    let out = lvskitd().arg("-t").arg("-f").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("SLAVE"),
        "the diagnostic names the mistake:\n{stderr}"
    );
}

#[test]
fn version_and_refusals() {
    let out = lvskitd().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("lvskitd "));

    let out = lvskitd().arg("-v").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("lvskitd "));

    let out = lvskitd().args(["-P", "-C"]).output().unwrap();
    assert!(!out.status.success());

    let dir = tempfile::tempdir().unwrap();
    let out = lvskitd()
        .arg("--status")
        .arg("--status-socket")
        .arg(dir.path().join("none.sock"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is lvskitd running?"));
}

#[test]
fn signum_prints_keepalived_s_signal_numbers() {
    let signum = |name: &str| {
        let out = lvskitd().arg(format!("--signum={name}")).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let number = |n: i32| (true, n.to_string(), String::new());
    assert_eq!(signum("STOP"), number(15));
    assert_eq!(signum("RELOAD"), number(1));
    assert_eq!(signum("DATA"), number(10));
    assert_eq!(signum("STATS"), number(12));
    assert_eq!(signum("STATS_CLEAR"), number(nix::libc::SIGRTMAX() - 1));
    assert_eq!(signum("JSON"), number(nix::libc::SIGRTMIN() + 2));
    // keepalived's thread dump exists only in its debug builds: refused
    // with the reason, as is any other name.
    let (ok, out, err) = signum("TDUMP");
    assert!(
        !ok && out.is_empty() && err.contains("no thread dump"),
        "{err}"
    );
    let (ok, out, err) = signum("NOPE");
    assert!(
        !ok && out.is_empty() && err.contains("Unknown sigfunc NOPE"),
        "{err}"
    );
}

#[test]
fn keepalived_s_flags_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keepalived.conf");
    std::fs::write(&path, article_config()).unwrap();
    let path = path.to_str().unwrap();
    // With -t every other flag is parsed and checked, then the config is
    // tested: each spelling keepalived accepts must get through to exit 0.
    for flags in [
        &["-f", path, "-P"][..],
        &["--use-file", path, "--check"],
        &[
            "-f", path, "-i", "lb1", "-n", "-l", "-D", "-S", "local3", "-G",
        ],
        &[
            "-f",
            path,
            "--config-id=lb1",
            "--dont-fork",
            "--log-console",
            "--log-detail",
        ],
        &["-f", path, "-S", "7"],
        &["-f", path, "--log-facility=daemon"],
        &["-f", path, "-p", "/x.pid", "-r", "/y.pid", "-c", "/z.pid"],
        &[
            "-f",
            path,
            "--pid=/x.pid",
            "--vrrp_pid=/y.pid",
            "--checkers_pid=/z.pid",
        ],
        &["-f", path, "-I", "-V"],
        &["-f", path, "--dont-release-ipvs", "--dont-release-vrrp"],
    ] {
        let out = lvskitd().arg("-t").args(flags).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{flags:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for bad in ["8", "local8", "kern", ""] {
        let out = lvskitd()
            .args(["-t", "-f", path, "-S", bad])
            .output()
            .unwrap();
        assert!(!out.status.success(), "-S {bad:?} was accepted");
    }
}
