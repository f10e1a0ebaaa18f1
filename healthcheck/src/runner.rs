//! The async runner: drives a [`Scheduler`] on tokio, runs each probe as a
//! task, and sends the events on a channel.
//!
//! The runner reads time only through `tokio::time`, so a test can run it
//! under `tokio::time::pause()` and observe exact timings.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinSet};

use crate::checker::Outcome;
use crate::error::ProbeError;
use crate::scheduler::{CheckerId, Event, Scheduler};

/// Lateness statistics: how long after its due time each probe started.
///
/// A probe is due `delay_loop` (or `delay_before_retry`) after the end of
/// the previous one, as in keepalived; its lateness is the time from that
/// due instant to the moment the probe task begins (the connect itself is
/// not counted).
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

    /// Adds the probes recorded in `other`.
    pub fn merge(&mut self, other: &Lateness) {
        if other.buckets.is_empty() {
            return;
        }
        if self.buckets.is_empty() {
            self.buckets = vec![0; LATENESS_BUCKETS];
        }
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            *mine += theirs;
        }
        self.probes += other.probes;
        self.max = self.max.max(other.max);
    }

    /// Forgets everything recorded so far.
    pub fn reset(&mut self) {
        *self = Lateness::default();
    }
}

/// What a probe task hands back to the runner.
struct Finished {
    checker: CheckerId,
    /// When the probe ended: the next one is timed from here.
    ended: tokio::time::Instant,
    /// How long the probe ran.
    duration: Duration,
    outcome: Outcome,
}

/// Runs `scheduler` until the event receiver is dropped. Probes run as
/// tokio tasks, at most the scheduler's `max_in_flight` at once. Each probe
/// is timed from its start to its outcome (see
/// [`Scheduler::report_probes`](crate::Scheduler::report_probes)).
///
/// Each probe task stamps its own start and end. The end stamp, not the
/// moment the runner collects the result, is what the next probe is timed
/// from: collecting several results in one wake-up must not give those
/// checkers one shared due time, or they would fire together from then on
/// and their bunch would grow every loop.
///
/// A probe task that panics (probes do not panic on peer input, but the
/// runtime under them can: tokio's blocking pool panics when the OS refuses
/// it a thread) fails its probe with [`ProbeError::Panicked`]; its checker
/// stays scheduled and the other checkers run on.
pub async fn run(
    mut scheduler: Scheduler,
    events: mpsc::Sender<Event>,
    lateness: Arc<Mutex<Lateness>>,
) {
    let mut probes: JoinSet<Finished> = JoinSet::new();
    // Which checker each running task probes, and since when: a panicked
    // task returns no `Finished`.
    let mut running: HashMap<tokio::task::Id, (CheckerId, tokio::time::Instant)> = HashMap::new();
    // One timer, re-armed only when the earliest deadline changes.
    let sleep = tokio::time::sleep(Duration::from_secs(3600));
    tokio::pin!(sleep);
    let mut armed: Option<std::time::Instant> = None;
    loop {
        let now = tokio::time::Instant::now().into_std();
        while let Some(request) = scheduler.poll_probe(now) {
            let due = tokio::time::Instant::from_std(request.due);
            let lateness = lateness.clone();
            let checker = request.checker;
            let task = probes.spawn(async move {
                let started = tokio::time::Instant::now();
                if let Ok(mut l) = lateness.lock() {
                    l.record(started.saturating_duration_since(due));
                }
                let outcome = crate::probe::run(&request.spec).await;
                let ended = tokio::time::Instant::now();
                Finished {
                    checker: request.checker,
                    ended,
                    duration: ended - started,
                    outcome,
                }
            });
            running.insert(task.id(), (checker, tokio::time::Instant::now()));
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
            joined = probes.join_next_with_id(), if !probes.is_empty() => {
                let mut joined = joined;
                while let Some(result) = joined {
                    let done = match result {
                        Ok((id, done)) => {
                            running.remove(&id);
                            done
                        }
                        Err(e) => match panicked(e, &mut running) {
                            Some(done) => done,
                            None => return,
                        },
                    };
                    scheduler.handle_timed_result(
                        done.ended.into_std(),
                        done.checker,
                        done.outcome,
                        done.duration,
                    );
                    joined = probes.try_join_next_with_id();
                }
            }
            () = events.closed() => return,
        }
    }
}

/// The failed probe of a task that panicked; `None` (logged: the runner
/// then stops) for a task that was cancelled, which only happens as the
/// runtime shuts down.
fn panicked(
    error: JoinError,
    running: &mut HashMap<tokio::task::Id, (CheckerId, tokio::time::Instant)>,
) -> Option<Finished> {
    let task = running.remove(&error.id());
    let (Some((checker, started)), Ok(panic)) = (task, error.try_into_panic()) else {
        tracing::error!("probe task failed without a result");
        return None;
    };
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!("probe of checker {} panicked: {message}", checker.0);
    let ended = tokio::time::Instant::now();
    Some(Finished {
        checker,
        ended,
        duration: ended - started,
        outcome: Outcome::Failure(ProbeError::Panicked(message)),
    })
}
