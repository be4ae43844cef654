//! The kernel device model: devices on the platform and PCI buses, drivers with probe, remove
//! and an optional shutdown, device links, and `device_shutdown()` / `kernel_restart()` /
//! `kernel_kexec()` with Linux's ordering rules (iommu-core-and-shutdown.md §7).
//!
//! Ordering, as drivers/base does it:
//! * a device is appended to the global list when registered;
//! * `device_link_add(consumer, supplier)` moves the consumer, then recursively its children
//!   and its own consumers, to the tail;
//! * `device_shutdown()` takes devices from the tail.
//!
//! arm-smmu links every master as a consumer of the SMMU when the master is probed, so every
//! master reaches the tail after the SMMU and is shut down *before* it. "Shut down" only means
//! the master's `.shutdown` ran if it has one: `fsl_enetc` has none and, on a plain reboot,
//! PCI does not clear its bus mastering, so its DMA is still live when the SMMU's own shutdown
//! runs last. That is why, in the seed log, the SMMU's lines come first: nothing before it
//! printed anything.
//!
//! Drivers are called without the kernel's lock held (as Linux drops the list lock), so a driver
//! may call back into the kernel (print, add links, unbind).
//!
//! This file holds the device model and its registration, binding and linking; `shutdown`
//! holds the reboot paths and `boot` a board's registration and boot.

use std::fmt;

use klog::{Level, Printk};
use smmu_sync::atomic::{AtomicBool, Ordering};
use smmu_sync::{Arc, Mutex};
use thiserror::Error;

use crate::board::Bus;
use crate::dmesg::{Dmesg, OopsReport};

mod boot;
mod shutdown;
mod snapshot;
pub use snapshot::KernelSnapshot;

pub use boot::{boot_board, generic_driver, register_board, BootedBoard, LinkToSmmu};

/// Index of a device in the simulated kernel's device list (registration order). Not the
/// IOMMU core's `iommu::DeviceId`, which the core assigns when a device is added to it.
pub type DeviceIndex = usize;

/// Errors of the device model.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KernelError {
    /// No such device.
    #[error("no device {0}")]
    NoDevice(DeviceIndex),
    /// The device already has a driver.
    #[error("{0}: already bound")]
    AlreadyBound(String),
    /// A driver's probe failed (the device stays unbound).
    #[error("{dev}: probe failed: {reason}")]
    ProbeFailed {
        /// Device name.
        dev: String,
        /// Why.
        reason: String,
    },
    /// The kernel has panicked.
    #[error("kernel halted")]
    Halted,
}

/// A driver. Implement this for the real arm-smmu driver and the NIC driver of a scenario;
/// [`GenericDriver`] stands in for everything else.
pub trait Driver: Send + Sync {
    /// Driver name (`dev_printk` prefix).
    fn name(&self) -> &str;
    /// Bind to `dev`; an error leaves the device unbound.
    fn probe(&self, _k: &Kernel, _dev: DeviceIndex) -> Result<(), KernelError> {
        Ok(())
    }
    /// Unbind from `dev`.
    fn remove(&self, _k: &Kernel, _dev: DeviceIndex) {}
    /// Whether the driver has a `.shutdown` method.
    fn has_shutdown(&self) -> bool {
        false
    }
    /// The `.shutdown` method (only called when [`Driver::has_shutdown`]).
    fn shutdown(&self, _k: &Kernel, _dev: DeviceIndex) {}
}

/// A driver that binds (or fails to) and does nothing else; `has_shutdown` as configured.
#[derive(Debug, Clone)]
pub struct GenericDriver {
    /// Name.
    pub name: String,
    /// Whether it has `.shutdown`.
    pub has_shutdown: bool,
    /// Whether probe succeeds.
    pub binds: bool,
}

impl Driver for GenericDriver {
    fn name(&self) -> &str {
        &self.name
    }
    fn probe(&self, k: &Kernel, dev: DeviceIndex) -> Result<(), KernelError> {
        if self.binds {
            Ok(())
        } else {
            Err(KernelError::ProbeFailed {
                dev: k.device_name(dev),
                reason: "driver did not bind".into(),
            })
        }
    }
    fn has_shutdown(&self) -> bool {
        self.has_shutdown
    }
}

