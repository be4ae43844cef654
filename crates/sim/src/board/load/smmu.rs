//! SMMU nodes as arm-smmu's probe reads them (`compatible`, `reg`, interrupts, `#iommu-cells`)
//! and the `iommus` references of their masters, translated as `arm_smmu_of_xlate` does.

use super::Loader;
use crate::board::{match_smmu, FwId, SmmuDesc, SmmuVersion};
use crate::error::BoardError;

impl Loader<'_> {
    pub(super) fn smmu(&self, idx: usize) -> Result<Option<SmmuDesc>, BoardError> {
        let t = self.t;
        let compatible = t.compatible(idx)?;
        let Some((matched, version, model)) = match_smmu(&compatible) else {
            return Ok(None);
        };
        let enabled = self.available_with_ancestors(idx);
        let reg = t.reg(idx)?;
        let (addr, size) = reg
            .first()
            .cloned()
            .ok_or_else(|| BoardError::MissingProperty {
                node: t.path(idx),
                property: "reg".into(),
            })?;
        let parent = t.node(idx).and_then(|n| n.parent).unwrap_or(0);
        let base = t
            .translate(parent, &addr)?
            .ok_or_else(|| self.err(idx, "reg", "address does not translate to a CPU address"))?;
        let v3 = version == SmmuVersion::V3;
        let global = t.u32_prop(idx, "#global-interrupts")?;
        let global = match global {
            Some(g) => g,
            // SMMUv3 has no global/context split: its lines are named.
            None if v3 => 0,
            None if enabled => {
                return Err(BoardError::MissingProperty {
                    node: t.path(idx),
                    property: "#global-interrupts".into(),
                })
            }
            None => 0,
        };
        let cells = match t.u32_prop(idx, "#iommu-cells")? {
            Some(c) => c,
            // Linux never probes a disabled SMMU, so it is not held to the binding.
            None if !enabled => 1,
            None => {
                return Err(BoardError::MissingProperty {
                    node: t.path(idx),
                    property: "#iommu-cells".into(),
                })
            }
        };
        if v3 && cells != 1 && enabled {
            return Err(self.err(
                idx,
                "#iommu-cells",
                format!("{cells} (arm-smmu-v3 takes 1)"),
            ));
        }
        if !(1..=2).contains(&cells) {
            return Err(self.err(
                idx,
                "#iommu-cells",
                format!("{cells} (arm-smmu takes 1 or 2)"),
            ));
        }
        let smm = match t.u32_prop(idx, "stream-match-mask")? {
            Some(m) if m > 0xffff => {
                return Err(self.err(idx, "stream-match-mask", format!("{m:#x} exceeds 16 bits")))
            }
            Some(m) => Some(m as u16),
            None => None,
        };
        let (nirq, spis) = match self.interrupts(idx) {
            Ok(v) => v,
            Err(_) if !enabled => (0, Vec::new()),
            Err(e) => return Err(e),
        };
        if enabled && !v3 && nirq <= global {
            return Err(self.err(
                idx,
                "interrupts",
                // In u64: `#global-interrupts = <0xffffffff>` must not overflow (Linux's %d
                // would print a wrapped 0 here).
                format!(
                    "found {nirq} interrupts but expected at least {}",
                    u64::from(global) + 1
                ),
            ));
        }
        Ok(Some(SmmuDesc {
            path: t.path(idx),
            name: self.platform_name(idx)?,
            compatible,
            matched: matched.into(),
            version,
            model,
            base,
            size,
            global_irqs: global,
            context_irqs: nirq.saturating_sub(global),
            irq_spis: spis,
            iommu_cells: cells,
            stream_match_mask: smm,
            dma_coherent: t.has_prop(idx, "dma-coherent"),
            enabled,
            irq_names: t.strings(idx, "interrupt-names")?.unwrap_or_default(),
        }))
    }

    /// Number of `interrupts` entries (cells / the interrupt parent's `#interrupt-cells`), and
    /// the SPI numbers when the parent uses GIC-style 3 cells.
    pub(super) fn interrupts(&self, idx: usize) -> Result<(u32, Vec<u32>), BoardError> {
        let t = self.t;
        if let Some(ext) = t.cells(idx, "interrupts-extended")? {
            // <phandle cells...>*: walk it with each parent's #interrupt-cells.
            let (mut i, mut n) = (0usize, 0u32);
            while i < ext.len() {
                let ph = ext[i];
                let p = t
                    .by_phandle(ph)
                    .ok_or_else(|| BoardError::DanglingPhandle {
                        node: t.path(idx),
                        property: "interrupts-extended".into(),
                        phandle: ph,
                    })?;
                let c = t.u32_prop(p, "#interrupt-cells")?.unwrap_or(0) as usize;
                i += 1 + c;
                n += 1;
            }
            if i != ext.len() {
                return Err(self.err(idx, "interrupts-extended", "truncated entry"));
            }
            return Ok((n, Vec::new()));
        }
        let Some(cells) = t.cells(idx, "interrupts")? else {
            return Ok((0, Vec::new()));
        };
        let parent = self.interrupt_parent(idx)?;
        let ic = match parent {
            Some(p) => t.u32_prop(p, "#interrupt-cells")?.unwrap_or(0),
            None => 0,
        };
        if ic == 0 {
            return Err(self.err(
                idx,
                "interrupts",
                "no interrupt parent with #interrupt-cells",
            ));
        }
        if cells.len() % ic as usize != 0 {
            return Err(self.err(
                idx,
                "interrupts",
                format!(
                    "{} cells is not a multiple of #interrupt-cells {ic}",
                    cells.len()
                ),
            ));
        }
        let spis = if ic == 3 {
            cells
                .chunks_exact(3)
                .filter(|c| c[0] == 0)
                .map(|c| c[1])
                .collect()
        } else {
            Vec::new()
        };
        Ok(((cells.len() / ic as usize) as u32, spis))
    }

    pub(super) fn interrupt_parent(&self, mut idx: usize) -> Result<Option<usize>, BoardError> {
        let t = self.t;
        for _ in 0..=crate::fdt::MAX_DEPTH {
            if let Some(ph) = t.u32_prop(idx, "interrupt-parent")? {
                return t
                    .by_phandle(ph)
                    .map(Some)
                    .ok_or_else(|| BoardError::DanglingPhandle {
                        node: t.path(idx),
                        property: "interrupt-parent".into(),
                        phandle: ph,
                    });
            }
            match t.node(idx).and_then(|n| n.parent) {
                Some(p) => idx = p,
                None => return Ok(None),
            }
        }
        Ok(None)
    }

    /// Parse `iommus`: returns the SMMU index and IDs of the entries that point at known SMMUs
    /// (all entries must point at the same SMMU, as arm-smmu requires).
    pub(super) fn iommus(
        &self,
        idx: usize,
        smmu_nodes: &[usize],
    ) -> Result<Option<(usize, Vec<FwId>)>, BoardError> {
        let t = self.t;
        let cells = t.cells(idx, "iommus")?.unwrap_or_default();
        let mut i = 0usize;
        let mut smmu = None;
        let mut ids = Vec::new();
        while i < cells.len() {
            let ph = cells[i];
            let target = t
                .by_phandle(ph)
                .ok_or_else(|| BoardError::DanglingPhandle {
                    node: t.path(idx),
                    property: "iommus".into(),
                    phandle: ph,
                })?;
            let n = t.u32_prop(target, "#iommu-cells")?.ok_or_else(|| {
                self.err(
                    idx,
                    "iommus",
                    format!("target {} has no #iommu-cells", t.path(target)),
                )
            })? as usize;
            let args = cells.get(i + 1..i + 1 + n).ok_or_else(|| {
                self.err(
                    idx,
                    "iommus",
                    format!("entry for {} is truncated", t.path(target)),
                )
            })?;
            i += 1 + n;
            let Some(s) = smmu_nodes.iter().position(|&x| x == target) else {
                continue;
            };
            if smmu.is_some_and(|x| x != s) {
                return Err(self.err(idx, "iommus", "entries point at different SMMUs"));
            }
            smmu = Some(s);
            ids.push(self.xlate(idx, "iommus", target, args)?);
        }
        Ok(smmu.map(|s| (s, ids)))
    }

    /// `arm_smmu_of_xlate`: sid = args[0]; mask = args[1] or the SMMU's stream-match-mask.
    pub(super) fn xlate(
        &self,
        idx: usize,
        prop: &str,
        smmu_node: usize,
        args: &[u32],
    ) -> Result<FwId, BoardError> {
        let sid = args.first().copied().unwrap_or(0);
        let mask = match args.get(1) {
            Some(&m) => m,
            None => self
                .t
                .u32_prop(smmu_node, "stream-match-mask")?
                .unwrap_or(0),
        };
        if sid > 0xffff || mask > 0xffff {
            return Err(self.err(
                idx,
                prop,
                format!("stream ID {sid:#x} / mask {mask:#x} exceeds 16 bits"),
            ));
        }
        Ok(FwId {
            sid: sid as u16,
            mask: mask as u16,
        })
    }
}
