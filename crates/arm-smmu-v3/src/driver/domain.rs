//! Masters and domains: the level-2 stream table for a StreamID, domain lookup and ASID/VMID
//! allocation, `arm_smmu_domain_finalise`, the STE a master gets, STE install and (v6.12) CD writes.

use super::{ArmSmmuV3, DomainCtx, DomainState, DomainTlb, SmmuDomain, SmmuMaster};
use crate::fw::KernelVersion;
use crate::hw::at;
use crate::probe::{feat, STRTAB_SPLIT};
use crate::ste::{self as stemod, CdTcr, Entry};
use iommu::{DomainKind, DriverDomain, DriverError, Resource};
use klog::Level;
use pgtable::Stage;
use physmem::PhysAddr;
use smmu_sync::{Arc, Mutex};
use smmuv3_arch::cmd::Command;
use smmuv3_arch::ste;

impl ArmSmmuV3 {
    /// `arm_smmu_init_sid_strtab`: check the range, make the level-2 table (all STEs initial).
    pub(super) fn init_sid_strtab(&self, sid: u32) -> Result<(), DriverError> {
        let mut st = self.strtab.lock();
        let limit = if st.two_level {
            u64::from(st.num_l1_ents) << STRTAB_SPLIT
        } else {
            u64::from(st.num_l1_ents)
        };
        if u64::from(sid) >= limit {
            return Err(DriverError::StreamBeyondTable {
                sid,
                entries: limit,
            });
        }
        if !st.two_level || st.l2.contains_key(&(sid >> STRTAB_SPLIT)) {
            return Ok(());
        }
        let hw = &self.hw;
        let size = 64u64 << STRTAB_SPLIT;
        let Some(l2) = hw.alloc(size) else {
            hw.print(
                Level::Err,
                &format!("failed to allocate l2 stream table for SID {sid}"),
            );
            return Err(DriverError::Exhausted(Resource::L2StreamTable));
        };
        let init = stemod::initial(hw);
        for i in 0..(1u64 << STRTAB_SPLIT) {
            hw.write_words(at(l2, i * 64), &init[..3]);
        }
        let l1 = at(st.base, u64::from(sid >> STRTAB_SPLIT) * 8);
        hw.write_words(
            l1,
            &[u64::from(STRTAB_SPLIT + 1) | (l2.as_u64() & ste::L1_L2PTR_MASK)],
        );
        st.l2.insert(sid >> STRTAB_SPLIT, l2);
        Ok(())
    }

    pub(super) fn domain(&self, dom: DriverDomain) -> Option<Arc<SmmuDomain>> {
        self.domains.read().get(&dom.0).cloned()
    }

    pub(super) fn ctx(&self, dom: DriverDomain) -> Option<Arc<DomainCtx>> {
        let d = self.domain(dom)?;
        let st = d.state.lock();
        match &*st {
            DomainState::Paging(c) => Some(c.clone()),
            _ => None,
        }
    }

    /// The ASID (stage 1) of a finalised domain.
    pub fn domain_asid(&self, dom: DriverDomain) -> Option<u16> {
        self.ctx(dom).map(|c| c.asid)
    }

    fn alloc_id(map: &Mutex<Vec<bool>>, bits: u32) -> Option<u16> {
        let mut m = map.lock();
        let limit = (1usize << bits).min(m.len());
        let i = (1..limit).find(|&i| !m[i])?;
        m[i] = true;
        Some(i as u16)
    }

