//! The SMMUv3 race on `sim::exec` (issue 13): the verdict names the task, PID and CPU that
//! crashed and what the CPUs did; runs are deterministic; and a function whose Bus Master
//! Enable was cleared (kexec) issues no DMA after the clear, over an explored set of runs.

use explore::RunResult;
use sim::scenario::{
    ExecutionModel, KernelBehaviour, Property, RebootConfig, RebootOutcome, RebootScenario,
    ReplayToken, Trigger,
};
use std::sync::Arc;

const MAX_STEPS: usize = 2_000_000;

fn board() -> sim::Board {
    let mut b = sim::Board::from_dtb(&lab_fixtures::qemu_virt_smmuv3_dtb()).unwrap();
    b.add_pci_function(&"00:01.0=e1000e".parse().unwrap())
        .unwrap();
    b
}

fn scenario(kernel: KernelBehaviour, trigger: Trigger) -> Arc<RebootScenario> {
    let mut config = RebootConfig::new(kernel, board());
    config.trigger = trigger;
    config.traffic = vec!["0000:00:01.0".to_string()];
    config.timestamps = false;
    Arc::new(RebootScenario {
        config,
        properties: Property::DEFAULT.to_vec(),
        boot_cache: Default::default(),
    })
}

fn replay(token: &str) -> RebootOutcome {
    let t: ReplayToken = token.parse().expect("a token");
    let scn = scenario(t.kernel, t.trigger);
    let rec = t.schedule.replay(scn, MAX_STEPS).expect("the token fits");
    match rec.outcome {
        RunResult::Completed(Ok(o)) => o,
        other => panic!("run did not complete: {other:?}"),
    }
}

#[test]
fn pinned_v3_oops_names_the_context_that_crashed() {
    let o = replay("reboot:linux-6.1:random@1");
    let v = &o.verdict;
    assert_eq!(v.execution, ExecutionModel::ExecContexts);
    let oops = v.oops.clone().expect("an Oops");
    assert_eq!(
        (
            oops.fault_addr,
            oops.dma_call.as_str(),
            oops.caller.as_str(),
            oops.comm.as_str(),
            oops.pid,
            oops.cpu
        ),
        (
            0x98,
            "dma_map_page_attrs",
            "0000:00:01.0 NAPI poll",
            "swapper/0",
            0,
            0
        )
    );
    // The NAPI poll ran in softirq on irq exit over CPU 0's idle task, before the shell (woken on
    // CPU 0) held it.
    assert_eq!(
        (
            v.cpu0.hardirqs,
            v.cpu0.softirq_on_irq_exit,
            v.cpu0.softirq_in_ksoftirqd,
            v.trigger_cpu
        ),
        (1, 1, 0, 0)
    );
    let lines: Vec<&str> = o.log.lines().collect();
    let cpu_line = lines
        .iter()
        .find(|l| l.starts_with("CPU: "))
        .expect("the Oops's CPU line");
    assert_eq!(
        *cpu_line,
        "CPU: 0 PID: 0 Comm: swapper/0 Not tainted 6.1.0-rc5-00088-gf3600ff8e322 #1930"
    );
    let trace: Vec<&str> = lines
        .iter()
        .skip_while(|l| **l != "Call trace:")
        .skip(1)
        .take_while(|l| !l.starts_with("Code:"))
        .copied()
        .collect();
    assert_eq!(
        trace,
        [
            "iommu_get_dma_domain+0x14/0x20",
            "dma_map_page_attrs+0x1ec/0x250",
            "__napi_poll+0x40/0x1e0",
            "net_rx_action+0x164/0x37c",
            "__do_softirq+0x128/0x368",
            "____do_softirq",
            "call_on_irq_stack",
            "do_softirq_own_stack",
            "__irq_exit_rcu",
            "irq_exit_rcu",
            "el1_interrupt",
            "el1h_64_irq_handler",
            "el1h_64_irq",
            "default_idle_call",
            "do_idle",
            "cpu_startup_entry",
        ]
    );
}

#[test]
fn same_seed_same_bytes() {
    for token in ["reboot:linux-6.1:random@7", "kexec:linux-6.2:random@3"] {
        let (a, b) = (replay(token), replay(token));
        assert_eq!(a.log, b.log, "{token}");
        assert_eq!(a.verdict, b.verdict, "{token}");
        assert_eq!(a.timeline, b.timeline, "{token}");
    }
}

#[test]
fn no_dma_is_issued_after_bus_mastering_is_cleared() {
    // kexec on linux-6.2: device_shutdown clears the function's Bus Master Enable, then the
    // SMMU's shutdown leaves it bypassing. 200 random schedules.
    let mut held_back = 0;
    for seed in 0..200 {
        let o = replay(&format!("kexec:linux-6.2:random@{seed}"));
        let v = &o.verdict;
        held_back += v.bme_suppressed;
        // Every stray transaction was issued before the clear (in flight at it).
        assert_eq!(
            v.stray_dma_writes + v.stray_dma_reads,
            v.stray_in_flight_at_bme_clear,
            "seed {seed}: stray DMA issued after Bus Master Enable was cleared: {v:?}"
        );
        // A posted write's abort is invisible to the function.
        assert_eq!(v.nic_errors, Default::default(), "seed {seed}");
    }
    assert!(held_back > 0, "no run cleared bus mastering under traffic");
}
