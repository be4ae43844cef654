//! From the TOML text to a [`ScenarioFile`]: every check happens here, before anything runs, and
//! every refusal points at the offending value.

use crate::error::{ErrorKind, ScenarioError};
use crate::model::{Actor, BoardSource, ContentHash, DriverDecl, Position, ScenarioFile, Step};
use crate::raw::{RawActor, RawDriver, RawFile, RawStep};
use crate::vocab::{names, ActorKind, Dir, DmaPattern, Op, Param};
use kernel_history::KernelSpec;
use sim::scenario::KernelParams;
use sim::{Board, Bus};
use smmu_addr::{Iova, PhysAddr};
use std::ops::Range;
use std::path::Path;
use toml::Spanned;

/// The built-in boards, by the name a file uses.
pub const BUILTIN_BOARDS: [&str; 2] = ["kbox-a230-ls", "qemu-virt-smmuv3"];

fn builtin_board(name: &str) -> Option<(&'static str, Board)> {
    match name {
        "kbox-a230-ls" => Some(("kbox-a230-ls", sim::kbox_a230_ls())),
        // QEMU's virt machine with its SMMUv3, from the repository's fixture text (which the
        // board tests load beside ../shared's qemu-virt-smmuv3.dtb); its PCI functions are
        // named by `[board] pci`.
        "qemu-virt-smmuv3" => Board::from_dtb(&lab_fixtures::qemu_virt_smmuv3_dtb())
            .ok()
            .map(|b| ("qemu-virt-smmuv3", b)),
        _ => None,
    }
}

/// Positions in one file's text.
pub(crate) struct Src<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Src<'_> {
    pub(crate) fn position(&self, offset: usize) -> Position {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        Position { line, column }
    }

    pub(crate) fn err(&self, span: Range<usize>, kind: ErrorKind) -> ScenarioError {
        let p = self.position(span.start);
        ScenarioError {
            file: self.file.to_path_buf(),
            line: p.line,
            column: p.column,
            kind: Box::new(kind),
        }
    }
}

/// The TOML reader's error, typed where it is one of ours (unknown or missing key). The
/// reader reports these through serde's messages, so their key is taken from the message.
fn toml_error(e: &toml::de::Error) -> ErrorKind {
    let msg = e.message().trim_end();
    let quoted = |rest: &str| rest.split('`').next().unwrap_or("").to_string();
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        let expected = rest
            .split_once("expected ")
            .map_or("no keys here", |(_, e)| e)
            .replace('`', "'");
        return ErrorKind::UnknownKey {
            key: quoted(rest),
            expected,
        };
    }
    if let Some(rest) = msg.strip_prefix("missing field `") {
        return ErrorKind::MissingKey { key: quoted(rest) };
    }
    ErrorKind::Syntax { source: e.clone() }
}

