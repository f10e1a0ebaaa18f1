//! The typed model of a keepalived configuration, with keepalived's defaults
//! filled in.
//!
//! Only plain types are used (addresses, durations, strings, enums) so that a
//! daemon can build VRRP instances, IPVS services and checkers from it
//! without depending on this crate's parser. Keywords that lvskit does not act
//! on are kept, in order, as [`Directive`]s in each block's `extra` list.

use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;

/// A whole configuration.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Config {
    /// `global_defs`.
    pub global: GlobalDefs,
    /// `vrrp_script` blocks.
    pub vrrp_scripts: Vec<VrrpScript>,
    /// `vrrp_track_file` blocks.
    pub vrrp_track_files: Vec<TrackFile>,
    /// `vrrp_sync_group` blocks.
    pub vrrp_sync_groups: Vec<SyncGroup>,
    /// `vrrp_instance` blocks.
    pub vrrp_instances: Vec<VrrpInstance>,
    /// `virtual_server_group` blocks.
    pub virtual_server_groups: Vec<VirtualServerGroup>,
    /// `virtual_server` blocks.
    pub virtual_servers: Vec<VirtualServer>,
    /// The top-level `SSL` block (client settings for `SSL_GET`).
    pub ssl: Option<SslSettings>,
    /// Other top-level keywords, kept as written.
    pub extra: Vec<Directive>,
}

/// A keyword lvskit keeps but does not interpret (yet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Directive {
    /// The keyword.
    pub keyword: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its block, if any.
    pub body: DirectiveBody,
}

/// The block of a [`Directive`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum DirectiveBody {
    /// No block.
    None,
    /// Lines of values.
    Values(Vec<Vec<String>>),
    /// Nested keywords.
    Block(Vec<Directive>),
}

/// A script to run: `notify_master "/path/cmd arg" user group`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Script {
    /// The command line as one string, as written.
    pub command: String,
    /// The command split into program and arguments (shell-style quoting).
    pub argv: Vec<String>,
    /// User to run it as (`script_user` otherwise).
    pub user: Option<String>,
    /// Group to run it as.
    pub group: Option<String>,
}

/// `global_defs`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GlobalDefs {
    /// `router_id`.
    pub router_id: Option<String>,
    /// `notification_email { … }`.
    pub notification_email: Vec<String>,
    /// `notification_email_from`.
    pub notification_email_from: Option<String>,
    /// `smtp_server` address.
    pub smtp_server: Option<String>,
    /// `smtp_server` port (default 25).
    pub smtp_port: u16,
    /// `smtp_connect_timeout` (default 30 s).
    pub smtp_connect_timeout: Duration,
    /// `enable_script_security`.
    pub enable_script_security: bool,
    /// `script_user USER [GROUP]`.
    pub script_user: Option<(String, Option<String>)>,
    /// `vrrp_strict`.
    pub vrrp_strict: bool,
    /// `vrrp_version` (default 2).
    pub vrrp_version: u8,
    /// `notify_fifo` and `notify_fifo_script`: every notification.
    pub notify_fifo: NotifyFifo,
    /// `vrrp_notify_fifo` and `vrrp_notify_fifo_script`: VRRP's.
    pub vrrp_notify_fifo: NotifyFifo,
    /// `lvs_notify_fifo` and `lvs_notify_fifo_script`: the checkers'.
    pub lvs_notify_fifo: NotifyFifo,
    /// Other keywords.
    pub extra: Vec<Directive>,
}

/// A notify FIFO: `*notify_fifo FIFO_NAME [username [groupname]]` and
/// `*notify_fifo_script COMMAND [username [groupname]]` (the script gets
/// the FIFO's name as its last argument).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct NotifyFifo {
    /// The FIFO's path, if configured.
    pub path: Option<String>,
    /// Owner (user, group) given to a FIFO the daemon creates.
    pub owner: Option<(String, Option<String>)>,
    /// The script that reads it.
    pub script: Option<Script>,
}

