//! The netdev watchdog (`dev_watchdog`, net/sched/sch_generic.c) as it applies to the ENETC:
//! a timer on the simulated clock that looks at every transmit queue and reports one that is
//! stopped (`netif_xmit_stopped`: the driver stopped it, ring full) and whose last transmit
//! (`txq->trans_start`) is older than `watchdog_timeo`, then calls the driver's
//! `ndo_tx_timeout`.
//!
//! Facts (from public Linux sources, not the seed):
//! * `__netdev_watchdog_up` (at `dev_activate`, when the interface comes up) arms the timer
//!   only when the driver has `ndo_tx_timeout`; the check re-arms it every `watchdog_timeo`.
//! * `fsl_enetc`'s `net_device_ops` (enetc_pf.c, enetc_vf.c) have no `ndo_tx_timeout` in v6.1
//!   and v6.2 (nor later): `enetc_pf_netdev_setup` sets `watchdog_timeo = 5 * HZ`, which
//!   nothing reads. So the ENETC's watchdog is never armed and no transmit timeout is reported
//!   however long its ring stays stopped ([`ENETC_NETDEV_OPS`]).
//! * The report's text follows the release ([`TimeoutReport`]).
//!
//! `round_jiffies` (the timer rounded to a whole second) is not modelled: the next check is
//! `watchdog_timeo` after the last.

/// What a driver's `net_device_ops` provide that the watchdog looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetdevOps {
    /// `ndo_tx_timeout` is set.
    pub ndo_tx_timeout: bool,
}

/// `fsl_enetc`'s ops: no `ndo_tx_timeout` (enetc_pf.c's `enetc_ndev_ops`).
pub const ENETC_NETDEV_OPS: NetdevOps = NetdevOps {
    ndo_tx_timeout: false,
};

/// `watchdog_timeo` of the ENETC (`5 * HZ`, enetc_pf.c), in simulated nanoseconds.
pub const ENETC_WATCHDOG_TIMEO_NS: u64 = 5_000_000_000;

/// The form of the transmit-timeout report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutReport {
    /// v6.1 and v6.2 (the 6.1.y context of e316dd1cf135's backport shows it): a `WARN_ONCE`
    /// whose first line is `NETDEV WATCHDOG: <dev> (<driver>): transmit queue N timed out M ms`.
    WarnOnce,
    /// From e316dd1cf135 "net: dont dump stack on queue timeout" (mainline in 2024, after the
    /// v6.2 this model runs; its release is inferred from the 6.1.y backport of August 2024):
    /// `netdev_crit`, `<driver> <bus id> <dev>: NETDEV WATCHDOG: CPU: C: transmit queue N timed
    /// out M ms`, no stack dump.
    NetdevCrit,
}

/// One transmit queue as the watchdog sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxQueue {
    /// The driver stopped the queue (`netif_tx_stop_queue`: its ring had no room).
    pub stopped: bool,
    /// `txq->trans_start`: when the stack last handed the driver a frame on it.
    pub trans_start_ns: u64,
}

/// A transmit timeout the watchdog reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxTimeout {
    /// The queue's index.
    pub queue: usize,
    /// How long since its last transmit, in milliseconds (`jiffies_to_msecs`).
    pub timed_out_ms: u64,
}

/// The watchdog timer of one net device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetdevWatchdog {
    timeo_ns: u64,
    /// When the timer fires next; `None`: not armed.
    next_ns: Option<u64>,
}

impl NetdevWatchdog {
    /// `__netdev_watchdog_up` at `now_ns`: armed for `now + timeo` only with `ndo_tx_timeout`.
    pub fn up(ops: NetdevOps, timeo_ns: u64, now_ns: u64) -> NetdevWatchdog {
        NetdevWatchdog {
            timeo_ns,
            next_ns: ops.ndo_tx_timeout.then(|| now_ns.saturating_add(timeo_ns)),
        }
    }

    /// The ENETC's watchdog when its interface came up at `now_ns`: never armed.
    pub fn enetc(now_ns: u64) -> NetdevWatchdog {
        Self::up(ENETC_NETDEV_OPS, ENETC_WATCHDOG_TIMEO_NS, now_ns)
    }

    /// Whether the timer is armed.
    pub fn armed(&self) -> bool {
        self.next_ns.is_some()
    }

