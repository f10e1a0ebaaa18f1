//! The async runner: drives a [`Scheduler`] on tokio, runs each probe as a
//! task, and sends the events on a channel.
//!
//! The runner reads time only through `tokio::time`, so a test can run it
//! under `tokio::time::pause()` and observe exact timings.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::checker::Outcome;
use crate::scheduler::{CheckerId, Event, Scheduler};

/// Lateness statistics: how long after its due time each probe started.
#[derive(Debug, Default)]
pub struct Lateness {
    /// Count of probes per millisecond of lateness; the last bucket holds
    /// everything at or above its index.
    pub buckets: Vec<u64>,
    /// Probes started.
    pub probes: u64,
    /// Largest lateness seen.
    pub max: Duration,
}

const LATENESS_BUCKETS: usize = 10_001;

impl Lateness {
    /// Records one probe that started `late` after its due time.
    pub fn record(&mut self, late: Duration) {
        if self.buckets.is_empty() {
            self.buckets = vec![0; LATENESS_BUCKETS];
        }
        let ms = (late.as_millis() as usize).min(LATENESS_BUCKETS - 1);
        self.buckets[ms] += 1;
        self.probes += 1;
        self.max = self.max.max(late);
    }

    /// The lateness below which a fraction `q` (0..=1) of the probes
    /// started, at millisecond resolution.
    pub fn quantile(&self, q: f64) -> Duration {
        let target = ((self.probes as f64) * q).ceil() as u64;
        let mut seen = 0;
        for (ms, count) in self.buckets.iter().enumerate() {
            seen += count;
            if seen >= target.max(1) {
                return Duration::from_millis(ms as u64);
            }
        }
        self.max
    }

    /// Forgets everything recorded so far.
    pub fn reset(&mut self) {
        *self = Lateness::default();
    }
}

/// Runs `scheduler` until the event receiver is dropped. Probes run as
/// tokio tasks, at most the scheduler's `max_in_flight` at once.
pub async fn run(
    mut scheduler: Scheduler,
    events: mpsc::Sender<Event>,
    lateness: Arc<Mutex<Lateness>>,
) {
    let mut probes: JoinSet<(CheckerId, Outcome)> = JoinSet::new();
    // One timer, re-armed only when the earliest deadline changes.
    let sleep = tokio::time::sleep(Duration::from_secs(3600));
    tokio::pin!(sleep);
    let mut armed: Option<std::time::Instant> = None;
    loop {
        let now = tokio::time::Instant::now().into_std();
        while let Some(request) = scheduler.poll_probe(now) {
            if let Ok(mut l) = lateness.lock() {
                l.record(now.saturating_duration_since(request.due));
            }
            let spec = request.spec;
            let id = request.checker;
            probes.spawn(async move { (id, crate::probe::run(&spec).await) });
        }
        while let Some(event) = scheduler.poll_event() {
            if events.send(event).await.is_err() {
                return;
            }
        }
        let deadline = scheduler.poll_timeout();
        if deadline != armed {
            if let Some(at) = deadline {
                sleep.as_mut().reset(tokio::time::Instant::from_std(at));
            }
            armed = deadline;
        }
        tokio::select! {
            () = &mut sleep, if armed.is_some() => armed = None,
            joined = probes.join_next(), if !probes.is_empty() => {
                let now = tokio::time::Instant::now().into_std();
                let mut joined = joined;
                while let Some(result) = joined {
                    match result {
                        Ok((id, outcome)) => scheduler.handle_result(now, id, outcome),
                        Err(e) => {
                            // Probe tasks do not panic on peer input; if one
                            // did, stop loudly rather than leave its checker
                            // silently unscheduled.
                            tracing::error!("probe task failed: {e}");
                            return;
                        }
                    }
                    joined = probes.try_join_next();
                }
            }
            () = events.closed() => return,
        }
    }
}
