//! Checks that depend on the machine, as `keepalived -t` makes them:
//! interfaces that must exist, and scripts that must exist and be safe to run.
//!
//! They are off for offline linting ([`crate::Options::machine_checks`]).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::diag::{Code, Diagnostic, KeepalivedClass, Severity};
use crate::model::{Config, Script};
use crate::source::Span;
use crate::tree::Node;

/// Where the machine's facts come from (interfaces, files, users); the real
/// host by default, a fake one in tests.
pub trait Machine {
    /// Whether a network interface of that name exists.
    fn has_interface(&self, name: &str) -> bool;
    /// Whether that interface is a loopback (keepalived refuses those for
    /// VRRP). The default says no.
    fn is_loopback(&self, name: &str) -> bool {
        name == "lo"
    }
    /// Mode, owner uid and whether it is a directory, for a path.
    fn stat(&self, path: &Path) -> Option<(u32, u32, bool)>;
    /// Whether a user of that name exists.
    fn has_user(&self, name: &str) -> bool;
}

/// The host this process runs on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Host;

impl Machine for Host {
    fn has_interface(&self, name: &str) -> bool {
        !name.is_empty() && !name.contains('/') && Path::new("/sys/class/net").join(name).exists()
    }

    fn is_loopback(&self, name: &str) -> bool {
        // IFF_LOOPBACK in the interface flags (include/uapi/linux/if.h).
        std::fs::read_to_string(Path::new("/sys/class/net").join(name).join("flags"))
            .ok()
            .and_then(|f| u32::from_str_radix(f.trim().trim_start_matches("0x"), 16).ok())
            .is_some_and(|flags| flags & 0x8 != 0)
    }

    fn stat(&self, path: &Path) -> Option<(u32, u32, bool)> {
        let m = std::fs::metadata(path).ok()?;
        Some((m.permissions().mode(), m.uid(), m.is_dir()))
    }

    fn has_user(&self, name: &str) -> bool {
        std::fs::read_to_string("/etc/passwd")
            .map(|p| p.lines().any(|l| l.split(':').next() == Some(name)))
            .unwrap_or(false)
    }
}

/// keepalived's default user for scripts when `script_user` is not set.
pub const DEFAULT_SCRIPT_USER: &str = "keepalived_script";

