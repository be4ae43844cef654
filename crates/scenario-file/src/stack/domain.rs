//! The real stack's unmanaged-domain operations: `iommu_domain_alloc`, `iommu_attach_device`,
//! `iommu_detach_device`, `iommu_map`, `iommu_unmap` and `iommu_domain_free` through the IOMMU
//! core and the arm-smmu driver's page tables, the `no-block-split` check made from the
//! device's side of each unmap and the `map-reachable` check of each map.
//!
//! A domain maps the physical window below the actor's buffers: `iommu-map` of `size` bytes
//! at `iova` maps to [`super::BUFFERS`] aligned down to the largest block size the request can
//! use (so a 2 MiB request at a 2 MiB-aligned IOVA gets one block entry, as a driver handing
//! `iommu_map` a 2 MiB-aligned buffer would).

use super::{Shared, Stack, StackDevice, StackProperty, BUFFERS};
use iommu::{CoreError, DeviceId, Domain, Prot};
use mmu500::Translation;
use smmu_addr::{DmaAddr, Iova, IovaPfn, PageSize, PhysAddr};
use smmu_arch::Access;
use smmu_sync::{Arc, Mutex};

/// An unmanaged-domain step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainOp {
    /// `iommu_domain_alloc` on the device's SMMU, kept as `domain`.
    Alloc {
        /// Handle.
        domain: String,
    },
    /// `iommu_attach_device(domain, dev)`.
    Attach {
        /// Handle.
        domain: String,
    },
    /// `iommu_map(domain, iova, pa, size, READ | WRITE)`.
    Map {
        /// Handle.
        domain: String,
        /// IOVA.
        iova: Iova,
        /// Bytes.
        size: u64,
        /// The name the device's DMA engine reads or writes the mapping by, if any.
        buffer: Option<String>,
    },
    /// `iommu_unmap(domain, iova, size)`.
    Unmap {
        /// Handle.
        domain: String,
        /// IOVA.
        iova: Iova,
        /// Bytes.
        size: u64,
    },
    /// `iommu_detach_device(domain, dev)`.
    Detach {
        /// Handle.
        domain: String,
    },
    /// `iommu_domain_free(domain)` (needs no device: run by [`free`]).
    Free {
        /// Handle.
        domain: String,
    },
}

/// `iommu_domain_free` of the domain the file calls `name`, by actor `actor`. Freeing it
/// while attached is Linux's behaviour (the driver destroys the context bank the device's
/// streams still point at); a second free is a `no-use-after-free` finding.
pub(super) fn free(stack: &Stack, shared: &Mutex<Shared>, actor: &str, name: &str) {
    let Some(d) = domain(shared, name) else {
        shared
            .lock()
            .lines
            .push(format!("{actor}: iommu_domain_free: no domain {name}"));
        return;
    };
    let attached = stack.core.groups_attached_to(&d);
    let r = stack.core.iommu_domain_free(&d);
    let mut sh = shared.lock();
    match r {
        Ok(()) if attached.is_empty() => {
            sh.lines.push(format!("{actor}: iommu_domain_free({name})"))
        }
        Ok(()) => {
            let groups: Vec<String> = attached.iter().map(u32::to_string).collect();
            sh.lines.push(format!(
                "{actor}: iommu_domain_free({name}) while group {} is still attached to it",
                groups.join(", ")
            ));
        }
        Err(e) => {
            let msg = format!("{actor}: iommu_domain_free({name}) failed: {e}");
            sh.lines.push(msg.clone());
            if matches!(e, CoreError::UseAfterFree { .. }) {
                sh.findings.push((StackProperty::NoUseAfterFree, msg));
            }
        }
    }
}

/// A failed core call on an unmanaged domain: the line, and a `no-use-after-free` finding
/// when the domain had been freed.
fn core_failed(shared: &Mutex<Shared>, line: String, e: &CoreError) {
    let mut sh = shared.lock();
    sh.lines.push(line.clone());
    if matches!(e, CoreError::UseAfterFree { .. }) {
        sh.findings.push((StackProperty::NoUseAfterFree, line));
    }
}

/// The physical address `iommu-map` maps `size` bytes at `iova` to: the buffer area aligned
/// down to the largest power of two that divides `iova` and is at most `size` (capped at
/// 1 GiB, the largest block of the 4 KiB granule).
pub fn map_target(iova: Iova, size: u64) -> PhysAddr {
    let largest = PageSize::SZ_1G;
    let by_iova = if iova == Iova::ZERO {
        largest.bytes()
    } else {
        1u64 << iova.as_u64().trailing_zeros().min(largest.shift())
    };
    let by_size = if size == 0 {
        1
    } else {
        1u64 << (63 - size.leading_zeros()).min(largest.shift())
    };
    PhysAddr::new(BUFFERS.as_u64() & !(by_iova.min(by_size) - 1))
}

/// The leaf size the device's transaction at `iova` is translated through, if it translates.
fn device_leaf(stack: &Stack, dev: &StackDevice, iova: Iova) -> Option<u64> {
    match stack.model.translate(dev.wire_sid, iova, Access::Read) {
        Ok(Translation::Translated { leaf_size, .. }) => Some(leaf_size.bytes()),
        _ => None,
    }
}

