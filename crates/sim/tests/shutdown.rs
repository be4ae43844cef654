//! device_shutdown() ordering with device links, against iommu-core-and-shutdown.md §7/§8.

use klog::Level;
use sim::kernel::{
    boot_board, generic_driver, kvm_reboot_notifier, Driver, GenericDriver, Kernel, KernelError,
    SystemState,
};
use sim::{kbox_a230_ls, Bus, DeviceIndex, Dmesg};
use smmu_sync::Arc;

/// Stand-in for arm-smmu: its v6.1 shutdown prints the notice first.
struct SmmuStandIn;
impl Driver for SmmuStandIn {
    fn name(&self) -> &str {
        "arm-smmu"
    }
    fn has_shutdown(&self) -> bool {
        true
    }
    fn shutdown(&self, k: &Kernel, dev: DeviceIndex) {
        k.dev_printk(dev, Level::Notice, "disabling translation");
    }
}

fn booted() -> (Kernel, Arc<Dmesg>, sim::kernel::BootedBoard) {
    let log = Arc::new(Dmesg::new());
    log.set_timestamps(false);
    let k = Kernel::new(log.clone());
    let b = kbox_a230_ls();
    let booted = boot_board(
        &k,
        &b,
        &|_| Arc::new(SmmuStandIn) as Arc<dyn Driver>,
        &|_, m| generic_driver(m),
        true,
    )
    .unwrap();
    (k, log, booted)
}

#[test]
fn masters_shut_down_before_the_smmu_in_reverse_link_order() {
    let (k, log, booted) = booted();
    k.register_reboot_notifier(kvm_reboot_notifier());
    assert!(k.kernel_restart(None));
    assert_eq!(k.system_state(), SystemState::Restarted);
    let visited: Vec<String> = k.shutdown_log().iter().map(|r| r.prefix.clone()).collect();
    // Linked masters in reverse probe (= link) order, then the never-probed PTP function (not
    // linked, so still where it was registered), then the SMMU.
    let want = [
        "fsl-qdma 8380000.dma-controller",
        "pcieport 0002:00:00.0",
        "pcieport 0001:00:00.0",
        "fsl-edma 22c0000.dma-controller",
        "caam_jr 8040000.jr",
        "caam_jr 8030000.jr",
        "caam_jr 8020000.jr",
        "caam_jr 8010000.jr",
        "sdhci-esdhc 2150000.mmc",
        "sdhci-esdhc 2140000.mmc",
        "dwc3 3110000.usb",
        "dwc3 3100000.usb",
        "fsl_enetc_mdio 0000:00:00.3",
        "fsl_enetc 0000:00:00.6",
        "fsl_enetc 0000:00:00.2",
        "fsl_enetc 0000:00:00.1",
        "fsl_enetc 0000:00:00.0",
        "mscc_felix 0000:00:00.5",
        "ahci-qoriq 3200000.sata",
        "etnaviv etnaviv",
        "etnaviv-gpu f0c0000.gpu",
        "platform f080000.display",
        "pci 0000:00:00.4",
        "arm-smmu 5000000.iommu",
    ];
    assert_eq!(visited, want);
    // Which shutdown callbacks actually ran: the SMMU's is the last one.
    let ran: Vec<String> = k
        .shutdown_log()
        .iter()
        .filter(|r| r.driver_shutdown)
        .map(|r| r.prefix.clone())
        .collect();
    assert_eq!(
        ran,
        vec![
            "pcieport 0002:00:00.0",
            "pcieport 0001:00:00.0",
            "mscc_felix 0000:00:00.5",
            "arm-smmu 5000000.iommu",
        ]
    );
    assert!(ran.iter().all(|p| !p.starts_with("fsl_enetc ")));
    // fsl_enetc has no .shutdown and a plain reboot leaves its bus mastering on: its DMA is
    // still live when the SMMU shuts down.
    let pf0 = booted.masters[kbox_a230_ls().master("0000:00:00.0").unwrap()];
    assert!(k.bus_master(pf0));
    // The log: the SMMU's notice is the first device line, exactly as in the seed.
    assert_eq!(
        log.lines(),
        vec![
            "kvm: exiting hardware virtualization",
            "arm-smmu 5000000.iommu: disabling translation",
            "reboot: Restarting system",
        ]
    );
}

#[test]
fn kexec_clears_pci_bus_mastering_reboot_does_not() {
    let (k, log, booted) = booted();
    assert!(k.kernel_kexec());
    let b = kbox_a230_ls();
    for (i, m) in b.masters.iter().enumerate() {
        let probed_pci = m.bus == Bus::Pci && m.driver.is_some();
        assert!(!k.bus_master(booted.masters[i]), "{}", m.name);
        let rec = k
            .shutdown_log()
            .into_iter()
            .find(|r| r.dev == booted.masters[i])
            .unwrap();
        assert_eq!(rec.cleared_bus_master, probed_pci, "{}", m.name);
    }
    assert_eq!(
        log.lines().last().map(String::as_str),
        Some("kexec_core: Starting new kernel")
    );
    assert_eq!(k.system_state(), SystemState::Kexeced);
}

