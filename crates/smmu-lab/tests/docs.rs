//! The docs show real output. Every fenced block in `README.md` and `docs/walkthrough.md` whose
//! first line starts with `$ smmu-lab ` is generated: each `$ smmu-lab …` line in it is run
//! (in one scratch directory per document, so a replay file written by one command is there for
//! the next), and the block must hold exactly what it printed. A command may be followed by a
//! pipeline of `head -N`, `tail -N`, `grep [-v] [-F] TEXT` and `sed -n '/A/,/B/p'` (or
//! `'/A/,$p'`), which work as in a shell, with fixed strings for patterns.
//!
//! When the program's output changes, regenerate the blocks with
//!
//! ```sh
//! UPDATE_DOCS=1 cargo test -p smmu-lab --release --test docs
//! ```
//!
//! and read the prose around them again.

use std::path::{Path, PathBuf};

const PROMPT: &str = "$ smmu-lab ";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Split a command line as a shell would (single and double quotes, no expansion).
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// Apply one pipeline stage to `lines`.
fn filter(stage: &str, lines: Vec<String>) -> Vec<String> {
    let w = words(stage);
    let args: Vec<&str> = w.iter().map(String::as_str).collect();
    let count = |a: &str| -> usize {
        a.trim_start_matches('-')
            .parse()
            .unwrap_or_else(|_| panic!("bad count in '{stage}'"))
    };
    match args.as_slice() {
        ["head", n] => lines.into_iter().take(count(n)).collect(),
        ["tail", n] => {
            let n = count(n);
            let skip = lines.len().saturating_sub(n);
            lines.into_iter().skip(skip).collect()
        }
        ["grep", rest @ ..] => {
            let invert = rest.contains(&"-v");
            let pattern = rest
                .iter()
                .find(|a| !a.starts_with('-'))
                .unwrap_or_else(|| panic!("no pattern in '{stage}'"));
            lines
                .into_iter()
                .filter(|l| l.contains(pattern) != invert)
                .collect()
        }
        ["sed", "-n", script] => {
            let range = script
                .strip_suffix('p')
                .unwrap_or_else(|| panic!("only '/A/,/B/p' sed scripts: '{stage}'"));
            let (from, to) = range
                .split_once(',')
                .unwrap_or_else(|| panic!("only '/A/,/B/p' sed scripts: '{stage}'"));
            let pat = |p: &str| p.trim_matches('/').to_string();
            let (from, to) = (pat(from), if to == "$" { None } else { Some(pat(to)) });
            let mut on = false;
            let mut out = Vec::new();
            for l in lines {
                if !on && l.contains(&from) {
                    on = true;
                    out.push(l);
                    continue;
                }
                if on {
                    let end = to.as_ref().is_some_and(|t| l.contains(t));
                    out.push(l);
                    if end {
                        on = false;
                    }
                }
            }
            out
        }
        _ => panic!("unsupported pipeline stage '{stage}'"),
    }
}

/// Run `$ smmu-lab ARGS [| stage]...` in `dir`; its standard output, filtered, as lines.
fn run(command: &str, dir: &Path) -> Vec<String> {
    let mut stages = command.split(" | ");
    let main = stages.next().unwrap_or_default();
    let args = words(main);
    assert_eq!(
        args.first().map(String::as_str),
        Some("smmu-lab"),
        "{command}"
    );
    let out = assert_cmd::Command::cargo_bin("smmu-lab")
        .expect("binary built by cargo")
        .args(&args[1..])
        .current_dir(dir)
        .env_remove("COLUMNS")
        .output()
        .expect("smmu-lab runs");
    let code = out.status.code();
    assert!(
        matches!(code, Some(0 | 1)),
        "`{command}` exited {code:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8 output");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for stage in stages {
        lines = filter(stage, lines);
    }
    lines
}

