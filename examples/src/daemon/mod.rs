//! `lvskitd`: keepalived.conf read by `lvskit-kconf`, VRRP instances run by
//! `lvskit-vrrp`'s Linux driver, virtual servers checked by
//! `lvskit-healthcheck` and written to the kernel by `lvskit-ipvs`.
//!
//! Structure:
//!
//! - VRRP runs on its own thread with its own runtime ([`vrrp::Vrrp`]):
//!   a slow or panicking checker cannot delay an advertisement. Sync
//!   groups run there too; a reload reaches it as additions, in-place
//!   updates and removals ([`vrrp::Vrrp::reload`]).
//! - Checks, pools and IPVS run on the main runtime ([`lvs::Lvs`]); the
//!   checker task is restarted if it dies.
//! - Each instance's role reaches the main loop from the kernel's address
//!   events ([`vrrp::watch_roles`]: a master holds its VIPs). The main loop
//!   then moves the IPVS sync daemon.
//! - Each instance's state changes reach it from the drivers' transitions
//!   ([`monitor`]); it writes them to the notify FIFOs and runs the notify
//!   scripts ([`notify`]), as it does the checkers' changes.
//! - The status socket answers `status` with JSON.
//! - SIGUSR1, SIGUSR2, SIGRTMAX-1 (and clear) and SIGRTMIN+2 write
//!   keepalived's dumps ([`dump`]).
//! - systemd hears READY, RELOADING and STOPPING ([`sdnotify`]).

pub mod addresses;
pub mod checks;
pub mod dump;
pub mod lvs;
pub mod metrics;
pub mod monitor;
pub mod notify;
pub mod pidfile;
pub mod realtime;
pub mod sdnotify;
pub mod vrrp;
pub mod vsgroup;

use anyhow::{Context, Result, bail};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::signal::unix::{SignalKind, signal};

/// What to run and how (keepalived's command line, mapped).
#[derive(Debug, Clone)]
pub struct Settings {
    /// `-f`: the configuration file.
    pub config_file: PathBuf,
    /// `-i`: the config id for `@id` lines.
    pub config_id: Option<String>,
    /// Run VRRP (false with `-C`).
    pub vrrp: bool,
    /// Run the checkers and IPVS (false with `-P`).
    pub check: bool,
    /// `-I`: keep the IPVS services on exit.
    pub keep_ipvs: bool,
    /// `-V`: keep the VIPs on exit (priority 0 is still sent).
    pub keep_vips: bool,
    /// `-p`, `-r`, `-c`: pid files (main, VRRP, checkers; one process here).
    pub pid_files: Vec<PathBuf>,
    /// The status socket.
    pub status_socket: PathBuf,
    /// Where to serve Prometheus `/metrics`, if anywhere.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// Parses the configuration as `keepalived -t` would; returns the parse
/// and the rendered diagnostics.
pub fn load(path: &Path, config_id: Option<&str>) -> lvskit_kconf::Parsed {
    let mut options = lvskit_kconf::Options::default();
    options.preprocess.config_id = config_id.map(str::to_owned);
    lvskit_kconf::parse_file(path, &options)
}

/// `-t`: checks the configuration, prints the diagnostics, and returns
/// keepalived's exit code (0 OK, 4 cannot run, 5 errors, 6 script security).
pub fn config_test(path: &Path, config_id: Option<&str>) -> i32 {
    let parsed = load(path, config_id);
    let rendered = parsed.render();
    if !rendered.trim().is_empty() {
        eprintln!("{rendered}");
    }
    parsed.exit_code()
}

/// State the main loop keeps for the status query.
#[derive(Debug, Default)]
struct VrrpStatus {
    /// Instance → (role, since when, Unix seconds).
    instances: BTreeMap<String, (String, String)>,
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(settings: Settings) -> Result<()> {
    let parsed = load(&settings.config_file, settings.config_id.as_deref());
    let rendered = parsed.render();
    if !rendered.trim().is_empty() {
        eprintln!("{rendered}");
    }
    if parsed.exit_code() == 4 {
        bail!(
            "configuration {} cannot be used",
            settings.config_file.display()
        );
    }
    let mut config = parsed.config;
    let pid_files = pidfile::PidFiles::create(&settings.pid_files)?;

    // Signals first, so that none is lost during start-up.
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut hangup = signal(SignalKind::hangup())?;
    let mut dump_data = signal(SignalKind::from_raw(dump::Dump::Data.signal()))?;
    let mut dump_stats = signal(SignalKind::from_raw(dump::Dump::Stats.signal()))?;
    let mut dump_stats_clear = signal(SignalKind::from_raw(dump::Dump::StatsClear.signal()))?;
    let mut dump_json = signal(SignalKind::from_raw(dump::Dump::Json.signal()))?;

    let _ = std::fs::remove_file(&settings.status_socket);
    let listener = UnixListener::bind(&settings.status_socket)
        .with_context(|| format!("status socket {}", settings.status_socket.display()))?;
    let metrics_listener = match settings.metrics_listen {
        Some(address) => Some(
            tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("metrics on {address}"))?,
        ),
        None => None,
    };
    let mut lvs = if settings.check {
        Some(
            lvs::Lvs::start(
                lvs::plan(&config)?,
                lvs::sync_settings(&config)?,
                &lvs::CheckState::new(),
            )
            .await?,
        )
    } else {
        None
    };

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (roles_tx, mut roles) = tokio::sync::mpsc::unbounded_channel();
    let (monitor, mut transitions) = monitor::VrrpMonitor::new();
    let mut notifier = notify::Notifier::start(&config)?;
    let mut vrrp = if settings.vrrp {
        Some(
            vrrp::Vrrp::start(
                vrrp::plan(&config)?,
                stop_rx,
                monitor.clone(),
                settings.keep_vips,
                roles_tx,
                realtime::vrrp_rt_priority(&config.global)?,
            )
            .await?,
        )
    } else {
        None
    };
    let health =
        tokio::sync::watch::Sender::new(lvs.as_ref().map(lvs::Lvs::health).unwrap_or_default());
    let metrics_server = metrics_listener.map(|listener| {
        let sources = metrics::Sources {
            vrrp: monitor.clone(),
            health: health.subscribe(),
            check_durations: lvs
                .as_ref()
                .map(lvs::Lvs::check_durations)
                .unwrap_or_default(),
        };
        tokio::spawn(metrics::serve(listener, sources))
    });
    tracing::info!("Startup complete (lvskitd {})", env!("CARGO_PKG_VERSION"));
    sdnotify::notify(sdnotify::Message::Ready);

