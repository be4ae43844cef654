//! `spin_lock_irqsave`: a lock whose holder has its CPU's interrupts masked.

use crate::{local_irq_save, IrqsOff, Mutex, MutexGuard};
use std::ops::{Deref, DerefMut};

/// A spinlock taken with `spin_lock_irqsave`: [`SpinLockIrq::lock`] masks the calling task's
/// CPU ([`local_irq_save`], the same mask hook) before it spins, and the guard's drop unlocks
/// before it restores (`spin_unlock_irqrestore`), so an interrupt for that CPU that comes
/// while the lock is held or awaited is taken only after the unlock. A lock an interrupt
/// handler on the same CPU also takes can therefore not deadlock against its holder.
#[derive(Debug, Default)]
pub struct SpinLockIrq<T> {
    inner: Mutex<T>,
}

/// The guard of a [`SpinLockIrq`]: the lock, then the CPU's mask.
pub struct SpinLockIrqGuard<'a, T> {
    // Field order is drop order: the lock is released before interrupts are restored.
    lock: MutexGuard<'a, T>,
    _irqs: IrqsOff,
}

impl<T> SpinLockIrq<T> {
    pub const fn new(value: T) -> Self {
        SpinLockIrq {
            inner: Mutex::new(value),
        }
    }

    /// `spin_lock_irqsave`.
    pub fn lock(&self) -> SpinLockIrqGuard<'_, T> {
        let irqs = local_irq_save();
        SpinLockIrqGuard {
            lock: self.inner.lock(),
            _irqs: irqs,
        }
    }
}

impl<T> Deref for SpinLockIrqGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.lock
    }
}

impl<T> DerefMut for SpinLockIrqGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.lock
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{set_irq_mask_hook, thread, Arc};

    #[test]
    fn the_holder_masks_its_cpu_and_unlocks_before_it_restores() {
        thread::spawn(|| {
            let lock = Arc::new(SpinLockIrq::new(0u32));
            let events = Arc::new(Mutex::new(Vec::new()));
            let (l, e) = (lock.clone(), events.clone());
            set_irq_mask_hook(Some(Arc::new(move |on| {
                // At the restore the lock is already free.
                let free = l.inner.try_lock().is_some();
                e.lock().push((on, free));
            })));
            {
                let mut g = lock.lock();
                *g += 1;
                assert_eq!(*events.lock(), [(true, true)]);
            }
            assert_eq!(*events.lock(), [(true, true), (false, true)]);
            assert_eq!(*lock.lock(), 1);
            set_irq_mask_hook(None);
        })
        .join()
        .unwrap();
    }
}