/// Runs the machine checks on a built configuration. `nodes` is the tree the
/// configuration was built from (for positions).
pub fn check(
    config: &Config,
    nodes: &[Node<'_>],
    machine: &dyn Machine,
    diags: &mut Vec<Diagnostic>,
) {
    let find = |kw: &str, name: &str| -> Option<Span> {
        nodes
            .iter()
            .find(|n| n.name() == kw && n.args().first().is_some_and(|a| a.text == name))
            .map(|n| n.keyword().span)
    };
    let mut missing_if = false;
    for inst in &config.vrrp_instances {
        let span = find("vrrp_instance", &inst.name);
        let Some(span) = span else { continue };
        let inner = nodes.iter().find(|n| {
            n.name() == "vrrp_instance" && n.args().first().is_some_and(|a| a.text == inst.name)
        });
        let sub_span = |kw: &str| {
            inner
                .and_then(|n| n.body.nodes().iter().find(|m| m.name() == kw))
                .map(|m| m.keyword().span)
                .unwrap_or(span)
        };
        if let Some(ifname) = &inst.interface
            && !machine.has_interface(ifname)
        {
            missing_if = true;
            diags.push(Diagnostic::error(
                Code::MissingInterface,
                KeepalivedClass::Warning,
                sub_span("interface"),
                format!(
                    "interface {ifname} for vrrp_instance {} doesn't exist",
                    inst.name
                ),
            ));
        } else if let Some(ifname) = &inst.interface
            && machine.is_loopback(ifname)
        {
            diags.push(Diagnostic::error(
                Code::MissingInterface,
                KeepalivedClass::General,
                sub_span("interface"),
                format!(
                    "({}) cannot use a loopback interface ({ifname}) for vrrp - ignoring",
                    inst.name
                ),
            ));
        }
        for t in &inst.track_interface {
            if !machine.has_interface(&t.name) {
                missing_if = true;
                diags.push(Diagnostic::error(
                    Code::MissingInterface,
                    KeepalivedClass::Warning,
                    sub_span("track_interface"),
                    format!("({}) tracked interface {} doesn't exist", inst.name, t.name),
                ));
            }
        }
        for v in inst
            .virtual_ipaddress
            .iter()
            .chain(&inst.virtual_ipaddress_excluded)
        {
            if let Some(dev) = &v.dev
                && !machine.has_interface(dev)
            {
                missing_if = true;
                diags.push(Diagnostic::error(
                    Code::MissingInterface,
                    KeepalivedClass::Warning,
                    sub_span("virtual_ipaddress"),
                    format!("interface {dev} for ip address {} doesn't exist", v.address),
                ));
            }
        }
    }
    // `dev NAME` in static addresses/routes/rules and in an instance's
    // virtual routes and rules.
    let mut devs: Vec<(String, Span)> = Vec::new();
    for n in nodes {
        let lists: Vec<&Node<'_>> = match n.name() {
            "static_ipaddress" | "static_routes" | "static_rules" => vec![n],
            "vrrp_instance" => n
                .body
                .nodes()
                .iter()
                .filter(|m| matches!(m.name(), "virtual_routes" | "virtual_rules"))
                .collect(),
            _ => continue,
        };
        for list in lists {
            for l in list.body.values() {
                for w in l.tokens.windows(2) {
                    if matches!(w[0].text.as_str(), "dev" | "oif" | "iif") {
                        devs.push((w[1].text.to_string(), w[1].span));
                    }
                }
            }
        }
    }
    for (dev, span) in devs {
        if !machine.has_interface(&dev) {
            missing_if = true;
            diags.push(Diagnostic::error(
                Code::MissingInterface,
                KeepalivedClass::Warning,
                span,
                format!("interface {dev} doesn't exist"),
            ));
        }
    }
    if missing_if {
        diags.push(Diagnostic::new(
            Severity::Error,
            Code::MissingInterface,
            Some(KeepalivedClass::BadInterface),
            None,
            "non-existent interface specified in configuration",
        ));
    }

    // Scripts.
    let g = &config.global;
    let mut scripts: Vec<(&Script, Span, bool)> = Vec::new();
    for s in &config.vrrp_scripts {
        if let (Some(sc), Some(span)) = (&s.script, find("vrrp_script", &s.name)) {
            scripts.push((sc, span, true));
        }
    }
    let span0 = nodes.first().map(|n| n.keyword().span);
    let Some(span0) = span0 else { return };
    let notifiers = config
        .vrrp_instances
        .iter()
        .map(|i| {
            (
                "vrrp_instance",
                &i.name,
                [
                    &i.notify_master,
                    &i.notify_backup,
                    &i.notify_fault,
                    &i.notify_stop,
                    &i.notify,
                ],
            )
        })
        .chain(config.vrrp_sync_groups.iter().map(|g| {
            (
                "vrrp_sync_group",
                &g.name,
                [
                    &g.notify_master,
                    &g.notify_backup,
                    &g.notify_fault,
                    &g.notify_stop,
                    &g.notify,
                ],
            )
        }));
    for (kw, name, list) in notifiers {
        let span = find(kw, name).unwrap_or(span0);
        for sc in list.into_iter().flatten() {
            scripts.push((sc, span, false));
        }
    }
    for vs in &config.virtual_servers {
        for sc in [&vs.quorum_up, &vs.quorum_down].into_iter().flatten() {
            scripts.push((sc, span0, false));
        }
        for rs in &vs.real_servers {
            for sc in [&rs.notify_up, &rs.notify_down].into_iter().flatten() {
                scripts.push((sc, span0, false));
            }
            for c in &rs.checkers {
                if let crate::model::CheckerKind::Misc(m) = &c.kind
                    && let Some(sc) = &m.path
                {
                    scripts.push((sc, span0, false));
                }
            }
        }
    }
    let mut running = false;
    let mut insecure_any = false;
    let user_ok = match &g.script_user {
        Some((u, _)) => machine.has_user(u),
        None => machine.has_user(DEFAULT_SCRIPT_USER),
    };
    for (sc, span, tracked) in scripts {
        let Some(prog) = sc.argv.first() else {
            continue;
        };
        let path = Path::new(prog);
        let Some((mode, _uid, is_dir)) = machine.stat(path).filter(|_| path.is_absolute()) else {
            if tracked {
                diags.push(
                    Diagnostic::error(
                        Code::Script,
                        KeepalivedClass::General,
                        span,
                        format!("script {prog} not found or not accessible: the track script is disabled"),
                    )
                    .with_help("keepalived needs an absolute path to an existing file"),
                );
            }
            continue;
        };
        if is_dir {
            continue;
        }
        if mode & 0o111 == 0 {
            diags.push(Diagnostic::warning(
                Code::Script,
                span,
                format!("script {prog} is not executable"),
            ));
        }
        running = true;
        let insecure = is_insecure(path, machine);
        insecure_any |= insecure;
        if g.enable_script_security {
            if !user_ok && sc.user.is_none() {
                diags.push(Diagnostic::error(
                    Code::ScriptSecurity,
                    KeepalivedClass::General,
                    span,
                    format!(
                        "unable to set default user {} for script {prog}",
                        g.script_user
                            .as_ref()
                            .map(|(u, _)| u.as_str())
                            .unwrap_or(DEFAULT_SCRIPT_USER)
                    ),
                ));
            } else if insecure {
                diags.push(Diagnostic::error(
                    Code::ScriptSecurity,
                    KeepalivedClass::General,
                    span,
                    format!("script {prog} is insecure (writable by others): it is disabled"),
                ));
            }
        }
    }
    if running && !g.enable_script_security {
        let mut d = Diagnostic::new(
            Severity::Error,
            Code::ScriptSecurity,
            Some(KeepalivedClass::Security),
            None,
            if insecure_any {
                "SECURITY VIOLATION - scripts are being executed but script_security not enabled. There are insecure scripts."
            } else {
                "SECURITY VIOLATION - scripts are being executed but script_security not enabled."
            },
        );
        d.help = Some("add `enable_script_security` (and `script_user`) to global_defs".into());
        diags.push(d);
    }
}

/// A script is insecure when it, or a directory above it without the sticky
/// bit, can be written by group or others.
fn is_insecure(path: &Path, machine: &dyn Machine) -> bool {
    if let Some((mode, _, _)) = machine.stat(path)
        && mode & 0o022 != 0
    {
        return true;
    }
    let mut p = path.parent();
    while let Some(dir) = p {
        if let Some((mode, _, _)) = machine.stat(dir)
            && mode & 0o022 != 0
            && mode & 0o1000 == 0
        {
            return true;
        }
        p = dir.parent();
    }
    false
}
