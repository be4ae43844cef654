//! docs/walkthrough.md quotes the `qemu_virt` example's output: fail when they drift.

#[path = "../examples/qemu_virt.rs"]
mod example;

#[test]
fn walkthrough_quotes_the_example() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/walkthrough.md"
    ))
    .unwrap();
    let start = doc
        .find("$ cargo run -p arm-smmu-v3 --example qemu_virt\n")
        .expect("the walkthrough quotes the example");
    let block = &doc[start..];
    let block = &block[block.find('\n').unwrap() + 1..block.find("\n```").unwrap()];
    let want: Vec<&str> = block.lines().collect();
    let got = example::run().unwrap();
    assert_eq!(got, want);
}
