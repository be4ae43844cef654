//! One actor's script on the booted stack: each step calls the real core, driver or hardware
//! model, and what it saw goes into the run's shared record.

use super::{DomainOp, Shared, Stack, StackConfig, StackOp, StackProperty, BUFFERS};
use iommu::{CoreError, DriverError};
use smmu_addr::PhysAddr;
use smmu_sync::Mutex;

pub(super) fn act(cfg: &StackConfig, stack: &Stack, shared: &Mutex<Shared>, a: usize) {
    let actor = &cfg.actors[a];
    smmu_sync::set_task_name(&actor.name);
    let say = |line: String| shared.lock().lines.push(line);
    let buf_pa = PhysAddr::new(BUFFERS.as_u64() + ((a as u64) << 20));
    for op in &actor.script {
        let dev = actor.device.and_then(|d| cfg.devices.get(d));
        let id = actor.device.and_then(|d| stack.ids.lock().get(&d).copied());
        let (dev, id) = match (op, dev, id) {
            (StackOp::ProbeSmmu, ..) => {
                if let Err(e) = super::probe_smmu(cfg, stack) {
                    say(format!("{}: SMMU probe failed: {e}", actor.name));
                }
                continue;
            }
            (StackOp::Release(d), ..) => {
                // (The id is copied out first: the map's lock is not held across the release.)
                let id = stack.ids.lock().get(d).copied();
                if let Some(id) = id {
                    stack.core.release_device(id);
                }
                continue;
            }
            (StackOp::FqTimerExpiry(d), ..) => {
                let Some(id) = stack.ids.lock().get(d).copied() else {
                    continue;
                };
                let name = &cfg.devices[*d].name;
                match stack.core.fq_timer_expiry(id) {
                    Ok(true) => say(format!(
                        "{}: fq_flush_timeout of {name}: queue flushed",
                        actor.name
                    )),
                    Ok(false) => say(format!(
                        "{}: fq_flush_timeout of {name}: no timer armed",
                        actor.name
                    )),
                    Err(e) => {
                        let msg = format!(
                            "{} (fq_flush_timeout of {}): {e}",
                            actor.name, cfg.devices[*d].name
                        );
                        let mut sh = shared.lock();
                        sh.lines.push(msg.clone());
                        if matches!(e, iommu::DmaError::UseAfterFree { .. }) {
                            sh.findings.push((StackProperty::NoUseAfterFree, msg));
                        }
                    }
                }
                continue;
            }
            (StackOp::DeferredProbe(d), ..) => {
                // deferred_probe_work_func: of_dma_configure() → of_iommu_configure(), then
                // the IOMMU probe if the device has no group yet.
                let name = &cfg.devices[*d].name;
                if let Err(e) = stack.core.of_iommu_configure(&cfg.devices[*d].desc) {
                    let msg = format!("{} (of_iommu_configure of {name}): {e}", actor.name);
                    let mut sh = shared.lock();
                    sh.lines.push(msg.clone());
                    if matches!(e, CoreError::UseAfterFree { .. }) {
                        sh.findings.push((StackProperty::NoUseAfterFree, msg));
                    }
                }
                let probed = stack.ids.lock().contains_key(d);
                if probed {
                    continue;
                }
                if !probe_master(cfg, stack, shared, a, *d) {
                    return;
                }
                continue;
            }
            (StackOp::RemoveSmmu(op), ..) => {
                super::lifecycle::remove_smmu(stack, shared, &actor.name, op);
                continue;
            }
            (StackOp::Bind(d), ..) => {
                if !super::lifecycle::bind(cfg, stack, shared, a, *d) {
                    return;
                }
                continue;
            }
            (StackOp::Unbind(d), ..) => {
                super::lifecycle::unbind(cfg, stack, shared, *d);
                continue;
            }
            (StackOp::Domain(DomainOp::Free { domain }), ..) => {
                super::domain::free(stack, shared, &actor.name, domain);
                continue;
            }
            (StackOp::ProbeMaster(d), ..) => {
                if !probe_master(cfg, stack, shared, a, *d) {
                    // The probe hung: this task goes no further.
                    return;
                }
                continue;
            }
            (StackOp::ClaimDmaOwner { device, owner }, ..) => {
                let d = &cfg.devices[*device];
                let Some(id) = stack.ids.lock().get(device).copied() else {
                    say(format!("{}: claim DMA owner: not probed", d.name));
                    continue;
                };
                match stack.core.claim_dma_owner(id, owner.as_deref()) {
                    Ok(()) => say(format!("{}: DMA owner claimed", d.name)),
                    Err(e) => say(format!("{}: claim DMA owner failed: {e}", d.name)),
                }
                continue;
            }
            (StackOp::ReleaseDmaOwner(device), ..) => {
                let id = stack.ids.lock().get(device).copied();
                if let Some(id) = id {
                    stack.core.release_dma_owner(id);
                }
                continue;
            }
            (_, Some(dev), Some(id)) => (dev, id),
            (_, Some(dev), None) => {
                say(format!(
                    "{}: {}: the device was never probed",
                    actor.name, dev.name
                ));
                return;
            }
            (_, None, _) => return,
        };
        match op {
            StackOp::ProbeSmmu
            | StackOp::ProbeMaster(_)
            | StackOp::ClaimDmaOwner { .. }
            | StackOp::ReleaseDmaOwner(_)
            | StackOp::DeferredProbe(_)
            | StackOp::Release(_)
            | StackOp::FqTimerExpiry(_)
            | StackOp::Bind(_)
            | StackOp::Unbind(_)
            | StackOp::RemoveSmmu(_)
            | StackOp::Domain(DomainOp::Free { .. }) => {}
            StackOp::DmaAllocCoherent { size, buffer } => {
                if !super::lifecycle::alloc_coherent(stack, shared, dev, id, *size, buffer) {
                    return;
                }
            }
            StackOp::DmaFreeCoherent { buffer } => {
                if !super::lifecycle::free_coherent(stack, shared, dev, id, buffer) {
                    return;
                }
            }
            StackOp::DmaUnmap { buffer } => {
                let (list, kind) = {
                    let sh = shared.lock();
                    (
                        sh.buffers.get(buffer).cloned(),
                        sh.kinds.get(buffer).copied(),
                    )
                };
                let (Some(list), Some((dir, sg))) = (list, kind) else {
                    say(format!("{}: unmap of {buffer}: not mapped", dev.name));
                    continue;
                };
                let r = if sg {
                    stack.core.dma_unmap_sg(id, &list, dir)
                } else {
                    let (addr, len) = list[0];
                    stack.core.dma_unmap_page(id, addr, len, dir)
                };
                match r {
                    Ok(()) => {
                        say(format!("{}: {buffer} unmapped", dev.name));
                        shared.lock().buffers.remove(buffer);
                    }
                    Err(e) => {
                        let call = format!("unmap of {buffer}");
                        if !super::lifecycle::dma_failed(shared, &dev.name, &call, &e) {
                            return;
                        }
                    }
                }
            }
            StackOp::FailPgtableAlloc => {
                let mut taken = 0u64;
                while stack.tables.alloc(physmem::FRAME_SIZE).is_ok() {
                    taken += 1;
                }
                say(format!(
                    "{}: fault injection: page-table pool exhausted ({taken} frames taken)",
                    actor.name
                ));
            }
            StackOp::DmaMapSg {
                nents,
                size,
                dir,
                buffer,
            } => {
                let segs: Vec<(PhysAddr, u64)> = (0..u64::from(*nents))
                    .map(|i| {
                        (
                            PhysAddr::new(
                                buf_pa.as_u64()
                                    + i * size.next_multiple_of(crate::PAGE_SIZE.bytes()),
                            ),
                            *size,
                        )
                    })
                    .collect();
                match stack.core.dma_map_sg(id, &segs, *dir) {
                    Ok(list) => {
                        say(format!(
                            "{}: dma_map_sg({nents} x {size:#x}) = {}",
                            dev.name,
                            list.iter()
                                .map(|(a, l)| format!("{a:#x}+{l:#x}"))
                                .collect::<Vec<_>>()
                                .join(" ")
                        ));
                        if let Some(&(first, _)) = list.first() {
                            super::domain::check_iova_start(
                                stack,
                                shared,
                                dev,
                                id,
                                "dma_map_sg",
                                first,
                            );
                        }
                        let translated = super::lifecycle::translates(stack, id);
                        let mut sh = shared.lock();
                        sh.buffers.insert(buffer.clone(), list);
                        sh.kinds.insert(buffer.clone(), (*dir, true));
                        if translated {
                            sh.iova_buffers.insert(buffer.clone());
                        }
                    }
                    Err(e) => {
                        if !super::lifecycle::dma_failed(shared, &dev.name, "dma_map_sg", &e) {
                            return;
                        }
                    }
                }
            }
            StackOp::DmaMapPage { size, dir, buffer } => {
                match stack.core.dma_map_page(id, buf_pa, *size, *dir) {
                    Ok(addr) => {
                        say(format!("{}: dma_map_page({size:#x}) = {addr:#x}", dev.name));
                        super::domain::check_iova_start(
                            stack,
                            shared,
                            dev,
                            id,
                            "dma_map_page",
                            addr,
                        );
                        let translated = super::lifecycle::translates(stack, id);
                        let mut sh = shared.lock();
                        sh.buffers.insert(buffer.clone(), vec![(addr, *size)]);
                        sh.kinds.insert(buffer.clone(), (*dir, false));
                        if translated {
                            sh.iova_buffers.insert(buffer.clone());
                        }
                    }
                    Err(e) => {
                        if !super::lifecycle::dma_failed(shared, &dev.name, "dma_map_page", &e) {
                            return;
                        }
                    }
                }
            }
            StackOp::DeviceAccess { write, buffer } => {
                super::access::device_access(cfg, stack, shared, dev, *write, buffer)
            }
            StackOp::Domain(op) => super::domain::run(stack, shared, dev, id, op),
        }
    }
}

