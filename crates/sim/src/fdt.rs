//! A checked, owned copy of a flattened device tree.
//!
//! `flat_device_tree` reads the blob, but it trusts the blob's structure: a corrupted block can
//! make it stop early, return empty values or recurse without bound. So the blob is first walked
//! token by token here ([`validate`]), which turns every structural defect into a typed
//! [`BoardError`] naming where it is, and only then is it read with `flat_device_tree` into an
//! owned tree that the board loader can navigate upwards (parents) as well as downwards.

use std::collections::BTreeMap;

use flat_device_tree::Fdt;
use smmu_addr::PhysAddr;

use crate::error::{BoardError, FdtParserError};

const FDT_MAGIC: u32 = 0xd00d_feed;
const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;
const HEADER_LEN: usize = 40;
/// Deeper nesting than this is treated as corruption (real trees are < 10 deep).
pub const MAX_DEPTH: usize = 32;

/// One node of the owned tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtNode {
    /// Node name with unit address, e.g. `iommu@5000000` (empty for the root).
    pub name: String,
    /// Full path, e.g. `/soc/iommu@5000000` (`/` for the root).
    pub path: String,
    /// Index of the parent node, `None` for the root.
    pub parent: Option<usize>,
    /// Indices of the children, in blob order.
    pub children: Vec<usize>,
    /// Properties in blob order.
    pub props: Vec<(String, Vec<u8>)>,
}

impl DtNode {
    /// The name without the unit address (`iommu` for `iommu@5000000`).
    pub fn base_name(&self) -> &str {
        self.name.split('@').next().unwrap_or("")
    }

    /// The unit address text after `@`, if any.
    pub fn unit_address(&self) -> Option<&str> {
        self.name.split_once('@').map(|(_, a)| a)
    }
}

/// A device tree read from a blob; node 0 is the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceTree {
    nodes: Vec<DtNode>,
    phandles: BTreeMap<u32, usize>,
}

/// Structural facts [`validate`] found, used to cross-check the `flat_device_tree` read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobShape {
    /// Number of nodes including the root.
    pub nodes: usize,
    /// Number of properties over all nodes.
    pub props: usize,
}

