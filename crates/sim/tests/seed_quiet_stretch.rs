//! The premises of docs/seed-quiet-stretch.md that can be checked from the seed's own log: where
//! its second manifestation's fault reports fall, how long the quiet stretches after the third
//! and the fourth report last on the 115200-baud console, and that each outlasts the ping-flood
//! peer's floor several times. The seed log has no timestamps: durations are the console time
//! of the lines printed in the stretch (a lower bound: v6.1 writes each record with interrupts
//! off, and a fault recorded during a line is reported right after it).

use sim::dmesg::console_line_ns;
use sim::enetc::PING_FLOOD_FLOOR_NS;

/// The KBox's console (`console=ttyS0,115200`).
const BAUD: u64 = 115_200;
const REPORT: &str = "arm-smmu 5000000.iommu: Blocked unknown Stream ID 0x429";
const GFSR: &str = "arm-smmu 5000000.iommu: GFSR ";

/// The second manifestation's log from `reboot -f` to the line before the Oops, with the TAB
/// the reporter's capture dropped from arm-smmu's GFSR line put back (the console printed it).
fn second_manifestation(seed: &str) -> Vec<String> {
    seed.lines()
        .skip_while(|l| !l.starts_with("kvm: exiting"))
        .take_while(|l| !l.starts_with("Unable to handle"))
        .map(|l| match l.strip_prefix(GFSR) {
            Some(rest) => format!("arm-smmu 5000000.iommu: \tGFSR {rest}"),
            None => l.to_string(),
        })
        .collect()
}

fn ns(lines: &[String]) -> u64 {
    lines.iter().map(|l| console_line_ns(l.len(), BAUD)).sum()
}

#[test]
fn console_line_time_is_ten_bits_a_character_with_prefix_and_crlf() {
    // 51 characters + `[    1.234567] ` + CR LF = 68 characters = 680 bits.
    assert_eq!(console_line_ns(51, BAUD), 680 * 1_000_000_000 / BAUD);
    assert_eq!(console_line_ns(51, BAUD), 5_902_777);
    assert_eq!(console_line_ns(51, 0), 0);
}

#[test]
fn the_seeds_quiet_stretch_outlasts_the_flood_floor() {
    let Some(seed) = lab_fixtures::shared::seed_patch() else {
        return;
    };
    let log = second_manifestation(&seed);
    let reports: Vec<usize> = (0..log.len())
        .filter(|&i| log[i].starts_with(REPORT))
        .collect();
    // Four reports, each the Blocked line and its GFSR line.
    assert_eq!(reports.len(), 4, "{log:#?}");
    for &r in &reports {
        assert!(log[r + 1].contains("\tGFSR 0x"), "{}", log[r + 1]);
    }
    let gfsr: Vec<&str> = reports
        .iter()
        .map(|&r| &log[r + 1]["arm-smmu 5000000.iommu: \tGFSR ".len()..][..10])
        .collect();
    // MULTI on the first three, not on the last.
    assert_eq!(
        gfsr,
        ["0x80000002", "0x80000002", "0x80000002", "0x00000002"]
    );

    // After the third report: five removal lines, then the fourth report.
    let third_end = reports[2] + 2;
    let stretch = &log[third_end..reports[3]];
    assert_eq!(stretch.len(), 5);
    assert!(stretch
        .iter()
        .all(|l| l.contains(": Removing from iommu group ")));
    assert!(stretch[0].starts_with("fsl_enetc 0000:00:00.2"));
    assert!(stretch[4].starts_with("pcieport 0001:00:00.0"));
    // After the fourth report: one removal line, then the Oops (the log ends there).
    let tail = &log[reports[3]..];
    assert_eq!(tail.len(), 3);
    assert!(tail[2].starts_with("pcieport 0002:00:00.0: Removing"));

    // Quiet stretch 1: a fault recorded while the third report or one of the four removal lines
    // after it printed would be reported before the fifth; none was.
    let first = ns(&log[reports[2]..third_end]) + ns(&stretch[..4]);
    assert_eq!(first, 48_263_886);
    // Quiet stretch 2: the fourth report (no MULTI) and the removal line after it; a fault
    // then would be reported (or leave `Unexpected global fault`) before the Oops.
    let second = ns(tail);
    assert_eq!(second, 30_034_721);

    // Each outlasts the peer's 10 ms floor several times: at least 4 and 3 requests were due.
    assert_eq!(PING_FLOOD_FLOOR_NS, 10_000_000);
    assert_eq!(first / PING_FLOOD_FLOOR_NS, 4);
    assert_eq!(second / PING_FLOOD_FLOOR_NS, 3);
}
