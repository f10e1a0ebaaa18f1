//! keepalived's notifications: the notify FIFOs of `global_defs`
//! (`notify_fifo` gets every line, `vrrp_notify_fifo` the VRRP ones,
//! `lvs_notify_fifo` the checkers'), each optionally read by a
//! `*_notify_fifo_script` started with the FIFO's name as its last
//! argument; the per-instance notify scripts (`notify_master`,
//! `notify_backup`, `notify_fault`, `notify_stop`, and `notify` with
//! `INSTANCE name STATE priority` appended); and the checkers' scripts
//! (`quorum_up`, `quorum_down` of a virtual server, `notify_up`,
//! `notify_down` of a real server). Each runs as its user (else
//! `script_user`, else `keepalived_script` if that user exists, else the
//! daemon's own) and is killed after a timeout.
//!
//! Lines, as keepalived.conf(5) gives them:
//!
//! ```text
//! INSTANCE "VI_1" MASTER 100
//! GROUP "VG_1" MASTER 0
//! VS [10.0.0.100]:tcp:80 UP
//! RS [10.0.0.11]:tcp:80 [10.0.0.100]:tcp:80 DOWN
//! ```

use super::lvs::{HealthScripts, ServiceHealth};
use anyhow::{Context, Result, bail};
use lvskit_kconf::model::{self as kconf, NotifyFifo, Script};
use lvskit_vrrp::linux::script::{ScriptOutcome, ScriptRunner, ScriptUser};
use lvskit_vrrp::{NotifyEvent, State};
use std::io::Write as _;
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::PathBuf;
use std::time::Duration;

/// How long a notify script may run before it is killed.
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(30);

/// A state change of a VRRP instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The instance.
    pub instance: String,
    /// Its new state; `Initialize` after running means it stopped.
    pub state: State,
    /// Its effective priority.
    pub priority: u8,
}

/// keepalived's word for a state in notifications (`STOP` for a stopped
/// instance).
pub fn state_word(state: State) -> &'static str {
    match state {
        State::Initialize => "STOP",
        other => other.keepalived_name(),
    }
}

/// `INSTANCE "VI_1" MASTER 100`.
pub fn instance_line(transition: &Transition) -> String {
    format!(
        "INSTANCE \"{}\" {} {}\n",
        transition.instance,
        state_word(transition.state),
        transition.priority
    )
}

/// `GROUP "VG_1" MASTER 0`: a sync group's line, whose priority field
/// is always 0.
pub fn group_line(group: &str, state: &str) -> String {
    format!("GROUP \"{group}\" {state} 0\n")
}

fn up_down(up: bool) -> &'static str {
    if up { "UP" } else { "DOWN" }
}

/// `VS [10.0.0.100]:tcp:80 UP`: a virtual server's quorum changed.
pub fn virtual_server_line(service: &str, up: bool) -> String {
    format!("VS {service} {}\n", up_down(up))
}

/// `RS [10.0.0.11]:tcp:80 [10.0.0.100]:tcp:80 DOWN`.
pub fn real_server_line(real_server: &str, service: &str, up: bool) -> String {
    format!("RS {real_server} {service} {}\n", up_down(up))
}

/// One open FIFO and the script reading it.
#[derive(Debug)]
struct Fifo {
    path: PathBuf,
    file: std::fs::File,
    reader: Option<tokio::process::Child>,
}

impl Fifo {
    /// Opens (creating it 0600 if missing) the FIFO `fifo` names, and
    /// starts its script. A path that exists and is not a FIFO (a regular
    /// file, a symlink) is refused.
    fn open(fifo: &NotifyFifo, users: &Users) -> Result<Option<Fifo>> {
        let Some(path) = &fifo.path else {
            return Ok(None);
        };
        let path = PathBuf::from(path);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_fifo() => {}
            Ok(_) => bail!("{} exists and is not a FIFO", path.display()),
            Err(_) => {
                nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600))
                    .with_context(|| format!("mkfifo {}", path.display()))?;
                if let Some((user, group)) = &fifo.owner {
                    let owner = users.resolve(Some(user), group.as_deref())?;
                    nix::unistd::chown(
                        &path,
                        Some(nix::unistd::Uid::from_raw(owner.uid)),
                        Some(nix::unistd::Gid::from_raw(owner.gid)),
                    )
                    .with_context(|| format!("chown {}", path.display()))?;
                }
            }
        }
        // Read-write: the open never waits for a reader, and writes never
        // fail with EPIPE while the reader restarts. Non-blocking: a full
        // FIFO drops a line instead of stalling the daemon.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags((nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_NOFOLLOW).bits())
            .open(&path)
            .with_context(|| format!("open {}", path.display()))?;
        let reader = match &fifo.script {
            Some(script) => {
                let Some((program, args)) = script.argv.split_first() else {
                    bail!("{}: empty notify_fifo_script", path.display());
                };
                let user = users.of(script)?;
                let mut command = tokio::process::Command::new(program);
                command
                    .args(args)
                    .arg(&path)
                    .stdin(std::process::Stdio::null())
                    .kill_on_drop(true);
                if let Some(user) = user {
                    command.uid(user.uid).gid(user.gid);
                }
                Some(
                    command
                        .spawn()
                        .with_context(|| format!("start {}", script.command))?,
                )
            }
            None => None,
        };
        Ok(Some(Fifo { path, file, reader }))
    }

    fn write(&mut self, line: &str) {
        // Lines are shorter than PIPE_BUF, so each write is whole or fails.
        if let Err(e) = self.file.write_all(line.as_bytes()) {
            tracing::warn!("notify FIFO {}: line dropped: {e}", self.path.display());
        }
    }
}