fn be32(data: &[u8], off: usize) -> Option<u32> {
    let b = data.get(off..off.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn align4(x: usize) -> Option<usize> {
    x.checked_add(3).map(|v| v & !3)
}

fn cstr_at(data: &[u8], off: usize) -> Option<&str> {
    let rest = data.get(off..)?;
    let end = rest.iter().position(|&b| b == 0)?;
    std::str::from_utf8(rest.get(..end)?).ok()
}

/// Walk the blob's header and structure block and reject anything malformed.
pub fn validate(data: &[u8]) -> Result<BlobShape, BoardError> {
    if data.len() < HEADER_LEN {
        return Err(BoardError::Truncated {
            what: "header".into(),
            need: HEADER_LEN as u64,
            have: data.len() as u64,
        });
    }
    let h = |i: usize| be32(data, i * 4).unwrap_or(0);
    let magic = h(0);
    if magic != FDT_MAGIC {
        return Err(BoardError::BadMagic { found: magic });
    }
    let total = h(1) as usize;
    if total > data.len() {
        return Err(BoardError::Truncated {
            what: "blob (header totalsize)".into(),
            need: total as u64,
            have: data.len() as u64,
        });
    }
    let (off_struct, off_strings, version) = (h(2) as usize, h(3) as usize, h(5));
    if version < 17 {
        return Err(BoardError::UnsupportedVersion { version });
    }
    // The memory reservation map: 8-byte aligned, inside the blob, and ended by a (0, 0) entry
    // before the blob ends.
    let off_rsvmap = h(4) as usize;
    let rsvmap_err = |reason: &str| BoardError::Structure {
        offset: off_rsvmap as u64,
        reason: reason.into(),
    };
    if off_rsvmap < HEADER_LEN || !off_rsvmap.is_multiple_of(8) {
        return Err(rsvmap_err(
            "memory reservation map is not 8-byte aligned after the header",
        ));
    }
    let mut entry = off_rsvmap;
    loop {
        let (Some(addr_hi), Some(addr_lo), Some(size_hi), Some(size_lo)) = (
            be32(data, entry),
            be32(data, entry + 4),
            be32(data, entry + 8),
            be32(data, entry + 12),
        ) else {
            return Err(rsvmap_err("memory reservation map lies outside the blob"));
        };
        if entry + 16 > total {
            return Err(rsvmap_err("memory reservation map lies outside the blob"));
        }
        entry += 16;
        if (addr_hi, addr_lo, size_hi, size_lo) == (0, 0, 0, 0) {
            break;
        }
    }
    let (size_strings, size_struct) = (h(8) as usize, h(9) as usize);
    let in_blob = |off: usize, len: usize| off.checked_add(len).is_some_and(|e| e <= total);
    if !in_blob(off_struct, size_struct) {
        return Err(BoardError::Structure {
            offset: off_struct as u64,
            reason: "structure block lies outside the blob".into(),
        });
    }
    if !in_blob(off_strings, size_strings) {
        return Err(BoardError::Structure {
            offset: off_strings as u64,
            reason: "strings block lies outside the blob".into(),
        });
    }
    let st = &data[off_struct..off_struct + size_struct];
    let strings = &data[off_strings..off_strings + size_strings];
    let bad = |offset: usize, reason: &str| BoardError::Structure {
        offset: (off_struct + offset) as u64,
        reason: reason.into(),
    };

    let mut pos = 0usize;
    let mut depth = 0usize;
    let mut path: Vec<String> = Vec::new();
    let mut shape = BlobShape { nodes: 0, props: 0 };
    let mut seen_root = false;
    loop {
        let tok = be32(st, pos).ok_or_else(|| bad(pos, "structure block ends without FDT_END"))?;
        let tok_at = pos;
        pos += 4;
        match tok {
            FDT_BEGIN_NODE => {
                let name = cstr_at(st, pos)
                    .ok_or_else(|| bad(pos, "node name is not a NUL-terminated UTF-8 string"))?;
                if depth == 0 {
                    if seen_root || !name.is_empty() {
                        return Err(bad(tok_at, "the tree must have exactly one root node"));
                    }
                    seen_root = true;
                } else if name.is_empty() || name.contains('/') {
                    return Err(bad(tok_at, "invalid node name"));
                }
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(BoardError::TooDeep {
                        path: path.join("/"),
                    });
                }
                path.push(name.to_string());
                shape.nodes += 1;
                pos = align4(pos + name.len() + 1).ok_or_else(|| bad(pos, "overflow"))?;
            }
            FDT_END_NODE => {
                if depth == 0 {
                    return Err(bad(
                        tok_at,
                        "FDT_END_NODE without a matching FDT_BEGIN_NODE",
                    ));
                }
                depth -= 1;
                path.pop();
            }
            FDT_PROP => {
                if depth == 0 {
                    return Err(bad(tok_at, "property outside any node"));
                }
                let len = be32(st, pos).ok_or_else(|| bad(pos, "truncated property header"))?;
                let nameoff =
                    be32(st, pos + 4).ok_or_else(|| bad(pos, "truncated property header"))?;
                let name = cstr_at(strings, nameoff as usize).ok_or_else(|| {
                    bad(
                        tok_at,
                        "property name offset is outside the strings block or not UTF-8",
                    )
                })?;
                if name.is_empty() {
                    return Err(bad(tok_at, "empty property name"));
                }
                let data_at = pos + 8;
                let end = data_at
                    .checked_add(len as usize)
                    .filter(|&e| e <= st.len())
                    .ok_or_else(|| BoardError::Property {
                        node: node_path(&path),
                        property: name.to_string(),
                        reason: format!("value of {len} bytes runs past the structure block"),
                    })?;
                shape.props += 1;
                pos = align4(end).ok_or_else(|| bad(pos, "overflow"))?;
            }
            FDT_NOP => {}
            FDT_END => {
                if depth != 0 || !seen_root {
                    return Err(bad(tok_at, "FDT_END inside an open node"));
                }
                return Ok(shape);
            }
            other => {
                return Err(bad(tok_at, &format!("unknown token {other:#x}")));
            }
        }
    }
}

fn node_path(parts: &[String]) -> String {
    if parts.len() <= 1 {
        "/".into()
    } else {
        parts.join("/")
    }
}

impl DeviceTree {
    /// Validate `data` and read it into an owned tree.
    pub fn parse(data: &[u8]) -> Result<Self, BoardError> {
        let shape = validate(data)?;
        let fdt = Fdt::new(data).map_err(|e| BoardError::Parser(FdtParserError(e)))?;
        let root = fdt.find_node("/").ok_or(BoardError::Structure {
            offset: 0,
            reason: "no root node".into(),
        })?;
        let mut tree = DeviceTree {
            nodes: Vec::new(),
            phandles: BTreeMap::new(),
        };
        tree.add(root, None, 0)?;
        let props: usize = tree.nodes.iter().map(|n| n.props.len()).sum();
        if tree.nodes.len() != shape.nodes || props != shape.props {
            return Err(BoardError::Structure {
                offset: 0,
                reason: format!(
                    "tree read back {} nodes / {} properties, blob has {} / {}",
                    tree.nodes.len(),
                    props,
                    shape.nodes,
                    shape.props
                ),
            });
        }
        Ok(tree)
    }

    fn add(
        &mut self,
        node: flat_device_tree::node::FdtNode<'_, '_>,
        parent: Option<usize>,
        depth: usize,
    ) -> Result<usize, BoardError> {
        let idx = self.nodes.len();
        let name = if parent.is_none() {
            String::new()
        } else {
            node.name.to_string()
        };
        let path = match parent.and_then(|p| self.nodes.get(p)) {
            None => "/".to_string(),
            Some(p) if p.path == "/" => format!("/{name}"),
            Some(p) => format!("{}/{name}", p.path),
        };
        if depth > MAX_DEPTH {
            return Err(BoardError::TooDeep { path });
        }
        let props: Vec<(String, Vec<u8>)> = node
            .properties()
            .map(|p| (p.name.to_string(), p.value.to_vec()))
            .collect();
        for (k, v) in &props {
            if k == "phandle" || k == "linux,phandle" {
                let ph =
                    be32(v, 0)
                        .filter(|_| v.len() == 4)
                        .ok_or_else(|| BoardError::Property {
                            node: path.clone(),
                            property: k.clone(),
                            reason: "must be one cell".into(),
                        })?;
                self.phandles.insert(ph, idx);
            }
        }
        self.nodes.push(DtNode {
            name,
            path,
            parent,
            children: Vec::new(),
            props,
        });
        for child in node.children() {
            let c = self.add(child, Some(idx), depth + 1)?;
            if let Some(n) = self.nodes.get_mut(idx) {
                n.children.push(c);
            }
        }
        Ok(idx)
    }

    /// All nodes, root first, depth-first in blob order.
    pub fn nodes(&self) -> &[DtNode] {
        &self.nodes
    }

    /// Node by index.
    pub fn node(&self, idx: usize) -> Option<&DtNode> {
        self.nodes.get(idx)
    }

    /// Node by full path.
    pub fn find(&self, path: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.path == path)
    }

    /// Node holding `phandle`.
    pub fn by_phandle(&self, phandle: u32) -> Option<usize> {
        self.phandles.get(&phandle).copied()
    }

    /// Raw property value.
    pub fn prop(&self, idx: usize, name: &str) -> Option<&[u8]> {
        self.nodes
            .get(idx)?
            .props
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    }

    /// Whether the property exists (e.g. boolean `dma-coherent`).
    pub fn has_prop(&self, idx: usize, name: &str) -> bool {
        self.prop(idx, name).is_some()
    }

    /// Path for error messages.
    pub fn path(&self, idx: usize) -> String {
        self.nodes
            .get(idx)
            .map(|n| n.path.clone())
            .unwrap_or_default()
    }

    fn prop_err(&self, idx: usize, name: &str, reason: impl Into<String>) -> BoardError {
        BoardError::Property {
            node: self.path(idx),
            property: name.into(),
            reason: reason.into(),
        }
    }

    /// A property as big-endian cells; the length must be a multiple of 4.
    pub fn cells(&self, idx: usize, name: &str) -> Result<Option<Vec<u32>>, BoardError> {
        let Some(v) = self.prop(idx, name) else {
            return Ok(None);
        };
        if v.len() % 4 != 0 {
            return Err(self.prop_err(
                idx,
                name,
                format!("length {} is not a multiple of 4", v.len()),
            ));
        }
        Ok(Some(
            v.chunks_exact(4)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ))
    }

    /// A single-cell property.
    pub fn u32_prop(&self, idx: usize, name: &str) -> Result<Option<u32>, BoardError> {
        match self.cells(idx, name)? {
            None => Ok(None),
            Some(c) if c.len() == 1 => Ok(Some(c[0])),
            Some(c) => Err(self.prop_err(idx, name, format!("expected 1 cell, found {}", c.len()))),
        }
    }

    /// A string-list property (`compatible`); `None` if absent.
    pub fn strings(&self, idx: usize, name: &str) -> Result<Option<Vec<String>>, BoardError> {
        let Some(v) = self.prop(idx, name) else {
            return Ok(None);
        };
        let s = std::str::from_utf8(v).map_err(|_| self.prop_err(idx, name, "not UTF-8"))?;
        Ok(Some(
            s.trim_end_matches('\0')
                .split('\0')
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect(),
        ))
    }

    /// The `compatible` list, empty if absent.
    pub fn compatible(&self, idx: usize) -> Result<Vec<String>, BoardError> {
        Ok(self.strings(idx, "compatible")?.unwrap_or_default())
    }

    /// `status` is absent, "okay" or "ok" (Linux's `of_device_is_available`).
    pub fn is_available(&self, idx: usize) -> bool {
        match self.prop(idx, "status") {
            None => true,
            Some(v) => {
                let s = v.split(|&b| b == 0).next().unwrap_or(&[]);
                s == b"okay" || s == b"ok"
            }
        }
    }

    /// `#address-cells` of `idx` (for its children); 2 when absent, as Linux assumes.
    pub fn address_cells(&self, idx: usize) -> Result<u32, BoardError> {
        let v = self.u32_prop(idx, "#address-cells")?.unwrap_or(2);
        if v > 3 {
            return Err(self.prop_err(idx, "#address-cells", format!("{v} is not supported")));
        }
        Ok(v)
    }

    /// `#size-cells` of `idx` (for its children); 1 when absent.
    pub fn size_cells(&self, idx: usize) -> Result<u32, BoardError> {
        let v = self.u32_prop(idx, "#size-cells")?.unwrap_or(1);
        if v > 2 {
            return Err(self.prop_err(idx, "#size-cells", format!("{v} is not supported")));
        }
        Ok(v)
    }

    /// `reg` as (address cells, size) pairs, using the parent's cell counts. Addresses are kept
    /// as raw cells (PCI has 3); sizes fold into a u64.
    pub fn reg(&self, idx: usize) -> Result<Vec<(Vec<u32>, u64)>, BoardError> {
        let Some(parent) = self.nodes.get(idx).and_then(|n| n.parent) else {
            return Ok(Vec::new());
        };
        let (ac, sc) = (
            self.address_cells(parent)? as usize,
            self.size_cells(parent)? as usize,
        );
        let Some(cells) = self.cells(idx, "reg")? else {
            return Ok(Vec::new());
        };
        let stride = ac + sc;
        if stride == 0 || cells.len() % stride != 0 {
            return Err(self.prop_err(
                idx,
                "reg",
                format!(
                    "{} cells is not a multiple of #address-cells {ac} + #size-cells {sc}",
                    cells.len()
                ),
            ));
        }
        Ok(cells
            .chunks_exact(stride)
            .map(|c| (c[..ac].to_vec(), fold(&c[ac..])))
            .collect())
    }

    /// Translate a bus address of a child of `bus` up to a CPU physical address through the
    /// `ranges` of every ancestor, as Linux's `of_translate_address` does. `None` when a level
    /// has no `ranges` or no range covers the address. The intermediate bus addresses stay
    /// `u64`: only the address at the root is a CPU physical address.
    pub fn translate(&self, bus: usize, addr: &[u32]) -> Result<Option<PhysAddr>, BoardError> {
        let mut cur_bus = bus;
        let mut a = fold(addr);
        let mut guard = 0;
        loop {
            guard += 1;
            if guard > MAX_DEPTH + 1 {
                return Ok(None);
            }
            let Some(parent) = self.nodes.get(cur_bus).and_then(|n| n.parent) else {
                return Ok(Some(PhysAddr::new(a)));
            };
            let Some(ranges) = self.cells(cur_bus, "ranges")? else {
                return Ok(None);
            };
            if ranges.is_empty() {
                cur_bus = parent;
                continue;
            }
            let ca = self.address_cells(cur_bus)? as usize;
            let cs = self.size_cells(cur_bus)? as usize;
            let pa = self.address_cells(parent)? as usize;
            let stride = ca + pa + cs;
            if stride == 0 || ranges.len() % stride != 0 {
                return Err(self.prop_err(
                    cur_bus,
                    "ranges",
                    "length is not a whole number of entries",
                ));
            }
            // PCI-style child addresses carry a flags cell first; compare only the low 2 cells.
            let child_low = |c: &[u32]| fold(if c.len() > 2 { &c[c.len() - 2..] } else { c });
            let mut hit = None;
            for e in ranges.chunks_exact(stride) {
                let cb = child_low(&e[..ca]);
                let pb = fold(&e[ca..ca + pa]);
                let sz = fold(&e[ca + pa..]);
                if a >= cb && a - cb < sz {
                    hit = Some(pb.wrapping_add(a - cb));
                    break;
                }
            }
            match hit {
                Some(x) => a = x,
                None => return Ok(None),
            }
            cur_bus = parent;
        }
    }
}

/// Fold big-endian cells into a u64 (the low 64 bits).
pub fn fold(cells: &[u32]) -> u64 {
    cells
        .iter()
        .fold(0u64, |acc, &c| (acc << 32) | u64::from(c))
}
