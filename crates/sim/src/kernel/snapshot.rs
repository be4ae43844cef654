//! The kernel's state saved and put back in place (the explorer's booted-machine snapshot):
//! devices with their bindings, links and bus mastering, the device list, the shutdown record,
//! `system_state`, the reboot notifiers and the steps a run installs. Drivers and hooks are
//! shared objects: the snapshot keeps the same `Arc`s, never copies of them.

use super::{Device, DmaConfigure, Hook, Kernel, RebootNotifier, State};
use crate::SnapshotError;
use smmu_sync::atomic::Ordering;
use smmu_sync::Arc;
use std::fmt;

/// The kernel's state at one moment ([`Kernel::snapshot`]).
#[derive(Clone)]
pub struct KernelSnapshot {
    st: State,
    dma: Option<Arc<dyn DmaConfigure>>,
    notifiers: Vec<Arc<RebootNotifier>>,
    halted: bool,
    after_shutdown: Option<Hook>,
    umh_disable: Option<Hook>,
}

impl fmt::Debug for KernelSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KernelSnapshot")
            .field("devices", &self.st.devices.len())
            .field("halted", &self.halted)
            .finish_non_exhaustive()
    }
}

/// The same shared object (drivers, hooks and notifiers are compared by identity).
fn same<T: ?Sized>(a: &Arc<T>, b: &Arc<T>) -> bool {
    Arc::ptr_eq(a, b)
}

fn same_opt<T: ?Sized>(a: &Option<Arc<T>>, b: &Option<Arc<T>>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => same(a, b),
        _ => false,
    }
}

impl PartialEq for Device {
    fn eq(&self, o: &Device) -> bool {
        self.name == o.name
            && self.bus == o.bus
            && self.parent == o.parent
            && self.children == o.children
            && same_opt(&self.driver, &o.driver)
            && self.bound == o.bound
            && self.bus_master == o.bus_master
            && self.consumers == o.consumers
            && self.suppliers == o.suppliers
            && self.master == o.master
    }
}

impl PartialEq for KernelSnapshot {
    fn eq(&self, o: &KernelSnapshot) -> bool {
        let (a, b) = (&self.st, &o.st);
        a.devices == b.devices
            && a.list == b.list
            && a.shutdown_log == b.shutdown_log
            && a.state == b.state
            && a.kexec_in_progress == b.kexec_in_progress
            && same_opt(&self.dma, &o.dma)
            && self.notifiers.len() == o.notifiers.len()
            && self
                .notifiers
                .iter()
                .zip(&o.notifiers)
                .all(|(x, y)| same(x, y))
            && self.halted == o.halted
            && same_opt(&self.after_shutdown, &o.after_shutdown)
            && same_opt(&self.umh_disable, &o.umh_disable)
    }
}

impl Kernel {
    /// The kernel's state now. Take it while no CPU runs.
    pub fn snapshot(&self) -> KernelSnapshot {
        KernelSnapshot {
            st: self.st.lock().clone(),
            dma: self.dma.lock().clone(),
            notifiers: self.notifiers.lock().clone(),
            halted: self.halted.load(Ordering::SeqCst),
            after_shutdown: self.after_shutdown.lock().clone(),
            umh_disable: self.umh_disable.lock().clone(),
        }
    }

    /// Put the state of `s` back: bindings, links, bus mastering, the device list, notifiers
    /// and hooks as they were. Refused, changing nothing, for a kernel with another number of
    /// devices (a snapshot of another machine).
    pub fn restore(&self, s: &KernelSnapshot) -> Result<(), SnapshotError> {
        let mut st = self.st.lock();
        if st.devices.len() != s.st.devices.len() {
            return Err(SnapshotError::Shape {
                component: "kernel",
                what: "devices",
                snapshot: s.st.devices.len(),
                live: st.devices.len(),
            });
        }
        st.clone_from(&s.st);
        drop(st);
        self.dma.lock().clone_from(&s.dma);
        self.notifiers.lock().clone_from(&s.notifiers);
        self.halted.store(s.halted, Ordering::SeqCst);
        self.after_shutdown.lock().clone_from(&s.after_shutdown);
        self.umh_disable.lock().clone_from(&s.umh_disable);
        Ok(())
    }
}
