//! The `--report` page as a browser sees it: headless Chromium loads it and dumps the DOM, which
//! must hold the four timeline lanes and the replay token. Skipped (with a message) when
//! /usr/bin/chromium is not installed.

use assert_cmd::Command;
use std::path::Path;

const CHROMIUM: &str = "/usr/bin/chromium";

/// The DOM of `page` after Chromium has loaded it, or None when Chromium is absent.
fn dump_dom(page: &Path, profile: &Path) -> Option<String> {
    if !Path::new(CHROMIUM).exists() {
        eprintln!(
            "SKIPPED: {CHROMIUM} not installed (apt-get install chromium); report not rendered"
        );
        return None;
    }
    // The DOM goes to a file and Chromium gets a deadline, so a wedged browser fails the test
    // instead of hanging it.
    let dom_path = profile.join("dom.html");
    let mut child = std::process::Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ])
        .arg(format!(
            "--user-data-dir={}",
            profile.join("profile").display()
        ))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stdout(std::fs::File::create(&dom_path).expect("DOM file"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("chromium starts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success(), "chromium failed: {status}");
    Some(std::fs::read_to_string(&dom_path).expect("UTF-8 DOM"))
}

fn report(dir: &Path, args: &[&str], code: i32) -> (std::path::PathBuf, String) {
    let page = dir.join(format!(
        "{}.html",
        args.join("_").replace([':', '@', '-'], "_")
    ));
    let out = Command::cargo_bin("smmu-lab")
        .unwrap()
        .args(args)
        .arg("--report")
        .arg(&page)
        .assert()
        .code(code)
        .get_output()
        .stdout
        .clone();
    (page, String::from_utf8(out).unwrap())
}

fn lanes(dom: &str) -> Vec<String> {
    dom.match_indices("class=\"lane\"")
        .filter_map(|(i, _)| {
            let tail = &dom[i..];
            let tag_end = tail.find('>')?;
            let attr = tail[..tag_end].split("data-lane=\"").nth(1)?;
            Some(attr.split('"').next()?.to_string())
        })
        .collect()
}

#[test]
fn report_renders_the_four_lanes_and_the_token() {
    let dir = tempfile::tempdir().unwrap();
    for (args, code, token, status) in [
        (
            &["run", "reboot", "--kernel", "linux-6.1", "--seed", "5"][..],
            1,
            "reboot:linux-6.1:random@5",
            "property violated",
        ),
        (
            &["replay", "reboot:quiesce:random@3"][..],
            0,
            "reboot:quiesce:random@3",
            "all properties held",
        ),
    ] {
        let (page, _) = report(dir.path(), args, code);
        let profile = tempfile::tempdir().unwrap();
        let Some(dom) = dump_dom(&page, profile.path()) else {
            return;
        };
        assert_eq!(
            lanes(&dom),
            ["shutdown-cpu", "net-cpu", "nic-dma", "smmu-faults"],
            "{dom}"
        );
        assert!(
            dom.contains(&format!("<code id=\"token\">{token}</code>")),
            "{dom}"
        );
        assert!(dom.contains(&format!("smmu-lab replay {token}")));
        assert!(dom.contains(status));
        // Every event is drawn: one circle per row of the events table.
        let circles = dom.matches("<circle ").count();
        let rows = dom.matches("<tr id=\"ev").count();
        assert!(circles > 10, "{circles} events");
        assert_eq!(circles, rows);
    }
}

#[test]
fn report_of_the_crash_shows_the_oops() {
    let dir = tempfile::tempdir().unwrap();
    let (page, text) = report(
        dir.path(),
        // Seed 12: re-pinned when a held CPU's interrupts stopped running beside its holder
        // (seed 2 then crashed on the unmap path), again when printk got v6.1's console
        // ownership (seed 9 then crashed on the unmap path), and when the ENETC's MSIs began
        // going through the SMMU (seed 50 now crashes on the unmap path).
        &["run", "--kernel", "linux-6.1", "--seed", "12"],
        1,
    );
    let profile = tempfile::tempdir().unwrap();
    let Some(dom) = dump_dom(&page, profile.path()) else {
        return;
    };
    // The oops drawn in red on the timeline, and the same kernel log as the text output.
    assert!(dom.contains("class=\"ev bad\""));
    assert!(dom.contains("NULL dereference at 0x98 via dma_map_page_attrs from enetc_start_xmit"));
    let log = text.split("\n\nverdict").next().unwrap();
    let escaped = log
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    assert!(dom.contains(&escaped), "the kernel log is not in the page");
}