/// `iommu_probe_device` of master `d` by actor `a`; `false` when the task dies in it (an
/// oops) or the probe can never return (a kernel mutex it waits for is never released): the
/// run's finding.
pub(super) fn probe_master(
    cfg: &StackConfig,
    stack: &Stack,
    shared: &Mutex<Shared>,
    a: usize,
    d: usize,
) -> bool {
    let dev = &cfg.devices[d];
    let actor = &cfg.actors[a].name;
    let Some(inst) = *stack.inst.lock() else {
        shared
            .lock()
            .lines
            .push(format!("{actor}: {}: no IOMMU instance yet", dev.name));
        return true;
    };
    match stack.core.probe_device(dev.desc.clone(), inst) {
        Ok(id) => {
            stack.ids.lock().insert(d, id);
            true
        }
        Err(CoreError::Driver(e @ DriverError::NullDereference { .. })) => {
            let msg = format!("{actor} (probing {}): {e}", dev.name);
            let mut sh = shared.lock();
            sh.lines.push(msg.clone());
            sh.findings.push((StackProperty::NoOops, msg));
            false
        }
        Err(CoreError::Driver(DriverError::Deadlock(dl))) => {
            let msg = format!("{} (probing {}): {dl}", actor, dev.name);
            let mut sh = shared.lock();
            sh.lines.push(msg.clone());
            sh.findings.push((StackProperty::NoDeadlock, msg));
            false
        }
        Err(e) => {
            shared
                .lock()
                .lines
                .push(format!("{actor}: {}: probe failed: {e}", dev.name));
            true
        }
    }
}
