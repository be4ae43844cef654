//! PCI host bridges (`iommu-map`, domain numbers) and the functions behind them.

use super::{Loader, PciFn};
use crate::board::{Bus, IommuMapEntry, PciHost, SmmuDesc};
use crate::drivers;
use crate::error::BoardError;

impl Loader<'_> {
    /// A host bridge's `iommu-map` as written (validated by [`Self::pci_functions`]).
    pub(super) fn pci_host(
        &self,
        host: usize,
        domain: u32,
        smmu_nodes: &[usize],
        its_nodes: &[usize],
    ) -> Result<Option<PciHost>, BoardError> {
        let t = self.t;
        let Some(map) = t.cells(host, "iommu-map")? else {
            return Ok(None);
        };
        let iommu_map = map
            .chunks_exact(4)
            .map(|e| IommuMapEntry {
                rid_base: e[0],
                smmu: t
                    .by_phandle(e[1])
                    .and_then(|n| smmu_nodes.iter().position(|&x| x == n)),
                sid_base: e[2],
                len: e[3],
            })
            .collect();
        // `msi-map = <rid-base &its msi-base length>`, else `msi-parent = <&its ...>`.
        let msi_phandle = match t.cells(host, "msi-map")? {
            Some(m) => m.get(1).copied(),
            None => t
                .cells(host, "msi-parent")?
                .and_then(|p| p.first().copied()),
        };
        let msi_parent = msi_phandle
            .and_then(|ph| t.by_phandle(ph))
            .and_then(|n| its_nodes.iter().position(|&x| x == n));
        Ok(Some(PciHost {
            path: t.path(host),
            domain,
            map_mask: t.u32_prop(host, "iommu-map-mask")?.unwrap_or(0xffff_ffff),
            iommu_map,
            msi_parent,
        }))
    }

    pub(super) fn is_pci_function(&self, idx: usize) -> bool {
        let t = self.t;
        t.node(idx)
            .and_then(|n| n.parent)
            .and_then(|p| t.prop(p, "device_type"))
            .is_some_and(|v| v.starts_with(b"pci"))
    }

    pub(super) fn is_pci_host(&self, idx: usize) -> bool {
        let t = self.t;
        t.prop(idx, "device_type")
            .is_some_and(|v| v.starts_with(b"pci"))
            && !self.is_pci_function(idx)
    }

    pub(super) fn is_ecam_host(&self, idx: usize) -> Result<bool, BoardError> {
        Ok(self
            .t
            .compatible(idx)?
            .iter()
            .any(|c| c == "pci-host-ecam-generic"))
    }

    /// Domain numbers of the enabled host bridges: `linux,pci-domain` if present, else a
    /// counter in host-driver probe order (generic ECAM hosts first, then the others, each in
    /// DT order), which gives the seed's 0000 = ENETC ECAM, 0001/0002 = pcie1/pcie2.
    pub(super) fn pci_domains(&self) -> Result<Vec<(usize, u32)>, BoardError> {
        let t = self.t;
        let hosts: Vec<usize> = (0..t.nodes().len())
            .filter(|&i| self.is_pci_host(i) && self.available_with_ancestors(i))
            .collect();
        let mut out = Vec::new();
        let mut next = 0u32;
        let mut ordered = Vec::new();
        for &h in &hosts {
            if self.is_ecam_host(h)? {
                ordered.push(h);
            }
        }
        for &h in &hosts {
            if !self.is_ecam_host(h)? {
                ordered.push(h);
            }
        }
        for h in ordered {
            let d = match t.u32_prop(h, "linux,pci-domain")? {
                Some(d) => d,
                None => {
                    next += 1;
                    next - 1
                }
            };
            out.push((h, d));
        }
        Ok(out)
    }

    /// The PCI functions of a host bridge that reference an SMMU through its `iommu-map`.
    pub(super) fn pci_functions(
        &self,
        host: usize,
        domain: u32,
        smmus: &[SmmuDesc],
        smmu_nodes: &[usize],
    ) -> Result<Vec<PciFn>, BoardError> {
        let t = self.t;
        let Some(map) = t.cells(host, "iommu-map")? else {
            return Ok(Vec::new());
        };
        if map.is_empty() || map.len() % 4 != 0 {
            return Err(self.err(
                host,
                "iommu-map",
                format!("bad length {} bytes (entries are 4 cells: rid-base, phandle, sid-base, length)", map.len() * 4),
            ));
        }
        let map_mask = t.u32_prop(host, "iommu-map-mask")?.unwrap_or(0xffff_ffff);
        for e in map.chunks_exact(4) {
            if t.by_phandle(e[1]).is_none() {
                return Err(BoardError::DanglingPhandle {
                    node: t.path(host),
                    property: "iommu-map".into(),
                    phandle: e[1],
                });
            }
            if e[0] & !map_mask != 0 {
                return Err(self.err(
                    host,
                    "iommu-map",
                    format!("rid-base {:#x} outside iommu-map-mask {map_mask:#x}", e[0]),
                ));
            }
        }
        let first_bus = t
            .cells(host, "bus-range")?
            .and_then(|b| b.first().copied())
            .unwrap_or(0);
        // Functions that exist: (bus, devfn, node, compatible).
        let mut funcs: Vec<(u32, u32, Option<usize>)> = Vec::new();
        let ecam = self.is_ecam_host(host)?;
        if ecam {
            for &c in &t.node(host).map(|n| n.children.clone()).unwrap_or_default() {
                if !t.is_available(c) {
                    continue;
                }
                let Some(reg) = t.cells(c, "reg")? else {
                    continue;
                };
                let hi = *reg.first().ok_or_else(|| self.err(c, "reg", "empty"))?;
                funcs.push(((hi >> 16) & 0xff, (hi >> 8) & 0xff, Some(c)));
            }
        }
        // A root complex (or an ECAM host whose functions the DT does not list) has its root
        // port at 00:00.0; endpoints behind it are not modelled.
        if funcs.is_empty() {
            funcs.push((first_bus, 0, None));
        }
        let mut out = Vec::new();
        for (bus, devfn, node) in funcs {
            let rid = (bus << 8) | devfn;
            let masked = rid & map_mask;
            let Some(e) = map
                .chunks_exact(4)
                .find(|e| masked >= e[0] && u64::from(masked) < u64::from(e[0]) + u64::from(e[3]))
            else {
                continue; // outside the map: no IOMMU (e.g. the RCEC)
            };
            let target = t.by_phandle(e[1]).unwrap_or(0);
            let Some(s) = smmu_nodes.iter().position(|&x| x == target) else {
                continue;
            };
            let sid = e[2].wrapping_add(masked - e[0]);
            let id = self.xlate(host, "iommu-map", target, &[sid])?;
            let (compat, info) = match node {
                Some(n) => {
                    let c = t.compatible(n)?;
                    let base = t
                        .node(n)
                        .map(|x| x.base_name().to_string())
                        .unwrap_or_default();
                    let i =
                        drivers::for_compatible(&c).or_else(|| drivers::for_pci_node_name(&base));
                    (c, i)
                }
                None => (Vec::new(), Some(drivers::PCIEPORT)),
            };
            let name = format!("{domain:04x}:{bus:02x}:{:02x}.{}", devfn >> 3, devfn & 7);
            let m = self.master(
                name,
                Bus::Pci,
                info,
                node.map(|n| t.path(n)),
                compat,
                (s, smmus.get(s).is_some_and(|x| x.enabled)),
                vec![id],
                None,
            );
            out.push(((domain, bus, devfn), m));
        }
        Ok(out)
    }
}
