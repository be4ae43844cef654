fn main() {
    let p = std::env::args().nth(1).unwrap();
    let pat: Vec<String> = std::env::args().skip(2).collect();
    let d = std::fs::read(p).unwrap();
    let t = sim::fdt::DeviceTree::parse(&d).unwrap();
    for (i, n) in t.nodes().iter().enumerate() {
        let show = pat.is_empty()
            || n.props
                .iter()
                .any(|(k, _)| pat.iter().any(|p| k.contains(p.as_str())));
        if !show {
            continue;
        }
        println!(
            "{} {}",
            n.path,
            if t.is_available(i) { "" } else { "(disabled)" }
        );
        for (k, v) in &n.props {
            if k.starts_with("interrupts") && v.len() > 64 {
                println!("   {k} = <{} cells>", v.len() / 4);
                continue;
            }
            let s = if v.iter().all(|&b| b == 0 || (0x20..0x7f).contains(&b))
                && v.last() == Some(&0)
                && v.len() > 1
            {
                format!("{:?}", String::from_utf8_lossy(v))
            } else {
                v.chunks(4)
                    .map(|c| format!("{:x}", c.iter().fold(0u32, |a, &b| a << 8 | b as u32)))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            println!("   {k} = {s}");
        }
    }
}
