//! Step 2, S2CR: the matched group's stream-to-context register says whether the stream
//! translates (and through which bank, with which privilege), bypasses or faults.

use crate::state::Registers;
use smmu_arch::regs::{self, s2cr};

/// What a stream's S2CR says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum S2crAction {
    /// Translate through context bank `cb`; `privileged` from PRIVCFG.
    Translate { cb: usize, privileged: bool },
    /// TYPE = BYPASS.
    Bypass,
    /// TYPE = FAULT (or the reserved TYPE 3).
    Fault,
}

impl Registers {
    /// Decode group `group`'s S2CR (a group without one reads as zero).
    #[inline]
    pub(crate) fn s2cr_action(&self, group: u32) -> S2crAction {
        let v = self.s2cr.get(group as usize).copied().unwrap_or(0);
        match regs::field(v, s2cr::TYPE_SHIFT, s2cr::TYPE_WIDTH) {
            s2cr::TYPE_TRANS => S2crAction::Translate {
                cb: regs::field(v, s2cr::CBNDX_SHIFT, s2cr::CBNDX_WIDTH) as usize,
                privileged: regs::field(v, s2cr::PRIVCFG_SHIFT, s2cr::PRIVCFG_WIDTH)
                    == s2cr::PRIVCFG_PRIV,
            },
            s2cr::TYPE_BYPASS => S2crAction::Bypass,
            _ => S2crAction::Fault,
        }
    }
}
