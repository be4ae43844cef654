//! The real stack's driver-core and coherent-DMA steps: `bind` and `unbind` of a master (the
//! driver core's `dma_configure`/`dma_cleanup` around the driver), `unbind` or `remove` of the
//! SMMU itself (arm-smmu's `.remove`, which calls `iommu_device_unregister`), and
//! `dma_alloc_coherent`/`dma_free_coherent`.

use super::{Shared, Stack, StackConfig, StackDevice, StackProperty};
use iommu::{DeviceId, DmaDirection, DmaError, DomainKind};
use smmu_sync::Mutex;

/// A DMA API call by `who` failed with `e`: the line, and the finding when the simulated
/// kernel oopsed or used freed memory. `false` when the task died in the call (an oops).
pub(super) fn dma_failed(shared: &Mutex<Shared>, who: &str, call: &str, e: &DmaError) -> bool {
    let msg = format!("{who}: {call} failed: {e}");
    let mut sh = shared.lock();
    sh.lines.push(msg.clone());
    match e {
        DmaError::Oops(_) => {
            sh.findings.push((StackProperty::NoOops, msg));
            false
        }
        DmaError::UseAfterFree { .. } => {
            sh.findings.push((StackProperty::NoUseAfterFree, msg));
            true
        }
        _ => true,
    }
}

/// Whether the device's DMA addresses are IOVAs (its default domain translates), so a
/// transaction on one that bypasses the SMMU lands on the wrong memory.
pub(super) fn translates(stack: &Stack, id: DeviceId) -> bool {
    stack
        .core
        .default_domain(id)
        .is_some_and(|d| d.kind() != DomainKind::Identity)
}

/// `unbind` or `remove` of the SMMU: arm-smmu's `.remove` for the kernel's driver (the
/// notice, `iommu_device_unregister` — which releases every master since 57365a04c921 —
/// then sCR0), after which the driver core no longer has the SMMU bound.
pub(super) fn remove_smmu(stack: &Stack, shared: &Mutex<Shared>, actor: &str, op: &str) {
    let smmu = stack.smmu.lock().clone();
    let inst = *stack.inst.lock();
    let (Some(smmu), Some(inst)) = (smmu, inst) else {
        shared
            .lock()
            .lines
            .push(format!("{actor}: {op} of the SMMU: no driver bound"));
        return;
    };
    smmu.remove(&mut || {
        if let Err(e) = stack.core.unregister(inst) {
            shared
                .lock()
                .lines
                .push(format!("{actor}: iommu_device_unregister: {e}"));
        }
    });
    smmu.set_bound(false);
    *stack.smmu.lock() = None;
    shared
        .lock()
        .lines
        .push(format!("{actor}: {op} of the SMMU: .remove returned"));
}

/// `bind` of master `d`: the driver core's `really_probe` — `dma_configure` (the IOMMU probe
/// of a device that has no group yet, then `iommu_device_use_default_domain`), then the
/// driver's `.probe`. `false` when the task cannot go on (the probe oopsed or hung).
pub(super) fn bind(
    cfg: &StackConfig,
    stack: &Stack,
    shared: &Mutex<Shared>,
    a: usize,
    d: usize,
) -> bool {
    let name = &cfg.devices[d].name;
    let probed = stack.ids.lock().contains_key(&d);
    if !probed && !super::act::probe_master(cfg, stack, shared, a, d) {
        return false;
    }
    let Some(id) = stack.ids.lock().get(&d).copied() else {
        return true;
    };
    let line = match stack.core.use_default_domain(id) {
        Ok(()) => format!("{name}: bound"),
        Err(e) => format!("{name}: bind failed: {e}"),
    };
    shared.lock().lines.push(line);
    true
}

/// `unbind` of master `d`: the driver's `.remove` (the file's own steps before this one),
/// then `dma_cleanup`: `iommu_device_unuse_default_domain`.
pub(super) fn unbind(cfg: &StackConfig, stack: &Stack, shared: &Mutex<Shared>, d: usize) {
    let name = &cfg.devices[d].name;
    let id = stack.ids.lock().get(&d).copied();
    if let Some(id) = id {
        stack.core.unuse_default_domain(id);
    }
    shared.lock().lines.push(format!("{name}: unbound"));
}

/// `dma_alloc_coherent` of `size` bytes, kept as `buffer`. `false` when the task died.
pub(super) fn alloc_coherent(
    stack: &Stack,
    shared: &Mutex<Shared>,
    dev: &StackDevice,
    id: DeviceId,
    size: u64,
    buffer: &str,
) -> bool {
    match stack.core.dma_alloc_coherent(id, size) {
        Ok((cpu, dma)) => {
            let translated = translates(stack, id);
            let mut sh = shared.lock();
            sh.lines.push(format!(
                "{}: dma_alloc_coherent({size:#x}) = {dma:#x} (memory at {cpu:#x})",
                dev.name
            ));
            sh.buffers.insert(buffer.to_string(), vec![(dma, size)]);
            sh.kinds
                .insert(buffer.to_string(), (DmaDirection::Bidirectional, false));
            sh.coherent.insert(buffer.to_string(), (cpu, dma, size));
            if translated {
                sh.iova_buffers.insert(buffer.to_string());
            }
            true
        }
        Err(e) => dma_failed(shared, &dev.name, "dma_alloc_coherent", &e),
    }
}

/// `dma_free_coherent` of `buffer`. `false` when the task died.
pub(super) fn free_coherent(
    stack: &Stack,
    shared: &Mutex<Shared>,
    dev: &StackDevice,
    id: DeviceId,
    buffer: &str,
) -> bool {
    let Some((cpu, dma, size)) = shared.lock().coherent.get(buffer).copied() else {
        shared
            .lock()
            .lines
            .push(format!("{}: free of {buffer}: not allocated", dev.name));
        return true;
    };
    match stack.core.dma_free_coherent(id, size, cpu, dma) {
        Ok(()) => {
            let mut sh = shared.lock();
            sh.lines.push(format!("{}: {buffer} freed", dev.name));
            sh.buffers.remove(buffer);
            sh.coherent.remove(buffer);
            true
        }
        Err(e) => dma_failed(shared, &dev.name, "dma_free_coherent", &e),
    }
}