/// The SMMU comes after the masters it serves in DT order (iommu@5000000 after mmc@2140000),
/// so without links it would shut down first; the links fix that.
#[test]
fn links_move_consumers_children_and_their_consumers_to_the_tail() {
    let k = Kernel::new(Arc::new(Dmesg::new()));
    let mmc = k.device_register("2140000.mmc", Bus::Platform, None);
    let card = k.device_register("mmc0:0001", Bus::Platform, Some(mmc));
    let host = k.device_register("1f0000000.pcie", Bus::Platform, None);
    let smmu = k.device_register("5000000.iommu", Bus::Platform, None);
    let other = k.device_register("2000000.i2c", Bus::Platform, None);
    let smmu_drv: Arc<dyn Driver> = Arc::new(SmmuStandIn);
    k.driver_attach(smmu, smmu_drv).unwrap();
    assert_eq!(k.device_list(), vec![mmc, card, host, smmu, other]);
    k.device_link_add(mmc, smmu).unwrap();
    // The consumer and its child move behind everything.
    assert_eq!(k.device_list(), vec![host, smmu, other, mmc, card]);
    // A consumer of the consumer moves along when the consumer moves again.
    k.device_link_add(host, mmc).unwrap();
    assert_eq!(k.device_list(), vec![smmu, other, mmc, card, host]);
    k.device_link_add(mmc, smmu).unwrap(); // duplicate link: no change
    assert_eq!(k.device_list(), vec![smmu, other, mmc, card, host]);
    assert_eq!(k.device_link_add(99, smmu), Err(KernelError::NoDevice(99)));
    k.device_shutdown();
    let order: Vec<DeviceIndex> = k.shutdown_log().iter().map(|r| r.dev).collect();
    assert_eq!(order, vec![host, card, mmc, other, smmu]);
    assert_eq!(k.parent(card), Some(mmc));
}

#[test]
fn unbinding_a_supplier_removes_its_consumers_first_and_unbound_devices_print_the_bus() {
    use smmu_sync::Mutex;
    struct Rec(&'static str, Arc<Mutex<Vec<&'static str>>>);
    impl Driver for Rec {
        fn name(&self) -> &str {
            self.0
        }
        fn remove(&self, _k: &Kernel, _dev: DeviceIndex) {
            self.1.lock().push(self.0);
        }
    }
    let calls = Arc::new(Mutex::new(Vec::new()));
    let k = Kernel::new(Arc::new(Dmesg::new()));
    let s = k.device_register("5000000.iommu", Bus::Platform, None);
    let m = k.device_register("0000:00:00.0", Bus::Pci, None);
    k.driver_attach(s, Arc::new(Rec("arm-smmu", calls.clone())))
        .unwrap();
    k.driver_attach(m, Arc::new(Rec("fsl_enetc", calls.clone())))
        .unwrap();
    k.device_link_add(m, s).unwrap();
    assert_eq!(k.dev_prefix(m), "fsl_enetc 0000:00:00.0");
    k.device_release_driver(s).unwrap();
    assert_eq!(*calls.lock(), vec!["fsl_enetc", "arm-smmu"]);
    assert_eq!(k.dev_prefix(m), "pci 0000:00:00.0");
    // A driver whose probe fails leaves the device printing as its bus.
    let d = k.device_register("f080000.display", Bus::Platform, None);
    let r = k.driver_attach(
        d,
        Arc::new(GenericDriver {
            name: "mali-dp".into(),
            has_shutdown: true,
            binds: false,
        }),
    );
    assert!(matches!(r, Err(KernelError::ProbeFailed { .. })));
    assert_eq!(k.dev_prefix(d), "platform f080000.display");
}

#[test]
fn a_panic_during_shutdown_stops_it() {
    struct Crasher;
    impl Driver for Crasher {
        fn name(&self) -> &str {
            "crasher"
        }
        fn has_shutdown(&self) -> bool {
            true
        }
        fn shutdown(&self, k: &Kernel, _dev: DeviceIndex) {
            k.oops(&sim::OopsReport {
                fault_addr: 0xa8,
                task: None,
                hardware_name: None,
                pc: "iommu_get_dma_domain+0x14/0x20".into(),
                lr: "iommu_dma_unmap_page+0x38/0xe0".into(),
                call_trace: vec![],
                code: [0; 5],
                in_interrupt: true,
            });
        }
    }
    let log = Arc::new(Dmesg::new());
    let k = Kernel::new(log.clone());
    let a = k.device_register("a", Bus::Platform, None);
    let _b = k.device_register("b", Bus::Platform, None);
    k.driver_attach(_b, Arc::new(Crasher)).unwrap();
    assert!(!k.kernel_restart(None));
    assert!(k.halted() && log.stopped());
    assert_eq!(k.shutdown_log().len(), 1, "device a was never reached");
    assert!(k.device_list().contains(&a));
    assert!(!log.lines().iter().any(|l| l.contains("Restarting")));
}

#[test]
fn kernel_is_shareable_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Kernel>();
    assert_send_sync::<Dmesg>();
}

/// `bus_for_each_dev` order (what iommu_device_unregister walks) is registration order, not the
/// link-reordered shutdown list: platform devices, then PCI, as in the seed's removal lines.
#[test]
fn bus_order_stays_registration_order_after_links() {
    let (k, _log, booted) = booted();
    let b = kbox_a230_ls();
    let platform: Vec<String> = k
        .bus_devices(Bus::Platform)
        .into_iter()
        .map(|d| k.dev_prefix(d))
        .collect();
    assert_eq!(platform[0], "arm-smmu 5000000.iommu");
    assert_eq!(platform[1], "sdhci-esdhc 2140000.mmc");
    assert_eq!(
        platform.last().map(String::as_str),
        Some("caam_jr 8040000.jr")
    );
    let pci = k.bus_devices(Bus::Pci);
    assert_eq!(pci.len(), 9);
    assert_eq!(pci[0], booted.masters[b.master("0000:00:00.0").unwrap()]);
    assert_ne!(k.device_list(), {
        let mut v = k.bus_devices(Bus::Platform);
        v.extend(k.bus_devices(Bus::Pci));
        v
    });
}
