//! The VRRP instances as the main loop sees them: each driver publishes
//! [`InstanceSnapshot`]s from the VRRP thread, which the dumps, the status
//! query and the metrics read here; and each driver's state transitions
//! are forwarded, every one in order, to the main loop as [`Transition`]s
//! (for the notify FIFOs and scripts). keepalived's "clear the stats" is a
//! baseline kept here: the dumps show the counts since it, while the
//! drivers' counters (and `/metrics`, whose counters must not go back) run
//! on.

use super::notify::Transition;
use lvskit_vrrp::Statistics;
use lvskit_vrrp::linux::driver::{InstanceSnapshot, StateTransition};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, mpsc, watch};

type Drivers = Arc<Mutex<Vec<watch::Receiver<Vec<InstanceSnapshot>>>>>;

/// The snapshot receivers of every running driver. Cloned into the VRRP
/// thread, which adds one receiver per driver it starts.
#[derive(Debug, Clone)]
pub struct VrrpMonitor {
    drivers: Drivers,
    /// The main runtime: the forwarders run there, so they outlive the
    /// VRRP thread's runtime and report the final `STOP`s.
    runtime: tokio::runtime::Handle,
    transitions: mpsc::UnboundedSender<Transition>,
    /// Each instance's counters when they were last cleared.
    cleared: Arc<Mutex<HashMap<String, Statistics>>>,
}

impl VrrpMonitor {
    /// A monitor, and the receiver of the state changes. Call it on the
    /// main runtime.
    pub fn new() -> (VrrpMonitor, mpsc::UnboundedReceiver<Transition>) {
        let (transitions, receiver) = mpsc::unbounded_channel();
        let monitor = VrrpMonitor {
            drivers: Drivers::default(),
            runtime: tokio::runtime::Handle::current(),
            transitions,
            cleared: Arc::default(),
        };
        (monitor, receiver)
    }

    /// Follows one more driver: its snapshots and its transitions. The
    /// receiver of the transitions ends once every monitor clone is
    /// dropped and every driver has stopped.
    pub fn watch(
        &self,
        snapshots: watch::Receiver<Vec<InstanceSnapshot>>,
        transitions: broadcast::Receiver<StateTransition>,
    ) {
        self.lock().push(snapshots);
        self.runtime
            .spawn(forward_transitions(transitions, self.transitions.clone()));
    }

    /// The latest snapshot of every instance of every driver.
    pub fn instances(&self) -> Vec<InstanceSnapshot> {
        self.lock()
            .iter()
            .flat_map(|driver| driver.borrow().clone())
            .collect()
    }

    /// As [`VrrpMonitor::instances`], with the counts since the last
    /// [`VrrpMonitor::clear_statistics`].
    pub fn instances_since_clear(&self) -> Vec<InstanceSnapshot> {
        let mut instances = self.instances();
        let cleared = self
            .cleared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for instance in &mut instances {
            if let Some(earlier) = cleared.get(&*instance.name) {
                instance.statistics = instance.statistics.since(earlier);
            }
        }
        instances
    }

    /// Clears every instance's counters as the dumps see them (keepalived's
    /// `STATS_CLEAR`).
    pub fn clear_statistics(&self) {
        let now = self.instances();
        let mut cleared = self
            .cleared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for instance in now {
            cleared.insert(instance.name.to_string(), instance.statistics);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<watch::Receiver<Vec<InstanceSnapshot>>>> {
        // A panic while holding the lock leaves a plain Vec behind: usable.
        self.drivers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Forwards each transition of one driver, with the instance's effective
/// priority as the driver reported it, until the driver is gone.
async fn forward_transitions(
    mut driver: broadcast::Receiver<StateTransition>,
    transitions: mpsc::UnboundedSender<Transition>,
) {
    loop {
        match driver.recv().await {
            Ok(transition) => {
                let _ = transitions.send(Transition {
                    instance: transition.instance.to_string(),
                    state: transition.to,
                    priority: transition.priority,
                });
            }
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!("{missed} VRRP state changes were not notified");
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
