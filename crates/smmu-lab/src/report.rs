//! `--report FILE.html`: one run as a self-contained page: a timeline with one lane per actor,
//! the kernel log beside it, the verdict and the replay command. No scripts, no external files.

use crate::sim::scenario::{Lane, RebootOutcome, TimelineEvent};
use std::fmt::Write;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn lane_id(l: Lane) -> &'static str {
    match l {
        Lane::ShutdownCpu => "shutdown-cpu",
        Lane::NetCpu => "net-cpu",
        Lane::NicDma => "nic-dma",
        Lane::SmmuFaults => "smmu-faults",
    }
}

/// How alarming an event is: drives its colour.
fn severity(e: &TimelineEvent) -> &'static str {
    let t = e.text.as_str();
    if t.starts_with("Oops")
        || t.starts_with("STRAY")
        || t.starts_with("FOREIGN")
        || t.contains("lost write")
    {
        "bad"
    } else if e.lane == Lane::SmmuFaults || t.contains("blocked") || t.contains("Removing") {
        "warn"
    } else {
        "ok"
    }
}

const WIDTH: f64 = 900.0;
const LANE_H: f64 = 46.0;
const LEFT: f64 = 215.0;

/// The page.
pub fn html(o: &RebootOutcome, token: &str, replay: &str, violations: &[String]) -> String {
    let v = &o.verdict;
    let t0 = o.timeline.first().map(|e| e.time_ns).unwrap_or(0);
    let t1 = o
        .timeline
        .last()
        .map(|e| e.time_ns)
        .unwrap_or(t0)
        .max(t0 + 1);
    let x = |t: u64| LEFT + (t - t0) as f64 / (t1 - t0) as f64 * (WIDTH - LEFT - 20.0);
    let mut svg = String::new();
    let height = LANE_H * Lane::ALL.len() as f64 + 30.0;
    let _ = write!(
        svg,
        r#"<svg class="timeline" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" aria-label="timeline">"#
    );
    for (i, lane) in Lane::ALL.iter().enumerate() {
        let y = i as f64 * LANE_H;
        let _ = write!(
            svg,
            r#"<g class="lane" data-lane="{id}"><rect x="0" y="{y}" width="{WIDTH}" height="{LANE_H}" class="band{odd}"/><text x="8" y="{ty}" class="lane-title">{title}</text>"#,
            id = lane_id(*lane),
            odd = if i % 2 == 1 { " odd" } else { "" },
            ty = y + LANE_H / 2.0 + 4.0,
            title = esc(lane.title()),
        );
        for (j, e) in o
            .timeline
            .iter()
            .enumerate()
            .filter(|(_, e)| e.lane == *lane)
        {
            let _ = write!(
                svg,
                r##"<a href="#ev{j}"><circle cx="{cx:.1}" cy="{cy}" r="5" class="ev {sev}"><title>{us:.3} µs: {text}</title></circle></a>"##,
                cx = x(e.time_ns),
                cy = y + LANE_H / 2.0,
                sev = severity(e),
                us = (e.time_ns - t0) as f64 / 1000.0,
                text = esc(&e.text),
            );
        }
        svg.push_str("</g>");
    }
    let axis_y = LANE_H * Lane::ALL.len() as f64 + 18.0;
    for k in 0..=4 {
        let t = t0 + (t1 - t0) * k / 4;
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{axis_y}" class="tick" text-anchor="{}">{:.1} µs</text>"#,
            x(t),
            match k {
                0 => "start",
                4 => "end",
                _ => "middle",
            },
            (t - t0) as f64 / 1000.0
        );
    }
    svg.push_str("</svg>");

    let mut events = String::new();
    for (j, e) in o.timeline.iter().enumerate() {
        let _ = write!(
            events,
            r#"<tr id="ev{j}" class="{sev}"><td>{us:.3}</td><td>{lane}</td><td>{text}</td></tr>"#,
            sev = severity(e),
            us = (e.time_ns - t0) as f64 / 1000.0,
            lane = esc(e.lane.title()),
            text = esc(&e.text),
        );
    }
    let oops = match &v.oops {
        Some(o) => format!(
            "NULL dereference at {:#x} via {} from {} ({})",
            o.fault_addr, o.dma_call, o.caller, o.comm
        ),
        None => "none".into(),
    };
    let stray: Vec<String> = v
        .stray_write_addrs
        .iter()
        .map(|a| format!("{a:#x}"))
        .collect();
    let rows = [
        ("kernel", v.kernel.clone()),
        ("oops", oops),
        (
            "stray DMA",
            format!(
                "{} writes{}, {} reads",
                v.stray_dma_writes,
                if stray.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", stray.join(", "))
                },
                v.stray_dma_reads
            ),
        ),
        ("foreign DMA", v.foreign_dma.to_string()),
        ("freed-domain DMA", v.freed_domain_dma.to_string()),
        ("lost writes", v.lost_writes.to_string()),
        ("blocked transactions", v.blocked_transactions.to_string()),
        (
            "faults logged",
            format!(
                "{} global, {} context",
                v.global_faults_logged, v.context_faults_logged
            ),
        ),
        (
            "packets",
            format!(
                "{} delivered, {} dropped",
                v.packets_delivered, v.packets_dropped
            ),
        ),
        (
            "shutdown",
            format!(
                "{} after {:.1} µs",
                if v.completed {
                    "completed"
                } else {
                    "did not complete"
                },
                v.shutdown_time_ns as f64 / 1000.0
            ),
        ),
        (
            "properties",
            if violations.is_empty() {
                "all held".into()
            } else {
                format!("violated: {}", violations.join(", "))
            },
        ),
    ];
    let mut verdict = String::new();
    for (k, val) in rows {
        let _ = write!(
            verdict,
            "<tr><th>{}</th><td>{}</td></tr>",
            esc(k),
            esc(&val)
        );
    }
    let status = if violations.is_empty() {
        "pass"
    } else {
        "fail"
    };
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>smmu-lab: {title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #1d232b; }}
h1 {{ font-size: 1.3em; margin: 0 0 .3em; }}
.status {{ display: inline-block; padding: .1em .6em; border-radius: .3em; color: #fff; font-weight: 600; }}
.status.pass {{ background: #2d7d46; }} .status.fail {{ background: #b3261e; }}
code, pre {{ font-family: ui-monospace, monospace; font-size: 12px; }}
.grid {{ display: grid; grid-template-columns: minmax(0, 930px) minmax(0, 1fr); gap: 1.5em; align-items: start; }}
.band {{ fill: #f4f6f8; }} .band.odd {{ fill: #e9edf1; }}
.lane-title {{ font-size: 12px; font-weight: 600; fill: #333; }}
.tick {{ font-size: 10px; fill: #666; }}
.ev.ok {{ fill: #3b6fb6; }} .ev.warn {{ fill: #d98a00; }} .ev.bad {{ fill: #b3261e; }}
table {{ border-collapse: collapse; font-size: 13px; }}
td, th {{ padding: .15em .6em; text-align: left; vertical-align: top; border-bottom: 1px solid #e2e6ea; }}
tr.bad td {{ color: #b3261e; font-weight: 600; }} tr.warn td {{ color: #8a5a00; }}
pre.log {{ background: #10151b; color: #d7dde4; padding: 1em; overflow: auto; max-height: 80vh; white-space: pre; }}
.legend {{ font-size: 12px; color: #444; }}
.dot {{ display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin: 0 .2em 0 .8em; vertical-align: middle; }}
.dot.ok {{ background: #3b6fb6; }} .dot.warn {{ background: #d98a00; }} .dot.bad {{ background: #b3261e; }}
.events {{ max-height: 40vh; overflow: auto; display: block; }}
</style></head>
<body>
<h1>smmu-lab: {title} <span class="status {status}">{status_text}</span></h1>
<p>Replay token <code id="token">{token}</code> &mdash; reproduce with <code>{replay}</code></p>
<div class="grid">
<section>
<h2>Timeline</h2>
{svg}
<p class="legend"><span class="dot ok"></span> normal <span class="dot warn"></span> teardown, blocked or fault <span class="dot bad"></span> oops, stray, foreign DMA or lost write &mdash; hover a dot for the event, click it for its row below</p>
<h2>Verdict</h2>
<table class="verdict">{verdict}</table>
<h2>Events</h2>
<table class="events"><tr><th>µs</th><th>actor</th><th>what</th></tr>{events}</table>
</section>
<section>
<h2>Kernel log</h2>
<pre class="log">{log}</pre>
</section>
</div>
</body></html>
"#,
        title = esc(&format!(
            "{} under {}",
            token.split(':').next().unwrap_or("run"),
            v.kernel
        )),
        status_text = if violations.is_empty() {
            "all properties held"
        } else {
            "property violated"
        },
        token = esc(token),
        replay = esc(replay),
        log = esc(&o.log),
    )
}
