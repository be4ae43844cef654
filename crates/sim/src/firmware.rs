//! The firmware loader's sysfs fallback, as far as the reboot path sees it: cfg80211's pending
//! `regulatory.db` request and why the seed prints `cfg80211: failed to load regulatory.db`
//! during shutdown.
//!
//! Facts (Linux v6.1, `drivers/base/firmware_loader/`, `net/wireless/reg.c`,
//! `kernel/reboot.c`, `kernel/umh.c`):
//! * cfg80211 asks for `regulatory.db` with `request_firmware_nowait(…, uevent = true, …,
//!   regdb_fw_cb)`: a work item on the system workqueue, queued on the CPU that asked (the
//!   boot CPU: cfg80211's regulatory init runs from an initcall, and its request from the
//!   regulatory work it queues there).
//! * If the file is not on the root filesystem and the sysfs fallback is forced
//!   (`CONFIG_FW_LOADER_USER_HELPER_FALLBACK`), the work waits in `fw_load_sysfs_fallback`
//!   for user space, at most `loading_timeout` (60 s), holding the usermode-helper read lock
//!   (`usermodehelper_read_lock_wait`) the whole time.
//! * `reboot -f` at 42 s is inside that minute. `kernel_restart_prepare` runs the reboot
//!   notifiers: kvm's prints its line, then the firmware loader's `fw_shutdown_notify` aborts
//!   every pending fallback request (`kill_pending_fw_fallback_reqs`), which wakes the waiter.
//!   Then `usermodehelper_disable()` takes the helper lock for writing, so the reboot task
//!   sleeps until the woken work has released its read lock. The work then calls
//!   `regdb_fw_cb` with no firmware, which prints the line: after kvm's and before anything
//!   `device_shutdown()` prints, as in the seed.
//! * Whether the seed's kernel forced the fallback is not known: the line's place (during
//!   shutdown, not at boot) is the evidence, so the builds that reproduce the seed say so
//!   ([`crate::builds::KernelBuild::regdb_fallback_pending`]).

use smmu_sync::Mutex;

/// `loading_timeout`: how long a fallback request waits for user space.
pub const LOADING_TIMEOUT_NS: u64 = 60_000_000_000;

/// Where a fallback request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestState {
    /// Waiting for user space, holding the usermode-helper read lock.
    Waiting,
    /// Aborted by the reboot notifier; the woken waiter has not run yet.
    Aborted,
    /// The waiter released the helper lock; its callback has not returned yet.
    Released,
    /// The callback ran.
    Done,
}

/// One request in the sysfs fallback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FallbackRequest {
    /// The firmware file.
    pub name: &'static str,
    /// The CPU whose workqueue runs the request's work.
    pub cpu: u32,
    /// When the fallback times out.
    pub timeout_at_ns: u64,
    /// Where it is.
    pub state: RequestState,
}

/// The firmware loader's pending fallback requests (`pending_fw_head`).
#[derive(Debug, Default)]
pub struct FirmwareLoader {
    pending: Mutex<Vec<FallbackRequest>>,
}

impl FirmwareLoader {
    /// The pending requests now (for the booted-machine snapshot).
    pub fn snapshot(&self) -> Vec<FallbackRequest> {
        self.pending.lock().clone()
    }

    /// Put the pending requests of [`FirmwareLoader::snapshot`] back.
    pub fn restore(&self, s: &[FallbackRequest]) {
        let mut p = self.pending.lock();
        p.clear();
        p.extend_from_slice(s);
    }

    /// A request for `name` enters the sysfs fallback at `now_ns`, its work on `cpu`.
    pub fn request_with_fallback(&self, name: &'static str, cpu: u32, now_ns: u64) {
        self.pending.lock().push(FallbackRequest {
            name,
            cpu,
            timeout_at_ns: now_ns + LOADING_TIMEOUT_NS,
            state: RequestState::Waiting,
        });
    }

    /// `fw_shutdown_notify` → `kill_pending_fw_fallback_reqs`: abort every request still
    /// waiting at `now_ns` (one past its timeout had already given up). Returns the CPUs
    /// whose waiters were woken, one per request.
    pub fn kill_pending(&self, now_ns: u64) -> Vec<u32> {
        let mut p = self.pending.lock();
        p.iter_mut()
            .filter(|r| r.state == RequestState::Waiting && now_ns < r.timeout_at_ns)
            .map(|r| {
                r.state = RequestState::Aborted;
                r.cpu
            })
            .collect()
    }

    /// Whether a request still holds the usermode-helper read lock (waiting, or aborted and
    /// not yet past `usermodehelper_read_unlock`).
    pub fn helper_lock_held(&self, now_ns: u64) -> bool {
        self.pending.lock().iter().any(|r| {
            r.state == RequestState::Aborted
                || (r.state == RequestState::Waiting && now_ns < r.timeout_at_ns)
        })
    }

    /// Whether a woken waiter on `cpu` has not finished its callback yet.
    pub fn waiter_busy(&self, cpu: u32) -> bool {
        self.pending.lock().iter().any(|r| {
            r.cpu == cpu && matches!(r.state, RequestState::Aborted | RequestState::Released)
        })
    }

    /// The woken waiter: `device_del` of the fallback device and `usermodehelper_read_unlock`.
    /// Returns the request it released.
    pub fn release_aborted(&self) -> Option<&'static str> {
        let mut p = self.pending.lock();
        let r = p.iter_mut().find(|r| r.state == RequestState::Aborted)?;
        r.state = RequestState::Released;
        Some(r.name)
    }

    /// The waiter's callback returned.
    pub fn callback_done(&self, name: &'static str) {
        if let Some(r) = self
            .pending
            .lock()
            .iter_mut()
            .find(|r| r.name == name && r.state == RequestState::Released)
        {
            r.state = RequestState::Done;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_notifier_aborts_only_requests_inside_their_minute() {
        let fw = FirmwareLoader::default();
        fw.request_with_fallback("regulatory.db", 0, 1_000_000_000);
        assert!(fw.helper_lock_held(42_000_000_000));
        assert!(!fw.helper_lock_held(61_000_000_000));
        assert_eq!(fw.kill_pending(42_000_000_000), vec![0]);
        assert!(fw.helper_lock_held(42_000_000_000) && fw.waiter_busy(0));
        assert_eq!(fw.release_aborted(), Some("regulatory.db"));
        assert!(!fw.helper_lock_held(42_000_000_000) && fw.waiter_busy(0));
        fw.callback_done("regulatory.db");
        assert!(!fw.waiter_busy(0));
        // Past the timeout nothing is pending any more.
        let late = FirmwareLoader::default();
        late.request_with_fallback("regulatory.db", 0, 0);
        assert!(late.kill_pending(LOADING_TIMEOUT_NS).is_empty());
    }
}
