//! What each actor did when: the lanes of the report's timeline.

use crate::dmesg::Dmesg;
use klog::{Level, Printk};
use smmu_sync::atomic::{AtomicBool, Ordering};
use smmu_sync::{Arc, Mutex};

/// The actor an event belongs to (one lane of the report's timeline).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Lane {
    /// CPU 1: `reboot -f` / kexec / unbind, `device_shutdown()`, the SMMU's shutdown.
    ShutdownCpu,
    /// CPU 0: NAPI poll, transmit, the SMMU interrupt handlers.
    NetCpu,
    /// The NIC's DMA engine.
    NicDma,
    /// Faults the SMMU reported (as the driver logged them).
    SmmuFaults,
}

impl Lane {
    /// Lanes top to bottom.
    pub const ALL: [Lane; 4] = [
        Lane::ShutdownCpu,
        Lane::NetCpu,
        Lane::NicDma,
        Lane::SmmuFaults,
    ];

    /// The lane's label.
    pub fn title(self) -> &'static str {
        match self {
            Lane::ShutdownCpu => "CPU 1: shutdown",
            Lane::NetCpu => "CPU 0: transmit, NAPI, IRQs",
            Lane::NicDma => "DMA engines (NIC, generic masters)",
            Lane::SmmuFaults => "SMMU faults",
        }
    }
}

/// One thing that happened, for the timeline.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TimelineEvent {
    /// Simulated time.
    pub time_ns: u64,
    /// Who.
    pub lane: Lane,
    /// What.
    pub text: String,
}

/// Records timeline events once the actors run.
pub(super) struct Timeline {
    pub(super) clock: Arc<Dmesg>,
    pub(super) recording: AtomicBool,
    pub(super) events: Mutex<Vec<TimelineEvent>>,
}

impl Timeline {
    /// Whether it records, and the events so far (for the booted-machine snapshot).
    pub(super) fn snapshot(&self) -> (bool, Vec<TimelineEvent>) {
        (
            self.recording.load(Ordering::SeqCst),
            self.events.lock().clone(),
        )
    }

    /// Put the state of [`Timeline::snapshot`] back.
    pub(super) fn restore(&self, s: &(bool, Vec<TimelineEvent>)) {
        self.recording.store(s.0, Ordering::SeqCst);
        self.events.lock().clone_from(&s.1);
    }

    pub(super) fn push(&self, lane: Lane, text: String) {
        if self.recording.load(Ordering::SeqCst) {
            let time_ns = self.clock.now_ns();
            self.events.lock().push(TimelineEvent {
                time_ns,
                lane,
                text,
            });
        }
    }

    /// The lane of whoever is running: the explorer's task ids are spawn order.
    fn lane_of_current_task() -> Lane {
        match smmu_sync::current_task() {
            Some(1) => Lane::NetCpu,
            // The NIC's engine, then the generic DMA engines.
            Some(n) if n >= 2 => Lane::NicDma,
            _ => Lane::ShutdownCpu,
        }
    }
}

/// The log the core and the drivers print to: dmesg, plus a timeline entry for the CPU that
/// printed (fault reports go to their own lane).
pub(super) struct TracedLog {
    pub(super) dmesg: Arc<Dmesg>,
    pub(super) timeline: Arc<Timeline>,
}

impl Printk for TracedLog {
    fn printk(&self, level: Level, line: &str) {
        self.dmesg.printk(level, line);
        let lane = if line.contains("Stream ID")
            || line.contains("GFSR")
            || line.contains("global fault")
            || line.contains("context fault")
        {
            Lane::SmmuFaults
        } else {
            Timeline::lane_of_current_task()
        };
        let text = line.split_once(": ").map(|(_, t)| t).unwrap_or(line);
        self.timeline.push(lane, text.trim().to_string());
    }

    fn now_ns(&self) -> u64 {
        self.dmesg.now_ns()
    }
}