impl Default for GlobalDefs {
    fn default() -> GlobalDefs {
        GlobalDefs {
            router_id: None,
            notification_email: Vec::new(),
            notification_email_from: None,
            smtp_server: None,
            smtp_port: 25,
            smtp_connect_timeout: Duration::from_secs(30),
            enable_script_security: false,
            script_user: None,
            vrrp_strict: false,
            vrrp_version: 2,
            notify_fifo: NotifyFifo::default(),
            vrrp_notify_fifo: NotifyFifo::default(),
            lvs_notify_fifo: NotifyFifo::default(),
            extra: Vec::new(),
        }
    }
}

/// `vrrp_script NAME { … }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VrrpScript {
    /// Name used by `track_script`.
    pub name: String,
    /// `script`.
    pub script: Option<Script>,
    /// `interval` (default 1 s).
    pub interval: Duration,
    /// `timeout` (default: the interval).
    pub timeout: Duration,
    /// `weight` (default 0) and whether `reverse` was given.
    pub weight: i32,
    /// `weight … reverse`.
    pub weight_reverse: bool,
    /// `rise` (default 1).
    pub rise: u32,
    /// `fall` (default 1).
    pub fall: u32,
    /// `user USER [GROUP]`.
    pub user: Option<(String, Option<String>)>,
    /// `init_fail`.
    pub init_fail: bool,
    /// Other keywords.
    pub extra: Vec<Directive>,
}

/// `vrrp_track_file NAME { … }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackFile {
    /// Name used by `track_file`.
    pub name: String,
    /// `file`.
    pub file: Option<String>,
    /// `weight` (default 1).
    pub weight: i32,
    /// Other keywords.
    pub extra: Vec<Directive>,
}

/// `vrrp_sync_group NAME { … }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncGroup {
    /// Group name.
    pub name: String,
    /// `group { VI_1 VI_2 }`.
    pub group: Vec<String>,
    /// `notify_master`.
    pub notify_master: Option<Script>,
    /// `notify_backup`.
    pub notify_backup: Option<Script>,
    /// `notify_fault`.
    pub notify_fault: Option<Script>,
    /// `notify_stop`.
    pub notify_stop: Option<Script>,
    /// `notify`.
    pub notify: Option<Script>,
    /// `smtp_alert`.
    pub smtp_alert: bool,
    /// `track_script { NAME [weight W] }`.
    pub track_script: Vec<TrackRef>,
    /// `track_interface { NAME [weight W] }`.
    pub track_interface: Vec<TrackRef>,
    /// Other keywords.
    pub extra: Vec<Directive>,
}

/// The state a VRRP instance starts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum InitialState {
    /// `state MASTER`.
    Master,
    /// `state BACKUP` (also what keepalived uses for an unknown state).
    Backup,
}

/// `authentication { auth_type …; auth_pass … }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Authentication {
    /// `auth_type`.
    pub auth_type: AuthType,
    /// `auth_pass` (keepalived keeps the first 8 bytes).
    pub auth_pass: String,
}

/// VRRPv2 authentication type (RFC 2338 §5.3.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AuthType {
    /// Simple text password.
    Pass,
    /// IPsec AH.
    Ah,
}

/// A tracked interface or script and its optional weight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackRef {
    /// Name of the interface or script.
    pub name: String,
    /// `weight W`.
    pub weight: Option<i32>,
    /// `weight W reverse`.
    pub reverse: bool,
}

/// One line of `virtual_ipaddress`: `ADDR[/LEN] [dev IF] [scope S] [label L] …`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VirtualAddress {
    /// The address.
    pub address: IpAddr,
    /// Prefix length (32 / 128 when not given).
    pub prefix_len: u8,
    /// `brd`.
    pub broadcast: Option<IpAddr>,
    /// `dev`.
    pub dev: Option<String>,
    /// `scope`.
    pub scope: Option<String>,
    /// `label`.
    pub label: Option<String>,
    /// Other options, as written.
    pub options: Vec<String>,
}

