//! Output details: timestamps, the progress bar when piped, the HTML report.

use super::*;

#[test]
fn no_timestamps_removes_the_prefixes() {
    let with = stdout_of(&["run", "--kernel", "quiesce", "--seed", "1"], 0);
    let without = stdout_of(
        &[
            "run",
            "--kernel",
            "quiesce",
            "--seed",
            "1",
            "--no-timestamps",
        ],
        0,
    );
    let is_stamped = |l: &str| {
        l.starts_with('[')
            && l.find("] ").is_some_and(|end| {
                l[1..end]
                    .trim()
                    .split_once('.')
                    .is_some_and(|(s, us)| s.bytes().all(|b| b.is_ascii_digit()) && us.len() == 6)
            })
    };
    let log_with: Vec<&str> = with.split("\n\nverdict").next().unwrap().lines().collect();
    let log_without: Vec<&str> = without
        .split("\n\nverdict")
        .next()
        .unwrap()
        .lines()
        .collect();
    assert!(log_with.iter().all(|l| is_stamped(l)), "{with}");
    assert!(log_without.iter().all(|l| !is_stamped(l)), "{without}");
    assert_eq!(log_with.len(), log_without.len());
    for (a, b) in log_with.iter().zip(&log_without) {
        assert_eq!(&a[a.find("] ").unwrap() + 2..], *b);
    }
    // The replay command carries the option, and reproduces the unstamped output.
    let cmd = line_value(&without, "replay: smmu-lab ");
    assert_eq!(cmd, "replay reboot:quiesce:random@1 --no-timestamps");
    assert_eq!(stdout_of(&cmd.split(' ').collect::<Vec<_>>(), 0), without);
}

#[test]
fn progress_bar_is_quiet_when_piped() {
    let dir = tempfile::tempdir().unwrap();
    for kernel in ["quiesce", "all"] {
        let out = lab()
            .current_dir(dir.path())
            .args([
                "explore",
                "--kernel",
                kernel,
                "--runs",
                "50",
                "--strategy",
                "random",
            ])
            .assert()
            .get_output()
            .clone();
        assert!(
            out.stderr.is_empty(),
            "stderr: {:?}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!String::from_utf8(out.stdout).unwrap().contains('\r'));
    }
}

#[test]
fn report_is_written_by_run_and_replay() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.html");
    let b = dir.path().join("b.html");
    stdout_of(&["run", "--seed", "5", "--report", a.to_str().unwrap()], 1);
    stdout_of(
        &[
            "replay",
            "reboot:linux-6.1:random@5",
            "--report",
            b.to_str().unwrap(),
        ],
        1,
    );
    let a = std::fs::read_to_string(a).unwrap();
    assert_eq!(a, std::fs::read_to_string(b).unwrap());
    assert!(a.starts_with("<!DOCTYPE html>"));
    assert!(!a.contains("<script"), "the report must be self-contained");
    assert!(!a.contains("src=\"http"));
    usage_error(
        &["run", "--report", "/nonexistent/dir/r.html"],
        "smmu-lab: error: /nonexistent/dir/r.html: No such file or directory",
    );
}
