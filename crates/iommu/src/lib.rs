//! The IOMMU core. Work in progress: see issue 4.

pub mod ops;

pub use ops::*;
