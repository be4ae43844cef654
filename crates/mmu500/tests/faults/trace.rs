//! The model's trace of transactions, faults and invalidations.

use super::*;

#[test]
fn transactions_faults_and_invalidations_are_traced() {
    use mmu500::{TlbiOp, TraceEvent};
    let (r, _pt) = booted();
    let s = &r.smmu;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    s.set_event_sink(Arc::new(move |e: &TraceEvent| {
        if !matches!(e, TraceEvent::MmioWrite { .. }) {
            sink.lock().unwrap().push(e.clone());
        }
    }));
    s.translate(ENETC_SID, Iova::new(IOVA), Access::Read)
        .unwrap();
    s.translate(ENETC_SID, Iova::new(IOVA + 0x7000), Access::Write)
        .unwrap_err();
    s.write64(cbo(s, 0) + cb::S1_TLBIVA, IOVA >> 12);
    s.write32(gr0::SCR0, 1);
    s.translate(ENETC_SID, Iova::new(IOVA), Access::Read)
        .unwrap();
    let ev = seen.lock().unwrap().clone();
    let f = DmaFault::Context {
        kind: ContextFaultKind::Translation,
        cb: 0,
        stage: Stage::S1,
        level: LookupLevel::L3,
        iova: Iova::new(IOVA + 0x7000),
        recorded: true,
        client_abort: true,
    };
    assert_eq!(
        ev,
        [
            TraceEvent::Translated {
                sid: ENETC_SID,
                iova: Iova::new(IOVA),
                access: Access::Read,
                pa: PhysAddr::new(DATA),
                cb: 0,
                tlb_hit: false
            },
            TraceEvent::ContextFaultRecorded {
                cb: 0,
                fsr: 0x402,
                far: IOVA + 0x7000,
                fsynr0: 0x13
            },
            TraceEvent::Faulted {
                sid: ENETC_SID,
                iova: Iova::new(IOVA + 0x7000),
                access: Access::Write,
                fault: f
            },
            TraceEvent::TlbInvalidate {
                op: TlbiOp::Va {
                    cb: 0,
                    asid: 0,
                    va: Iova::new(IOVA)
                },
                removed: 1
            },
            TraceEvent::Bypassed {
                sid: ENETC_SID,
                iova: Iova::new(IOVA),
                access: Access::Read,
                reason: BypassReason::ClientPd
            },
        ]
    );
}
