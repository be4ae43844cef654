//! The call-trace frames below the DMA API, per driver path and per execution context. Frames
//! with offsets are the seed's, verbatim; frames without offsets are named from the kernel's
//! call chain where no log gives their offsets.

use super::driver::Path;
use crate::dmesg::seed;
use crate::exec::Context;

/// The driver frames of `path` down to `enetc_poll` or the work function, then `ctx`'s frames.
pub(super) fn below_dma_api(path: Path, ctx: &Context) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    let push = |v: &mut Vec<String>, f: &[&str]| v.extend(f.iter().map(|s| s.to_string()));
    match path {
        Path::MldXmit => {
            // The seed's first report: the xmit path from mld_ifc_work, in its kworker.
            let upto = seed::MLD_XMIT_FRAMES
                .iter()
                .position(|f| f.starts_with("process_one_work"))
                .unwrap_or(seed::MLD_XMIT_FRAMES.len());
            push(&mut v, &seed::MLD_XMIT_FRAMES[..upto]);
            push(&mut v, &context_frames(ctx));
            return v;
        }
        Path::PingXmit => push(&mut v, PING_XMIT_FRAMES),
        Path::TxUnmap => push(&mut v, &seed::POLL_UNMAP_FRAMES[..2]),
        Path::RxRefill => push(
            &mut v,
            &[
                "enetc_new_page",
                "enetc_refill_rx_ring",
                "enetc_clean_rx_ring",
                "enetc_poll+0x170/0x910",
            ],
        ),
    }
    // enetc_poll runs from NAPI in net_rx_action.
    push(&mut v, NAPI);
    push(&mut v, &context_frames(ctx));
    v
}

/// NAPI's frames below a driver's poll function (the seed's offsets).
pub(crate) const NAPI: &[&str] = &["__napi_poll+0x40/0x1e0", "net_rx_action+0x164/0x37c"];

/// What lies below the softirq or the work function in each context.
pub(crate) fn context_frames(ctx: &Context) -> Vec<&'static str> {
    match ctx {
        // The seed's second report: __do_softirq in ksoftirqd.
        Context::Ksoftirqd(_) => vec![
            "__do_softirq+0x128/0x368",
            "run_ksoftirqd+0x68/0x90",
            "smpboot_thread_fn+0x14c/0x190",
        ],
        // __do_softirq on irq_exit, on the IRQ stack, over the interrupted task.
        Context::SoftirqOnIrqExit(t) => {
            let mut v = vec![
                "__do_softirq+0x128/0x368",
                "____do_softirq",
                "call_on_irq_stack",
                "do_softirq_own_stack",
                "__irq_exit_rcu",
                "irq_exit_rcu",
                "el1_interrupt",
                "el1h_64_irq_handler",
                "el1h_64_irq",
            ];
            if t.pid == 0 {
                v.extend(["default_idle_call", "do_idle", "cpu_startup_entry"]);
            }
            v
        }
        Context::Worker(_) => vec![
            "process_one_work+0x1e8/0x460",
            "worker_thread+0x178/0x534",
            "kthread+0xe0/0xe4",
            "ret_from_fork+0x10/0x20",
        ],
        Context::Hardirq(_) | Context::Process(_) => vec![],
        // irq_thread_fn → irq_thread, a kthread.
        Context::IrqThread(_) => vec!["irq_thread_fn", "irq_thread", "kthread", "ret_from_fork"],
    }
}

/// An echo reply sent from NAPI: the transmit half is the seed's, the IPv4 receive half is
/// named without offsets because no log gives them.
const PING_XMIT_FRAMES: &[&str] = &[
    "enetc_start_xmit+0x14c/0x10b0",
    "enetc_xmit+0x60/0xdc",
    "dev_hard_start_xmit+0xb8/0x210",
    "sch_direct_xmit+0x11c/0x420",
    "__dev_queue_xmit+0x354/0xb20",
    "ip_finish_output2",
    "ip_output",
    "ip_push_pending_frames",
    "icmp_reply",
    "icmp_echo",
    "icmp_rcv",
    "ip_local_deliver_finish",
    "__netif_receive_skb_one_core",
    "enetc_poll+0x170/0x910",
];
