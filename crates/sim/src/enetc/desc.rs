//! The ring descriptors as the driver writes them and the hardware reads them: one 16-byte
//! layout shared by the driver half (`super::driver`) and the hardware half (`super::hw`).

use physmem::{PhysAddr, PhysMem};
use smmu_addr::DmaAddr;

/// Descriptor bytes: DMA address (8), length (2), flags (2), sequence number (4).
pub(super) const DESC_SIZE: u64 = 16;
pub(super) const FLAG_READY: u16 = 1;
pub(super) const FLAG_FULL: u16 = 4;

/// The physical address of descriptor `slot` of the ring at `ring` (the driver's view).
pub(super) fn desc_at(ring: PhysAddr, slot: usize) -> PhysAddr {
    PhysAddr::new(ring.as_u64() + slot as u64 * DESC_SIZE)
}

pub(super) fn write_desc(
    mem: &PhysMem,
    at: PhysAddr,
    addr: DmaAddr,
    len: u16,
    flags: u16,
    seq: u32,
) {
    let byte = |off: u64| PhysAddr::new(at.as_u64() + off);
    // The second word, little-endian: length (bytes 8-9), flags (10-11), sequence (12-15).
    let word1 = u64::from(len) | (u64::from(flags) << 16) | (u64::from(seq) << 32);
    // The address word first, then the word with the flags: the hardware must not see READY
    // before the address. (Two word stores: a ring fill writes thousands of descriptors.)
    if mem.write_u64(at, addr.as_u64()).is_ok() {
        let _ = mem.write_u64(byte(8), word1);
        return;
    }
    // A descriptor that is not 8-byte aligned: byte writes, flags last.
    let mut b = [0u8; DESC_SIZE as usize];
    b[..8].copy_from_slice(&addr.as_u64().to_le_bytes());
    b[8..10].copy_from_slice(&len.to_le_bytes());
    b[12..16].copy_from_slice(&seq.to_le_bytes());
    let _ = mem.write_bytes(at, &b);
    let _ = mem.write_bytes(byte(10), &flags.to_le_bytes());
}

pub(super) fn read_flags(mem: &PhysMem, at: PhysAddr) -> u16 {
    let mut b = [0u8; 2];
    let _ = mem.read_bytes(PhysAddr::new(at.as_u64() + 10), &mut b);
    u16::from_le_bytes(b)
}

pub(super) fn parse_desc(b: &[u8; DESC_SIZE as usize]) -> (u64, u16, u16, u32) {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    (
        u64::from_le_bytes(a),
        u16::from_le_bytes([b[8], b[9]]),
        u16::from_le_bytes([b[10], b[11]]),
        u32::from_le_bytes([b[12], b[13], b[14], b[15]]),
    )
}
