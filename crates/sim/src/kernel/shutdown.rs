//! The reboot paths: `device_shutdown()` from the list's tail, reboot notifiers,
//! `kernel_restart()`, `kernel_kexec()` and `crash_kexec()`.

use super::{Kernel, RebootKind, RebootNotifier, ShutdownRecord, SystemState};
use crate::board::Bus;
use klog::{Level, Printk};
use smmu_sync::Arc;

impl Kernel {
    /// `device_shutdown()`: take devices from the tail; platform bus calls the driver's
    /// `.shutdown` if any; PCI (`pci_device_shutdown`) does the same and, only during kexec,
    /// clears bus mastering. Stops if the kernel panics meanwhile.
    pub fn device_shutdown(&self) {
        loop {
            if self.halted() {
                return;
            }
            let (dev, bus, drv, kexec) = {
                let mut st = self.st.lock();
                let Some(dev) = st.list.pop() else { return };
                let Some(d) = st.devices.get(dev) else {
                    continue;
                };
                let drv = d.driver.clone().filter(|_| d.bound);
                (dev, d.bus, drv, st.kexec_in_progress)
            };
            let prefix = self.dev_prefix(dev);
            let mut rec = ShutdownRecord {
                dev,
                prefix,
                bus,
                driver_shutdown: false,
                cleared_bus_master: false,
            };
            if let Some(drv) = drv.filter(|d| d.has_shutdown()) {
                drv.shutdown(self, dev);
                rec.driver_shutdown = true;
            }
            if bus == Bus::Pci && kexec && self.bus_master(dev) {
                self.set_bus_master(dev, false);
                rec.cleared_bus_master = true;
            }
            self.st.lock().shutdown_log.push(rec);
        }
    }

    fn run_notifiers(&self, kind: RebootKind) {
        let ns: Vec<Arc<RebootNotifier>> = self.notifiers.lock().clone();
        for n in ns {
            (*n)(self, kind);
        }
    }

    /// Set what `usermodehelper_disable()` does: in Linux it takes the usermode-helper lock
    /// for writing, so the reboot task sleeps while a firmware fallback request holds it.
    pub fn set_usermodehelper_disable(&self, f: Box<dyn Fn() + Send + Sync>) {
        *self.umh_disable.lock() = Some(Arc::from(f));
    }

    /// `kernel_restart_prepare`'s steps before `device_shutdown()`: the reboot notifiers,
    /// then `usermodehelper_disable()`.
    fn restart_prepare(&self, kind: RebootKind) {
        self.run_notifiers(kind);
        if let Some(f) = self.umh_disable.lock().as_ref() {
            f();
        }
    }

    /// `kernel_restart(cmd)` (what `reboot -f` ends in): reboot notifiers, `device_shutdown()`,
    /// then `reboot: Restarting system` and the machine resets. Returns false if the kernel
    /// panicked on the way (nothing more is printed then).
    pub fn kernel_restart(&self, cmd: Option<&str>) -> bool {
        self.st.lock().state = SystemState::Restart;
        self.restart_prepare(RebootKind::Restart);
        self.device_shutdown();
        self.after_device_shutdown();
        if self.halted() {
            return false;
        }
        match cmd {
            Some(c) => self.log.printk(
                Level::Emerg,
                &format!("reboot: Restarting system with command '{c}'"),
            ),
            None => self.log.printk(Level::Emerg, "reboot: Restarting system"),
        }
        self.st.lock().state = SystemState::Restarted;
        true
    }

    /// Set what happens between `device_shutdown()` and the restart message: in Linux,
    /// `migrate_to_reboot_cpu()` and `syscore_shutdown()`, where the reboot task may be
    /// scheduled out and the tasks waiting on its CPU run.
    pub fn set_after_device_shutdown(&self, f: Box<dyn Fn() + Send + Sync>) {
        *self.after_shutdown.lock() = Some(Arc::from(f));
    }

    fn after_device_shutdown(&self) {
        if self.halted() {
            return;
        }
        if let Some(f) = self.after_shutdown.lock().as_ref() {
            f();
        }
    }

    /// `kernel_kexec()`: sets `kexec_in_progress` (so PCI shutdown clears bus mastering), runs
    /// the reboot notifiers and `device_shutdown()`, then `kexec_core: Starting new kernel`.
    pub fn kernel_kexec(&self) -> bool {
        {
            let mut st = self.st.lock();
            st.kexec_in_progress = true;
            st.state = SystemState::Restart;
        }
        self.restart_prepare(RebootKind::Kexec);
        self.device_shutdown();
        self.after_device_shutdown();
        if self.halted() {
            return false;
        }
        self.log
            .printk(Level::Notice, "kexec_core: Starting new kernel");
        self.st.lock().state = SystemState::Kexeced;
        true
    }

    /// A panic with a crash kernel loaded, from `echo c > /proc/sysrq-trigger` typed by `task`:
    /// `panic()` → `__crash_kexec()` → arm64's `machine_crash_shutdown()` (the other CPUs are
    /// stopped by IPI) and `machine_kexec()`. Unlike [`Self::kernel_kexec`] no reboot notifier
    /// and no `.shutdown` callback runs and PCI bus mastering stays on: every device, the SMMU
    /// included, keeps the state the crashed kernel left.
    ///
    /// `panic()` dumps the stack of the task that panicked (`dump_stack()`: no registers, a
    /// panic is not an exception): the `CPU:` line of `task` with `Kdump: loaded` (a crash
    /// kernel is loaded) and the board's `Hardware name:`. Its `Call trace:` frames (the
    /// syscall path from `el0t_64_sync` to `panic`) are not printed: their offsets depend on
    /// the build and none of the modelled builds' are known.
    pub fn crash_kexec(&self, task: &crate::dmesg::TaskInfo, hardware_name: Option<&str>) {
        self.log.printk(Level::Info, "sysrq: Trigger a crash");
        self.log.printk(
            Level::Emerg,
            "Kernel panic - not syncing: sysrq triggered crash",
        );
        self.log.printk(Level::Emerg, &task.cpu_line(true));
        if let Some(h) = hardware_name {
            self.log
                .printk(Level::Emerg, &format!("Hardware name: {h}"));
        }
        self.log.printk(Level::Crit, "SMP: stopping secondary CPUs");
        self.log.printk(Level::Info, "Starting crashdump kernel...");
        self.log.printk(Level::Info, "Bye!");
        self.st.lock().state = SystemState::Kexeced;
    }
}
