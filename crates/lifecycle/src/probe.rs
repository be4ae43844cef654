//! Probe paths: the SMMU's own probe (reset, register, bind), a client's
//! `iommu_probe_device()` (per-device data, `arm_smmu_probe_device`, `arm_smmu_device_group`,
//! default domain, attach, direct mappings), its failure path, the deferred-probe retry, and
//! release on removal. Which code path runs is decided by [`crate::Switches`].

use crate::kernel::{group_mutex, Ctx, DevIommu, Domain, FqTimer, Group, Halt, State};
use crate::model::{Op, Property, Step};

const STREAM_MAP_MUTEX: &str = "stream_map_mutex";
const PROBE_LOCK: &str = "iommu_probe_device_lock";

/// Run one script step.
pub(crate) fn run_step(ctx: &Ctx, step: &Step) -> Result<(), Halt> {
    let dev = step.device.as_str();
    match &step.op {
        Op::Probe if dev == ctx.cfg.smmu => smmu_probe(ctx),
        Op::Probe => client_probe(ctx, dev),
        Op::DeferredProbe => deferred_probe(ctx, dev),
        Op::Remove => release_device(ctx, dev),
        other => crate::dma::run(ctx, other, dev),
    }
}

/// The SMMU's probe: reset (global TLB invalidation and sync), `iommu_device_register()`,
/// and only when `.probe` returns is the driver bound to the device.
pub(crate) fn smmu_probe(ctx: &Ctx) -> Result<(), Halt> {
    ctx.step(|s| tlb_invalidate_all_and_sync(ctx, s));
    ctx.step(|s| {
        s.smmu.registered = true;
        let line = format!("arm-smmu {}: iommu_device_register() done", ctx.cfg.smmu);
        ctx.log(s, line);
    });
    ctx.step(|s| {
        s.smmu.bound = true;
        let line = format!("arm-smmu {}: probe returned 0, driver bound", ctx.cfg.smmu);
        ctx.log(s, line);
    });
    Ok(())
}

/// The reset's TLBIALLH/TLBIALLNSNH and a global sync: one step here. (What the values
/// written are and what a trapping hypervisor does with them is the real stack's:
/// arm-smmu's `DriverBehaviour::zero_tlbi_writes` and `mmu500::hyp`, 4e4abae311e4.)
fn tlb_invalidate_all_and_sync(_ctx: &Ctx, _s: &mut State) {}

/// `iommu_probe_device()` and the driver's probe, for a master.
pub(crate) fn client_probe(ctx: &Ctx, dev_name: &str) -> Result<(), Halt> {
    let serial = ctx.cfg.switches.probe_serialised_with_iommu_configure;
    if serial {
        ctx.acquire(PROBE_LOCK)?;
    }
    let r = probe_device(ctx, dev_name);
    if serial {
        ctx.release(PROBE_LOCK);
    }
    r?;
    // of_dma_configure() → arch_setup_dma_ops(), once the IOMMU probe has returned.
    let d = ctx.dev(dev_name);
    if ctx.step(|s| s.devs[d].probed) {
        iommu_dma_init_domain(ctx, d)?;
    }
    Ok(())
}