/// Who scripts run as.
#[derive(Debug, Clone)]
struct Users {
    /// `script_user` or keepalived's default; `None`: the daemon's own.
    default: Option<ScriptUser>,
}

impl Users {
    fn new(global: &kconf::GlobalDefs) -> Result<Users> {
        let default = match &global.script_user {
            Some((user, group)) => Some(Users::lookup(user, group.as_deref())?),
            None => ScriptUser::by_name(lvskit_kconf::check::DEFAULT_SCRIPT_USER).ok(),
        };
        Ok(Users { default })
    }

    fn lookup(user: &str, group: Option<&str>) -> Result<ScriptUser> {
        let mut found = ScriptUser::by_name(user).with_context(|| format!("user {user}"))?;
        if let Some(group) = group {
            found.gid = nix::unistd::Group::from_name(group)
                .ok()
                .flatten()
                .with_context(|| format!("no group {group}"))?
                .gid
                .as_raw();
        }
        Ok(found)
    }

    fn resolve(&self, user: Option<&String>, group: Option<&str>) -> Result<ScriptUser> {
        match user {
            Some(user) => Users::lookup(user, group),
            None => self.default.context("no user to own the FIFO"),
        }
    }

    fn of(&self, script: &Script) -> Result<Option<ScriptUser>> {
        match &script.user {
            Some(user) => Ok(Some(Users::lookup(user, script.group.as_deref())?)),
            None => Ok(self.default),
        }
    }
}

/// The FIFOs and the running notify scripts.
#[derive(Debug)]
pub struct Notifier {
    all: Option<Fifo>,
    vrrp: Option<Fifo>,
    lvs: Option<Fifo>,
    users: Users,
    scripts: tokio::task::JoinSet<()>,
}

impl Notifier {
    /// Opens the configured FIFOs and starts their scripts.
    pub fn start(config: &kconf::Config) -> Result<Notifier> {
        let users = Users::new(&config.global)?;
        let global = &config.global;
        Ok(Notifier {
            all: Fifo::open(&global.notify_fifo, &users)?,
            vrrp: Fifo::open(&global.vrrp_notify_fifo, &users)?,
            lvs: Fifo::open(&global.lvs_notify_fifo, &users)?,
            users,
            scripts: tokio::task::JoinSet::new(),
        })
    }

    /// A VRRP instance changed state: its FIFO line, then its scripts
    /// (`notify_<state>` with no argument, `notify` with the four).
    pub fn vrrp(&mut self, config: &kconf::Config, transition: &Transition) {
        let line = instance_line(transition);
        for fifo in [&mut self.all, &mut self.vrrp].into_iter().flatten() {
            fifo.write(&line);
        }
        while self.scripts.try_join_next().is_some() {}
        let Some(vi) = config
            .vrrp_instances
            .iter()
            .find(|v| v.name == transition.instance)
        else {
            return;
        };
        let specific = match transition.state {
            State::Master => vi.notify_master.as_ref(),
            State::Backup => vi.notify_backup.as_ref(),
            State::Fault => vi.notify_fault.as_ref(),
            State::Initialize => vi.notify_stop.as_ref(),
        };
        if let Some(script) = specific {
            self.run(script, Vec::new());
        }
        if let Some(script) = &vi.notify {
            let arguments = [
                "INSTANCE",
                &transition.instance,
                state_word(transition.state),
                &transition.priority.to_string(),
            ]
            .map(str::to_owned)
            .to_vec();
            self.run(script, arguments);
        }
    }