/// Parse and validate `text`, read from `file` (relative DTB paths resolve against its
/// directory).
pub fn parse(text: &str, file: &Path) -> Result<ScenarioFile, ScenarioError> {
    let src = Src { file, text };
    let raw: RawFile =
        toml::from_str(text).map_err(|e| src.err(e.span().unwrap_or(0..0), toml_error(&e)))?;

    let (board_source, board) = board(&src, &raw)?;
    let kernel_version = &raw.kernel.get_ref().version;
    let kernel = KernelSpec::parse(kernel_version.get_ref())
        .map_err(|e| src.err(kernel_version.span(), ErrorKind::Kernel(e)))?;
    let cmdline = match &raw.kernel.get_ref().cmdline {
        None => KernelParams::default(),
        Some(c) => KernelParams::parse(c.get_ref())
            .map_err(|e| src.err(c.span(), ErrorKind::Cmdline(e)))?,
    };
    let boards = Devices { board: &board };

    let mut drivers: Vec<DriverDecl> = Vec::new();
    for d in &raw.driver {
        let decl = driver(&src, &boards, d)?;
        if drivers.iter().any(|x| x.device == decl.device) {
            return Err(src.err(
                d.get_ref().device.span(),
                ErrorKind::DuplicateDriver {
                    device: decl.device,
                },
            ));
        }
        drivers.push(decl);
    }

    let mut actors: Vec<Actor> = Vec::new();
    for a in &raw.actor {
        let actor = actor(&src, &boards, a)?;
        if actors.iter().any(|x| x.name == actor.name) {
            return Err(src.err(
                a.get_ref().name.span(),
                ErrorKind::DuplicateActor { name: actor.name },
            ));
        }
        actors.push(actor);
    }
    crate::handles::check(&src, &raw.actor, &actors)?;

    let properties = match &raw.check {
        None => Vec::new(),
        Some(c) => c
            .properties
            .iter()
            .map(|p| crate::bug::checked_property(&src, p))
            .collect::<Result<_, _>>()?,
    };
    let quirks = raw
        .board
        .get_ref()
        .quirks
        .iter()
        .map(|q| {
            crate::vocab::Quirk::from_name(q.get_ref()).ok_or_else(|| {
                src.err(
                    q.span(),
                    ErrorKind::UnknownQuirk {
                        name: q.get_ref().clone(),
                        known: names(&crate::vocab::Quirk::ALL, crate::vocab::Quirk::name),
                    },
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let smmu_ias = match &raw.board.get_ref().smmu_ias {
        None => None,
        Some(b) if [32, 36, 40, 42, 44, 48].contains(b.get_ref()) => Some(*b.get_ref()),
        Some(b) => return Err(src.err(b.span(), ErrorKind::SmmuIas { bits: *b.get_ref() })),
    };
    let bug = match &raw.bug {
        None => None,
        Some(b) => Some(crate::bug::bug(&src, b, &kernel, &properties)?),
    };

    let meta = raw.scenario.as_ref();
    let name = meta
        .and_then(|m| m.name.clone())
        .or_else(|| file.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_default();
    Ok(ScenarioFile {
        path: file.to_path_buf(),
        name,
        description: meta.and_then(|m| m.description.clone()).unwrap_or_default(),
        board_source,
        board,
        kernel,
        cmdline,
        drivers,
        actors,
        properties,
        quirks,
        smmu_ias,
        bug,
        content_hash: ContentHash::of(text.as_bytes()),
    })
}

fn board(src: &Src<'_>, raw: &RawFile) -> Result<(BoardSource, Board), ScenarioError> {
    let (source, mut board) = board_itself(src, raw)?;
    for f in &raw.board.get_ref().pci {
        let added = f
            .get_ref()
            .parse::<sim::pci_enum::PciFunction>()
            .and_then(|p| board.add_pci_function(&p));
        if let Err(e) = added {
            return Err(src.err(f.span(), ErrorKind::Pci(e)));
        }
    }
    Ok((source, board))
}

fn board_itself(src: &Src<'_>, raw: &RawFile) -> Result<(BoardSource, Board), ScenarioError> {
    let b = raw.board.get_ref();
    match (&b.builtin, &b.dtb) {
        (Some(name), None) => {
            let (name_static, board) = builtin_board(name.get_ref()).ok_or_else(|| {
                src.err(
                    name.span(),
                    ErrorKind::UnknownBoard {
                        name: name.get_ref().clone(),
                        known: BUILTIN_BOARDS.join(", "),
                    },
                )
            })?;
            Ok((BoardSource::Builtin(name_static), board))
        }
        (None, Some(dtb)) => {
            let dir = src.file.parent().unwrap_or(Path::new(""));
            let resolved = dir.join(dtb.get_ref());
            let data = std::fs::read(&resolved).map_err(|e| {
                src.err(
                    dtb.span(),
                    ErrorKind::DtbUnreadable {
                        path: resolved.clone(),
                        source: e.into(),
                    },
                )
            })?;
            let board = Board::from_dtb(&data).map_err(|error| {
                src.err(
                    dtb.span(),
                    ErrorKind::Dtb {
                        path: resolved.clone(),
                        error,
                    },
                )
            })?;
            Ok((
                BoardSource::Dtb {
                    written: dtb.get_ref().clone(),
                    resolved,
                },
                board,
            ))
        }
        _ => Err(src.err(raw.board.span(), ErrorKind::BoardSource)),
    }
}

/// Device names resolved against the board.
struct Devices<'a> {
    board: &'a Board,
}

enum Device<'a> {
    Master(&'a sim::Master),
    Smmu,
}

impl Devices<'_> {
    fn find(&self, src: &Src<'_>, name: &Spanned<String>) -> Result<Device<'_>, ScenarioError> {
        let n = name.get_ref();
        if let Some(m) = self.board.master(n).and_then(|i| self.board.masters.get(i)) {
            return Ok(Device::Master(m));
        }
        if self.board.smmus.iter().any(|s| &s.name == n) {
            return Ok(Device::Smmu);
        }
        let known: Vec<&str> = self
            .board
            .masters
            .iter()
            .map(|m| m.name.as_str())
            .chain(self.board.smmus.iter().map(|s| s.name.as_str()))
            .collect();
        Err(src.err(
            name.span(),
            ErrorKind::DeviceNotOnBoard {
                device: n.clone(),
                board: self.board.hardware_name(),
                known: known.join(", "),
            },
        ))
    }

    fn master(
        &self,
        src: &Src<'_>,
        op: &'static str,
        name: &Spanned<String>,
    ) -> Result<&sim::Master, ScenarioError> {
        match self.find(src, name)? {
            Device::Master(m) => Ok(m),
            Device::Smmu => Err(src.err(
                name.span(),
                ErrorKind::NotAMaster {
                    op,
                    device: name.get_ref().clone(),
                },
            )),
        }
    }
}

fn driver(
    src: &Src<'_>,
    devices: &Devices<'_>,
    d: &Spanned<RawDriver>,
) -> Result<DriverDecl, ScenarioError> {
    let r = d.get_ref();
    let m = devices.master(src, "[[driver]]", &r.device)?;
    let name = match &r.name {
        Some(n) => n.get_ref().clone(),
        None => m.driver.clone().unwrap_or_else(|| m.bus.name().to_string()),
    };
    let dma = match &r.dma {
        None => DmaPattern::None,
        Some(p) => DmaPattern::from_name(p.get_ref()).ok_or_else(|| {
            src.err(
                p.span(),
                ErrorKind::UnknownDmaPattern {
                    pattern: p.get_ref().clone(),
                    known: names(&DmaPattern::ALL, DmaPattern::name),
                },
            )
        })?,
    };
    if dma == DmaPattern::EnetcPingFlood && name != "fsl_enetc" {
        let at = r.dma.as_ref().map_or(d.span(), |p| p.span());
        return Err(src.err(
            at,
            ErrorKind::NotAnEnetc {
                device: m.name.clone(),
                driver: name,
            },
        ));
    }
    let count = |v: &Option<Spanned<u32>>, key: &'static str, ok: bool| match v {
        None => Ok(None),
        Some(v) if !ok => Err(src.err(
            v.span(),
            ErrorKind::PatternParameter {
                pattern: dma.name(),
                key,
            },
        )),
        Some(v) if *v.get_ref() == 0 => Err(src.err(v.span(), ErrorKind::Zero { key })),
        Some(v) => Ok(Some(*v.get_ref())),
    };
    let packets = count(&r.packets, "packets", dma == DmaPattern::EnetcPingFlood)?;
    let steps = count(&r.steps, "steps", dma != DmaPattern::None)?;
    let stream_ids = match &r.stream_ids {
        Some(v) if v.get_ref().is_empty() => return Err(src.err(v.span(), ErrorKind::NoStreamIds)),
        v => v.as_ref().map(|v| v.get_ref().clone()),
    };
    let mut direct_regions = Vec::new();
    for reg in &r.direct_regions {
        let g = reg.get_ref();
        let base = PhysAddr::new(g.base);
        if !base.is_aligned(crate::PAGE_SIZE) {
            return Err(src.err(
                reg.span(),
                ErrorKind::Unaligned {
                    key: "base",
                    value: g.base,
                },
            ));
        }
        if *g.size.get_ref() == 0 {
            return Err(src.err(g.size.span(), ErrorKind::Zero { key: "size" }));
        }
        direct_regions.push((base, *g.size.get_ref()));
    }
    let dma_mask_bits = match &r.dma_mask_bits {
        Some(b) if !(12..=64).contains(b.get_ref()) => {
            return Err(src.err(b.span(), ErrorKind::DmaMaskBits { bits: *b.get_ref() }))
        }
        b => b.as_ref().map(|b| *b.get_ref()),
    };
    Ok(DriverDecl {
        stream_ids,
        direct_regions,
        dma_mask_bits,
        device: m.name.clone(),
        name,
        has_shutdown: r.shutdown.unwrap_or(m.has_shutdown),
        dma,
        packets,
        steps,
    })
}

fn actor(
    src: &Src<'_>,
    devices: &Devices<'_>,
    a: &Spanned<RawActor>,
) -> Result<Actor, ScenarioError> {
    let r = a.get_ref();
    let kind = ActorKind::from_name(r.kind.get_ref()).ok_or_else(|| {
        src.err(
            r.kind.span(),
            ErrorKind::UnknownActorKind {
                kind: r.kind.get_ref().clone(),
                known: names(&ActorKind::ALL, ActorKind::name),
            },
        )
    })?;
    let key_err = |span: Range<usize>, key| {
        src.err(
            span,
            ErrorKind::ActorKey {
                kind: kind.name(),
                key,
            },
        )
    };
    let needs = |key| {
        src.err(
            a.span(),
            ErrorKind::ActorNeeds {
                kind: kind.name(),
                key,
            },
        )
    };
    // CPU tasks run on a named CPU; a kthread may be bound to one; workqueue items, timers
    // and engines run where the kernel puts them.
    let cpu = match (&r.cpu, kind) {
        (Some(c), ActorKind::CpuTask | ActorKind::Kthread) => Some(*c.get_ref()),
        (Some(c), _) => return Err(key_err(c.span(), "cpu")),
        (None, ActorKind::CpuTask) => return Err(needs("cpu")),
        (None, _) => None,
    };
    let device = match (&r.device, kind) {
        (Some(d), ActorKind::DmaEngine) => Some(devices.master(src, "dma-engine", d)?.name.clone()),
        (Some(d), _) => return Err(key_err(d.span(), "device")),
        (None, ActorKind::DmaEngine) => return Err(needs("device")),
        (None, _) => None,
    };
    let steps = match &r.script {
        Some(s) if !s.get_ref().is_empty() => s.get_ref(),
        _ => {
            return Err(src.err(
                r.name.span(),
                ErrorKind::ActorWithoutScript {
                    actor: r.name.get_ref().clone(),
                },
            ))
        }
    };
    let script = steps
        .iter()
        .map(|s| step(src, devices, kind, s))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Actor {
        name: r.name.get_ref().clone(),
        kind,
        cpu,
        device,
        script,
    })
}

fn step(
    src: &Src<'_>,
    devices: &Devices<'_>,
    kind: ActorKind,
    s: &Spanned<RawStep>,
) -> Result<Step, ScenarioError> {
    let r = s.get_ref();
    let op = Op::from_name(r.op.get_ref()).ok_or_else(|| {
        src.err(
            r.op.span(),
            ErrorKind::UnknownOperation {
                op: r.op.get_ref().clone(),
                known: names(&Op::ALL, Op::name),
            },
        )
    })?;
    if op.is_device_side() != (kind == ActorKind::DmaEngine) {
        return Err(src.err(
            r.op.span(),
            ErrorKind::OpNotForActor {
                op: op.name(),
                kind: kind.name(),
            },
        ));
    }
    // Each parameter: present exactly when the operation takes it.
    let given: [(Param, Option<Range<usize>>); 8] = [
        (Param::Device, r.device.as_ref().map(|v| v.span())),
        (Param::Domain, r.domain.as_ref().map(|v| v.span())),
        (Param::Buffer, r.buffer.as_ref().map(|v| v.span())),
        (Param::Size, r.size.as_ref().map(|v| v.span())),
        (Param::Nents, r.nents.as_ref().map(|v| v.span())),
        (Param::Iova, r.iova.as_ref().map(|v| v.span())),
        (Param::Dir, r.dir.as_ref().map(|v| v.span())),
        (Param::Owner, r.owner.as_ref().map(|v| v.span())),
    ];
    for (param, span) in given {
        if op.optional_params().contains(&param) {
            continue;
        }
        match (op.params().contains(&param), span) {
            (true, None) => {
                return Err(src.err(s.span(), ErrorKind::MissingParameter { op, param }))
            }
            (false, Some(span)) => {
                return Err(src.err(span, ErrorKind::UnexpectedParameter { op, param }))
            }
            _ => {}
        }
    }
    let device = match &r.device {
        None => None,
        Some(d) => {
            let name = match devices.find(src, d)? {
                Device::Master(m) => {
                    if op == Op::PciHotUnplug && m.bus != Bus::Pci {
                        return Err(src.err(
                            d.span(),
                            ErrorKind::NotPci {
                                device: m.name.clone(),
                            },
                        ));
                    }
                    m.name.clone()
                }
                Device::Smmu if op.device_may_be_smmu() => d.get_ref().clone(),
                Device::Smmu => {
                    return Err(src.err(
                        d.span(),
                        ErrorKind::NotAMaster {
                            op: op.name(),
                            device: d.get_ref().clone(),
                        },
                    ))
                }
            };
            Some(name)
        }
    };
    let dir = match &r.dir {
        None => None,
        Some(d) => Some(Dir::from_name(d.get_ref()).ok_or_else(|| {
            src.err(
                d.span(),
                ErrorKind::UnknownDirection {
                    dir: d.get_ref().clone(),
                },
            )
        })?),
    };
    for (v, key) in [(&r.size, "size")] {
        if let Some(v) = v.as_ref().filter(|v| *v.get_ref() == 0) {
            return Err(src.err(v.span(), ErrorKind::Zero { key }));
        }
    }
    if let Some(n) = r.nents.as_ref().filter(|n| *n.get_ref() == 0) {
        return Err(src.err(n.span(), ErrorKind::Zero { key: "nents" }));
    }
    if matches!(op, Op::IommuMap | Op::IommuUnmap) {
        for (v, key) in [(&r.iova, "iova"), (&r.size, "size")] {
            if let Some(v) = v
                .as_ref()
                .filter(|v| v.get_ref() % crate::PAGE_SIZE.bytes() != 0)
            {
                return Err(src.err(
                    v.span(),
                    ErrorKind::Unaligned {
                        key,
                        value: *v.get_ref(),
                    },
                ));
            }
        }
    }
    Ok(Step {
        op,
        device,
        domain: r.domain.as_ref().map(|v| v.get_ref().clone()),
        buffer: r.buffer.as_ref().map(|v| v.get_ref().clone()),
        size: r.size.as_ref().map(|v| *v.get_ref()),
        nents: r.nents.as_ref().map(|v| *v.get_ref()),
        iova: r.iova.as_ref().map(|v| Iova::new(*v.get_ref())),
        dir,
        owner: r.owner.as_ref().map(|v| v.get_ref().clone()),
        at: src.position(s.span().start),
    })
}