fn probe_device(ctx: &Ctx, dev_name: &str) -> Result<(), Halt> {
    let d = ctx.dev(dev_name);
    // of_iommu_configure(): the fwspec lives in dev->iommu.
    let go = ctx.step(|s| {
        if s.devs[d].group.is_some() {
            return false;
        }
        if s.devs[d].iommu == DevIommu::None {
            s.next_dev_iommu += 1;
            s.devs[d].iommu = DevIommu::Live(s.next_dev_iommu);
        }
        true
    });
    if !go {
        return Ok(());
    }
    // arm_smmu_probe_device(): find the SMMU by its fwnode.
    let found = ctx.step(|s| {
        if !s.smmu.registered {
            let line = format!("{dev_name}: no IOMMU instance yet: probe deferred");
            ctx.log(s, line);
            return Some(false);
        }
        if !s.smmu.bound {
            let line = format!(
                "arm-smmu {}: {dev_name}: SMMU registered but not bound yet: -EPROBE_DEFER",
                ctx.cfg.smmu
            );
            ctx.log(s, line);
            dev_iommu_free(ctx, s, d);
            return Some(false);
        }
        Some(true)
    });
    match found {
        None => return Err(Halt),
        Some(false) => return Ok(()),
        Some(true) => {}
    }
    let Some(g) = device_group(ctx, d)? else {
        ctx.step(|s| {
            let line = format!("{dev_name}: Failed to add to iommu group: -22");
            ctx.log(s, line);
            dev_iommu_free(ctx, s, d);
        });
        return Ok(());
    };
    ctx.step(|s| {
        s.groups[g].members.push(d);
        s.groups[g].refcount += 1;
        s.devs[d].group = Some(g);
        let line = format!("{dev_name}: Adding to iommu group {g}");
        ctx.log(s, line);
    });
    default_domain_and_attach(ctx, d, g)?;
    ctx.step(|s| {
        s.devs[d].probed = true;
        // iommu_group_put() of device_group()'s reference.
        s.groups[g].refcount -= 1;
    });
    Ok(())
}

/// `dev_iommu_free()`.
fn dev_iommu_free(ctx: &Ctx, s: &mut State, d: usize) {
    let _ = ctx;
    if let DevIommu::Live(id) = s.devs[d].iommu {
        s.freed_dev_iommu.insert(id);
    }
    s.devs[d].iommu = DevIommu::None;
}

/// `arm_smmu_device_group()`: the group already recorded for the device's stream map
/// entries, or a new one recorded for all of them. `None` is the -EINVAL of stream IDs
/// already in two different groups. The returned group carries a reference.
fn device_group(ctx: &Ctx, d: usize) -> Result<Option<usize>, Halt> {
    ctx.acquire(STREAM_MAP_MUTEX)?;
    let sids = ctx.cfg.devices[d].stream_ids.clone();
    let found = ctx.step(|s| {
        let mut group = None;
        for sid in &sids {
            if let Some(&g) = s.s2cr_group.get(sid) {
                if group.is_some_and(|x| x != g) {
                    return Err(());
                }
                group = Some(g);
            }
        }
        if let Some(g) = group {
            s.groups[g].refcount += 1;
        }
        Ok(group)
    });
    let group = match found {
        Err(()) => {
            // Stream IDs in two groups: -EINVAL.
            ctx.release(STREAM_MAP_MUTEX);
            return Ok(None);
        }
        Ok(Some(g)) => g,
        Ok(None) => ctx.step(|s| {
            // generic_device_group()/pci_device_group(): a new group, remembered in the S2CRs.
            s.groups.push(Group {
                refcount: 1,
                ..Group::default()
            });
            let g = s.groups.len() - 1;
            for sid in &sids {
                s.s2cr_group.insert(*sid, g);
            }
            g
        }),
    };
    ctx.release(STREAM_MAP_MUTEX);
    Ok(Some(group))
}

/// The default domain (allocated once per group), the attach, and the direct mappings.
fn default_domain_and_attach(ctx: &Ctx, d: usize, g: usize) -> Result<(), Halt> {
    let lock = group_mutex(g);
    ctx.acquire(&lock)?;
    let has = ctx.step(|s| s.groups[g].default_domain.is_some());
    if !has {
        ctx.step(|s| {
            s.domains.push(Domain::new());
            let dom = s.domains.len() - 1;
            s.groups[g].default_domain = Some(dom);
            let line = format!("iommu: group {g}: default domain {dom} allocated");
            ctx.log(s, line);
        });
    }
    ctx.step(|s| {
        let dom = s.groups[g].default_domain;
        s.devs[d].domain = dom;
        s.devs[d].last_domain = dom;
    });
    for r in ctx.cfg.devices[d].direct.clone() {
        let mut page = r.base & !0xfff;
        while page < r.base + r.size {
            // iommu_create_device_direct_mappings(): skip what is mapped, map the rest.
            let mapped = ctx.step(|s| {
                let dom = s.devs[d].domain.unwrap_or(usize::MAX);
                s.domains
                    .get(dom)
                    .is_none_or(|x| x.mappings.contains_key(&page))
            });
            if !mapped {
                ctx.step(|s| {
                    let Some(dom) = s.devs[d].domain else { return };
                    if s.domains[dom].mappings.insert(page, page).is_some() {
                        let line = format!(
                            "WARNING: arm_lpae_map: {}: IOVA {page:#x} of a direct region is already mapped (-EEXIST)",
                            ctx.dev_name(d)
                        );
                        ctx.find(s, Property::NoKernelWarning, line);
                    }
                });
            }
            page += 0x1000;
        }
    }
    ctx.release(&lock);
    Ok(())
}