    /// A sync group changed state (all its members did): the FIFO line
    /// `GROUP "name" STATE 0`, then the group's scripts (`notify_<state>`
    /// with no argument, `notify` with `GROUP name STATE 0`).
    pub fn group(&mut self, config: &kconf::Config, group: &str, event: NotifyEvent) {
        let state = event.keepalived_name();
        let line = group_line(group, state);
        for fifo in [&mut self.all, &mut self.vrrp].into_iter().flatten() {
            fifo.write(&line);
        }
        while self.scripts.try_join_next().is_some() {}
        let Some(sg) = config.vrrp_sync_groups.iter().find(|g| g.name == group) else {
            return;
        };
        let specific = match event {
            NotifyEvent::Master => sg.notify_master.as_ref(),
            NotifyEvent::Backup => sg.notify_backup.as_ref(),
            NotifyEvent::Fault => sg.notify_fault.as_ref(),
            NotifyEvent::Stop => sg.notify_stop.as_ref(),
            _ => None,
        };
        if let Some(script) = specific {
            self.run(script, Vec::new());
        }
        if let Some(script) = &sg.notify {
            let arguments = ["GROUP", group, state, "0"].map(str::to_owned).to_vec();
            self.run(script, arguments);
        }
    }

    /// A checker line (see [`virtual_server_line`], [`real_server_line`]).
    pub fn lvs(&mut self, line: &str) {
        for fifo in [&mut self.all, &mut self.lvs].into_iter().flatten() {
            fifo.write(line);
        }
    }

