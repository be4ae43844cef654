//! The IOVAs the ENETC's probe and open give PF0 on the built-in board (Kontron SL28 /
//! LS1028A): v6.1 `enetc_pf_probe` allocates the control BD ring and writes the default RSS
//! table through a temporary buffer before `enetc_alloc_msix` maps the ITS doorbell, then
//! `enetc_open` allocates the rings and fills the receive rings. Every IOVA follows from the
//! IOVA allocator (PCI: below 4 GiB first, top down; a freed one-page IOVA is the next
//! one-page allocation's, from the rcache).

use super::boot;
use crate::scenario::{KernelBehaviour, RebootConfig};
use smmu_addr::DmaAddr;

fn probe_iovas(kernel: KernelBehaviour) -> (DmaAddr, DmaAddr, DmaAddr) {
    let cfg = RebootConfig::new(kernel, crate::kbox_a230_ls());
    let m = boot(&cfg).expect("boots");
    let nic = m.nic.as_ref().expect("the board's ENETC PF0");
    (
        nic.control_ring(),
        nic.msi_route().address,
        nic.rx_buffer(0, 0).expect("a filled receive ring"),
    )
}

/// Under both kernels (the probe is the same): the control ring takes the first page below
/// 4 GiB, the RSS table's buffer the next and gives it back, and the doorbell takes it again
/// (message address 0xffff_e040, a page below where it was before the control ring was
/// modelled). The rings are 32 KiB (2,048 × 16-byte descriptors) and size-aligned, so the
/// first still starts at 0xffff_0000 as before, and so does everything after it: the first
/// receive buffer is 0xfffd_7000, below the two transmit and two receive rings, unchanged.
#[test]
fn pf0_s_control_ring_doorbell_and_first_receive_buffer() {
    for k in [KernelBehaviour::Linux61, KernelBehaviour::Linux62] {
        assert_eq!(
            probe_iovas(k),
            (
                DmaAddr::new(0xffff_f000),
                DmaAddr::new(0xffff_e040),
                DmaAddr::new(0xfffd_7000)
            ),
            "{k:?}"
        );
    }
}