/// `vrrp_instance NAME { … }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VrrpInstance {
    /// Instance name.
    pub name: String,
    /// Initial state (from `state`, or from the priority: 255 means MASTER).
    pub state: InitialState,
    /// `interface`.
    pub interface: Option<String>,
    /// `virtual_router_id` (1–255; keepalived requires it).
    pub virtual_router_id: Option<u8>,
    /// `priority`: 100 by default, 255 for `state MASTER` without a priority.
    pub priority: u8,
    /// `advert_int` (default 1 s).
    pub advert_int: Duration,
    /// `version` (default from `global_defs vrrp_version`).
    pub version: u8,
    /// `nopreempt`.
    pub nopreempt: bool,
    /// `preempt_delay` (default 0).
    pub preempt_delay: Duration,
    /// `authentication`.
    pub authentication: Option<Authentication>,
    /// `virtual_ipaddress`.
    pub virtual_ipaddress: Vec<VirtualAddress>,
    /// `virtual_ipaddress_excluded`.
    pub virtual_ipaddress_excluded: Vec<VirtualAddress>,
    /// `unicast_src_ip`.
    pub unicast_src_ip: Option<IpAddr>,
    /// `unicast_peer { … }`.
    pub unicast_peer: Vec<IpAddr>,
    /// `mcast_src_ip`.
    pub mcast_src_ip: Option<IpAddr>,
    /// `track_interface`.
    pub track_interface: Vec<TrackRef>,
    /// `track_script`.
    pub track_script: Vec<TrackRef>,
    /// `notify_master`.
    pub notify_master: Option<Script>,
    /// `notify_backup`.
    pub notify_backup: Option<Script>,
    /// `notify_fault`.
    pub notify_fault: Option<Script>,
    /// `notify_stop`.
    pub notify_stop: Option<Script>,
    /// `notify`.
    pub notify: Option<Script>,
    /// `smtp_alert`.
    pub smtp_alert: bool,
    /// `garp_master_delay` (default 5 s).
    pub garp_master_delay: Duration,
    /// Other keywords.
    pub extra: Vec<Directive>,
}

/// How a virtual server is identified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ServiceAddress {
    /// `virtual_server IP PORT`.
    Address {
        /// The virtual IP.
        ip: IpAddr,
        /// The port (0 only for persistent services).
        port: u16,
    },
    /// `virtual_server fwmark N`.
    Fwmark(u32),
    /// `virtual_server group NAME`.
    Group(String),
}

/// IPVS scheduler (`lb_algo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Scheduler {
    /// Round robin.
    Rr,
    /// Weighted round robin.
    Wrr,
    /// Least connections.
    Lc,
    /// Weighted least connections (keepalived's default).
    Wlc,
    /// Locality-based least connections.
    Lblc,
    /// LBLC with replication.
    Lblcr,
    /// Destination hashing.
    Dh,
    /// Source hashing.
    Sh,
    /// Shortest expected delay.
    Sed,
    /// Never queue.
    Nq,
    /// Weighted failover.
    Fo,
    /// Weighted overflow.
    Ovf,
    /// Maglev hashing.
    Mh,
    /// Weighted random twos choice.
    Twos,
}

impl Scheduler {
    /// The kernel's name for the scheduler.
    pub fn name(&self) -> &'static str {
        match self {
            Scheduler::Rr => "rr",
            Scheduler::Wrr => "wrr",
            Scheduler::Lc => "lc",
            Scheduler::Wlc => "wlc",
            Scheduler::Lblc => "lblc",
            Scheduler::Lblcr => "lblcr",
            Scheduler::Dh => "dh",
            Scheduler::Sh => "sh",
            Scheduler::Sed => "sed",
            Scheduler::Nq => "nq",
            Scheduler::Fo => "fo",
            Scheduler::Ovf => "ovf",
            Scheduler::Mh => "mh",
            Scheduler::Twos => "twos",
        }
    }

    /// All schedulers.
    pub const ALL: [Scheduler; 14] = [
        Scheduler::Rr,
        Scheduler::Wrr,
        Scheduler::Lc,
        Scheduler::Wlc,
        Scheduler::Lblc,
        Scheduler::Lblcr,
        Scheduler::Dh,
        Scheduler::Sh,
        Scheduler::Sed,
        Scheduler::Nq,
        Scheduler::Fo,
        Scheduler::Ovf,
        Scheduler::Mh,
        Scheduler::Twos,
    ];
}

