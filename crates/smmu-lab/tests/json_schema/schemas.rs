//! The documented schemas themselves, and errors printing no JSON at all.

use super::*;

#[test]
fn the_doc_covers_every_schema() {
    let doc = documented();
    let names: Vec<&str> = doc.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "smmu-lab/bisect/v1",
            "smmu-lab/board/v1",
            "smmu-lab/check/v1",
            "smmu-lab/decode/v1",
            "smmu-lab/demo/v2",
            "smmu-lab/explore-file/v1",
            "smmu-lab/explore/v2",
            "smmu-lab/kernel/v1",
            "smmu-lab/kernels/v1",
            "smmu-lab/replay/v1",
            "smmu-lab/run-file/v1",
            "smmu-lab/run/v2",
            "smmu-lab/validate/v1",
        ]
    );
    assert!(doc.values().all(|f| f.len() >= 3));
}

#[test]
fn errors_print_no_json() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["run", "--kernel", "nope", "--json"][..],
        &["decode", "gfsr", "zz", "--json"],
        &["replay", "garbage", "--json"],
    ] {
        assert_eq!(output(dir.path(), args, 2), "");
    }
}