/// Called at a device's probe before the driver's own probe (Linux's `dma_configure`, which is
/// where the IOMMU core attaches the device and arm-smmu adds the device link).
pub trait DmaConfigure: Send + Sync {
    /// Configure DMA for `dev`; an error fails the probe.
    fn dma_configure(&self, k: &Kernel, dev: DeviceIndex) -> Result<(), KernelError>;
}

/// What the system is doing, as `system_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemState {
    /// Normal operation.
    Running,
    /// `kernel_restart` in progress.
    Restart,
    /// Restart finished: the machine resets.
    Restarted,
    /// `kernel_kexec` finished: the next kernel starts.
    Kexeced,
}

/// Which reboot path is running (passed to reboot notifiers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebootKind {
    /// `reboot` / `reboot -f`.
    Restart,
    /// `kexec -e`.
    Kexec,
}

/// A reboot notifier (kvm's prints `kvm: exiting hardware virtualization`).
pub type RebootNotifier = Box<dyn Fn(&Kernel, RebootKind) + Send + Sync>;

/// One device visited by `device_shutdown()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownRecord {
    /// Device id.
    pub dev: DeviceIndex,
    /// `dev_printk` prefix at the time.
    pub prefix: String,
    /// Bus.
    pub bus: Bus,
    /// Whether a driver `.shutdown` ran.
    pub driver_shutdown: bool,
    /// Whether PCI bus mastering was cleared (kexec only).
    pub cleared_bus_master: bool,
}

#[derive(Clone)]
struct Device {
    name: String,
    bus: Bus,
    parent: Option<DeviceIndex>,
    children: Vec<DeviceIndex>,
    driver: Option<Arc<dyn Driver>>,
    bound: bool,
    bus_master: bool,
    consumers: Vec<DeviceIndex>,
    suppliers: Vec<DeviceIndex>,
    /// Index into the board's masters, if this device is one.
    master: Option<usize>,
}

#[derive(Clone)]
struct State {
    devices: Vec<Device>,
    /// The global device list (`devices_kset`), head first.
    list: Vec<DeviceIndex>,
    shutdown_log: Vec<ShutdownRecord>,
    state: SystemState,
    kexec_in_progress: bool,
}

/// A step a run installs into the kernel's reboot path (shared, so a snapshot can keep it).
type Hook = Arc<dyn Fn() + Send + Sync>;

/// The simulated kernel.
pub struct Kernel {
    st: Mutex<State>,
    log: Arc<Dmesg>,
    dma: Mutex<Option<Arc<dyn DmaConfigure>>>,
    notifiers: Mutex<Vec<Arc<RebootNotifier>>>,
    halted: AtomicBool,
    /// Run between `device_shutdown()` and the restart (see `set_after_device_shutdown`).
    after_shutdown: Mutex<Option<Hook>>,
    /// `usermodehelper_disable()` (see `set_usermodehelper_disable`).
    umh_disable: Mutex<Option<Hook>>,
}

impl fmt::Debug for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kernel").finish_non_exhaustive()
    }
}

impl Kernel {
    /// An empty kernel logging to `log`.
    pub fn new(log: Arc<Dmesg>) -> Self {
        Kernel {
            st: Mutex::new(State {
                devices: Vec::new(),
                list: Vec::new(),
                shutdown_log: Vec::new(),
                state: SystemState::Running,
                kexec_in_progress: false,
            }),
            log,
            dma: Mutex::new(None),
            notifiers: Mutex::new(Vec::new()),
            halted: AtomicBool::new(false),
            after_shutdown: Mutex::new(None),
            umh_disable: Mutex::new(None),
        }
    }

    /// The kernel log.
    pub fn log(&self) -> Arc<Dmesg> {
        self.log.clone()
    }

    /// Install the DMA-configure hook run before each driver probe.
    pub fn set_dma_configure(&self, hook: Arc<dyn DmaConfigure>) {
        *self.dma.lock() = Some(hook);
    }

    /// Register a reboot notifier (run first by restart and kexec).
    pub fn register_reboot_notifier(&self, n: RebootNotifier) {
        self.notifiers.lock().push(Arc::new(n));
    }

