//! keepalived's state dumps: SIGUSR1 writes `keepalived.data` (the
//! configuration and the live state), SIGUSR2 `keepalived.stats` (the
//! VRRP counters), SIGRTMAX-1 the same and then clears the counters, and
//! SIGRTMIN+2 `keepalived.json` (both, per instance, with keepalived's
//! JSON keys). The files go in `$TMPDIR`, else `/tmp`,
//! as keepalived puts them.
//!
//! keepalived once opened these fixed names in `/tmp` with a plain
//! `fopen`, so a local user could plant a symlink there and have root
//! overwrite any file (CVE-2018-19044/19045/19046). Here each dump is
//! written to a fresh file created exclusively (`O_CREAT|O_EXCL`, which
//! never follows a symlink) with mode 0600 in the same directory, then
//! renamed over the name: `rename(2)` replaces a planted symlink itself,
//! never its target.

use anyhow::{Context, Result};
use lvskit_vrrp::linux::driver::InstanceSnapshot;
use lvskit_vrrp::{DropKind, State};
use nix::libc;
use serde_json::json;
use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// One of keepalived's dumps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dump {
    /// SIGUSR1: `keepalived.data`.
    Data,
    /// SIGUSR2: `keepalived.stats`.
    Stats,
    /// SIGRTMAX-1: `keepalived.stats`, then the counters are cleared.
    StatsClear,
    /// SIGRTMIN+2: `keepalived.json`.
    Json,
}

impl Dump {
    /// Every dump.
    pub const ALL: [Dump; 4] = [Dump::Data, Dump::Stats, Dump::StatsClear, Dump::Json];

    /// The file it writes, in [`dump_dir`].
    pub fn file_name(self) -> &'static str {
        match self {
            Dump::Data => "keepalived.data",
            Dump::Stats | Dump::StatsClear => "keepalived.stats",
            Dump::Json => "keepalived.json",
        }
    }

    /// The signal that asks for it (the numbers keepalived uses).
    pub fn signal(self) -> i32 {
        match self {
            Dump::Data => libc::SIGUSR1,
            Dump::Stats => libc::SIGUSR2,
            Dump::StatsClear => libc::SIGRTMAX() - 1,
            Dump::Json => libc::SIGRTMIN() + 2,
        }
    }
}

/// `--signum=NAME`: the signal number keepalived uses for a function
/// (`STOP`, `RELOAD`, `DATA`, `STATS`, `STATS_CLEAR`, `JSON`), or why
/// lvskitd has none.
pub fn signum(name: &str) -> Result<i32, String> {
    match name {
        "STOP" => Ok(libc::SIGTERM),
        "RELOAD" => Ok(libc::SIGHUP),
        "DATA" => Ok(Dump::Data.signal()),
        "STATS" => Ok(Dump::Stats.signal()),
        "STATS_CLEAR" => Ok(Dump::StatsClear.signal()),
        "JSON" => Ok(Dump::Json.signal()),
        "TDUMP" => Err(
            "TDUMP dumps keepalived's threads (a debug build's signal); lvskitd has no thread dump"
                .to_owned(),
        ),
        _ => Err(format!(
            "Unknown sigfunc {name} (expected STOP, RELOAD, DATA, STATS, STATS_CLEAR or JSON)"
        )),
    }
}

/// Where the dumps go: `$TMPDIR` if set and not empty, else `/tmp`.
pub fn dump_dir() -> PathBuf {
    std::env::var_os("TMPDIR")
        .filter(|dir| !dir.is_empty())
        .map_or_else(|| PathBuf::from("/tmp"), PathBuf::from)
}

/// Writes `contents` to `path` without ever writing through a symlink:
/// a fresh 0600 file created exclusively beside it, then renamed over it.
pub fn write_replacing(path: &Path, contents: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().context("a dump path names a file")?;
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(name);
    prefix.push(".");
    let mut file = tempfile::Builder::new()
        .prefix(&prefix)
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .with_context(|| format!("create a file in {}", dir.display()))?;
    file.write_all(contents)
        .and_then(|()| file.as_file().sync_all())
        .with_context(|| format!("write {}", file.path().display()))?;
    file.persist(path)
        .with_context(|| format!("rename over {}", path.display()))?;
    Ok(())
}

/// keepalived's JSON state number.
fn state_number(state: State) -> u8 {
    match state {
        State::Initialize => 0,
        State::Backup => 1,
        State::Master => 2,
        State::Fault => 3,
    }
}

