//! A keepalived.conf parser: keepalived's whole grammar, a typed model with
//! keepalived's defaults, and diagnostics that point at the right line across
//! included files.
//!
//! ```
//! let text = "
//! vrrp_instance VI_1 {
//!     state MASTER
//!     interface eth0
//!     virtual_router_id 51
//!     virtual_ipaddress {
//!         192.0.2.10/24
//!     }
//! }
//! ";
//! let parsed = lvskit_kconf::parse_str(text, &lvskit_kconf::Options::offline());
//! let vi = &parsed.config.vrrp_instances[0];
//! assert_eq!(vi.priority, 255); // keepalived: state MASTER without a priority
//! assert_eq!(parsed.exit_code(), 0); // what `keepalived -t` would exit with
//!
//! // The canonical form parses back to the same model.
//! let again = lvskit_kconf::parse_str(&lvskit_kconf::format(&parsed.config), &lvskit_kconf::Options::offline());
//! assert_eq!(again.config, parsed.config);
//! ```
//!
//! # What it guarantees
//!
//! * **keepalived's reading.** The preprocessor follows keepalived 2.2.7's
//!   `lib/parser.c` (comments, quoting, `include`, `$NAME` definitions,
//!   `@id` lines, `~SEQ`/`~LST` loops, brace splitting), and the keyword
//!   tables are keepalived 2.2.7's own, one per block
//!   ([`keywords`], probed from the binary).
//! * **Same verdict.** [`Parsed::exit_code`] is what `keepalived -t` 2.2.7
//!   exits with: 0 OK, 4 cannot run, 5 errors but would run, 6 script
//!   security. keepalived keeps the highest-ranked class of error it has seen
//!   ([`diag::KeepalivedClass`]); so do we.
//! * **Never panics, bounded.** Any bytes give a result; includes, loops and
//!   definitions are bounded ([`preprocess::Limits`]); include loops and
//!   recursive definitions are errors.
//! * **Round trip.** For every [`Config`] `c` whose strings contain no `"`,
//!   `parse(format(c)) == c`.
//!
//! # Deliberate differences from `keepalived -t` 2.2.7
//!
//! Places where keepalived is wrong and lvskit says something else:
//!
//! 1. A keyword missing a parameter (`priority` alone) makes keepalived's
//!    child process exit and `-t` report 2, a crash code. We report 4
//!    ("cannot run").
//! 2. A missing main configuration file: keepalived logs "Config files
//!    missing" and exits 0. We exit 4.
//! 3. An include loop makes keepalived re-read the files until it runs out
//!    of file descriptors ("Too many open files") and then judge the many
//!    copies (it exits 0 or 5 depending on them); `$A=$A` makes it loop
//!    forever. Both are errors here (include loop: 4, recursive definition:
//!    5).
//! 4. An unknown keyword followed by a block: keepalived reads the block's
//!    contents as part of the parent block and its `}` closes the parent.
//!    We skip the unknown block whole (same exit code, fewer false errors).
//! 5. `${_ENV NAME}` (the process environment) is an lvskit extension that
//!    keepalived 2.2.7 leaves as written.
//! 6. With `net_namespace` set, keepalived -t 2.2.7 does not check the VRRP
//!    and checker parts at all and exits 0 even after an unknown keyword.
//!    lvskit checks everything except the machine (interfaces and scripts
//!    live in that namespace).
//! 7. keepalived ranks "a warning after a fatal error" above the fatal error,
//!    so it exits 5 where 4 would be right (for example a missing interface
//!    reported together with its "WARNING" line). We keep keepalived's
//!    ranking so the codes match; [`diag::Diagnostic::class`] tells them apart.

pub mod build;
pub mod check;
pub mod diag;
pub mod format;
pub mod keywords;
pub mod model;
pub mod preprocess;
pub mod source;
pub mod tree;

use std::path::Path;

pub use diag::{Diagnostic, Severity};
pub use format::format;
pub use model::Config;
pub use preprocess::PreprocessOptions;
pub use source::{FileSystem, MemFs, RealFs, SourceMap};

