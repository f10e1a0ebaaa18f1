//! `lvskitd`: a drop-in for keepalived's daemon, built on the lvskit
//! libraries. It takes keepalived's command line and keepalived.conf.
//!
//! ```text
//! lvskitd -n -l -D -f /etc/keepalived/keepalived.conf
//! lvskitd -t -f keepalived.conf          # check the configuration
//! lvskitd --status                       # the running daemon's state, as JSON
//! ```
//!
//! Differences from keepalived: one process (the pid files of `-p`, `-r`
//! and `-c` all name it), it never forks (`-n` is implied), and it logs to
//! stderr (for journald) rather than to syslog.

use anyhow::{Result, bail};
use clap::Parser;
use lvskit::daemon::{self, Settings};
use std::path::PathBuf;

/// keepalived's command line.
#[derive(Debug, Parser)]
#[command(
    name = "lvskitd",
    about = "keepalived-compatible VRRP + IPVS daemon",
    disable_version_flag = true
)]
struct Args {
    /// Use the specified configuration file.
    #[arg(
        short = 'f',
        long = "use-file",
        default_value = "/etc/keepalived/keepalived.conf"
    )]
    use_file: PathBuf,
    /// Only run the VRRP subsystem.
    #[arg(short = 'P', long = "vrrp")]
    vrrp_only: bool,
    /// Only run the health-checker subsystem.
    #[arg(short = 'C', long = "check")]
    check_only: bool,
    /// Skip configuration lines beginning with '@' that don't match this id.
    #[arg(short = 'i', long = "config-id")]
    config_id: Option<String>,
    /// Check the configuration and exit (keepalived's exit codes).
    #[arg(short = 't', long = "config-test", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    config_test: Option<String>,
    /// Don't fork (lvskitd never forks; accepted for compatibility).
    #[arg(short = 'n', long = "dont-fork")]
    dont_fork: bool,
    /// Log to the console (lvskitd always logs to stderr).
    #[arg(short = 'l', long = "log-console")]
    log_console: bool,
    /// Detailed log messages.
    #[arg(short = 'D', long = "log-detail")]
    log_detail: bool,
    /// Syslog facility: 0-7 or local0-7 (LOG_LOCALn), user or daemon
    /// (lvskitd logs to stderr; the value is checked only).
    #[arg(short = 'S', long = "log-facility", value_parser = log_facility)]
    log_facility: Option<String>,
    /// Don't log via syslog.
    #[arg(short = 'G', long = "no-syslog")]
    no_syslog: bool,
    /// Pid file of the parent process.
    #[arg(short = 'p', long = "pid")]
    pid: Option<PathBuf>,
    /// Pid file of the VRRP process.
    #[arg(short = 'r', long = "vrrp_pid")]
    vrrp_pid: Option<PathBuf>,
    /// Pid file of the checkers process.
    #[arg(short = 'c', long = "checkers_pid")]
    checkers_pid: Option<PathBuf>,
    /// Don't remove the IPVS topology on stop.
    #[arg(short = 'I', long = "dont-release-ipvs")]
    dont_release_ipvs: bool,
    /// Don't remove VRRP VIPs on stop.
    #[arg(short = 'V', long = "dont-release-vrrp")]
    dont_release_vrrp: bool,
    /// Print the version and exit.
    #[arg(short = 'v', long = "version")]
    version: bool,
    /// Print the signal number of STOP, RELOAD, DATA, STATS, STATS_CLEAR or
    /// JSON and exit.
    #[arg(long, value_name = "SIGFUNC")]
    signum: Option<String>,
    /// Print the running daemon's state as JSON and exit.
    #[arg(long)]
    status: bool,
    /// The status socket.
    #[arg(long, default_value = "/run/lvskitd.sock")]
    status_socket: PathBuf,
    /// Serve Prometheus metrics at http://ADDR:PORT/metrics.
    #[arg(long, value_name = "ADDR:PORT")]
    metrics_listen: Option<std::net::SocketAddr>,
}

/// keepalived's `-S` values: `0`-`7`, `local0`-`local7`, `user`, `daemon`.
fn log_facility(value: &str) -> Result<String, String> {
    let local = value.strip_prefix("local").unwrap_or(value);
    let ok = matches!(value, "user" | "daemon")
        || (local.len() == 1 && matches!(local.as_bytes()[0], b'0'..=b'7'));
    if ok {
        Ok(value.to_owned())
    } else {
        Err("expected 0-7, local0-local7, user or daemon".to_owned())
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.version {
        println!(
            "lvskitd {} (keepalived 2.2.7 command line and configuration)",
            env!("CARGO_PKG_VERSION")
        );
        return Ok(());
    }
    if let Some(name) = &args.signum {
        match daemon::dump::signum(name) {
            Ok(number) => {
                println!("{number}");
                return Ok(());
            }
            Err(why) => bail!(why),
        }
    }
    if args.status {
        print!("{}", daemon::query_status(&args.status_socket)?);
        return Ok(());
    }
    if let Some(log_file) = &args.config_test {
        if !log_file.is_empty() {
            bail!("-t=LOG_FILE is not supported: lvskitd writes the diagnostics to stderr");
        }
        std::process::exit(daemon::config_test(
            &args.use_file,
            args.config_id.as_deref(),
        ));
    }
    if args.vrrp_only && args.check_only {
        bail!("-P and -C together leave nothing to run");
    }
    let filter = if args.log_detail {
        "info,lvskit=debug,lvskit_vrrp=debug"
    } else {
        "info"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| filter.into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let _ = (
        args.dont_fork,
        args.log_console,
        args.no_syslog,
        args.log_facility,
    );
    let settings = Settings {
        config_file: args.use_file,
        config_id: args.config_id,
        vrrp: !args.check_only,
        check: !args.vrrp_only,
        keep_ipvs: args.dont_release_ipvs,
        keep_vips: args.dont_release_vrrp,
        pid_files: [args.pid, args.vrrp_pid, args.checkers_pid]
            .into_iter()
            .flatten()
            .collect(),
        status_socket: args.status_socket,
        metrics_listen: args.metrics_listen,
    };
    // `checker_rt_priority` is read before the runtime exists, so that
    // each of its threads (they run the checkers) starts with it; the
    // daemon reads the configuration again as it starts.
    let checker_priority = if settings.check {
        let parsed = daemon::load(&settings.config_file, settings.config_id.as_deref());
        daemon::realtime::checker_rt_priority(&parsed.config.global)?
    } else {
        None
    };
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.worker_threads(2).enable_all();
    if let Some(priority) = checker_priority {
        runtime.on_thread_start(move || {
            daemon::realtime::set_current_thread("checker thread", priority);
        });
    }
    let runtime = runtime.build()?;
    runtime.block_on(daemon::run(settings))
}