/// Each drop reason as a snake_case name (`AdverInterval` → `adver_interval`).
pub fn drop_kind_name(kind: DropKind) -> String {
    let mut name = String::new();
    for (i, c) in format!("{kind:?}").chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_lowercase());
    }
    name
}

/// The `keepalived.stats` text: per instance, the counters keepalived
/// prints, then every drop reason lvskit counts.
pub fn stats_text(instances: &[InstanceSnapshot]) -> String {
    let mut text = String::new();
    for instance in instances {
        let s = &instance.statistics;
        let _ = writeln!(text, "VRRP Instance: {}", instance.name);
        let _ = writeln!(text, "  Advertisements:");
        let _ = writeln!(text, "    Received: {}", s.adverts_received);
        let _ = writeln!(text, "    Sent: {}", s.adverts_sent);
        let _ = writeln!(text, "  Became master: {}", s.master_transitions);
        let _ = writeln!(text, "  Packet Errors:");
        for (label, kind) in [
            ("Length", DropKind::Length),
            ("TTL", DropKind::Ttl),
            ("Invalid Type", DropKind::Type),
            ("Advertisement Interval", DropKind::AdverInterval),
            ("Address List", DropKind::AddressList),
        ] {
            let _ = writeln!(text, "    {label}: {}", s.dropped(kind));
        }
        let _ = writeln!(text, "  Authentication Errors:");
        for (label, kind) in [
            ("Invalid Type", DropKind::InvalidAuthType),
            ("Type Mismatch", DropKind::AuthTypeMismatch),
            ("Failure", DropKind::AuthFailure),
        ] {
            let _ = writeln!(text, "    {label}: {}", s.dropped(kind));
        }
        let _ = writeln!(text, "  Priority Zero:");
        let _ = writeln!(text, "    Received: {}", s.priority_zero_received);
        let _ = writeln!(text, "    Sent: {}", s.priority_zero_sent);
        let _ = writeln!(text, "  Drops by reason:");
        for kind in DropKind::ALL {
            let _ = writeln!(text, "    {}: {}", drop_kind_name(kind), s.dropped(kind));
        }
    }
    text
}

/// The `keepalived.json` array: per instance, `data` and `stats` objects
/// with keepalived's key names for what lvskit has.
pub fn json(config: &lvskit_kconf::Config, instances: &[InstanceSnapshot]) -> serde_json::Value {
    let entries: Vec<serde_json::Value> = instances
        .iter()
        .map(|instance| {
            let configured = config
                .vrrp_instances
                .iter()
                .find(|vi| *vi.name == *instance.name);
            let s = &instance.statistics;
            json!({
                "data": {
                    "iname": &*instance.name,
                    "ifp_ifname": configured.and_then(|vi| vi.interface.clone()),
                    "vrid": instance.vrid,
                    "base_priority": configured.map(|vi| vi.priority),
                    "effective_priority": instance.effective_priority,
                    "state": state_number(instance.state),
                    "master_saddr": instance.master_address.map(|a| a.to_string()),
                    "vips": configured.map(|vi| vi
                        .virtual_ipaddress
                        .iter()
                        .map(|v| format!("{}/{}", v.address, v.prefix_len))
                        .collect::<Vec<_>>()),
                },
                "stats": {
                    "advert_rcvd": s.adverts_received,
                    "advert_sent": s.adverts_sent,
                    "become_master": s.master_transitions,
                    "packet_len_err": s.dropped(DropKind::Length),
                    "advert_interval_err": s.dropped(DropKind::AdverInterval),
                    "ip_ttl_err": s.dropped(DropKind::Ttl),
                    "invalid_type_rcvd": s.dropped(DropKind::Type),
                    "addr_list_err": s.dropped(DropKind::AddressList),
                    "invalid_authtype": s.dropped(DropKind::InvalidAuthType),
                    "authtype_mismatch": s.dropped(DropKind::AuthTypeMismatch),
                    "auth_failure": s.dropped(DropKind::AuthFailure),
                    "pri_zero_rcvd": s.priority_zero_received,
                    "pri_zero_sent": s.priority_zero_sent,
                },
            })
        })
        .collect();
    serde_json::Value::Array(entries)
}