    /// Run the timer if it is due at `now_ns`: the first queue that is stopped and has not
    /// transmitted for more than `watchdog_timeo` times out (the driver's `ndo_tx_timeout` is
    /// then called), and the timer re-arms. `None`: not due, not armed, or nothing timed out.
    pub fn run(&mut self, now_ns: u64, queues: &[TxQueue]) -> Option<TxTimeout> {
        self.next_ns.filter(|&t| now_ns >= t)?;
        self.next_ns = Some(now_ns.saturating_add(self.timeo_ns));
        queues.iter().enumerate().find_map(|(i, q)| {
            let since = now_ns.saturating_sub(q.trans_start_ns);
            (q.stopped && since > self.timeo_ns).then_some(TxTimeout {
                queue: i,
                timed_out_ms: since / 1_000_000,
            })
        })
    }
}

impl TimeoutReport {
    /// The report's line for net device `dev` (`eno0`) of driver `driver` (`fsl_enetc`) at PCI
    /// function `bus_id` (`0000:00:00.0`), on CPU `cpu`.
    pub fn line(self, dev: &str, driver: &str, bus_id: &str, cpu: usize, t: TxTimeout) -> String {
        match self {
            TimeoutReport::WarnOnce => format!(
                "NETDEV WATCHDOG: {dev} ({driver}): transmit queue {} timed out {} ms",
                t.queue, t.timed_out_ms
            ),
            TimeoutReport::NetdevCrit => format!(
                "{driver} {bus_id} {dev}: NETDEV WATCHDOG: CPU: {cpu}: transmit queue {} timed out {} ms",
                t.queue, t.timed_out_ms
            ),
        }
    }
}

/// The verdict's note on the ENETC's stopped transmit ring: what the netdev watchdog makes of
/// it. The ENETC's watchdog is never armed, so no transmit timeout follows, whatever the
/// simulated time.
pub fn stalled_ring_note() -> &'static str {
    if NetdevWatchdog::enetc(0).armed() {
        ", TX ring stopped"
    } else {
        ", TX ring stopped (no transmit timeout: fsl_enetc has no ndo_tx_timeout, so the netdev watchdog is not armed)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    /// The ENETC has no `ndo_tx_timeout`: its watchdog is never armed, so a ring stopped for
    /// a minute of simulated time is never reported.
    #[test]
    fn the_enetc_watchdog_is_never_armed() {
        let mut w = NetdevWatchdog::enetc(0);
        assert!(!w.armed());
        let stalled = [TxQueue {
            stopped: true,
            trans_start_ns: 0,
        }];
        for t in 0..=60 {
            assert_eq!(w.run(t * S, &stalled), None);
        }
    }

    /// A driver with `ndo_tx_timeout` and the ENETC's 5 s: a queue stopped since 1 s is
    /// reported by the first check after 6 s, not before; a queue that is not stopped never.
    #[test]
    fn a_stopped_queue_times_out_after_watchdog_timeo() {
        let ops = NetdevOps {
            ndo_tx_timeout: true,
        };
        let mut w = NetdevWatchdog::up(ops, 5 * S, 0);
        assert!(w.armed());
        let queues = [
            TxQueue {
                stopped: false,
                trans_start_ns: 0,
            },
            TxQueue {
                stopped: true,
                trans_start_ns: S,
            },
        ];
        assert_eq!(w.run(4 * S, &queues), None, "not due yet");
        assert_eq!(w.run(5 * S, &queues), None, "stopped for 4 s only");
        assert_eq!(w.run(9 * S, &queues), None, "next check is at 10 s");
        let t = w.run(10 * S, &queues).unwrap();
        assert_eq!(
            t,
            TxTimeout {
                queue: 1,
                timed_out_ms: 9000
            }
        );
        assert_eq!(
            TimeoutReport::WarnOnce.line("eno0", "fsl_enetc", "0000:00:00.0", 0, t),
            "NETDEV WATCHDOG: eno0 (fsl_enetc): transmit queue 1 timed out 9000 ms"
        );
        assert_eq!(
            TimeoutReport::NetdevCrit.line("eno0", "fsl_enetc", "0000:00:00.0", 1, t),
            "fsl_enetc 0000:00:00.0 eno0: NETDEV WATCHDOG: CPU: 1: transmit queue 1 timed out 9000 ms"
        );
    }
}
