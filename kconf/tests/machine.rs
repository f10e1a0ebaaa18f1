//! Machine-dependent checks (interfaces, scripts, script security) against a
//! fake machine, so they run anywhere; the differential tests cover the
//! real host against keepalived itself.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use lvskit_kconf::check::Machine;
use lvskit_kconf::diag::Code;
use lvskit_kconf::{MemFs, Options, parse_file_with};

/// A fake host: interfaces, files (mode, uid, is_dir) and users.
struct Fake {
    interfaces: Vec<&'static str>,
    files: HashMap<PathBuf, (u32, u32, bool)>,
    users: Vec<&'static str>,
}

impl Machine for Fake {
    fn has_interface(&self, name: &str) -> bool {
        self.interfaces.contains(&name)
    }
    fn stat(&self, path: &Path) -> Option<(u32, u32, bool)> {
        self.files.get(path).copied()
    }
    fn has_user(&self, name: &str) -> bool {
        self.users.contains(&name)
    }
}

fn fake(script_mode: u32, dir_mode: u32) -> Fake {
    let mut files = HashMap::new();
    files.insert(PathBuf::from("/"), (0o40755, 0, true));
    files.insert(PathBuf::from("/etc"), (0o40000 | dir_mode, 0, true));
    files.insert(
        PathBuf::from("/etc/chk.sh"),
        (0o100000 | script_mode, 0, false),
    );
    Fake {
        interfaces: vec!["lo", "eth0"],
        files,
        users: vec!["root"],
    }
}

fn run(text: &str, machine: &Fake) -> (i32, Vec<Code>) {
    let mut fs = MemFs::new();
    fs.insert("/etc/k.conf", text);
    let p = parse_file_with(&fs, machine, Path::new("/etc/k.conf"), &Options::default());
    let codes = p
        .diagnostics
        .iter()
        .filter(|d| d.class.is_some())
        .map(|d| d.code)
        .collect();
    (p.exit_code(), codes)
}

const INSTANCE: &str = "vrrp_instance V {
    interface IFACE
    virtual_router_id 5
    virtual_ipaddress {
        10.0.0.1
    }
    track_script {
        chk
    }
}
";

fn config(global: &str, iface: &str, script: &str) -> String {
    format!(
        "global_defs {{\n{global}\n}}\nvrrp_script chk {{\n    script \"{script}\"\n}}\n{}",
        INSTANCE.replace("IFACE", iface)
    )
}

#[test]
fn missing_interface_exits_5_like_keepalived() {
    let (code, codes) = run(&config("", "eth9", "/etc/chk.sh"), &fake(0o755, 0o755));
    // keepalived reports the missing interface (a warning-class error and
    // "Non-existent interface specified") and the script security problem.
    assert!(codes.contains(&Code::MissingInterface), "{codes:?}");
    assert_eq!(code, 6);
    let (code, _) = run(
        &config(
            "    enable_script_security\n    script_user root",
            "eth9",
            "/etc/chk.sh",
        ),
        &fake(0o755, 0o755),
    );
    assert_eq!(code, 5);
}

#[test]
fn scripts_without_script_security_exit_6() {
    let (code, codes) = run(&config("", "eth0", "/etc/chk.sh"), &fake(0o755, 0o755));
    assert_eq!((code, codes), (6, vec![Code::ScriptSecurity]));
}

#[test]
fn script_security_with_an_existing_user_is_clean() {
    let g = "    enable_script_security\n    script_user root";
    let (code, codes) = run(&config(g, "eth0", "/etc/chk.sh"), &fake(0o755, 0o755));
    assert_eq!((code, codes), (0, vec![]));
}

#[test]
fn default_script_user_missing_is_an_error() {
    let (code, codes) = run(
        &config("    enable_script_security", "eth0", "/etc/chk.sh"),
        &fake(0o755, 0o755),
    );
    assert_eq!((code, codes), (5, vec![Code::ScriptSecurity]));
}

#[test]
fn insecure_script_is_disabled() {
    let g = "    enable_script_security\n    script_user root";
    // World-writable script.
    let (code, codes) = run(&config(g, "eth0", "/etc/chk.sh"), &fake(0o777, 0o755));
    assert_eq!((code, codes), (5, vec![Code::ScriptSecurity]));
    // Group-writable directory without the sticky bit.
    let (code, _) = run(&config(g, "eth0", "/etc/chk.sh"), &fake(0o755, 0o775));
    assert_eq!(code, 5);
    // A sticky world-writable directory (like /tmp) is fine.
    let (code, _) = run(&config(g, "eth0", "/etc/chk.sh"), &fake(0o755, 0o1777));
    assert_eq!(code, 0);
}

#[test]
fn missing_track_script_is_an_error_and_offline_skips_checks() {
    let text = config("", "eth0", "/etc/missing.sh");
    let (code, codes) = run(&text, &fake(0o755, 0o755));
    assert_eq!((code, codes), (5, vec![Code::Script]));
    let mut fs = MemFs::new();
    fs.insert("/etc/k.conf", text.as_str());
    let p = parse_file_with(
        &fs,
        &fake(0o755, 0o755),
        Path::new("/etc/k.conf"),
        &Options::offline(),
    );
    assert_eq!(p.exit_code(), 0);
}
