//! The example files in scenarios/ parse, validate against their boards, and those that are
//! today's built-in runs map onto exactly the config the CLI's options build.

use scenario_file::today::{self, NotToday};
use scenario_file::{load, ActorKind, BoardSource, ContentHash, DmaPattern, Op, ScenarioFile};
use sim::scenario::{KernelBehaviour, Property, RebootConfig, Trigger};
use std::path::{Path, PathBuf};

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios")
}

fn example(name: &str) -> ScenarioFile {
    let p = scenarios_dir().join(name);
    load(&p).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The real LS1028A-RDB blob the DTB example names, when the shared folder is beside the repo.
fn shared_present() -> bool {
    lab_fixtures::shared::path("boards/ls1028a-rdb.dtb").is_some()
}

/// Every file in scenarios/ is valid (the DTB one only where ../shared exists).
#[test]
fn every_example_file_validates() {
    let mut n = 0;
    let mut entries: Vec<_> = std::fs::read_dir(scenarios_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    entries.sort();
    for p in entries {
        let text = std::fs::read_to_string(&p).unwrap();
        if text.contains("dtb = ") && !shared_present() {
            eprintln!("skipping {}: its board is not here", p.display());
            continue;
        }
        let s = load(&p).unwrap_or_else(|e| panic!("{e}"));
        assert!(!s.actors.is_empty(), "{}", p.display());
        assert_eq!(s.content_hash, ContentHash::of(text.as_bytes()));
        n += 1;
    }
    assert!(n >= 5, "only {n} example files");
}

/// What `smmu-lab run TRIGGER --kernel K [options]` builds, field by field.
fn assert_same(a: &RebootConfig, b: &RebootConfig) {
    assert_eq!(a.kernel, b.kernel);
    assert_eq!(a.trigger, b.trigger);
    assert_eq!(a.cmdline, b.cmdline);
    assert_eq!(a.timestamps, b.timestamps);
    assert_eq!(a.nic.flood_packets, b.nic.flood_packets);
    assert_eq!(a.nic.stream_id, b.nic.stream_id);
    assert_eq!(a.max_actor_steps, b.max_actor_steps);
    assert_eq!(a.traffic, b.traffic);
    assert_eq!(a.board.hardware_name(), b.board.hardware_name());
    assert_eq!(a.board.masters.len(), b.board.masters.len());
}

fn cli(kernel: KernelBehaviour, trigger: Trigger) -> RebootConfig {
    let mut c = RebootConfig::new(kernel, sim::kbox_a230_ls());
    c.trigger = trigger;
    c
}

#[test]
fn the_seed_file_is_run_reboot_linux_61() {
    let s = example("reboot-ping-flood.toml");
    assert_eq!(s.name, "reboot-ping-flood");
    assert_eq!(s.board_source, BoardSource::Builtin("kbox-a230-ls"));
    assert_eq!(s.kernel.to_string(), "v6.1");
    assert_eq!(s.drivers[0].device, "0000:00:00.0");
    assert_eq!(s.drivers[0].name, "fsl_enetc", "the board's driver name");
    assert!(!s.drivers[0].has_shutdown);
    assert_eq!(s.drivers[0].dma, DmaPattern::EnetcPingFlood);
    assert_eq!(s.actors[0].kind, ActorKind::CpuTask);
    assert_eq!(s.actors[0].cpu, Some(1));
    assert_eq!(s.actors[0].script[0].op, Op::RebootForce);
    let names: Vec<&str> = s.properties.iter().map(|p| p.name).collect();
    let want: Vec<&str> = Property::DEFAULT.iter().map(|p| p.name()).collect();
    assert_eq!(names, want);
    let scenario_file::Runnable::Machine { properties, .. } =
        scenario_file::runnable(&s, &s.kernel).unwrap()
    else {
        panic!("a reboot file runs on the reboot machine")
    };
    assert_eq!(properties, Property::DEFAULT);
    let c = today::reboot_config(&s).unwrap();
    assert_same(&c, &cli(KernelBehaviour::Linux61, Trigger::Reboot));
}

#[test]
fn kexec_and_unbind_files_are_todays_runs() {
    let c = today::reboot_config(&example("kexec-ping-flood.toml")).unwrap();
    assert_same(&c, &cli(KernelBehaviour::Linux62, Trigger::Kexec));
    let c = today::reboot_config(&example("unbind-smmu.toml")).unwrap();
    assert_same(&c, &cli(KernelBehaviour::Linux62, Trigger::UnbindSmmu));
    let c = today::reboot_config(&example("kdump-ping-flood.toml")).unwrap();
    assert_same(&c, &cli(KernelBehaviour::Linux62, Trigger::CrashKexec));
}

#[test]
fn traffic_file_is_run_with_traffic_and_cmdline() {
    let s = example("reboot-with-traffic.toml");
    let names: Vec<Option<Property>> = s.properties.iter().map(|p| p.machine).collect();
    // Every property but smmu-probed (a next kernel's probe; the file reboots).
    let want: Vec<Option<Property>> = Property::ALL
        .iter()
        .filter(|p| **p != Property::SmmuProbed)
        .map(|p| Some(*p))
        .collect();
    assert_eq!(names, want);
    let c = today::reboot_config(&s).unwrap();
    let mut want = cli(KernelBehaviour::Quiesce, Trigger::Reboot);
    want.cmdline = sim::scenario::KernelParams::parse("iommu.strict=0").unwrap();
    want.traffic = vec!["3200000.sata".into(), "22c0000.dma-controller".into()];
    assert_same(&c, &want);
    assert!(!c.cmdline.strict);
}

#[test]
fn dtb_file_resolves_relative_to_itself() {
    if !shared_present() {
        eprintln!("skipping: the shared boards are not here");
        return;
    }
    let s = example("kexec-rdb-dtb.toml");
    let BoardSource::Dtb { written, resolved } = &s.board_source else {
        panic!("{:?}", s.board_source)
    };
    assert!(written.starts_with("../../") && written.ends_with("/ls1028a-rdb.dtb"));
    let real = lab_fixtures::shared::path("boards/ls1028a-rdb.dtb").unwrap();
    assert_eq!(
        resolved.canonicalize().unwrap(),
        real.canonicalize().unwrap()
    );
    assert!(resolved.starts_with(scenarios_dir()));
    let data = std::fs::read(resolved).unwrap();
    let board = sim::Board::from_dtb(&data).unwrap();
    let c = today::reboot_config(&s).unwrap();
    let mut want = RebootConfig::new(KernelBehaviour::Linux61, board);
    want.trigger = Trigger::Kexec;
    assert_same(&c, &want);
}

#[test]
fn a_race_beyond_todays_runs_validates_but_waits_for_the_kernel_model() {
    let s = example("lazy-unmap-vs-unbind.toml");
    assert_eq!(s.actors.len(), 4);
    let engine = &s.actors[1];
    assert_eq!(engine.kind, ActorKind::DmaEngine);
    assert_eq!(engine.device.as_deref(), Some("3200000.sata"));
    assert_eq!(s.actors[3].script[0].op, Op::FqTimerExpiry);
    assert_eq!(
        s.actors[0].script[0].at.line, 25,
        "the line of the step in the file"
    );
    assert!(!s.cmdline.strict);
    assert_eq!(today::reboot_config(&s).unwrap_err(), NotToday::Actors);
}

#[test]
fn kernels_today_runs_and_those_it_does_not() {
    use kernel_history::KernelSpec;
    let b = |s: &str| today::behaviour(&KernelSpec::parse(s).unwrap());
    assert_eq!(b("v6.1"), Ok(KernelBehaviour::Linux61));
    assert_eq!(b("v6.2-ce31e6ca68bd"), Ok(KernelBehaviour::Linux61));
    assert_eq!(b("v6.1+ce31e6ca68bd"), Ok(KernelBehaviour::Linux62));
    assert_eq!(b("current"), Ok(KernelBehaviour::Linux62));
    assert_eq!(
        b("v6.2+quiesce+guarded_dma_domain"),
        Ok(KernelBehaviour::Quiesce)
    );
    // Every behaviour is reached from its legacy name.
    for k in KernelBehaviour::ALL {
        let spec = KernelSpec::from_legacy_name(k.name()).unwrap();
        assert_eq!(today::behaviour(&spec), Ok(k), "{k}");
    }
    // The machine of today hard-codes the core's switches: these wait for the kernel model.
    assert!(matches!(b("v6.0"), Err(NotToday::Kernel { .. })));
    assert!(matches!(b("v6.2+quiesce"), Err(NotToday::Kernel { .. })));
    assert!(matches!(
        b("v6.1+guarded_dma_domain"),
        Err(NotToday::Kernel { .. })
    ));
    assert!(matches!(b("v6.1+quiesce"), Err(NotToday::NoCodePath(_))));
}

#[test]
fn content_hash_is_sha256_of_the_bytes_and_sees_every_edit() {
    assert_eq!(
        ContentHash::of(b"").to_string(),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    let p = scenarios_dir().join("reboot-ping-flood.toml");
    let text = std::fs::read_to_string(&p).unwrap();
    let a = scenario_file::parse(&text, &p).unwrap().content_hash;
    let b = scenario_file::parse(&text, &p).unwrap().content_hash;
    assert_eq!(a, b);
    assert_eq!(a.short(), a.to_string()[..12]);
    // A comment changes nothing the validator sees, but it is an edit: the hash changes.
    let edited = format!("{text}# edited\n");
    let c = scenario_file::parse(&edited, &p).unwrap().content_hash;
    assert_ne!(a, c);
}

/// Two masters on one stream ID (i.MX8QM MEK fec1/fec2, SID 0x12) probing at once: valid
/// against the real device tree, and not one of today's runs.
#[test]
fn shared_sid_probe_race_validates_against_the_imx8qm_tree() {
    if !shared_present() {
        eprintln!("skipping: the shared boards are not here");
        return;
    }
    let s = example("probe-race-shared-sid.toml");
    let sid = |name: &str| {
        let m = &s.board.masters[s.board.master(name).unwrap()];
        m.ids.iter().map(|id| id.sid).collect::<Vec<_>>()
    };
    assert_eq!(sid("5b040000.ethernet"), [0x12]);
    assert_eq!(sid("5b050000.ethernet"), [0x12]);
    assert_eq!(s.actors.len(), 4);
    assert_eq!(s.drivers[1].name, "fec", "the file names the driver");
    assert_eq!(today::reboot_config(&s).unwrap_err(), NotToday::Actors);
}
