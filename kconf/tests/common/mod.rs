//! Running Debian's keepalived 2.2.7 as the differential oracle.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian installs keepalived's sample configurations (overridable
/// with `KCONF_SAMPLES_DIR`).
pub fn samples_dir() -> PathBuf {
    std::env::var_os("KCONF_SAMPLES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/share/doc/keepalived/samples"))
}

/// The sample configurations, sorted.
pub fn samples() -> Vec<PathBuf> {
    let dir = samples_dir();
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "keepalived samples not found in {} ({e}): install Debian's keepalived package",
                dir.display()
            )
        })
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("keepalived.conf"))
        })
        .collect();
    v.sort();
    assert!(
        !v.is_empty(),
        "no keepalived.conf.* samples in {}",
        dir.display()
    );
    v
}

/// `keepalived -t -f FILE`'s exit code. keepalived is required: a missing
/// binary fails the test with a clear message instead of passing silently.
pub fn keepalived_t(file: &Path) -> i32 {
    let dir = tempfile::tempdir().expect("temp dir for keepalived's working directory");
    let out = Command::new("keepalived")
        .arg("-t")
        .arg("-f")
        .arg(file)
        .current_dir(dir.path())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `keepalived -t` ({e}): the differential tests need Debian's keepalived 2.2.7 installed (apt-get install keepalived)"
            )
        });
    out.status
        .code()
        .unwrap_or_else(|| panic!("keepalived -t killed by a signal on {}", file.display()))
}

/// keepalived's code mapped through lvskit's documented deviations: a child
/// that exits on a missing parameter makes `-t` return 2, which lvskit
/// reports as 4 ("cannot run").
pub fn expected_code(keepalived: i32) -> i32 {
    if keepalived == 2 { 4 } else { keepalived }
}

/// Our exit code for a file, with machine checks on (as `keepalived -t`).
pub fn ours(file: &Path) -> (i32, String) {
    let p = lvskit_kconf::parse_file(file, &lvskit_kconf::Options::default());
    (p.exit_code(), p.render())
}
