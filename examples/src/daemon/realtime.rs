//! `vrrp_rt_priority` and `checker_rt_priority`: SCHED_RR at that priority
//! (1-99) for the VRRP thread, and for the runtime threads that run the
//! checkers (tokio's workers and blocking threads), as keepalived does for
//! its VRRP and checker processes. The main thread (the main loop) and the
//! threads it starts, the VRRP one included, keep normal priority unless
//! told otherwise. A priority the kernel refuses (no CAP_SYS_NICE, an RT
//! budget of 0 in the cgroup) is logged and the thread runs on at normal
//! priority.

use anyhow::{Context, Result, bail};
use lvskit_kconf::model as kconf;
use thread_priority::{
    RealtimeThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
    set_thread_priority_and_policy, thread_native_id,
};

/// The `vrrp_rt_priority` of `global_defs`, if set.
pub fn vrrp_rt_priority(global: &kconf::GlobalDefs) -> Result<Option<u8>> {
    rt_priority(global, "vrrp_rt_priority")
}

/// The `checker_rt_priority` of `global_defs`, if set.
pub fn checker_rt_priority(global: &kconf::GlobalDefs) -> Result<Option<u8>> {
    rt_priority(global, "checker_rt_priority")
}

fn rt_priority(global: &kconf::GlobalDefs, keyword: &str) -> Result<Option<u8>> {
    let Some(directive) = global.extra.iter().find(|d| d.keyword == keyword) else {
        return Ok(None);
    };
    let priority: u8 = directive
        .args
        .first()
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("{keyword} needs a priority"))?;
    if !(1..=99).contains(&priority) {
        bail!("{keyword} {priority}: expected 1-99");
    }
    Ok(Some(priority))
}

/// Puts the calling thread under SCHED_RR at `priority`.
pub fn set_current_thread(what: &str, priority: u8) {
    let policy = ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::RoundRobin);
    let set = ThreadPriority::try_from(priority)
        .map_err(|e| format!("{e:?}"))
        .and_then(|p| {
            set_thread_priority_and_policy(thread_native_id(), p, policy)
                .map_err(|e| format!("{e:?}"))
        });
    match set {
        Ok(()) => tracing::info!("{what} runs with realtime priority {priority} (SCHED_RR)"),
        Err(e) => tracing::warn!(
            "{what}: realtime priority {priority} refused ({e}); running at normal priority"
        ),
    }
}
