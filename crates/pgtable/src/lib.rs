//! ARM LPAE I/O page tables (Linux io-pgtable-arm semantics). Work in progress: see issue 2.

mod gather;
mod prot;

pub use gather::{Gather, TlbOps};
pub use prot::Prot;
