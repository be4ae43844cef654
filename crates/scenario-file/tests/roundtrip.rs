//! Random valid scenarios written as TOML read back to exactly what was written: every actor,
//! every step and every parameter, with the step's line.

use proptest::prelude::*;
use scenario_file::{parse, ActorKind, Dir, Op};
use std::path::Path;

/// One generated step: the op and its parameters as they are written.
#[derive(Debug, Clone)]
struct Gen {
    op: Op,
    device: Option<String>,
    domain: Option<String>,
    buffer: Option<String>,
    size: Option<u64>,
    nents: Option<u32>,
    iova: Option<u64>,
    dir: Option<Dir>,
}

fn gen(op: Op) -> Gen {
    Gen {
        op,
        device: None,
        domain: None,
        buffer: None,
        size: None,
        nents: None,
        iova: None,
        dir: None,
    }
}

impl Gen {
    fn toml(&self) -> String {
        let mut s = format!("{{ op = \"{}\"", self.op.name());
        if let Some(v) = &self.device {
            s += &format!(", device = \"{v}\"");
        }
        if let Some(v) = &self.domain {
            s += &format!(", domain = \"{v}\"");
        }
        if let Some(v) = &self.buffer {
            s += &format!(", buffer = \"{v}\"");
        }
        if let Some(v) = self.size {
            s += &format!(", size = {v:#x}");
        }
        if let Some(v) = self.nents {
            s += &format!(", nents = {v}");
        }
        if let Some(v) = self.iova {
            s += &format!(", iova = {v:#x}");
        }
        if let Some(v) = self.dir {
            s += &format!(", dir = \"{}\"", v.name());
        }
        s + " }"
    }
}

const MASTERS: [&str; 5] = [
    "3200000.sata",
    "22c0000.dma-controller",
    "0000:00:00.0",
    "0000:00:00.1",
    "3100000.usb",
];
const PCI: [&str; 2] = ["0000:00:00.1", "0000:00:00.2"];

/// A unit of a kernel actor's script: one or more steps that are valid together. `n` makes
/// handle names unique.
fn unit(choice: u8, dev: usize, size: u64, n: usize) -> Vec<Gen> {
    let master = MASTERS[dev % MASTERS.len()].to_string();
    let dirs = [Dir::ToDevice, Dir::FromDevice, Dir::Bidirectional];
    match choice % 9 {
        0 => {
            let op = [
                Op::Probe,
                Op::Bind,
                Op::Unbind,
                Op::Remove,
                Op::DeferredProbe,
            ][dev % 5];
            let device = if size.is_multiple_of(3) {
                "5000000.iommu".to_string()
            } else {
                master
            };
            vec![Gen {
                device: Some(device),
                ..gen(op)
            }]
        }
        1 => vec![Gen {
            device: Some(PCI[dev % 2].into()),
            ..gen(Op::PciHotUnplug)
        }],
        2 => {
            let b = format!("p{n}");
            vec![
                Gen {
                    device: Some(master.clone()),
                    size: Some(size),
                    dir: Some(dirs[dev % 3]),
                    buffer: Some(b.clone()),
                    ..gen(Op::DmaMapPage)
                },
                Gen {
                    device: Some(master),
                    buffer: Some(b),
                    ..gen(Op::DmaUnmapPage)
                },
            ]
        }
        3 => {
            let b = format!("s{n}");
            vec![
                Gen {
                    device: Some(master.clone()),
                    nents: Some(1 + (size % 7) as u32),
                    size: Some(size),
                    dir: Some(dirs[(dev + 1) % 3]),
                    buffer: Some(b.clone()),
                    ..gen(Op::DmaMapSg)
                },
                Gen {
                    device: Some(master),
                    buffer: Some(b),
                    ..gen(Op::DmaUnmapSg)
                },
            ]
        }
        4 => {
            let b = format!("c{n}");
            vec![
                Gen {
                    device: Some(master.clone()),
                    size: Some(size),
                    buffer: Some(b.clone()),
                    ..gen(Op::DmaAllocCoherent)
                },
                Gen {
                    device: Some(master),
                    buffer: Some(b),
                    ..gen(Op::DmaFreeCoherent)
                },
            ]
        }
        5 => {
            let d = format!("d{n}");
            let iova = (size & !0xfff) + 0x10_0000;
            vec![
                Gen {
                    domain: Some(d.clone()),
                    device: Some(master.clone()),
                    ..gen(Op::IommuDomainAlloc)
                },
                Gen {
                    domain: Some(d.clone()),
                    device: Some(master.clone()),
                    ..gen(Op::IommuAttachDevice)
                },
                Gen {
                    domain: Some(d.clone()),
                    iova: Some(iova),
                    size: Some(0x2000),
                    ..gen(Op::IommuMap)
                },
                Gen {
                    domain: Some(d.clone()),
                    iova: Some(iova),
                    size: Some(0x1000),
                    ..gen(Op::IommuUnmap)
                },
                Gen {
                    domain: Some(d.clone()),
                    device: Some(master),
                    ..gen(Op::IommuDetachDevice)
                },
                Gen {
                    domain: Some(d),
                    ..gen(Op::IommuDomainFree)
                },
            ]
        }
        6 => vec![gen(
            [Op::RebootForce, Op::KexecExecute, Op::CrashKexec][dev % 3]
        )],
        7 => vec![Gen {
            device: Some(master),
            ..gen(Op::FqTimerExpiry)
        }],
        _ => vec![Gen {
            device: Some(master),
            ..gen(Op::Probe)
        }],
    }
}