/// `no-iova-below-start`: the DMA address `addr` the DMA API handed the device lies at or
/// above its default domain's first allocatable page.
pub(super) fn check_iova_start(
    stack: &Stack,
    shared: &Mutex<Shared>,
    dev: &StackDevice,
    id: DeviceId,
    call: &str,
    addr: DmaAddr,
) {
    let Some(p) = stack.core.default_domain(id).and_then(|d| d.iova_params()) else {
        return;
    };
    if IovaPfn::of(addr.bus_iova(), p.shift) < p.start_pfn {
        let msg = format!(
            "{call} handed {} IOVA {addr:#x}, below its domain's first page (start_pfn {:#x})",
            dev.name, p.start_pfn
        );
        let mut sh = shared.lock();
        sh.lines.push(msg.clone());
        sh.findings.push((StackProperty::NoIovaBelowStart, msg));
    }
}

/// `no-mapping-after-unmap`: after `iommu_unmap(name, iova, size)` reported `unmapped` bytes
/// gone, none of their pages may still translate for the device. Each page the domain's
/// tables still map (asked first of the core, so the device's probe never faults) is walked by
/// the MMU-500 model for the device's stream, after the unmap's TLB invalidation: a
/// translation there is a mapping the caller was told is gone.
fn check_unmapped(
    stack: &Stack,
    shared: &Mutex<Shared>,
    dev: &StackDevice,
    d: &Arc<Domain>,
    (name, iova, size): (&str, Iova, u64),
    unmapped: u64,
) {
    let stale = (0..unmapped / GRANULE)
        .filter_map(|k| iova.checked_add(k * GRANULE))
        .filter(|&va| stack.core.iova_to_phys(d, va).is_some())
        .filter(|&va| device_leaf(stack, dev, va).is_some())
        .collect::<Vec<_>>();
    if let (Some(first), Some(last)) = (stale.first(), stale.last()) {
        let msg = format!(
            "iommu_unmap({name}, {iova:#x}, {size:#x}) reported {unmapped:#x} bytes unmapped, but the device's transactions still translate through {} of its pages ({first:#x}..={last:#x})",
            stale.len()
        );
        let mut sh = shared.lock();
        sh.lines.push(msg.clone());
        sh.findings.push((StackProperty::NoMappingAfterUnmap, msg));
    }
}

/// The page size `check_unmapped` walks at (the 4 KiB granule the stack's domains use).
const GRANULE: u64 = 0x1000;

/// `map-reachable`: an `iommu_map` of `[iova, iova + size)` inside the domain's aperture
/// succeeded (`ok`), and the device's own transaction at `iova` reaches `pa`. The model is
/// asked only where the tables map the IOVA, so the check itself never faults.
#[allow(clippy::too_many_arguments)]
fn check_reachable(
    stack: &Stack,
    shared: &Mutex<Shared>,
    dev: &StackDevice,
    d: &Arc<Domain>,
    call: &str,
    iova: Iova,
    pa: PhysAddr,
    size: u64,
    ok: bool,
) {
    let Some(geo) = d.geometry() else {
        return;
    };
    let inside = iova
        .last_byte(size)
        .is_ok_and(|last| iova >= geo.aperture_start && last <= geo.aperture_end);
    if !inside {
        return;
    }
    let msg = if !ok {
        format!(
            "{call} failed for a range inside the domain's aperture {:#x}..={:#x}",
            geo.aperture_start, geo.aperture_end
        )
    } else if stack.core.iova_to_phys(d, iova).is_none() {
        format!("{call} returned 0 but the tables map nothing at {iova:#x}")
    } else {
        match stack.model.translate(dev.wire_sid, iova, Access::Read) {
            Ok(t) if t.pa() == pa => return,
            Ok(t) => format!(
                "{call}: {}'s transaction at {iova:#x} reaches {:#x}, not {pa:#x}",
                dev.name,
                t.pa()
            ),
            Err(f) => format!(
                "{call}: {}'s transaction at {iova:#x} faults: {f}",
                dev.name
            ),
        }
    };
    let mut sh = shared.lock();
    sh.lines.push(msg.clone());
    sh.findings.push((StackProperty::MapReachable, msg));
}

fn domain(shared: &Mutex<Shared>, name: &str) -> Option<Arc<Domain>> {
    shared.lock().domains.get(name).cloned()
}