    /// What a checker event changed, from the virtual servers' health
    /// `before` and `after` it (with their `scripts`, in the same order):
    /// each real server that went up or down gets its FIFO line and its
    /// `notify_up`/`notify_down`, each virtual server whose quorum changed
    /// its line and its `quorum_up`/`quorum_down`. Scripts get no
    /// argument, as in keepalived.
    pub fn health_changes<'a>(
        &mut self,
        before: &[ServiceHealth],
        after: &[ServiceHealth],
        scripts: impl Iterator<Item = &'a HealthScripts>,
    ) {
        while self.scripts.try_join_next().is_some() {}
        for ((was, now), scripts) in before.iter().zip(after).zip(scripts) {
            let servers = was.real_servers.iter().zip(&now.real_servers);
            for (index, ((name, was_alive), (_, alive))) in servers.enumerate() {
                if was_alive == alive {
                    continue;
                }
                self.lvs(&real_server_line(name, &now.name, *alive));
                let script = scripts
                    .real_servers
                    .get(index)
                    .and_then(|(up, down)| if *alive { up } else { down }.as_ref());
                if let Some(script) = script {
                    self.run(script, Vec::new());
                }
            }
            if was.quorum_up != now.quorum_up {
                self.lvs(&virtual_server_line(&now.name, now.quorum_up));
                let script = if now.quorum_up {
                    &scripts.quorum_up
                } else {
                    &scripts.quorum_down
                };
                if let Some(script) = script {
                    self.run(script, Vec::new());
                }
            }
        }
    }

    fn run(&mut self, script: &Script, extra: Vec<String>) {
        let Some((program, args)) = script.argv.split_first() else {
            return;
        };
        let user = match self.users.of(script) {
            Ok(user) => user,
            Err(e) => {
                tracing::error!("notify script {}: {e:#}", script.command);
                return;
            }
        };
        let runner = ScriptRunner {
            user,
            timeout: SCRIPT_TIMEOUT,
        };
        let program = program.clone();
        let mut arguments = args.to_vec();
        arguments.extend(extra);
        self.scripts.spawn(async move {
            match runner.run(&program, &arguments).await {
                Ok(ScriptOutcome::Success) => {}
                Ok(outcome) => tracing::warn!("notify script {program} {arguments:?}: {outcome:?}"),
                Err(e) => tracing::warn!("notify script {program}: {e}"),
            }
        });
    }

    /// Waits for the running notify scripts (each is killed at its
    /// timeout), closes the FIFOs and gives their readers a moment to see
    /// the end before they are killed.
    pub async fn finish(mut self) {
        while self.scripts.join_next().await.is_some() {}
        for fifo in [self.all, self.vrrp, self.lvs].into_iter().flatten() {
            let Fifo { file, reader, .. } = fifo;
            drop(file);
            if let Some(mut reader) = reader {
                let _ = tokio::time::timeout(Duration::from_secs(2), reader.wait()).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_have_keepalived_s_format() {
        let transition = Transition {
            instance: "VI_1".into(),
            state: State::Master,
            priority: 100,
        };
        assert_eq!(instance_line(&transition), "INSTANCE \"VI_1\" MASTER 100\n");
        let stopped = Transition {
            state: State::Initialize,
            ..transition
        };
        assert_eq!(instance_line(&stopped), "INSTANCE \"VI_1\" STOP 100\n");
        assert_eq!(group_line("VG_1", "FAULT"), "GROUP \"VG_1\" FAULT 0\n");
        assert_eq!(
            virtual_server_line("[10.0.0.100]:tcp:80", false),
            "VS [10.0.0.100]:tcp:80 DOWN\n"
        );
        assert_eq!(
            real_server_line("[10.0.0.11]:tcp:80", "[10.0.0.100]:tcp:80", true),
            "RS [10.0.0.11]:tcp:80 [10.0.0.100]:tcp:80 UP\n"
        );
    }

    #[tokio::test]
    async fn a_fifo_is_created_and_receives_lines_and_a_regular_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.fifo");
        let mut config = kconf::Config::default();
        config.global.vrrp_notify_fifo.path = Some(path.to_string_lossy().into_owned());
        let mut notifier = Notifier::start(&config).unwrap();
        let mut reader = std::fs::File::open(&path).unwrap();
        notifier.vrrp(
            &config,
            &Transition {
                instance: "VI_1".into(),
                state: State::Backup,
                priority: 50,
            },
        );
        notifier.lvs("VS [10.0.0.100]:tcp:80 UP\n");
        let mut line = vec![0u8; 64];
        let n = std::io::Read::read(&mut reader, &mut line).unwrap();
        // The vrrp FIFO gets the VRRP line only.
        assert_eq!(&line[..n], b"INSTANCE \"VI_1\" BACKUP 50\n");
        notifier.finish().await;

        let file = dir.path().join("plain");
        std::fs::write(&file, "").unwrap();
        config.global.vrrp_notify_fifo.path = Some(file.to_string_lossy().into_owned());
        assert!(Notifier::start(&config).is_err());
    }

    /// Health changes reach `lvs_notify_fifo` as keepalived's lines and run
    /// the matching scripts: a real server's `notify_down`/`notify_up` as it
    /// goes and returns, `quorum_down`/`quorum_up` only when the quorum
    /// itself changes.
    #[tokio::test]
    async fn health_changes_write_lines_and_run_the_checkers_scripts() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("lvs.fifo");
        let log = dir.path().join("scripts.log");
        let mut config = kconf::Config::default();
        config.global.lvs_notify_fifo.path = Some(fifo.to_string_lossy().into_owned());
        let script = |words: &str| {
            let command = format!("echo {words} >> {}", log.display());
            Some(Script {
                argv: vec!["/bin/sh".into(), "-c".into(), command.clone()],
                command,
                user: None,
                group: None,
            })
        };
        let scripts = HealthScripts {
            quorum_up: script("quorum up"),
            quorum_down: script("quorum down"),
            real_servers: vec![
                (script("rs1 up"), script("rs1 down")),
                (None, script("rs2 down")),
            ],
        };
        let health = |rs1: bool, rs2: bool| ServiceHealth {
            name: "[10.0.0.100]:tcp:80".into(),
            quorum_up: rs1 || rs2,
            real_servers: vec![
                ("[10.0.0.11]:tcp:80".into(), rs1),
                ("[10.0.0.12]:tcp:80".into(), rs2),
            ],
        };
        let mut notifier = Notifier::start(&config).unwrap();
        let mut reader = std::fs::File::open(&fifo).unwrap();
        let steps = [
            (health(true, true), health(false, true)),
            (health(false, true), health(false, false)),
            (health(false, false), health(true, false)),
        ];
        for (before, after) in &steps {
            notifier.health_changes(
                std::slice::from_ref(before),
                std::slice::from_ref(after),
                std::iter::once(&scripts),
            );
        }
        notifier.finish().await;
        let mut lines = String::new();
        std::io::Read::read_to_string(&mut reader, &mut lines).unwrap();
        assert_eq!(
            lines,
            "RS [10.0.0.11]:tcp:80 [10.0.0.100]:tcp:80 DOWN\n\
             RS [10.0.0.12]:tcp:80 [10.0.0.100]:tcp:80 DOWN\n\
             VS [10.0.0.100]:tcp:80 DOWN\n\
             RS [10.0.0.11]:tcp:80 [10.0.0.100]:tcp:80 UP\n\
             VS [10.0.0.100]:tcp:80 UP\n"
        );
        // The scripts run concurrently: compare them unordered.
        let mut ran: Vec<String> = std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        ran.sort();
        assert_eq!(
            ran,
            ["quorum down", "quorum up", "rs1 down", "rs1 up", "rs2 down"]
        );
    }
}
