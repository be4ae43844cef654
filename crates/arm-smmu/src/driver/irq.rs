//! Interrupt entry points: the global fault and context fault handlers.

use super::{ArmSmmu, DomainCtx};
use smmu_sync::Arc;

impl ArmSmmu {
    /// Handle a global fault interrupt (Linux `arm_smmu_global_fault`).
    pub fn handle_global_fault(&self) -> smmu_arch::IrqReturn {
        crate::fault::global_fault(&self.hw)
    }

    /// Handle context interrupt `irq` (Linux `arm_smmu_context_fault`). The argument is the
    /// context interrupt index: the bank index on SMMUv2, CBAR.IRPTNDX (round-robin) on SMMUv1.
    /// As with Linux's shared IRQ, every domain whose bank uses that line gets its handler run.
    pub fn handle_context_fault(&self, irq: u16) -> smmu_arch::IrqReturn {
        let owners: Vec<Arc<DomainCtx>> = self
            .owners
            .read()
            .iter()
            .flatten()
            .filter(|c| c.cfg.irptndx == u32::from(irq))
            .cloned()
            .collect();
        let mut ret = smmu_arch::IrqReturn::None;
        for ctx in owners {
            let handler = ctx.fault_handler.lock().clone();
            let r = crate::fault::context_fault(
                &self.hw,
                self.behaviour.context_fault_report,
                ctx.cfg.cbndx,
                handler.as_deref(),
            );
            if r == smmu_arch::IrqReturn::Handled {
                ret = r;
            }
        }
        ret
    }
}