/// IPVS forwarding method (`lb_kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ForwardingMethod {
    /// Masquerading (keepalived's default).
    Nat,
    /// Direct routing.
    Dr,
    /// IP-in-IP tunnelling.
    Tun,
}

impl ForwardingMethod {
    /// keepalived's spelling.
    pub fn name(self) -> &'static str {
        match self {
            ForwardingMethod::Nat => "NAT",
            ForwardingMethod::Dr => "DR",
            ForwardingMethod::Tun => "TUN",
        }
    }
}

/// Transport protocol of a virtual server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP (keepalived 2.2.7's default when `protocol` is missing).
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// keepalived's spelling.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

/// Timers and counts shared by virtual servers, real servers and checkers;
/// each level inherits what it does not set from the level above.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CheckTiming {
    /// `delay_loop`: time between checks (default 60 s).
    pub delay_loop: Duration,
    /// `connect_timeout` (default 5 s).
    pub connect_timeout: Duration,
    /// `retry` (default 1; for a checker that sets it nowhere, 3 for
    /// DNS_CHECK and 0 for MISC_CHECK).
    pub retry: u32,
    /// `delay_before_retry` (default 1 s; 3 s for HTTP_GET/SSL_GET;
    /// `delay_loop` for DNS_CHECK).
    pub delay_before_retry: Option<Duration>,
    /// `warmup` (default: `delay_loop`).
    pub warmup: Option<Duration>,
}

impl Default for CheckTiming {
    fn default() -> CheckTiming {
        CheckTiming {
            delay_loop: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
            retry: 1,
            delay_before_retry: None,
            warmup: None,
        }
    }
}

/// `virtual_server … { … }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VirtualServer {
    /// The service.
    pub service: ServiceAddress,
    /// `lb_algo` (default wlc).
    pub lb_algo: Scheduler,
    /// `lb_kind` (default NAT).
    pub lb_kind: ForwardingMethod,
    /// What follows `lb_kind TUN` (`type gue port 6080 csum`), as written.
    pub lb_kind_options: Vec<String>,
    /// `protocol`.
    pub protocol: Protocol,
    /// `persistence_timeout`.
    pub persistence_timeout: Option<Duration>,
    /// `virtualhost`.
    pub virtualhost: Option<String>,
    /// `sorry_server IP PORT`.
    pub sorry_server: Option<(IpAddr, u16)>,
    /// `quorum` (default 1).
    pub quorum: u32,
    /// `hysteresis` (default 0).
    pub hysteresis: u32,
    /// `quorum_up`.
    pub quorum_up: Option<Script>,
    /// `quorum_down`.
    pub quorum_down: Option<Script>,
    /// `ha_suspend`.
    pub ha_suspend: bool,
    /// `alpha`.
    pub alpha: bool,
    /// `omega`.
    pub omega: bool,
    /// `inhibit_on_failure` (inherited by real servers).
    pub inhibit_on_failure: bool,
    /// Timers (inherited by real servers and checkers).
    pub timing: CheckTiming,
    /// `real_server` blocks.
    pub real_servers: Vec<RealServer>,
    /// Other keywords, as written (`sorry_server_inhibit` and
    /// `sorry_server_lvs_method` without a warning).
    pub extra: Vec<Directive>,
}

/// `virtual_server_group NAME { … }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VirtualServerGroup {
    /// Group name.
    pub name: String,
    /// Entries: `IP[-LAST] PORT` or `fwmark N`, as written.
    pub entries: Vec<Vec<String>>,
}

/// `real_server IP PORT { … }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RealServer {
    /// Address.
    pub address: IpAddr,
    /// Port (the virtual server's port when not given).
    pub port: u16,
    /// `weight` (default 1).
    pub weight: u32,
    /// `inhibit_on_failure`.
    pub inhibit_on_failure: bool,
    /// `notify_up`.
    pub notify_up: Option<Script>,
    /// `notify_down`.
    pub notify_down: Option<Script>,
    /// Timers (inherited from the virtual server, passed on to checkers).
    pub timing: CheckTiming,
    /// Health checkers.
    pub checkers: Vec<Checker>,
    /// Other keywords, as written (`alpha` and `virtualhost`, inherited by
    /// the checkers, and `lvs_method`, without a warning).
    pub extra: Vec<Directive>,
}