    /// Add a device at the tail of the device list (`device_add`).
    pub fn device_register(
        &self,
        name: &str,
        bus: Bus,
        parent: Option<DeviceIndex>,
    ) -> DeviceIndex {
        let mut st = self.st.lock();
        let id = st.devices.len();
        st.devices.push(Device {
            name: name.into(),
            bus,
            parent,
            children: Vec::new(),
            driver: None,
            bound: false,
            bus_master: false,
            consumers: Vec::new(),
            suppliers: Vec::new(),
            master: None,
        });
        if let Some(p) = parent.and_then(|p| st.devices.get_mut(p)) {
            p.children.push(id);
        }
        st.list.push(id);
        id
    }

    /// Mark `dev` as the board master `idx`.
    pub fn set_master_index(&self, dev: DeviceIndex, idx: usize) {
        if let Some(d) = self.st.lock().devices.get_mut(dev) {
            d.master = Some(idx);
        }
    }

    /// The board master index of `dev`, if any.
    pub fn master_index(&self, dev: DeviceIndex) -> Option<usize> {
        self.st.lock().devices.get(dev).and_then(|d| d.master)
    }

    /// Device by name.
    pub fn find(&self, name: &str) -> Option<DeviceIndex> {
        self.st.lock().devices.iter().position(|d| d.name == name)
    }

    /// Device name (`5000000.iommu`).
    pub fn device_name(&self, dev: DeviceIndex) -> String {
        self.st
            .lock()
            .devices
            .get(dev)
            .map(|d| d.name.clone())
            .unwrap_or_default()
    }

    /// The `dev_printk` prefix: bound driver's name, else the bus name, then the device name.
    pub fn dev_prefix(&self, dev: DeviceIndex) -> String {
        let st = self.st.lock();
        match st.devices.get(dev) {
            Some(d) => {
                let who = match (&d.driver, d.bound) {
                    (Some(drv), true) => drv.name().to_string(),
                    _ => d.bus.name().to_string(),
                };
                format!("{who} {}", d.name)
            }
            None => String::new(),
        }
    }

    /// `dev_printk`.
    pub fn dev_printk(&self, dev: DeviceIndex, level: Level, msg: &str) {
        let line = klog::dev_line(&self.dev_prefix(dev), msg);
        self.log.printk(level, &line);
    }

    /// Whether a driver is bound.
    pub fn is_bound(&self, dev: DeviceIndex) -> bool {
        self.st.lock().devices.get(dev).is_some_and(|d| d.bound)
    }

    /// PCI bus mastering (Command.BME) of `dev`.
    pub fn bus_master(&self, dev: DeviceIndex) -> bool {
        self.st
            .lock()
            .devices
            .get(dev)
            .is_some_and(|d| d.bus_master)
    }

    /// Set PCI bus mastering (`pci_set_master`).
    pub fn set_bus_master(&self, dev: DeviceIndex, on: bool) {
        if let Some(d) = self.st.lock().devices.get_mut(dev) {
            d.bus_master = on;
        }
    }

    /// Devices on `bus` in registration order (the bus's klist, which `bus_for_each_dev` walks:
    /// device links do not reorder it).
    pub fn bus_devices(&self, bus: Bus) -> Vec<DeviceIndex> {
        let st = self.st.lock();
        (0..st.devices.len())
            .filter(|&i| st.devices[i].bus == bus)
            .collect()
    }

    /// The device list, head first (shutdown walks it from the tail).
    pub fn device_list(&self) -> Vec<DeviceIndex> {
        self.st.lock().list.clone()
    }

    /// Every device `device_shutdown()` visited, in visit order.
    pub fn shutdown_log(&self) -> Vec<ShutdownRecord> {
        self.st.lock().shutdown_log.clone()
    }

    /// `system_state`.
    pub fn system_state(&self) -> SystemState {
        self.st.lock().state
    }

    /// Whether the kernel has panicked.
    pub fn halted(&self) -> bool {
        self.halted.load(Ordering::SeqCst) || self.log.stopped()
    }