/// How to parse.
#[derive(Debug, Clone)]
pub struct Options {
    /// Preprocessor settings (config id, limits, random seed).
    pub preprocess: PreprocessOptions,
    /// Check interfaces and scripts on this machine, as `keepalived -t` does.
    pub machine_checks: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            preprocess: PreprocessOptions::default(),
            machine_checks: true,
        }
    }
}

impl Options {
    /// Options for linting without looking at this machine.
    pub fn offline() -> Options {
        Options {
            machine_checks: false,
            ..Options::default()
        }
    }
}

/// The result of parsing: the model (always, even with errors), the
/// diagnostics and the files they point into.
#[derive(Debug)]
pub struct Parsed {
    /// The configuration, with defaults filled in and bad parts skipped as
    /// keepalived skips them.
    pub config: Config,
    /// Every problem found, in order.
    pub diagnostics: Vec<Diagnostic>,
    /// The files read.
    pub sources: SourceMap,
}

/// The configuration has errors keepalived would report.
#[derive(Debug, thiserror::Error)]
#[error("configuration has {} error(s); first: {first}", errors.len())]
pub struct ConfigError {
    /// The first error's message.
    pub first: String,
    /// All errors.
    pub errors: Vec<Diagnostic>,
}

impl Parsed {
    /// What `keepalived -t` would exit with.
    pub fn exit_code(&self) -> i32 {
        diag::exit_code(&self.diagnostics)
    }

    /// The diagnostics rendered with source snippets.
    pub fn render(&self) -> String {
        diag::render(&self.sources, &self.diagnostics)
    }

    /// The diagnostics as JSON for tools.
    pub fn diagnostics_json(&self) -> serde_json::Value {
        diag::to_json(&self.sources, &self.diagnostics)
    }

    /// The configuration if keepalived would accept it without complaint.
    pub fn into_config(self) -> Result<Config, ConfigError> {
        let errors: Vec<Diagnostic> = self
            .diagnostics
            .into_iter()
            .filter(|d| d.class.is_some() || d.aborts)
            .collect();
        match errors.first() {
            None => Ok(self.config),
            Some(f) => Err(ConfigError {
                first: f.message.clone(),
                errors,
            }),
        }
    }
}

fn finish(
    mut pre: preprocess::Preprocessed,
    opts: &Options,
    machine: &dyn check::Machine,
) -> Parsed {
    let mut diagnostics = std::mem::take(&mut pre.diagnostics);
    let arena = tree::arena_for(&pre);
    let nodes = tree::build(&pre, &arena, &mut diagnostics);
    let config = build::build(nodes, &mut diagnostics);
    let namespace = config.extra.iter().find(|d| d.keyword == "net_namespace");
    match namespace {
        // Interfaces and scripts live in that namespace, not here; keepalived
        // -t does not look at them either.
        Some(ns) if opts.machine_checks => diagnostics.push(Diagnostic::new(
            Severity::Note,
            diag::Code::NotSupported,
            None,
            None,
            format!(
                "machine checks skipped: the configuration runs in network namespace {}",
                ns.args.first().map(String::as_str).unwrap_or("?")
            ),
        )),
        _ if opts.machine_checks => check::check(&config, nodes, machine, &mut diagnostics),
        _ => {}
    }
    Parsed {
        config,
        diagnostics,
        sources: pre.sources,
    }
}

/// Parses a configuration file and everything it includes from the host's
/// file system.
pub fn parse_file(path: impl AsRef<Path>, opts: &Options) -> Parsed {
    parse_file_with(&RealFs, &check::Host, path.as_ref(), opts)
}

/// Parses through a given file system and machine.
pub fn parse_file_with(
    fs: &dyn FileSystem,
    machine: &dyn check::Machine,
    path: &Path,
    opts: &Options,
) -> Parsed {
    let pre = preprocess::preprocess(fs, path, &opts.preprocess);
    finish(pre, opts, machine)
}

/// Parses configuration text held in memory (named `keepalived.conf`;
/// includes are looked up on an empty in-memory file system).
pub fn parse_str(text: &str, opts: &Options) -> Parsed {
    let fs = MemFs::new();
    let pre =
        preprocess::preprocess_str(&fs, Path::new("/keepalived.conf"), text, &opts.preprocess);
    finish(pre, opts, &check::Host)
}