/// Run one domain step for `dev` (core id `id`); lines and findings go to `shared`.
pub(super) fn run(
    stack: &Stack,
    shared: &Mutex<Shared>,
    dev: &StackDevice,
    id: DeviceId,
    op: &DomainOp,
) {
    let say = |line: String| shared.lock().lines.push(line);
    match op {
        DomainOp::Alloc { domain: name } => {
            let inst = *stack.inst.lock();
            let Some(inst) = inst else {
                say(format!(
                    "{}: iommu_domain_alloc: no SMMU registered",
                    dev.name
                ));
                return;
            };
            match stack.core.alloc_unmanaged(inst) {
                Ok(d) => {
                    say(format!("{}: iommu_domain_alloc() = {name}", dev.name));
                    shared.lock().domains.insert(name.clone(), d);
                }
                Err(e) => say(format!("{}: iommu_domain_alloc failed: {e}", dev.name)),
            }
        }
        DomainOp::Attach { domain: name } => {
            let Some(d) = domain(shared, name) else {
                say(format!("{}: attach: no domain {name}", dev.name));
                return;
            };
            match stack.core.attach_device(id, &d) {
                Ok(()) => say(format!("{}: iommu_attach_device({name}) = 0", dev.name)),
                Err(e) => core_failed(
                    shared,
                    format!("{}: iommu_attach_device({name}) failed: {e}", dev.name),
                    &e,
                ),
            }
        }
        DomainOp::Detach { domain: name } => {
            let Some(d) = domain(shared, name) else {
                say(format!("{}: detach: no domain {name}", dev.name));
                return;
            };
            match stack.core.iommu_detach_device(id, &d) {
                Ok(true) => say(format!("{}: iommu_detach_device({name})", dev.name)),
                Ok(false) => say(format!(
                    "{}: iommu_detach_device({name}): nothing detached",
                    dev.name
                )),
                Err(e) => say(format!(
                    "{}: iommu_detach_device({name}) failed: {e}",
                    dev.name
                )),
            }
        }
        DomainOp::Free { .. } => {}
        DomainOp::Map {
            domain: name,
            iova,
            size,
            buffer,
        } => {
            let Some(d) = domain(shared, name) else {
                say(format!("{}: iommu_map: no domain {name}", dev.name));
                return;
            };
            let pa = map_target(*iova, *size);
            let result = stack
                .core
                .iommu_map(&d, *iova, pa, *size, Prot::READ.union(Prot::WRITE));
            let call = format!("iommu_map({name}, {iova:#x}, {pa:#x}, {size:#x})");
            match &result {
                Ok(()) => {
                    let mut sh = shared.lock();
                    sh.lines.push(format!("{}: {call} = 0", dev.name));
                    if let Some(b) = buffer {
                        let addr = DmaAddr::from_iova(*iova);
                        sh.buffers.insert(b.clone(), vec![(addr, *size)]);
                        sh.iova_buffers.insert(b.clone());
                    }
                }
                Err(e) => core_failed(shared, format!("{}: {call} failed: {e}", dev.name), e),
            }
            check_reachable(
                stack,
                shared,
                dev,
                &d,
                &call,
                *iova,
                pa,
                *size,
                result.is_ok(),
            );
        }
        DomainOp::Unmap {
            domain: name,
            iova,
            size,
        } => {
            let Some(d) = domain(shared, name) else {
                say(format!("{}: iommu_unmap: no domain {name}", dev.name));
                return;
            };
            // What the device's transactions go through at the IOVA before the unmap (asked
            // of the model only where the tables map it, so the probe itself never faults).
            let leaf = (stack.core.iova_to_phys(&d, *iova).is_some())
                .then(|| device_leaf(stack, dev, *iova))
                .flatten();
            match stack.core.iommu_unmap(&d, *iova, *size) {
                Ok(unmapped) => {
                    let line = format!(
                        "{}: iommu_unmap({name}, {iova:#x}, {size:#x}) = {unmapped:#x}",
                        dev.name
                    );
                    let mut sh = shared.lock();
                    sh.lines.push(line);
                    // Part of a block reported unmapped: the rest of the block is still
                    // mapped, now through a table of smaller entries.
                    if let Some(leaf) = leaf.filter(|&l| unmapped > 0 && unmapped < l) {
                        let msg = format!(
                            "iommu_unmap({name}, {iova:#x}, {size:#x}) unmapped {unmapped:#x} bytes of the {leaf:#x}-byte block the device's transactions used: the block was split"
                        );
                        sh.lines.push(msg.clone());
                        sh.findings.push((StackProperty::NoBlockSplit, msg));
                    }
                    drop(sh);
                    check_unmapped(stack, shared, dev, &d, (name, *iova, *size), unmapped);
                }
                Err(e) => core_failed(
                    shared,
                    format!(
                        "{}: iommu_unmap({name}, {iova:#x}, {size:#x}) failed: {e}",
                        dev.name
                    ),
                    &e,
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_target_aligns_to_the_largest_usable_block() {
        assert_eq!(BUFFERS, PhysAddr::new(0x8080_0000));
        assert_eq!(
            map_target(Iova::new(0x20_0000), 0x20_0000),
            PhysAddr::new(0x8080_0000)
        );
        assert_eq!(
            map_target(Iova::new(0x1000), 0x20_0000),
            PhysAddr::new(0x8080_0000)
        );
        assert_eq!(
            map_target(Iova::new(0xfe_8000_0000), 1 << 30),
            PhysAddr::new(0x8000_0000)
        );
        assert_eq!(
            map_target(Iova::new(0x40_0000), 0x1000),
            PhysAddr::new(0x8080_0000)
        );
    }
}
