//! The DMA side: `dma_map_page`/`dma_map_sg` with their IOVAs, strict and lazy unmap, the
//! flush-queue timer, DMA-ownership claims, fault injection, and the device's own reads and
//! writes through its domain.

use crate::kernel::{Buffer, Ctx, FqTimer, Halt, State};
use crate::model::{Op, Property};

const PAGE: u64 = 0x1000;

fn pages(bytes: u64) -> u64 {
    bytes.div_ceil(PAGE).max(1)
}

/// Run a DMA or ownership operation on device `dev_name`.
pub(crate) fn run(ctx: &Ctx, op: &Op, dev_name: &str) -> Result<(), Halt> {
    let d = ctx.dev(dev_name);
    match op {
        Op::DmaMapPage { size, buffer } => {
            map(ctx, d, pages(*size) * PAGE, 1, buffer);
        }
        Op::DmaMapSg {
            nents,
            size,
            buffer,
        } => {
            map(ctx, d, pages(*size) * PAGE, *nents, buffer);
        }
        Op::DmaUnmap { buffer } => unmap(ctx, buffer),
        Op::FqTimerExpiry => fq_timeout(ctx, d),
        Op::ClaimDmaOwner { owner } => claim(ctx, d, owner.as_deref()),
        Op::ReleaseDmaOwner => ctx.step(|s| {
            if let Some(g) = s.devs[d].group {
                s.groups[g].owner_cnt = s.groups[g].owner_cnt.saturating_sub(1);
                if s.groups[g].owner_cnt == 0 {
                    s.groups[g].owner = None;
                }
            }
        }),
        Op::DeviceWrite { buffer } => return device_access(ctx, d, buffer, "write"),
        Op::DeviceRead { buffer } => return device_access(ctx, d, buffer, "read"),
        Op::Probe | Op::DeferredProbe | Op::Remove => {}
    }
    Ok(())
}

/// Allocate an IOVA range top-down in the domain.
fn alloc_iova(s: &mut State, dom: usize, bytes: u64) -> u64 {
    let dm = &mut s.domains[dom];
    dm.iova_top -= bytes;
    dm.iovas.insert(dm.iova_top, bytes);
    dm.iova_top
}

/// `dma_map_page` (one entry) or `dma_map_sg` (`nents` entries of `entry` bytes).
fn map(ctx: &Ctx, d: usize, entry: u64, nents: u32, buffer: &str) {
    let total = entry * u64::from(nents);
    let Some((dom, iova)) = ctx.step(|s| {
        let dom = s.devs[d].domain?;
        Some((dom, alloc_iova(s, dom, total)))
    }) else {
        ctx.step(|s| {
            let line = format!("{}: DMA map with no domain attached", ctx.dev_name(d));
            ctx.log(s, line);
        });
        return;
    };
    // iommu_map()/iommu_map_sg(): the page tables. (A failing allocation is the real stack's:
    // the iommu crate's dma_map_sg and its result check, a3884774d731.)
    ctx.step(|s| {
        let dm = &mut s.domains[dom];
        let mut p = iova;
        while p < iova + total {
            dm.mappings.insert(p, 0x8000_0000 + (p & 0xfff_ffff));
            p += PAGE;
        }
    });
    ctx.step(|s| {
        let name = ctx.dev_name(d).to_string();
        s.buffers.insert(
            buffer.to_string(),
            Buffer {
                dev: d,
                domain: dom,
                iova,
                bytes: total,
            },
        );
        ctx.log(
            s,
            format!("{name}: {buffer} mapped at IOVA {iova:#x} ({total:#x} bytes)"),
        );
        let clash = s
            .buffers
            .iter()
            .find(|(h, b)| {
                h.as_str() != buffer
                    && b.domain == dom
                    && b.iova < iova + total
                    && iova < b.iova + b.bytes
            })
            .map(|(h, b)| (h.clone(), ctx.dev_name(b.dev).to_string()));
        if let Some((other, owner)) = clash {
            let msg = format!(
                "IOVA {iova:#x} handed to {name} for {buffer} while {owner}'s {other} still holds it: the domain's IOVA allocator was initialised again under it"
            );
            ctx.find(s, Property::UniqueIova, msg);
        }
    });
}

