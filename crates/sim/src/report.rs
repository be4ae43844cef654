//! `smmu-lab board FILE.dtb`: a human-readable table of a board's SMMUs and masters.

use std::fmt::Write;

use crate::board::{Board, SmmuVersion};

fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let mut w: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(x) = w.get_mut(i) {
                *x = (*x).max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| -> String {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!(" {c:<width$} ", width = w.get(i).copied().unwrap_or(0)))
            .collect();
        format!(" {}", parts.join("|")).trim_end().to_string()
    };
    let _ = writeln!(
        out,
        "{}",
        line(header.iter().map(|h| h.to_string()).collect())
    );
    let sep: Vec<String> = w.iter().map(|&n| "-".repeat(n)).collect();
    let _ = writeln!(
        out,
        " {}",
        sep.iter()
            .map(|s| format!("-{s}-"))
            .collect::<Vec<_>>()
            .join("+")
    );
    for r in rows {
        let _ = writeln!(out, "{}", line(r.clone()));
    }
}

fn version(v: SmmuVersion) -> &'static str {
    match v {
        SmmuVersion::V1 => "SMMUv1",
        SmmuVersion::V1_64K => "SMMUv1 (64K pages)",
        SmmuVersion::V2 => "SMMUv2",
        SmmuVersion::V3 => "SMMUv3",
    }
}

/// The board as `smmu-lab board` prints it: SMMUs, then masters with their firmware IDs, the
/// stream IDs on the wire where the TBU is known, and the group each would get at boot.
pub fn board_report(board: &Board) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Board: {}",
        if board.model.is_empty() {
            "(no model)"
        } else {
            &board.model
        }
    );
    let _ = writeln!(out, "Compatible: {}", board.compatible.join(", "));
    if board.memory.is_empty() {
        let _ = writeln!(
            out,
            "Memory: none in the tree (the bootloader adds /memory)"
        );
    } else {
        for m in &board.memory {
            let _ = writeln!(
                out,
                "Memory: {:#x}..{:#x} ({} MiB)",
                m.base,
                m.base.as_u64().wrapping_add(m.size),
                m.size >> 20
            );
        }
    }
    let _ = writeln!(out, "\nSMMUs ({}):", board.smmus.len());
    let rows: Vec<Vec<String>> = board
        .smmus
        .iter()
        .enumerate()
        .map(|(i, s)| {
            vec![
                i.to_string(),
                s.name.clone(),
                s.matched.clone(),
                format!("{} {:?}", version(s.version), s.model),
                format!("{:#x}", s.base),
                format!("{:#x}", s.size),
                if s.version == SmmuVersion::V3 {
                    // Named lines, not a global/context split.
                    s.irq_names.join(",")
                } else {
                    format!("{}+{}", s.global_irqs, s.context_irqs)
                },
                s.iommu_cells.to_string(),
                s.stream_match_mask
                    .map_or("-".into(), |m| format!("{m:#06x}")),
                if s.dma_coherent { "yes" } else { "no" }.into(),
                if s.enabled { "okay" } else { "disabled" }.into(),
            ]
        })
        .collect();
    table(
        &mut out,
        &[
            "#",
            "device",
            "compatible",
            "version/model",
            "base",
            "size",
            "irqs (g+ctx or names)",
            "cells",
            "smask",
            "coherent",
            "status",
        ],
        &rows,
    );

    if !board.pci_hosts.is_empty() {
        let _ = writeln!(
            out,
            "\nPCI host bridges with an iommu-map ({}):",
            board.pci_hosts.len()
        );
        let rows: Vec<Vec<String>> = board
            .pci_hosts
            .iter()
            .flat_map(|h| {
                h.iommu_map.iter().map(move |e| {
                    vec![
                        h.path.clone(),
                        format!("{:04x}", h.domain),
                        format!(
                            "{:#x}..{:#x}",
                            e.rid_base,
                            u64::from(e.rid_base) + u64::from(e.len)
                        ),
                        e.smmu.map_or("-".into(), |s| s.to_string()),
                        format!("{:#x}", e.sid_base),
                        format!("{:#x}", h.map_mask),
                    ]
                })
            })
            .collect();
        table(
            &mut out,
            &[
                "host",
                "domain",
                "requester IDs",
                "smmu",
                "stream ID base",
                "map mask",
            ],
            &rows,
        );
        if board.pci_hosts.iter().any(|h| {
            h.iommu_map
                .iter()
                .any(|e| e.rid_base == e.sid_base && e.len >= 0x1_0000)
        }) {
            let _ = writeln!(
                out,
                "Stream ID = requester ID (bus << 8 | devfn). PCI devices are enumerated, not listed in the\n\
                 tree: a device at 00:01.0 is stream ID 0x8."
            );
        }
    }

    let groups = board.expected_groups();
    let _ = writeln!(out, "\nDMA masters ({}):", board.masters.len());
    let rows: Vec<Vec<String>> = board
        .masters
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let ids = m
                .ids
                .iter()
                .map(|id| {
                    if id.mask == 0 {
                        format!("{:#x}", id.sid)
                    } else {
                        format!("{:#x}/{:#x}", id.sid, id.mask)
                    }
                })
                .collect::<Vec<_>>()
                .join(" ");
            let wire = m
                .wire_ids()
                .map(|w| {
                    w.iter()
                        .map(|x| format!("{x:#x}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_else(|| "-".into());
            let group = if !m.attached {
                "none (SMMU disabled)".to_string()
            } else if !m.probes {
                "none (no driver probes it)".to_string()
            } else {
                groups
                    .get(i)
                    .copied()
                    .flatten()
                    .map_or("-".into(), |g| g.to_string())
            };
            vec![
                m.log_prefix(),
                format!("{:?}", m.bus).to_lowercase(),
                m.smmu.to_string(),
                ids,
                wire,
                if m.has_shutdown { "yes" } else { "no" }.into(),
                group,
            ]
        })
        .collect();
    table(
        &mut out,
        &[
            "master (log prefix)",
            "bus",
            "smmu",
            "stream IDs (sid/mask)",
            "on the wire",
            ".shutdown",
            "group",
        ],
        &rows,
    );
    let _ = writeln!(
        out,
        "\nGroups: numbered in the seed kernel's driver probe order, one per distinct stream-ID set.\n\
         The real arm-smmu driver decides groups at run time (S2CR reuse, PCI aliases)."
    );
    out
}