    /// `arm_smmu_domain_finalise`.
    pub(super) fn finalise(&self, kind: DomainKind) -> Result<DomainState, DriverError> {
        let hw = &self.hw;
        match kind {
            DomainKind::Identity => return Ok(DomainState::Bypass),
            DomainKind::Blocked => return Ok(DomainState::Blocked),
            _ => {}
        }
        let stage = if hw.has(feat::TRANS_S1) {
            Stage::S1
        } else {
            Stage::S2
        };
        let (ias, oas) = match stage {
            // VA_BITS 48 without VAX.
            Stage::S1 => (48, hw.info.ias),
            Stage::S2 => (hw.info.ias, hw.info.oas),
        };
        let (asid, vmid) = match stage {
            Stage::S1 => (
                Self::alloc_id(&self.asids, hw.info.asid_bits)
                    .ok_or(DriverError::Exhausted(Resource::Asids))?,
                0,
            ),
            Stage::S2 => (
                0,
                Self::alloc_id(&self.vmids, hw.info.vmid_bits)
                    .ok_or(DriverError::Exhausted(Resource::Vmids))?,
            ),
        };
        let mut cfg = pgtable::PgTableRequest::new(stage, hw.info.pgsize_bitmap, ias, oas);
        cfg.coherent_walk = hw.has(feat::COHERENCY);
        let pgshift = {
            let c = pgtable::PgTableCfg::new(cfg)?;
            c.pgsize_bitmap.trailing_zeros()
        };
        let tlb = Arc::new(DomainTlb {
            hw: hw.clone(),
            stage,
            asid,
            vmid,
            pgshift,
        });
        let table = pgtable::PageTable::new(cfg, hw.frames.clone(), tlb.clone())?;
        let c = *table.cfg();
        let tcr = u64::from(c.s1_tcr());
        let cd_tcr = CdTcr {
            tsz: tcr & 0x3f,
            tg: (tcr >> 14) & 3,
            irgn: (tcr >> 8) & 3,
            orgn: (tcr >> 10) & 3,
            sh: (tcr >> 12) & 3,
            ips: c.ips(),
        };
        let cd = stemod::s1_cd(&cd_tcr, asid, table.ttbr().as_u64(), c.mair());
        let mut cdtab = None;
        if stage == Stage::S1 && hw.version == KernelVersion::V6_1 {
            // v6.1: the CD table belongs to the domain and the CD is written now, before any
            // master is in the domain: its CFGI_CD batches are empty, so each sync is a lone
            // CMD_SYNC.
            let Some(t) = hw.alloc(64) else {
                hw.print(Level::Warning, "failed to allocate context descriptor");
                return Err(DriverError::Exhausted(Resource::CdTable));
            };
            hw.write_words(at(t, 8), &cd[1..4]);
            let _ = hw.batch_submit(&[]);
            hw.write_words(t, &cd[..1]);
            let _ = hw.batch_submit(&[]);
            cdtab = Some(t);
        }
        Ok(DomainState::Paging(Arc::new(DomainCtx {
            stage,
            asid,
            vmid,
            ias: c.ias,
            pgsizes: c.pgsize_bitmap,
            table: Mutex::new(table),
            tlb,
            cdtab,
            cd,
        })))
    }

    /// The STE a master gets in a domain state.
    pub(super) fn target_ste(&self, master: &SmmuMaster, st: &DomainState) -> Entry {
        let hw = &self.hw;
        let v61 = hw.version == KernelVersion::V6_1;
        match st {
            DomainState::Bypass => {
                if v61 {
                    stemod::v61_bypass_or_abort(false)
                } else {
                    stemod::v612_bypass()
                }
            }
            DomainState::Blocked | DomainState::Unfinalised => stemod::initial(hw),
            DomainState::Paging(c) => match c.stage {
                Stage::S1 => stemod::s1(hw, c.cdtab.or(master.cdtab).unwrap_or(PhysAddr::ZERO)),
                Stage::S2 => {
                    let t = c.table.lock();
                    stemod::s2(
                        c.vmid,
                        u64::from(t.cfg().vtcr()) & 0x7_ffff,
                        t.ttbr().as_u64(),
                    )
                }
            },
        }
    }

    /// `arm_smmu_install_ste_for_dev`.
    pub(super) fn install_ste(&self, master: &SmmuMaster, target: &Entry) {
        let mut done: Vec<u32> = Vec::new();
        for &sid in &master.sids {
            if done.contains(&sid) {
                continue;
            }
            done.push(sid);
            if let Some(pa) = self.ste_address(sid) {
                stemod::write_ste(&self.hw, sid, pa, target);
            }
        }
    }

    /// v6.12: write the master's CD 0 (`arm_smmu_write_cd_entry`), syncing with CFGI_CD for each
    /// of its StreamIDs.
    pub(super) fn write_master_cd(
        &self,
        master: &mut SmmuMaster,
        target: &Entry,
    ) -> Result<(), DriverError> {
        let hw = &self.hw;
        let tab = match master.cdtab {
            Some(t) => t,
            None => {
                let Some(t) = hw.alloc(64) else {
                    hw.print(Level::Warning, "failed to allocate context descriptor");
                    return Err(DriverError::Exhausted(Resource::CdTable));
                };
                master.cdtab = Some(t);
                t
            }
        };
        let sids = master.sids.clone();
        let sync = move || {
            let cmds: Vec<Command> = sids
                .iter()
                .map(|&sid| Command::CfgiCd {
                    sid,
                    ssid: 0,
                    leaf: true,
                })
                .collect();
            let _ = hw.batch_submit(&cmds);
        };
        stemod::write_entry(hw, tab, target, stemod::cd_used, &sync);
        Ok(())
    }
}
