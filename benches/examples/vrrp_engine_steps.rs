//! Repeats one VRRP engine step N times, for instruction counts that do not
//! depend on machine load:
//!
//! ```text
//! cargo build --release -p lvskit-benches --example vrrp_engine_steps
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/vrrp_engine_steps master 1000
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/vrrp_engine_steps master 11000
//! ```
//!
//! The difference of the two totals ("Collected"), divided by 10,000, is
//! the cost of one step in instructions. Steps: `master` (a master hears a
//! lower priority and re-advertises), `master-changing` (the same with
//! adverts that differ from one step to the next, so that no step reuses
//! the previous verdict) and `backup` (a backup follows its master).

use anyhow::{Context, Result, bail};
use lvskit_benches::vrrp::{EngineStep, Step};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let step = match args.next().as_deref() {
        Some("master") => Step::MasterReadvertises,
        Some("master-changing") => Step::MasterReadvertisesChanging,
        Some("backup") => Step::BackupFollowsMaster,
        other => {
            bail!("usage: vrrp_engine_steps master|master-changing|backup COUNT (got {other:?})")
        }
    };
    let count: u64 = args
        .next()
        .context("usage: vrrp_engine_steps master|master-changing|backup COUNT")?
        .parse()
        .context("COUNT")?;
    let mut engine = EngineStep::new(step);
    for _ in 0..count {
        engine.step();
    }
    println!("{count} steps, state {}", engine.state());
    Ok(())
}