    /// Oops + panic: print the report and stop the kernel.
    pub fn oops(&self, oops: &OopsReport) {
        self.log.panic(oops);
        self.halted.store(true, Ordering::SeqCst);
    }

    /// Bind `drv` to `dev` (`really_probe`): DMA configure hook, then the driver's probe. On
    /// failure the device stays unbound (and prints with its bus name).
    pub fn driver_attach(&self, dev: DeviceIndex, drv: Arc<dyn Driver>) -> Result<(), KernelError> {
        if self.halted() {
            return Err(KernelError::Halted);
        }
        {
            let mut st = self.st.lock();
            let d = st.devices.get_mut(dev).ok_or(KernelError::NoDevice(dev))?;
            if d.bound {
                return Err(KernelError::AlreadyBound(d.name.clone()));
            }
            d.driver = Some(drv.clone());
        }
        let hook = self.dma.lock().clone();
        let res = match hook {
            Some(h) => h.dma_configure(self, dev),
            None => Ok(()),
        }
        .and_then(|()| drv.probe(self, dev));
        let mut st = self.st.lock();
        if let Some(d) = st.devices.get_mut(dev) {
            d.bound = res.is_ok();
        }
        res
    }

    /// `device_link_add(consumer, supplier)`: record the link and move the consumer (with its
    /// children and consumers) to the tail of the device list.
    pub fn device_link_add(
        &self,
        consumer: DeviceIndex,
        supplier: DeviceIndex,
    ) -> Result<(), KernelError> {
        let mut st = self.st.lock();
        if consumer >= st.devices.len() {
            return Err(KernelError::NoDevice(consumer));
        }
        if supplier >= st.devices.len() {
            return Err(KernelError::NoDevice(supplier));
        }
        if st.devices[supplier].consumers.contains(&consumer) {
            return Ok(());
        }
        st.devices[supplier].consumers.push(consumer);
        st.devices[consumer].suppliers.push(supplier);
        let mut visited = Vec::new();
        reorder_to_tail(&mut st, consumer, &mut visited);
        Ok(())
    }

    /// Parent of `dev`.
    pub fn parent(&self, dev: DeviceIndex) -> Option<DeviceIndex> {
        self.st.lock().devices.get(dev).and_then(|d| d.parent)
    }

    /// Suppliers of `dev`.
    pub fn suppliers(&self, dev: DeviceIndex) -> Vec<DeviceIndex> {
        self.st
            .lock()
            .devices
            .get(dev)
            .map(|d| d.suppliers.clone())
            .unwrap_or_default()
    }

    /// Unbind the driver (`device_release_driver`): consumers are unbound first, as the driver
    /// core does for a supplier, then the driver's `remove` runs.
    pub fn device_release_driver(&self, dev: DeviceIndex) -> Result<(), KernelError> {
        let (drv, consumers) = {
            let st = self.st.lock();
            let d = st.devices.get(dev).ok_or(KernelError::NoDevice(dev))?;
            (d.driver.clone().filter(|_| d.bound), d.consumers.clone())
        };
        let Some(drv) = drv else { return Ok(()) };
        for c in consumers {
            self.device_release_driver(c)?;
        }
        drv.remove(self, dev);
        if let Some(d) = self.st.lock().devices.get_mut(dev) {
            d.bound = false;
            d.driver = None;
        }
        Ok(())
    }
}

fn reorder_to_tail(st: &mut State, dev: DeviceIndex, visited: &mut Vec<DeviceIndex>) {
    if visited.contains(&dev) {
        return;
    }
    visited.push(dev);
    if let Some(pos) = st.list.iter().position(|&d| d == dev) {
        st.list.remove(pos);
        st.list.push(dev);
    }
    let (children, consumers) = match st.devices.get(dev) {
        Some(d) => (d.children.clone(), d.consumers.clone()),
        None => return,
    };
    for c in children.into_iter().chain(consumers) {
        reorder_to_tail(st, c, visited);
    }
}

/// The kvm reboot notifier's line.
pub fn kvm_reboot_notifier() -> RebootNotifier {
    Box::new(|k: &Kernel, _| {
        k.log()
            .printk(Level::Info, "kvm: exiting hardware virtualization")
    })
}
