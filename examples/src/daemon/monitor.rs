//! The VRRP instances as the main loop sees them: each driver publishes
//! [`InstanceSnapshot`]s from the VRRP thread, and the dumps, the status
//! query and the metrics read the latest ones here.

use lvskit_vrrp::linux::driver::InstanceSnapshot;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// The snapshot receivers of every running driver. Cloned into the VRRP
/// thread, which adds one receiver per driver it starts.
#[derive(Debug, Clone, Default)]
pub struct VrrpMonitor {
    drivers: Arc<Mutex<Vec<watch::Receiver<Vec<InstanceSnapshot>>>>>,
}

impl VrrpMonitor {
    /// Follows one more driver.
    pub fn watch(&self, snapshots: watch::Receiver<Vec<InstanceSnapshot>>) {
        self.lock().push(snapshots);
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