fn actor_kind(k: u8) -> ActorKind {
    [
        ActorKind::CpuTask,
        ActorKind::Kthread,
        ActorKind::Workqueue,
        ActorKind::Timer,
    ][usize::from(k % 4)]
}

proptest! {
    #[test]
    fn random_scenarios_read_back_exactly(
        actors in prop::collection::vec(
            (any::<u8>(), prop::collection::vec((any::<u8>(), 0usize..10, 1u64..0x10_0000), 1..5)),
            1..4),
        engines in prop::collection::vec(any::<bool>(), 0..3),
    ) {
        let mut text = String::from("[board]\nbuiltin = \"kbox-a230-ls\"\n\n[kernel]\nversion = \"v6.2\"\n");
        let mut want: Vec<(String, ActorKind, Vec<Gen>)> = Vec::new();
        let mut n = 0;
        for (i, (kind, units)) in actors.iter().enumerate() {
            let kind = actor_kind(*kind);
            let mut steps = Vec::new();
            for (choice, dev, size) in units {
                n += 1;
                steps.extend(unit(*choice, *dev, *size, n));
            }
            want.push((format!("a{i}"), kind, steps));
        }
        // DMA engines write the page buffers of their own device.
        let pages: Vec<(String, String)> = want
            .iter()
            .flat_map(|(_, _, s)| s.iter())
            .filter(|g| g.op == Op::DmaMapPage)
            .map(|g| (g.buffer.clone().unwrap(), g.device.clone().unwrap()))
            .collect();
        for (i, read) in engines.iter().enumerate() {
            let Some((b, _)) = pages.get(i) else { break };
            let op = if *read { Op::DeviceRead } else { Op::DeviceWrite };
            want.push((format!("e{i}"), ActorKind::DmaEngine, vec![Gen { buffer: Some(b.clone()), ..gen(op) }]));
        }
        let mut lines = Vec::new();
        for (name, kind, steps) in &want {
            text += &format!("\n[[actor]]\nname = \"{name}\"\nkind = \"{}\"\n", kind.name());
            match kind {
                ActorKind::CpuTask => text += "cpu = 1\n",
                ActorKind::DmaEngine => {
                    let b = steps[0].buffer.as_ref().unwrap();
                    let dev = &pages.iter().find(|(x, _)| x == b).unwrap().1;
                    text += &format!("device = \"{dev}\"\n");
                }
                _ => {}
            }
            text += "script = [\n";
            for s in steps {
                lines.push(text.lines().count() + 1);
                text += &format!("  {},\n", s.toml());
            }
            text += "]\n";
        }
        let s = parse(&text, Path::new("gen.toml")).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(s.actors.len(), want.len());
        let mut line = lines.iter();
        for (a, (name, kind, steps)) in s.actors.iter().zip(&want) {
            prop_assert_eq!(&a.name, name);
            prop_assert_eq!(a.kind, *kind);
            prop_assert_eq!(a.script.len(), steps.len());
            for (got, w) in a.script.iter().zip(steps) {
                prop_assert_eq!(got.op, w.op);
                prop_assert_eq!(&got.device, &w.device);
                prop_assert_eq!(&got.domain, &w.domain);
                prop_assert_eq!(&got.buffer, &w.buffer);
                prop_assert_eq!(got.size, w.size);
                prop_assert_eq!(got.nents, w.nents);
                prop_assert_eq!(got.iova, w.iova.map(smmu_addr::Iova::new));
                prop_assert_eq!(got.dir, w.dir);
                prop_assert_eq!(Some(&got.at.line), line.next());
            }
        }
    }
}
