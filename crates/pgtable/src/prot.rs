//! IOMMU protection flags (Linux's IOMMU_READ, IOMMU_WRITE, ...).

/// Access permissions and attributes of a mapping, as a driver asks for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Prot(pub u32);

impl Prot {
    pub const READ: Prot = Prot(1 << 0);
    pub const WRITE: Prot = Prot(1 << 1);
    pub const CACHE: Prot = Prot(1 << 2);
    pub const NOEXEC: Prot = Prot(1 << 3);
    pub const MMIO: Prot = Prot(1 << 4);
    pub const PRIV: Prot = Prot(1 << 5);
    pub const NONE: Prot = Prot(0);

    pub const fn contains(self, other: Prot) -> bool {
        self.0 & other.0 == other.0
    }
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
