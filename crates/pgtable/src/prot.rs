//! IOMMU protection flags (Linux's IOMMU_READ, IOMMU_WRITE, ...).

/// Access permissions and attributes of a mapping, as a driver asks for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Prot(pub u32);

impl Prot {
    /// Device may read.
    pub const READ: Prot = Prot(1 << 0);
    /// Device may write.
    pub const WRITE: Prot = Prot(1 << 1);
    /// Cacheable, inner-shareable memory (coherent DMA).
    pub const CACHE: Prot = Prot(1 << 2);
    /// Not executable (XN).
    pub const NOEXEC: Prot = Prot(1 << 3);
    /// Device memory (MMIO, e.g. an MSI doorbell).
    pub const MMIO: Prot = Prot(1 << 4);
    /// Privileged-only access (S1: no EL0/unprivileged access).
    pub const PRIV: Prot = Prot(1 << 5);
    /// No access at all.
    pub const NONE: Prot = Prot(0);

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: Prot) -> bool {
        self.0 & other.0 == other.0
    }
    /// Both sets of flags.
    pub const fn union(self, other: Prot) -> Prot {
        Prot(self.0 | other.0)
    }
}

impl std::ops::BitOr for Prot {
    type Output = Prot;
    fn bitor(self, rhs: Prot) -> Prot {
        self.union(rhs)
    }
}
