//! The VRRP instances as the main loop sees them: each driver publishes
//! [`InstanceSnapshot`]s from the VRRP thread; the dumps, the status query
//! and the metrics read the latest ones here, and every state change is
//! forwarded to the main loop as a [`Transition`] (for the notify FIFOs
//! and scripts).
//!
//! The snapshots are a watch channel: should one instance change state
//! twice between two reads of the forwarder (two inputs within one
//! scheduling slot of the main runtime), only the last is reported.

use super::notify::Transition;
use lvskit_vrrp::State;
use lvskit_vrrp::linux::driver::InstanceSnapshot;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch};

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
        };
        (monitor, receiver)
    }

    /// Follows one more driver. The receiver of the transitions ends once
    /// every monitor clone is dropped and every driver has stopped.
    pub fn watch(&self, snapshots: watch::Receiver<Vec<InstanceSnapshot>>) {
        self.lock().push(snapshots.clone());
        self.runtime
            .spawn(forward_transitions(snapshots, self.transitions.clone()));
    }

    /// The latest snapshot of every instance of every driver.
    pub fn instances(&self) -> Vec<InstanceSnapshot> {
        self.lock()
            .iter()
            .flat_map(|driver| driver.borrow().clone())
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<watch::Receiver<Vec<InstanceSnapshot>>>> {
        // A panic while holding the lock leaves a plain Vec behind: usable.
        self.drivers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Sends a [`Transition`] for each instance whose state differs from the
/// last one seen, until the driver is gone.
async fn forward_transitions(
    mut snapshots: watch::Receiver<Vec<InstanceSnapshot>>,
    transitions: mpsc::UnboundedSender<Transition>,
) {
    let mut last: HashMap<Arc<str>, State> = HashMap::new();
    loop {
        for instance in snapshots.borrow_and_update().iter() {
            let previous = last.insert(instance.name.clone(), instance.state);
            let started = previous.is_some() || instance.state != State::Initialize;
            if previous != Some(instance.state) && started {
                let _ = transitions.send(Transition {
                    instance: instance.name.to_string(),
                    state: instance.state,
                    priority: instance.effective_priority,
                });
            }
        }
        if snapshots.changed().await.is_err() {
            return;
        }
    }
}