/// `dma_unmap_*`: strict frees the IOVA at once; lazy queues it and arms the timer.
fn unmap(ctx: &Ctx, buffer: &str) {
    ctx.step(|s| {
        let Some(b) = s.buffers.remove(buffer) else {
            return;
        };
        let dm = &mut s.domains[b.domain];
        let mut p = b.iova;
        while p < b.iova + b.bytes {
            dm.mappings.remove(&p);
            p += PAGE;
        }
        if ctx.cfg.lazy {
            dm.fq.push(b.iova);
            if dm.fq_timer == FqTimer::Idle {
                dm.fq_timer = FqTimer::Armed;
            }
        } else {
            dm.iovas.remove(&b.iova);
        }
    });
}

/// `fq_flush_timeout()` of the device's default domain.
fn fq_timeout(ctx: &Ctx, d: usize) {
    let dom = ctx.step(|s| {
        let dom = s.devs[d].last_domain?;
        let dm = &mut s.domains[dom];
        if dm.fq_timer != FqTimer::Armed {
            return None;
        }
        dm.fq_timer = FqTimer::Running;
        Some(dom)
    });
    let Some(dom) = dom else { return };
    // The handler flushes the TLB and frees the queued IOVAs.
    ctx.step(|s| {
        if s.domains[dom].fq_freed {
            let msg = format!(
                "KASAN: use-after-free in fq_flush_timeout ({} on {}): the flush queue of domain {dom} was freed by the device's teardown while the handler ran",
                ctx.dev_name(d),
                ctx.name()
            );
            ctx.find(s, Property::NoUseAfterFree, msg);
        } else {
            let dm = &mut s.domains[dom];
            for iova in std::mem::take(&mut dm.fq) {
                dm.iovas.remove(&iova);
            }
        }
    });
    ctx.step(|s| s.domains[dom].fq_timer = FqTimer::Idle);
}

/// `iommu_device_claim_dma_owner(dev, owner)`.
fn claim(ctx: &Ctx, d: usize, owner: Option<&str>) {
    ctx.step(|s| {
        let name = ctx.dev_name(d).to_string();
        let Some(g) = s.devs[d].group else {
            ctx.log(s, format!("{name}: claim DMA owner: no group (-ENODEV)"));
            return;
        };
        // iommu_group_get().
        s.groups[g].refcount += 1;
        let Some(owner) = owner else {
            ctx.log(s, format!("{name}: claim DMA owner: no owner (-EINVAL)"));
            s.groups[g].refcount -= 1;
            return;
        };
        let grp = &mut s.groups[g];
        if grp.owner_cnt > 0 && grp.owner.as_deref() != Some(owner) {
            ctx.log(
                s,
                format!("{name}: claim DMA owner: group {g} is owned (-EPERM)"),
            );
        } else {
            grp.owner = Some(owner.to_string());
            grp.owner_cnt += 1;
            ctx.log(s, format!("{name}: DMA owner {owner} claimed group {g}"));
        }
        // iommu_group_put().
        s.groups[g].refcount -= 1;
    });
}

/// The device reads or writes a buffer through its IOVA once the driver has it.
fn device_access(ctx: &Ctx, d: usize, buffer: &str, what: &str) -> Result<(), Halt> {
    loop {
        let ready = ctx.step(|s| {
            if let Some(b) = s.buffers.get(buffer).cloned() {
                s.engines_waiting.remove(&ctx.me);
                return Some(Some(b));
            }
            s.engines_waiting.insert(ctx.me);
            let others_done = (0..ctx.cfg.actors.len())
                .filter(|i| *i != ctx.me)
                .all(|i| s.finished.contains(&i) || s.engines_waiting.contains(&i));
            if others_done {
                s.engines_waiting.remove(&ctx.me);
                Some(None)
            } else {
                None
            }
        });
        match ready {
            Some(Some(b)) => {
                ctx.step(|s| {
                    let dm = &s.domains[b.domain];
                    let missing = (0..b.bytes / PAGE)
                        .map(|i| b.iova + i * PAGE)
                        .find(|p| !dm.mappings.contains_key(p));
                    let name = ctx.dev_name(b.dev).to_string();
                    match missing {
                        Some(p) => {
                            let msg = format!(
                                "arm-smmu {}: Unhandled context fault: iova={p:#x}: {name} {what}s {buffer}, which its driver was told is mapped",
                                ctx.cfg.smmu
                            );
                            ctx.find(s, Property::NoFault, msg);
                        }
                        None => ctx.log(s, format!("{name}: DMA {what} of {buffer} at {:#x}", b.iova)),
                    }
                });
                let _ = d;
                return Ok(());
            }
            Some(None) => return Ok(()),
            None => smmu_sync::thread::yield_now(),
        }
    }
}
