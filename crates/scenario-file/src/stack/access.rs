//! The real stack's device side: a DMA engine reads or writes, through the MMU-500 model,
//! the buffers its driver mapped; a fault is a `no-fault` finding and goes to the driver's
//! context-fault handler when the bank's interrupt is pending.

use super::{Shared, Stack, StackConfig, StackDevice, StackProperty};
use mmu500::{BusError, BypassReason, DmaFault, Translation};
use smmu_arch::FaultIrq;
use smmu_sync::{thread, Mutex};

/// A device's DMA engine reads or writes a buffer its driver mapped, through the SMMU model.
pub(super) fn device_access(
    cfg: &StackConfig,
    stack: &Stack,
    shared: &Mutex<Shared>,
    dev: &StackDevice,
    write: bool,
    buffer: &str,
) {
    let say = |line: String| shared.lock().lines.push(line);
    // The engine runs when its driver has handed it the buffer; it gives up when
    // no kernel actor is left to map it.
    let kernel_actors = cfg.actors.iter().filter(|a| !a.engine).count();
    let list = loop {
        let (list, done) = {
            let sh = shared.lock();
            (sh.buffers.get(buffer).cloned(), sh.kernel_actors_done)
        };
        if list.is_some() || done == kernel_actors {
            break list;
        }
        thread::yield_now();
    };
    let what = if write { "write" } else { "read" };
    let Some(list) = list else {
        say(format!(
            "{}: {what} of {buffer}: the driver handed over no such buffer",
            dev.name
        ));
        return;
    };
    for (addr, len) in list {
        let mut data = vec![0xa5u8; len as usize];
        let r = if write {
            stack.model.dma_write(dev.wire_sid, addr.bus_iova(), &data)
        } else {
            stack
                .model
                .dma_read(dev.wire_sid, addr.bus_iova(), &mut data)
        };
        match r {
            Ok(ts) => {
                let bypass = ts.iter().find_map(|t| match t {
                    Translation::Bypass { pa, reason } => Some((*pa, *reason)),
                    Translation::Translated { .. } => None,
                });
                let iova = shared.lock().iova_buffers.contains(buffer);
                match bypass.filter(|_| iova) {
                    None => say(format!(
                        "{}: DMA {what} of {len:#x} bytes at IOVA {addr:#x}: translated",
                        dev.name
                    )),
                    Some((pa, reason)) => {
                        let msg = format!(
                            "{} (stream {:#x}) DMA {what} at IOVA {addr:#x} of {buffer}: bypassed translation ({}), reaching physical address {pa:#x}",
                            dev.name,
                            dev.wire_sid,
                            bypass_reason(reason)
                        );
                        let mut sh = shared.lock();
                        sh.lines.push(msg.clone());
                        sh.findings.push((StackProperty::NoStrayDma, msg));
                    }
                }
            }
            Err(e @ BusError::Fault { .. }) => {
                let msg = format!(
                    "{} (stream {:#x}) DMA {what} at IOVA {addr:#x} of {buffer}: {e}",
                    dev.name, dev.wire_sid
                );
                {
                    let mut sh = shared.lock();
                    sh.lines.push(msg.clone());
                    sh.findings.push((StackProperty::NoFault, msg));
                }
                // The bank's interrupt line: the driver's handler reports it.
                if let BusError::Fault {
                    fault: DmaFault::Context { cb, .. },
                    ..
                } = e
                {
                    let smmu = stack.smmu.lock().clone();
                    if let Some(smmu) = smmu {
                        if stack.model.irq_pending(FaultIrq::Context(cb)) {
                            smmu.handle_context_fault(cb);
                        }
                    }
                }
            }
            Err(e) => say(format!("{}: DMA {what} at {addr:#x}: {e}", dev.name)),
        }
    }
}

/// Why the model let a transaction through untranslated, in a finding.
fn bypass_reason(r: BypassReason) -> &'static str {
    match r {
        BypassReason::ClientPd => "sCR0.CLIENTPD is set: the SMMU is disabled",
        BypassReason::S2crBypass => "the stream's S2CR is BYPASS",
        BypassReason::UnmatchedBypass => "no SMR matches the stream and sCR0.USFCFG is 0",
        BypassReason::CbDisabled => "the context bank's SCTLR.M is 0: the bank is disabled",
    }
}