    let mut status = VrrpStatus::default();
    loop {
        tokio::select! {
            _ = terminate.recv() => { tracing::info!("Stopping"); break; }
            _ = interrupt.recv() => { tracing::info!("Stopping"); break; }
            _ = hangup.recv() => {
                tracing::info!("Reloading");
                sdnotify::notify(sdnotify::Message::Reloading);
                match reload(&settings, &config, lvs.as_mut(), vrrp.as_mut()).await {
                    Ok(Some(new)) => config = new,
                    Ok(None) => {}
                    Err(e) => tracing::error!("reload failed, keeping the running configuration: {e:#}"),
                }
                if let Some(l) = lvs.as_ref() {
                    health.send_replace(l.health());
                }
                sdnotify::notify(sdnotify::Message::Ready);
            }
            _ = dump_data.recv() => write_dump(dump::Dump::Data, &config, &monitor, lvs.as_ref()),
            _ = dump_stats.recv() => write_dump(dump::Dump::Stats, &config, &monitor, lvs.as_ref()),
            _ = dump_stats_clear.recv() => write_dump(dump::Dump::StatsClear, &config, &monitor, lvs.as_ref()),
            _ = dump_json.recv() => write_dump(dump::Dump::Json, &config, &monitor, lvs.as_ref()),
            event = async { match lvs.as_mut() { Some(l) => Some(l.next_event().await), None => std::future::pending().await } } => {
                if let (Some(l), Some(event)) = (lvs.as_mut(), event) {
                    let before = l.health();
                    if let Err(e) = l.handle_event(event).await {
                        tracing::error!("{e:#}");
                    }
                    let after = l.health();
                    notifier.health_changes(&before, &after, l.health_scripts());
                    health.send_replace(after);
                }
            }
            Some((instance, master)) = roles.recv() => {
                let state = if master { "MASTER" } else { "BACKUP" };
                tracing::debug!("({instance}) holds its VIPs: {master}");
                status.instances.insert(instance.clone(), (state.to_owned(), unix_time_now()));
                if let Some(l) = lvs.as_mut() {
                    l.vrrp_state(&instance, state).await;
                }
            }
            Some(transition) = transitions.recv() => notifier.vrrp(&config, &transition),
            group = async { match vrrp.as_mut() { Some(v) => v.next_group_transition().await, None => std::future::pending().await } } => {
                notifier.group(&config, &group.group, group.event);
            }
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                if let Err(e) = serve_client(stream, &status, &monitor, lvs.as_ref(), &config).await {
                    tracing::debug!("status client: {e:#}");
                }
            }
        }
    }

    sdnotify::notify(sdnotify::Message::Stopping);
    let _ = stop_tx.send(true);
    // The groups' STOP, sent as the driver shut down.
    let mut stopped_groups = Vec::new();
    if let Some(vrrp) = vrrp.take() {
        match vrrp.join().await {
            Ok(groups) => stopped_groups = groups,
            Err(e) => tracing::error!("VRRP: {e:#}"),
        }
    }
    if let Some(server) = metrics_server {
        server.abort();
    }
    // The drivers' last snapshots say STOP: notify it, within a bound.
    drop(monitor);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        while let Some(transition) = transitions.recv().await {
            notifier.vrrp(&config, &transition);
        }
    })
    .await;
    for group in stopped_groups {
        notifier.group(&config, &group.group, group.event);
    }
    if let Some(lvs) = lvs {
        lvs.shutdown(settings.keep_ipvs).await?;
    }
    notifier.finish().await;
    let _ = std::fs::remove_file(&settings.status_socket);
    drop(pid_files);
    tracing::info!("Stopped");
    Ok(())
}

