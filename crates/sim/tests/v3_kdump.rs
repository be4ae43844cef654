//! kdump on SMMUv3 (issue 14's corpus, b63b3439b856 and 3f54c447df34): QEMU's virt board with a
//! flooded PCI function at 00:01.0 (stream ID 0x8) whose driver never stops it, and a crash
//! kexec. The capture kernel's arm-smmu-v3 finds the SMMU enabled with the crashed kernel's
//! stream table, while the function's receive DMA is still in flight.
//!
//! * Before b63b3439b856 the reset leaves GBPA as it is: on QEMU (GBPA bypass) DMA that arrives
//!   while CR0.SMMUEN = 0 goes to the IOVA as a physical address (stray).
//! * b63b3439b856: GBPA.ABORT, SMMU disabled, probe -EBUSY: nothing stray, but the capture kernel
//!   has no SMMU (`smmu-probed` fails).
//! * 3f54c447df34: GBPA.ABORT, full reset, the event queue off: nothing stray, probed, and the
//!   crashed kernel's faults are not reported.

use arm_smmu_v3::EnabledAtProbe;
use explore::{ExploreOptions, Report, RunResult, Strategy};
use sim::scenario::{
    KernelBehaviour, MachineSetupError, Property, RebootConfig, RebootOutcome, RebootScenario,
    Trigger,
};
use std::sync::Arc;

const NIC: &str = "0000:00:01.0";

fn board() -> sim::Board {
    let mut b = sim::Board::from_dtb(&lab_fixtures::qemu_virt_smmuv3_dtb()).unwrap();
    b.add_pci_function(&"00:01.0=e1000e".parse().unwrap())
        .unwrap();
    b
}

fn scenario(at_probe: EnabledAtProbe) -> Arc<RebootScenario> {
    let mut config = RebootConfig::new(KernelBehaviour::Linux62, board());
    config.trigger = Trigger::CrashKexec;
    config.traffic = vec![NIC.to_string()];
    config.v3_enabled_at_probe = at_probe;
    let mut properties = Property::DEFAULT.to_vec();
    properties.push(Property::SmmuProbed);
    Arc::new(RebootScenario {
        config,
        properties,
        boot_cache: Default::default(),
    })
}

type Rep = Report<RunResult<Result<RebootOutcome, MachineSetupError>>>;

fn explore(scn: &Arc<RebootScenario>, runs: u64) -> Rep {
    explore::explore(
        scn.clone(),
        ExploreOptions {
            strategy: Strategy::Random,
            runs,
            seed: 1,
            max_steps: 2_000_000,
            ..Default::default()
        },
        &|_, _| {},
    )
}

fn failures(at: EnabledAtProbe) -> Vec<String> {
    explore(&scenario(at), 200).failures.into_keys().collect()
}

#[test]
fn before_b63b3439b856_in_flight_dma_strays_during_the_reset() {
    let rep = explore(&scenario(EnabledAtProbe::ResetAsFound), 200);
    assert_eq!(rep.failures.keys().collect::<Vec<_>>(), ["no-stray-dma"]);
    let Some(RunResult::Completed(Ok(o))) = rep.first_failure.as_ref().map(|f| &f.outcome) else {
        panic!("no failing run: {:?}", rep.failures);
    };
    assert!(
        o.log.contains("SMMU currently enabled! Resetting..."),
        "{}",
        o.log
    );
    assert!(o.verdict.stray_dma_writes > 0);
    assert_eq!(o.verdict.smmu_probe_failures, 0);
}

#[test]
fn b63b3439b856_strays_nothing_but_refuses_the_smmu() {
    assert_eq!(failures(EnabledAtProbe::KdumpAbortAndFail), ["smmu-probed"]);
}

#[test]
fn f3f54c447df34_strays_nothing_and_probes() {
    assert!(failures(EnabledAtProbe::AbortThenReset).is_empty());
}
