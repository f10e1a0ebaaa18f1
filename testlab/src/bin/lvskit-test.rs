//! `lvskit-test`: the one test command of the workspace.
//!
//! ```text
//! cargo run -p lvskit-testlab --bin lvskit-test [-- --tier N ...]
//! ```
//!
//! As root it first installs missing Debian packages (`apt-get`), then runs
//! the three tiers (see the `lvskit_testlab` docs): tier 1 everywhere, tier 2
//! (`netns_`) as root, tier 3 (`vm_`) as root with qemu. A tier that cannot
//! run says why and counts its tests as skipped; with `CI=true` a skipped
//! tier fails the run. The last line is `N passed, N failed, N skipped`.

use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tier {
    Unit,
    Netns,
    Vm,
}

impl Tier {
    const ALL: [Tier; 3] = [Tier::Unit, Tier::Netns, Tier::Vm];

    fn number(self) -> u8 {
        match self {
            Tier::Unit => 1,
            Tier::Netns => 2,
            Tier::Vm => 3,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Tier::Unit => "unit and property",
            Tier::Netns => "network namespaces",
            Tier::Vm => "stock-kernel VM",
        }
    }

    /// Arguments after `--` for libtest.
    fn filter(self) -> &'static [&'static str] {
        match self {
            Tier::Unit => &["--skip", "netns_", "--skip", "vm_"],
            Tier::Netns => &["netns_"],
            Tier::Vm => &["vm_"],
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    passed: u64,
    failed: u64,
    skipped: u64,
    note: String,
    failures: Vec<String>,
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lvskit-test: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<ExitCode> {
    let mut tiers = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--tier" => {
                let n = args.next().context("--tier needs 1, 2 or 3")?;
                let tier = Tier::ALL
                    .into_iter()
                    .find(|t| t.number().to_string() == n)
                    .with_context(|| format!("no tier {n}"))?;
                tiers.push(tier);
            }
            "-h" | "--help" => {
                println!(
                    "usage: lvskit-test [--tier 1|2|3]...\nRuns all tiers unless --tier is given."
                );
                return Ok(ExitCode::SUCCESS);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    if tiers.is_empty() {
        tiers = Tier::ALL.to_vec();
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let root = lvskit_testlab::is_root();
    let workspace = workspace_root()?;
    std::env::set_current_dir(&workspace)?;

    if root {
        lvskit_testlab::packages::ensure_installed(lvskit_testlab::packages::LAB)?;
    } else {
        println!(
            "lvskit-test: not root: packages are not installed, tiers 2 and 3 will be skipped"
        );
    }

    let mut results = Vec::new();
    for tier in tiers {
        let started = Instant::now();
        let counts = match cannot_run(tier, root) {
            Some(reason) => skip(tier, &reason)?,
            None => run_tier(tier)?,
        };
        println!(
            "lvskit-test: tier {} finished in {:.0} s",
            tier.number(),
            started.elapsed().as_secs_f64()
        );
        results.push((tier, counts));
    }

    println!("\n== lvskit-test summary ==");
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let mut skipped_tier = false;
    for (tier, c) in &results {
        println!(
            "tier {} ({}): {} passed, {} failed, {} skipped{}",
            tier.number(),
            tier.label(),
            c.passed,
            c.failed,
            c.skipped,
            if c.note.is_empty() {
                String::new()
            } else {
                format!(" ({})", c.note)
            }
        );
        for failure in &c.failures {
            println!("    FAILED {failure}");
        }
        passed += c.passed;
        failed += c.failed;
        skipped += c.skipped;
        skipped_tier |= c.note.starts_with("skipped");
    }
    if ci && skipped_tier {
        println!("CI=true: a skipped tier counts as a failure");
    }
    println!("{passed} passed, {failed} failed, {skipped} skipped");
    Ok(if failed > 0 || (ci && skipped_tier) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

fn workspace_root() -> Result<PathBuf> {
    let out = Command::new(cargo())
        .args(["locate-project", "--workspace", "--message-format", "plain"])
        .stderr(Stdio::inherit())
        .output()
        .context("run cargo locate-project")?;
    if !out.status.success() {
        bail!("not inside the lvskit workspace");
    }
    let manifest = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    manifest
        .parent()
        .map(Path::to_path_buf)
        .context("manifest has no parent")
}

/// Why `tier` cannot run here, if it cannot.
fn cannot_run(tier: Tier, root: bool) -> Option<String> {
    match tier {
        Tier::Unit => None,
        Tier::Netns | Tier::Vm if !root => Some("not root".into()),
        Tier::Netns => ["ip", "nft"]
            .into_iter()
            .find(|tool| !on_path(tool))
            .map(|tool| format!("`{tool}` is not installed")),
        Tier::Vm => (!on_path("qemu-system-x86_64"))
            .then(|| "`qemu-system-x86_64` is not installed".to_owned()),
    }
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
        || Path::new("/usr/sbin").join(tool).is_file()
}

/// Counts the tests of a tier that cannot run, and says why.
fn skip(tier: Tier, reason: &str) -> Result<Counts> {
    println!(
        "lvskit-test: tier {} ({}) skipped: {reason}",
        tier.number(),
        tier.label()
    );
    let mut args = vec!["test", "--workspace", "--", "--list"];
    args.extend(tier.filter());
    let out = Command::new(cargo())
        .args(&args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("list tests")?;
    let listed = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.ends_with(": test"))
        .count();
    Ok(Counts {
        skipped: u64::try_from(listed).unwrap_or(u64::MAX),
        note: format!("skipped: {reason}"),
        ..Counts::default()
    })
}

/// Runs one tier, echoing cargo's output and adding up libtest's
/// `test result:` lines.
fn run_tier(tier: Tier) -> Result<Counts> {
    let mut args = vec!["test", "--workspace", "--no-fail-fast", "--"];
    args.extend(tier.filter());
    println!(
        "\n== lvskit-test: tier {} ({}): cargo {} ==",
        tier.number(),
        tier.label(),
        args.join(" ")
    );
    let mut child = Command::new(cargo())
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("run cargo test")?;
    let mut counts = Counts::default();
    let stdout = child.stdout.take().context("cargo stdout")?;
    for line in BufReader::new(stdout).lines() {
        let line = line.context("read cargo output")?;
        println!("{line}");
        parse_line(&line, &mut counts);
    }
    let status = child.wait().context("wait for cargo")?;
    if !status.success() && counts.failed == 0 {
        counts.failed += 1;
        counts.note =
            format!("cargo test exited with {status} without a failed test: build error?");
        counts.failures.push("(cargo test itself)".into());
    }
    Ok(counts)
}

fn parse_line(line: &str, counts: &mut Counts) {
    if let Some(rest) = line.strip_prefix("test result: ") {
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(kind), Some(n)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = n.parse::<u64>() else { continue };
            match kind {
                "passed" => counts.passed += n,
                "failed" => counts.failed += n,
                "ignored" => counts.skipped += n,
                _ => {}
            }
        }
    } else if let Some(name) = line
        .strip_prefix("test ")
        .and_then(|l| l.strip_suffix(" ... FAILED"))
    {
        counts.failures.push(name.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtest_result_lines_are_added_up() {
        let mut c = Counts::default();
        parse_line("test foo::bar ... FAILED", &mut c);
        parse_line(
            "test result: FAILED. 3 passed; 1 failed; 2 ignored; 0 measured; 7 filtered out; finished in 0.01s",
            &mut c,
        );
        parse_line(
            "test result: ok. 10 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.00s",
            &mut c,
        );
        parse_line("test ok_test ... ok", &mut c);
        assert_eq!((c.passed, c.failed, c.skipped), (13, 1, 2));
        assert_eq!(c.failures, vec!["foo::bar".to_owned()]);
    }

    #[test]
    fn tiers_filter_by_name_prefix() {
        assert_eq!(Tier::Unit.filter(), ["--skip", "netns_", "--skip", "vm_"]);
        assert_eq!(Tier::Netns.filter(), ["netns_"]);
        assert_eq!(Tier::Vm.filter(), ["vm_"]);
    }
}