/// Writes one of keepalived's dumps (see [`dump`]) with the counters
/// since the last clear; a failure is logged.
fn write_dump(
    which: dump::Dump,
    config: &lvskit_kconf::Config,
    monitor: &monitor::VrrpMonitor,
    lvs: Option<&lvs::Lvs>,
) {
    let instances = monitor.instances_since_clear();
    let contents = match which {
        dump::Dump::Data => dump::data_text(config, &instances, lvs.map(lvs::Lvs::status).as_ref()),
        dump::Dump::Stats => dump::stats_text(&instances),
        dump::Dump::StatsClear => {
            monitor.clear_statistics();
            dump::stats_text(&instances)
        }
        dump::Dump::Json => format!("{:#}\n", dump::json(config, &instances)),
    };
    let path = dump::dump_dir().join(which.file_name());
    match dump::write_replacing(&path, contents.as_bytes()) {
        Ok(()) => tracing::info!("Wrote {}", path.display()),
        Err(e) => tracing::error!("{e:#}"),
    }
}

fn unix_time_now() -> String {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:03}", since.as_secs(), since.subsec_millis())
}

/// One status-socket client: `status` gets the JSON.
async fn serve_client(
    stream: UnixStream,
    status: &VrrpStatus,
    monitor: &monitor::VrrpMonitor,
    lvs: Option<&lvs::Lvs>,
    config: &lvskit_kconf::Config,
) -> Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read);
    tokio::time::timeout(
        std::time::Duration::from_secs(2),
        reader.read_line(&mut line),
    )
    .await
    .context("status client too slow")??;
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["status"] => {
            let live = monitor.instances();
            let instances: Vec<serde_json::Value> = config
                .vrrp_instances
                .iter()
                .map(|vi| {
                    let (role, since) = status
                        .instances
                        .get(&vi.name)
                        .cloned()
                        .unwrap_or(("INIT".into(), String::new()));
                    let snapshot = live.iter().find(|i| *i.name == *vi.name);
                    let group = config
                        .vrrp_sync_groups
                        .iter()
                        .find(|g| g.group.contains(&vi.name))
                        .map(|g| g.name.as_str());
                    json!({
                        "name": vi.name,
                        "sync_group": group,
                        "interface": vi.interface,
                        "virtual_router_id": vi.virtual_router_id,
                        "priority": vi.priority,
                        "role": role,
                        "role_from": "VIPs on the interface",
                        "since": since,
                        "state": snapshot.map(|i| i.state.keepalived_name()),
                        "effective_priority": snapshot.map(|i| i.effective_priority),
                        "master_address": snapshot.and_then(|i| i.master_address).map(|a| a.to_string()),
                        "adverts_sent": snapshot.map(|i| i.statistics.adverts_sent),
                        "adverts_received": snapshot.map(|i| i.statistics.adverts_received),
                        "drops": snapshot.map(|i| i.statistics.dropped_total()),
                    })
                })
                .collect();
            let body = json!({
                "pid": std::process::id(),
                "vrrp_instances": instances,
                "virtual_servers": lvs.map(lvs::Lvs::status),
            });
            write.write_all(format!("{body}\n").as_bytes()).await?;
            Ok(())
        }
        _ => {
            write.write_all(b"unknown request\n").await?;
            Ok(())
        }
    }
}

/// SIGHUP: parse again; apply the VRRP and virtual-server parts by
/// difference. Returns the new configuration if it was taken.
async fn reload(
    settings: &Settings,
    running: &lvskit_kconf::Config,
    lvs: Option<&mut lvs::Lvs>,
    vrrp: Option<&mut vrrp::Vrrp>,
) -> Result<Option<lvskit_kconf::Config>> {
    let parsed = load(&settings.config_file, settings.config_id.as_deref());
    if parsed.exit_code() == 4 {
        bail!("new configuration cannot be used:\n{}", parsed.render());
    }
    let config = parsed.config;
    if let Some(vrrp) = vrrp
        && (config.vrrp_instances != running.vrrp_instances
            || config.vrrp_sync_groups != running.vrrp_sync_groups)
    {
        // Applied change by change; one that fails is logged and the rest
        // still apply.
        if let Err(e) = vrrp.reload(&config).await {
            tracing::error!("VRRP reload: {e:#}");
        }
    }
    if let Some(lvs) = lvs {
        lvs.reload(lvs::plan(&config)?, lvs::sync_settings(&config)?)
            .await?;
    }
    tracing::info!("Reload finished");
    Ok(Some(config))
}

/// `lvskitd --status`: asks the daemon and returns its JSON.
pub fn query_status(socket: &Path) -> Result<String> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::os::unix::net::UnixStream::connect(socket)
        .with_context(|| format!("is lvskitd running? cannot connect to {}", socket.display()))?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    stream.write_all(b"status\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}