/// One health checker of a real server.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Checker {
    /// What it checks and how.
    pub kind: CheckerKind,
    /// `connect_ip` (default: the real server's address).
    pub connect_ip: IpAddr,
    /// `connect_port` (default: the real server's port).
    pub connect_port: u16,
    /// `bindto`.
    pub bind_ip: Option<IpAddr>,
    /// `bind_port`.
    pub bind_port: Option<u16>,
    /// Timers, inherited from the real server; `delay_before_retry` and
    /// `warmup` are resolved here.
    pub timing: CheckTiming,
    /// Other keywords, as written. Without a warning: `bind_if`, `fwmark`,
    /// `alpha`, `enable_sni`, `min_reply_length`, `max_reply_length`,
    /// `require_reply HEX` and FILE_CHECK's `weight`.
    pub extra: Vec<Directive>,
}

/// The kind of health check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum CheckerKind {
    /// `TCP_CHECK`: connect and close.
    Tcp,
    /// `HTTP_GET`.
    Http(HttpCheck),
    /// `SSL_GET` (HTTP over TLS).
    Ssl(HttpCheck),
    /// `SMTP_CHECK`.
    Smtp(SmtpCheck),
    /// `DNS_CHECK`.
    Dns(DnsCheck),
    /// `MISC_CHECK`: run a script.
    Misc(MiscCheck),
    /// `UDP_CHECK`.
    Udp(UdpCheck),
    /// `PING_CHECK`: ICMP echo.
    Ping,
    /// `FILE_CHECK`: read a weight from a file.
    File(FileCheck),
    /// `BFD_CHECK`.
    Bfd(Option<String>),
}

/// `HTTP_GET` / `SSL_GET` settings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct HttpCheck {
    /// `url` blocks.
    pub urls: Vec<Url>,
    /// `virtualhost`.
    pub virtualhost: Option<String>,
    /// `http_protocol` (e.g. `1.1`).
    pub http_protocol: Option<String>,
}

/// `url { … }`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Url {
    /// `path`.
    pub path: String,
    /// `digest` (MD5 of the body, hex).
    pub digest: Option<String>,
    /// `status_code` values and ranges, as written (default: 2xx).
    pub status_code: Vec<String>,
    /// `virtualhost`.
    pub virtualhost: Option<String>,
    /// Other keywords.
    pub extra: Vec<Directive>,
}

/// `SMTP_CHECK` settings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct SmtpCheck {
    /// `helo_name`.
    pub helo_name: Option<String>,
    /// `host` blocks, each with its own `connect_ip` / `connect_port`.
    pub hosts: Vec<Vec<Directive>>,
}

/// `DNS_CHECK` settings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct DnsCheck {
    /// `type` (default SOA).
    pub query_type: String,
    /// `name` (default `.`).
    pub name: String,
}

/// `MISC_CHECK` settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MiscCheck {
    /// `misc_path`.
    pub path: Option<Script>,
    /// `misc_timeout`.
    pub timeout: Option<Duration>,
    /// `misc_dynamic`.
    pub dynamic: bool,
}

/// `UDP_CHECK` settings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct UdpCheck {
    /// `payload` (hex, its words joined by a space).
    pub payload: Option<String>,
    /// `require_reply`.
    pub require_reply: bool,
}

/// `FILE_CHECK` settings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct FileCheck {
    /// `track_file`.
    pub track_file: Option<String>,
}

/// The `SSL { … }` block.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct SslSettings {
    /// `password`.
    pub password: Option<String>,
    /// `ca`.
    pub ca: Option<String>,
    /// `certificate`.
    pub certificate: Option<String>,
    /// `key`.
    pub key: Option<String>,
    /// Other keywords.
    pub extra: Vec<Directive>,
}