/// The `keepalived.data` text: global settings, each VRRP instance with
/// its live state, each virtual server with its real servers' state.
pub fn data_text(
    config: &lvskit_kconf::Config,
    instances: &[InstanceSnapshot],
    virtual_servers: Option<&serde_json::Value>,
) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "------< Global definitions >------");
    let _ = writeln!(
        text,
        " Router ID = {}",
        config.global.router_id.as_deref().unwrap_or("(none)")
    );
    let _ = writeln!(text, " VRRP version = {}", config.global.vrrp_version);
    let _ = writeln!(text, "------< VRRP Topology >------");
    for vi in &config.vrrp_instances {
        let live = instances.iter().find(|i| *i.name == *vi.name);
        let _ = writeln!(text, " VRRP Instance = {}", vi.name);
        let _ = writeln!(
            text,
            "   State = {}",
            live.map_or("(not running)", |i| i.state.keepalived_name())
        );
        if let Some(master) = live.and_then(|i| i.master_address) {
            let _ = writeln!(text, "   Master address = {master}");
        }
        let _ = writeln!(
            text,
            "   Interface = {}",
            vi.interface.as_deref().unwrap_or("(none)")
        );
        if let Some(vrid) = vi.virtual_router_id {
            let _ = writeln!(text, "   Virtual Router ID = {vrid}");
        }
        let _ = writeln!(text, "   Base priority = {}", vi.priority);
        if let Some(live) = live {
            let _ = writeln!(text, "   Effective priority = {}", live.effective_priority);
        }
        let _ = writeln!(
            text,
            "   Advert interval = {} ms",
            vi.advert_int.as_millis()
        );
        let _ = writeln!(text, "   Preempt = {}", !vi.nopreempt);
        let _ = writeln!(text, "   Virtual IP = {}", vi.virtual_ipaddress.len());
        for vip in &vi.virtual_ipaddress {
            let _ = writeln!(text, "     {}/{}", vip.address, vip.prefix_len);
        }
    }
    let _ = writeln!(text, "------< LVS Topology >------");
    let services = virtual_servers
        .and_then(serde_json::Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for service in services {
        let _ = writeln!(
            text,
            " Virtual Server = {}",
            service["service"].as_str().unwrap_or("?")
        );
        let _ = writeln!(text, "   Quorum up = {}", service["quorum_up"]);
        for rs in service["real_servers"].as_array().into_iter().flatten() {
            let _ = writeln!(
                text,
                "   Real Server = {}, weight {} (effective {}), {}",
                rs["address"].as_str().unwrap_or("?"),
                rs["configured_weight"],
                rs["effective_weight"],
                if rs["alive"] == true { "alive" } else { "down" }
            );
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use lvskit_vrrp::Statistics;

    fn snapshot() -> InstanceSnapshot {
        let mut statistics = Statistics::default();
        statistics.adverts_sent = 7;
        statistics.adverts_received = 3;
        statistics.master_transitions = 1;
        InstanceSnapshot {
            name: "VI_1".into(),
            vrid: 51,
            state: State::Master,
            effective_priority: 100,
            master_address: Some("10.0.0.2".parse().unwrap()),
            statistics,
        }
    }

    #[test]
    fn a_planted_symlink_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let target = dir.path().join("keepalived.data");
        std::os::unix::fs::symlink(&victim, &target).unwrap();
        write_replacing(&target, b"dump").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        let meta = std::fs::symlink_metadata(&target).unwrap();
        assert!(meta.is_file(), "the symlink itself was replaced");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "dump");
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn stats_and_json_carry_the_counters() {
        let text = stats_text(&[snapshot()]);
        assert!(text.starts_with("VRRP Instance: VI_1\n"), "{text}");
        assert!(text.contains("    Received: 3\n    Sent: 7\n"), "{text}");
        assert!(text.contains("  Became master: 1\n"), "{text}");
        assert!(text.contains("    adver_interval: 0\n"), "{text}");

        let config = lvskit_kconf::parse_str(
            "vrrp_instance VI_1 {\n state MASTER\n interface eth0\n virtual_router_id 51\n priority 100\n virtual_ipaddress {\n 10.0.0.100/24\n }\n}\n",
            &lvskit_kconf::Options::offline(),
        )
        .config;
        let value = json(&config, &[snapshot()]);
        assert_eq!(value[0]["data"]["iname"], "VI_1");
        assert_eq!(value[0]["data"]["state"], 2);
        assert_eq!(value[0]["data"]["vips"][0], "10.0.0.100/24");
        assert_eq!(value[0]["stats"]["advert_sent"], 7);

        let data = data_text(&config, &[snapshot()], None);
        assert!(
            data.contains(" VRRP Instance = VI_1\n   State = MASTER\n"),
            "{data}"
        );
        assert!(data.contains("     10.0.0.100/24\n"), "{data}");
    }
}
