//! The operations a run applies to the core, drawn by proptest, and what each returned.

use super::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
pub(super) enum Op {
    /// A device with stream ID `sid` (devices with one stream ID share a group).
    Probe {
        sid: u32,
        platform: bool,
    },
    Map {
        dev: prop::sample::Index,
        off: u64,
        size: u64,
        dir: u8,
    },
    MapSg {
        dev: prop::sample::Index,
        n: usize,
        size: u64,
    },
    Coherent {
        dev: prop::sample::Index,
        size: u64,
    },
    Unmap {
        pick: prop::sample::Index,
    },
    Release {
        dev: prop::sample::Index,
    },
    Unregister,
    AllocUnmanaged,
    Attach {
        dev: prop::sample::Index,
        dom: prop::sample::Index,
    },
    Detach {
        dev: prop::sample::Index,
    },
    DomainFree {
        dom: prop::sample::Index,
    },
    IommuMap {
        dom: prop::sample::Index,
        page: u64,
    },
    Claim {
        dev: prop::sample::Index,
        owner: Option<u8>,
    },
    ReleaseOwner {
        dev: prop::sample::Index,
    },
    Drain,
    Tick {
        ns: u64,
    },
    FqExpiry {
        dev: prop::sample::Index,
    },
}

pub(super) fn op() -> impl Strategy<Value = Op> {
    use prop::sample::Index;
    prop_oneof![
        2 => (0x10u32..0x14, any::<bool>()).prop_map(|(sid, platform)| Op::Probe { sid, platform }),
        8 => (any::<Index>(), 0u64..0x10_0000, 1u64..0x6000, 0u8..3)
            .prop_map(|(dev, off, size, dir)| Op::Map { dev, off, size, dir }),
        1 => (any::<Index>(), 1usize..4, 1u64..0x3000).prop_map(|(dev, n, size)| Op::MapSg { dev, n, size }),
        1 => (any::<Index>(), 1u64..0x5000).prop_map(|(dev, size)| Op::Coherent { dev, size }),
        6 => any::<Index>().prop_map(|pick| Op::Unmap { pick }),
        1 => any::<Index>().prop_map(|dev| Op::Release { dev }),
        1 => Just(Op::Unregister),
        1 => Just(Op::AllocUnmanaged),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(dev, dom)| Op::Attach { dev, dom }),
        1 => any::<Index>().prop_map(|dev| Op::Detach { dev }),
        1 => any::<Index>().prop_map(|dom| Op::DomainFree { dom }),
        1 => (any::<Index>(), 0u64..64).prop_map(|(dom, page)| Op::IommuMap { dom, page }),
        1 => (any::<Index>(), prop::option::of(0u8..2)).prop_map(|(dev, owner)| Op::Claim { dev, owner }),
        1 => any::<Index>().prop_map(|dev| Op::ReleaseOwner { dev }),
        1 => Just(Op::Drain),
        1 => (0u64..20_000_000).prop_map(|ns| Op::Tick { ns }),
        1 => any::<Index>().prop_map(|dev| Op::FqExpiry { dev }),
    ]
}

fn dir_of(d: u8) -> DmaDirection {
    [
        DmaDirection::ToDevice,
        DmaDirection::FromDevice,
        DmaDirection::Bidirectional,
    ][d as usize % 3]
}

fn pick<T: Clone>(v: &[T], i: &prop::sample::Index) -> Option<T> {
    (!v.is_empty()).then(|| v[i.index(v.len())].clone())
}