/// `iommu_setup_dma_ops()` → `iommu_dma_init_domain()`: the first device of a group
/// initialises the default domain's IOVA allocator; later ones find it initialised.
fn iommu_dma_init_domain(ctx: &Ctx, d: usize) -> Result<(), Halt> {
    let Some(dom) = ctx.step(|s| s.devs[d].domain) else {
        return Ok(());
    };
    let lock = format!("domain{dom}->iova_cookie->mutex");
    ctx.acquire(&lock)?;
    let ready = ctx.step(|s| s.domains[dom].iova_ready);
    if !ready {
        ctx.step(|s| {
            // init_iova_domain(): an empty allocator, whatever it held.
            let dm = &mut s.domains[dom];
            dm.iovas.clear();
            dm.iova_top = 1 << 32;
            dm.iova_ready = true;
        });
    }
    ctx.release(&lock);
    Ok(())
}

/// The driver core's deferred-probe work for a device: `of_dma_configure()` reads the
/// device's fwspec through `dev->iommu`, then the IOMMU probe runs if the device has no group.
fn deferred_probe(ctx: &Ctx, dev_name: &str) -> Result<(), Halt> {
    let d = ctx.dev(dev_name);
    let serial = ctx.cfg.switches.probe_serialised_with_iommu_configure;
    if serial {
        ctx.acquire(PROBE_LOCK)?;
    }
    let seen = ctx.step(|s| s.devs[d].iommu);
    if let DevIommu::Live(id) = seen {
        // dev_iommu_fwspec_get(): dereference the pointer loaded above.
        ctx.step(|s| {
            if s.freed_dev_iommu.contains(&id) {
                let msg = format!(
                    "KASAN: use-after-free in of_iommu_configure ({} on {}): dev->iommu of {dev_name} was freed by a failed probe",
                    dev_name,
                    ctx.name()
                );
                ctx.find(s, Property::NoUseAfterFree, msg);
            }
        });
    }
    if serial {
        ctx.release(PROBE_LOCK);
    }
    client_probe(ctx, dev_name)
}

/// `iommu_release_device()` (remove, PCI hot-unplug): leave the group; the last member out
/// frees the default domain and its flush queue.
fn release_device(ctx: &Ctx, dev_name: &str) -> Result<(), Halt> {
    let d = ctx.dev(dev_name);
    let last = ctx.step(|s| {
        let g = s.devs[d].group.take()?;
        s.groups[g].members.retain(|m| *m != d);
        s.groups[g].refcount -= 1;
        s.devs[d].domain = None;
        s.devs[d].probed = false;
        let line = format!("{dev_name}: Removing from iommu group {g}");
        ctx.log(s, line);
        if s.groups[g].members.is_empty() {
            s.groups[g].default_domain.take()
        } else {
            None
        }
    });
    let Some(dom) = last else { return Ok(()) };
    // free_iova_flush_queue(): stop the timer, then free the queue.
    {
        loop {
            let running = ctx.step(|s| {
                if s.domains[dom].fq_timer == FqTimer::Armed {
                    s.domains[dom].fq_timer = FqTimer::Idle;
                }
                s.domains[dom].fq_timer == FqTimer::Running
            });
            if !running {
                break;
            }
            smmu_sync::thread::yield_now();
        }
    }
    ctx.step(|s| {
        s.domains[dom].fq_freed = true;
        s.domains[dom].freed = true;
        let line = format!("iommu: domain {dom} and its flush queue freed");
        ctx.log(s, line);
    });
    Ok(())
}
