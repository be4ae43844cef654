//! The console as v6.1's printk drives it (`kernel/printk/printk.c`, before the 6.2+ rework):
//! who holds the console lock, which records are stored but not yet written, and the loop
//! that writes them one at a time.
//!
//! * `vprintk_emit` stores the record, then `console_trylock_spinning()`; only the context that
//!   gets the lock writes (`console_unlock`). A printk whose trylock fails only stores: the
//!   holder writes its record. So a hardirq taken on the CPU whose task holds the console stores
//!   and returns at once, and the interrupted task writes its records afterwards (their
//!   timestamps are the store times).
//! * `console_unlock` → `console_flush_all`: one record at a time, each with interrupts off
//!   (`printk_safe_enter_irqsave` … `exit_irqrestore`) for its time on the wire; interrupts are
//!   taken between records and after the last one, before the lock is released (v6.1's
//!   re-check for records stored after its last look never finds any here: see
//!   `console_unlock`).
//! * `console_flush_on_panic` writes every pending record.
//!
//! **Not modelled: the cross-CPU hand-over.** In Linux a printk on another CPU that finds the
//! holder *in the middle of a record* (`console_owner` set) spins and takes the console over at
//! the end of that record. Here a record is one atomic advance of the clock with interrupts
//! off and no scheduling point inside, so no other context ever sees a record half-written:
//! every printk that fails the trylock finds the holder between records (`console_owner`
//! NULL), where v6.1 too only stores. The spinning hand-over therefore never arises.

use super::{console_line_ns, Dmesg};
use crate::exec::Context;
use klog::Record;
use smmu_sync::atomic::Ordering;
use smmu_sync::{sched_point, Arc, Point};

/// Where a printk runs, as the execution model says (see [`Dmesg::set_context_source`]).
pub type ContextSource = Arc<dyn Fn() -> Option<Context> + Send + Sync>;

/// The context that holds the console lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleOwner {
    /// Its execution context (CPU, task, hardirq or not); `None` for a caller on no simulated
    /// CPU (the boot before the CPUs start, a test without an execution model).
    pub context: Option<Context>,
}

/// The log buffer with the console's position in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct LogBuf {
    /// Every record, in store order.
    pub(super) records: Vec<Record>,
    /// The first record not yet written to the console (`console_seq`).
    pub(super) console_seq: usize,
    /// Who holds the console lock (`console_sem`).
    pub(super) owner: Option<ConsoleOwner>,
}

impl Dmesg {
    /// Let printk ask the execution model which context it runs in (the console owner it
    /// records). Without one every caller is on no CPU.
    pub fn set_context_source(&self, f: ContextSource) {
        *self.context_of.lock() = Some(f);
    }

    fn current_context(&self) -> Option<Context> {
        let f = self.context_of.lock().clone();
        f.and_then(|f| f())
    }

    /// Who holds the console now.
    pub fn console_owner(&self) -> Option<ConsoleOwner> {
        self.buf.lock().owner.clone()
    }

    /// Records stored and not yet written to the console.
    pub fn console_pending(&self) -> usize {
        let b = self.buf.lock();
        b.records.len() - b.console_seq
    }

    /// `vprintk_emit` after the store: `console_trylock_spinning()`, and `console_unlock()`
    /// when it succeeded.
    pub(super) fn try_print(&self) {
        let ctx = self.current_context();
        {
            let mut b = self.buf.lock();
            if b.owner.is_some() {
                // The trylock fails; the holder is between records (see the module's note):
                // it writes this record.
                return;
            }
            b.owner = Some(ConsoleOwner { context: ctx });
        }
        self.console_unlock();
    }

    /// `console_unlock`: write the pending records, then release the console. v6.1 then looks
    /// again for records stored after its last look and retries the trylock; here no other
    /// context runs between that look and the release (no scheduling point lies between them),
    /// so there are never any, and the retry is not modelled.
    fn console_unlock(&self) {
        while let Some(len) = self.next_to_write() {
            self.emit_record(len);
            // Interrupts are on again: the CPU takes what is pending, between records and
            // after the last one, before the console is released.
            sched_point(Point::Irq);
        }
        self.buf.lock().owner = None;
    }

    /// The length of the next record to write, `None` when there is none (or the kernel is
    /// dead: the panic flushed the console). With no console every record counts as written.
    fn next_to_write(&self) -> Option<usize> {
        let mut b = self.buf.lock();
        if self.stopped() {
            return None;
        }
        if self.console_baud.load(Ordering::SeqCst) == 0 {
            b.console_seq = b.records.len();
            return None;
        }
        b.records.get(b.console_seq).map(|r| r.line.len())
    }

    /// `console_emit_next_record`: the record's time on the wire with interrupts off.
    fn emit_record(&self, len: usize) {
        let _irqs_off = smmu_sync::local_irq_save();
        self.advance_ns(console_line_ns(
            len,
            self.console_baud.load(Ordering::SeqCst),
        ));
        self.buf.lock().console_seq += 1;
    }

    /// `console_flush_on_panic`: every record not yet written is written now.
    pub(super) fn flush_on_panic(b: &mut LogBuf, baud: u64) -> u64 {
        let ns = b.records[b.console_seq..]
            .iter()
            .map(|r| console_line_ns(r.line.len(), baud))
            .sum();
        b.console_seq = b.records.len();
        ns
    }
}
