//! Error cases: every bad input is a typed error (or 0 for unmap), never a panic.

mod inputs;
mod map;
mod unmap;

#[path = "../common/mod.rs"]
mod common;

use common::{allocator, CheckingTlb, TlbEvent};
use common::{SZ_1G, SZ_2M, SZ_4K};
use pgtable::{
    Gather, NoTlb, PageTable, PartialUnmap, PgTableError, PgTableRequest, PgTableRequestError,
    Prot, Stage, PGSIZES_4K, PGSIZES_64K,
};
use smmu_addr::{Iova, PageCount, PageSize, PhysAddr};

fn table(ias: u32, oas: u32) -> PageTable<NoTlb> {
    PageTable::new(
        PgTableRequest::new(Stage::S1, PGSIZES_4K, ias, oas),
        allocator(),
        NoTlb,
    )
    .unwrap()
}

const RW: Prot = Prot(Prot::READ.0 | Prot::WRITE.0);