/// The document with every generated block regenerated.
fn regenerate(text: &str, dir: &Path, shared: bool) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        out.push(line.to_string());
        let opens = line.trim_start().starts_with("```");
        if !opens || !lines.peek().is_some_and(|l| l.starts_with(PROMPT)) {
            if opens {
                // An ordinary block: copy it through its closing fence.
                for l in lines.by_ref() {
                    out.push(l.to_string());
                    if l.trim_start().starts_with("```") {
                        break;
                    }
                }
            }
            continue;
        }
        let mut commands = Vec::new();
        let mut block = Vec::new();
        for l in lines.by_ref() {
            if l.trim_start().starts_with("```") {
                break;
            }
            block.push(l.to_string());
            if let Some(c) = l.strip_prefix("$ ") {
                commands.push(c.to_string());
            }
        }
        if !shared && commands.iter().any(|c| lab_fixtures::shared::named_in(c)) {
            // A real board from ../shared, which is not here: keep the block as written.
            out.extend(block);
            out.push("```".to_string());
            continue;
        }
        for (i, c) in commands.iter().enumerate() {
            if i > 0 {
                out.push(String::new());
            }
            out.push(format!("$ {c}"));
            out.extend(run(c, dir));
        }
        out.push("```".to_string());
    }
    let mut s = out.join("\n");
    s.push('\n');
    s
}

/// Prose that describes a generated block: when a document says the first, the program's
/// output in that document must contain the second.
const CLAIMS: &[(&str, &str, &str)] = &[
    (
        "docs/walkthrough.md",
        "This run's crash is the seed's\nsecond manifestation",
        "NULL dereference at 0xa8 in iommu_get_dma_domain via dma_unmap_page_attrs",
    ),
    (
        "docs/walkthrough.md",
        "late DMA is terminated (the blocked transactions below)",
        "properties: all held",
    ),
    (
        "docs/walkthrough.md",
        "prints as `Unexpected global fault, this could be serious`",
        "arm-smmu 5000000.iommu: \tGFSR 0x00000001, GFSYNR0",
    ),
    (
        "README.md",
        "the NIC driver, which has no `.shutdown`, dereferences the NULL group",
        "Unable to handle kernel NULL pointer dereference",
    ),
];

#[test]
fn docs_show_what_the_program_prints() {
    let update = std::env::var("UPDATE_DOCS").is_ok_and(|v| v == "1");
    let mut drifted = Vec::new();
    for doc in ["README.md", "docs/walkthrough.md"] {
        let path = repo().join(doc);
        let text = std::fs::read_to_string(&path).unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path().join("work");
        std::fs::create_dir(&dir).unwrap();
        let shared = lab_fixtures::shared::link_beside(&dir).is_some();
        let fresh = regenerate(&text, &dir, shared);
        assert!(
            fresh.matches(PROMPT).count() >= 1,
            "{doc} has no generated block"
        );
        for (_, prose, fact) in CLAIMS.iter().filter(|c| c.0 == doc) {
            if text.contains(prose) {
                let generated: String = fresh
                    .split("```")
                    .filter(|b| b.trim_start().starts_with(PROMPT.trim_end()))
                    .collect();
                assert!(
                    generated.contains(fact),
                    "{doc} says {prose:?}, but its output no longer shows {fact:?}: rewrite the prose"
                );
            }
        }
        if fresh == text {
            continue;
        }
        if update {
            std::fs::write(&path, &fresh).unwrap();
            eprintln!("regenerated {doc}");
        } else {
            let first = text
                .lines()
                .zip(fresh.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(text.lines().count().min(fresh.lines().count()));
            drifted.push(format!(
                "{doc}: line {}: the doc has {:?}, the program prints {:?}",
                first + 1,
                text.lines().nth(first).unwrap_or(""),
                fresh.lines().nth(first).unwrap_or("")
            ));
        }
    }
    assert!(
        drifted.is_empty(),
        "the docs disagree with the program; regenerate them with\n  UPDATE_DOCS=1 cargo test -p smmu-lab --release --test docs\n{}",
        drifted.join("\n")
    );
}

#[test]
fn pipeline_stages_work_as_in_a_shell() {
    let l = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let text = l(&["a", "b x", "c", "d x", "e"]);
    assert_eq!(filter("head -2", text.clone()), l(&["a", "b x"]));
    assert_eq!(filter("tail -2", text.clone()), l(&["d x", "e"]));
    assert_eq!(filter("grep -F x", text.clone()), l(&["b x", "d x"]));
    assert_eq!(filter("grep -v x", text.clone()), l(&["a", "c", "e"]));
    assert_eq!(
        filter("sed -n '/b/,/d/p'", text.clone()),
        l(&["b x", "c", "d x"])
    );
    assert_eq!(filter("sed -n '/c/,$p'", text), l(&["c", "d x", "e"]));
    assert_eq!(
        words("smmu-lab run --cmdline 'a b' \"c\""),
        l(&["smmu-lab", "run", "--cmdline", "a b", "c"])
    );
}