/// Run one operation; the result as the caller saw it (IOVAs and errors included).
pub(super) fn step(r: &mut Rig, op: &Op) -> String {
    let core = r.core.clone();
    let h = &mut r.h;
    match op {
        Op::Probe { sid, platform } => {
            h.probes += 1;
            let bus = if *platform { Bus::Platform } else { Bus::Pci };
            let desc = DeviceDesc::new(&format!("dev{}", h.probes), bus, u64::from(*sid), &[*sid]);
            let res = core.probe_device(desc, r.inst);
            if let Ok(d) = res {
                h.devs.push(d);
            }
            format!("probe {res:?}")
        }
        Op::Map {
            dev,
            off,
            size,
            dir,
        } => {
            let Some(d) = pick(&h.devs, dev) else {
                return "no device".into();
            };
            let res = core.dma_map_page(d, PhysAddr::new(RAM + off), *size, dir_of(*dir));
            if let Ok(a) = res {
                h.live.push((d, Live::Page(a, *size, dir_of(*dir))));
            }
            format!("map {res:?}")
        }
        Op::MapSg { dev, n, size } => {
            let Some(d) = pick(&h.devs, dev) else {
                return "no device".into();
            };
            let segs: Vec<_> = (0..*n as u64)
                .map(|i| (PhysAddr::new(RAM + 0x20_0000 + i * 0x4000), *size))
                .collect();
            let res = core.dma_map_sg(d, &segs, DmaDirection::ToDevice);
            if let Ok(list) = &res {
                h.live
                    .push((d, Live::Sg(list.clone(), DmaDirection::ToDevice)));
            }
            format!("sg {res:?}")
        }
        Op::Coherent { dev, size } => {
            let Some(d) = pick(&h.devs, dev) else {
                return "no device".into();
            };
            let res = core.dma_alloc_coherent(d, *size);
            if let Ok((pa, a)) = res {
                h.live.push((d, Live::Coherent(pa, a, *size)));
            }
            format!("coherent {res:?}")
        }
        Op::Unmap { pick: p } => {
            if h.live.is_empty() {
                return "nothing live".into();
            }
            let (d, l) = h.live.remove(p.index(h.live.len()));
            let res = match &l {
                Live::Page(a, size, dir) => core.dma_unmap_page(d, *a, *size, *dir),
                Live::Sg(list, dir) => core.dma_unmap_sg(d, list, *dir),
                Live::Coherent(pa, a, size) => core.dma_free_coherent(d, *size, *pa, *a),
            };
            format!("unmap {l:?} {res:?}")
        }
        Op::Release { dev } => match pick(&h.devs, dev) {
            Some(d) => {
                core.release_device(d);
                format!("release {d:?}")
            }
            None => "no device".into(),
        },
        Op::Unregister => format!("unregister {:?}", core.unregister(r.inst)),
        Op::AllocUnmanaged => {
            let res = core.alloc_unmanaged(r.inst);
            let s = format!("alloc {:?}", res.as_ref().map(|d| d.id()));
            if let Ok(d) = res {
                h.unmanaged.push(d);
            }
            s
        }
        Op::Attach { dev, dom } => match (pick(&h.devs, dev), pick(&h.unmanaged, dom)) {
            (Some(d), Some(u)) => format!("attach {:?}", core.attach_device(d, &u)),
            _ => "nothing to attach".into(),
        },
        Op::Detach { dev } => match pick(&h.devs, dev) {
            Some(d) => format!("detach {:?}", core.detach_device(d)),
            None => "no device".into(),
        },
        Op::DomainFree { dom } => match pick(&h.unmanaged, dom) {
            Some(u) => format!("free {:?}", core.iommu_domain_free(&u)),
            None => "no domain".into(),
        },
        Op::IommuMap { dom, page } => match pick(&h.unmanaged, dom) {
            Some(u) => {
                let at = page << 12;
                let res = core.iommu_map(
                    &u,
                    Iova::new(at),
                    PhysAddr::new(RAM + at),
                    0x1000,
                    crate::Prot::READ,
                );
                format!("iommu_map {res:?}")
            }
            None => "no domain".into(),
        },
        Op::Claim { dev, owner } => match pick(&h.devs, dev) {
            Some(d) => {
                let name = owner.map(|o| format!("owner{o}"));
                format!("claim {:?}", core.claim_dma_owner(d, name.as_deref()))
            }
            None => "no device".into(),
        },
        Op::ReleaseOwner { dev } => match pick(&h.devs, dev) {
            Some(d) => {
                core.release_dma_owner(d);
                "release owner".into()
            }
            None => "no device".into(),
        },
        Op::Drain => {
            core.flush_queue_drain();
            "drain".into()
        }
        Op::Tick { ns } => {
            r.log.inner.lock().0 += ns;
            core.run_timers();
            "tick".into()
        }
        Op::FqExpiry { dev } => match pick(&h.devs, dev) {
            Some(d) => format!("fq expiry {:?}", core.fq_timer_expiry(d)),
            None => "no device".into(),
        },
    }
}
