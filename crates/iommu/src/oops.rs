//! The simulated kernel oops of Linux-faithful mode (the seed's NULL group dereference).
//!
//! In v6.1 `iommu_get_dma_domain()` loads `dev->iommu_group->default_domain` with no check; after
//! `iommu_group_remove_device()` cleared the group pointer, the load faults at the offset of
//! `default_domain` in `struct iommu_group`, a layout fact of the kernel build (the seed log shows
//! two builds: 0x98 in `#1930`, 0xa8 in the build of its second report). The faulting
//! instruction is `ldr x0, [x0, #offset]`, so the `Code:` line's last word is computed from the
//! offset; the other words and the symbol offsets are the seed's, verbatim.

/// Which DMA API entry reached the NULL group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OopsPath {
    /// `dma_map_page_attrs` -> `iommu_dma_map_page` (seed oops 1).
    MapPage,
    /// `dma_unmap_page_attrs` -> `iommu_dma_unmap_page` (seed oops 2).
    UnmapPage,
}

/// A simulated kernel oops, with what Linux prints about it. The caller (the simulated device
/// driver) appends its own frames to `call_trace` and the simulator prints the whole report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Oops {
    /// Which DMA API entry crashed.
    pub path: OopsPath,
    /// The faulting virtual address: the build's offset of `default_domain` in
    /// `struct iommu_group` (0x98 in the seed's `#1930`, 0xa8 in its second report's build).
    pub fault_addr: u64,
    /// `pc : …` symbol.
    pub pc: String,
    /// `lr : …` symbol.
    pub lr: String,
    /// The innermost frames of the call trace, innermost first.
    pub call_trace: Vec<String>,
    /// The words of the `Code:` line, the faulting one in parentheses.
    pub code: String,
}

/// pc of both seed oopses.
pub const OOPS_PC: &str = "iommu_get_dma_domain+0x14/0x20";

/// The offset of `default_domain` in `struct iommu_group` of the seed's `#1930` build.
pub const SEED_DEFAULT_DOMAIN_OFFSET: u64 = 0x98;

/// The A64 encoding of `ldr x0, [x0, #offset]` (LDR immediate, unsigned offset, 64-bit: the
/// 12-bit immediate is the offset in units of 8 bytes, at bits 21:10).
pub fn ldr_x0_x0(offset: u64) -> u32 {
    0xf940_0000 | ((((offset / 8) & 0xfff) as u32) << 10)
}

impl Oops {
    /// The oops of a DMA API call on a device whose group pointer is NULL, in a build whose
    /// `struct iommu_group` has `default_domain` at `default_domain_offset`.
    pub fn null_group(path: OopsPath, default_domain_offset: u64) -> Oops {
        let (lr, caller) = match path {
            OopsPath::MapPage => (
                "iommu_dma_map_page+0x9c/0x254",
                "dma_map_page_attrs+0x1ec/0x250",
            ),
            OopsPath::UnmapPage => (
                "iommu_dma_unmap_page+0x38/0xe0",
                "dma_unmap_page_attrs+0x38/0x1d0",
            ),
        };
        Oops {
            path,
            fault_addr: default_domain_offset,
            pc: OOPS_PC.to_string(),
            lr: lr.to_string(),
            call_trace: vec![OOPS_PC.to_string(), caller.to_string()],
            code: format!(
                "d503201f f9416800 d503233f d50323bf ({:08x})",
                ldr_x0_x0(default_domain_offset)
            ),
        }
    }

    /// `Unable to handle kernel NULL pointer dereference at virtual address 0000000000000098`.
    pub fn unable_line(&self) -> String {
        format!(
            "Unable to handle kernel NULL pointer dereference at virtual address {:016x}",
            self.fault_addr
        )
    }

    /// `pc : iommu_get_dma_domain+0x14/0x20`.
    pub fn pc_line(&self) -> String {
        format!("pc : {}", self.pc)
    }

    /// `lr : iommu_dma_map_page+0x9c/0x254`.
    pub fn lr_line(&self) -> String {
        format!("lr : {}", self.lr)
    }

    /// `Code: d503201f f9416800 d503233f d50323bf (f9404c00)`.
    pub fn code_line(&self) -> String {
        format!("Code: {}", self.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_values() {
        assert_eq!(ldr_x0_x0(0x98), 0xf9404c00);
        assert_eq!(ldr_x0_x0(0xa8), 0xf9405400);
        let m = Oops::null_group(OopsPath::MapPage, 0x98);
        assert_eq!(
            m.unable_line(),
            "Unable to handle kernel NULL pointer dereference at virtual address 0000000000000098"
        );
        assert_eq!(m.pc_line(), "pc : iommu_get_dma_domain+0x14/0x20");
        assert_eq!(m.lr_line(), "lr : iommu_dma_map_page+0x9c/0x254");
        assert_eq!(
            m.call_trace,
            [
                "iommu_get_dma_domain+0x14/0x20",
                "dma_map_page_attrs+0x1ec/0x250"
            ]
        );
        assert_eq!(
            m.code_line(),
            "Code: d503201f f9416800 d503233f d50323bf (f9404c00)"
        );
        let u = Oops::null_group(OopsPath::UnmapPage, 0xa8);
        assert_eq!(
            u.unable_line(),
            "Unable to handle kernel NULL pointer dereference at virtual address 00000000000000a8"
        );
        assert_eq!(u.lr_line(), "lr : iommu_dma_unmap_page+0x38/0xe0");
        assert_eq!(
            u.call_trace,
            [
                "iommu_get_dma_domain+0x14/0x20",
                "dma_unmap_page_attrs+0x38/0x1d0"
            ]
        );
        assert_eq!(
            u.code_line(),
            "Code: d503201f f9416800 d503233f d50323bf (f9405400)"
        );
    }
}
