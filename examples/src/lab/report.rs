//! The HTML report with an SVG timeline: who held the VIP, requests per app
//! over time, and which real servers each director's IPVS table held.

use super::scenario::Outcome;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

const WIDTH: f64 = 1000.0;
const LEFT: f64 = 120.0;
const LANE: f64 = 26.0;
const COLOURS: [&str; 6] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#17becf",
];

/// Writes `DIR/index.html` and returns its path.
pub(super) fn write(dir: &Path, outcome: &Outcome) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let path = dir.join("index.html");
    std::fs::write(&path, html(outcome)).with_context(|| format!("write {}", path.display()))?;
    Ok(path)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The whole page.
pub(super) fn html(outcome: &Outcome) -> String {
    let mut s = String::new();
    let verdict = if outcome.passed() { "PASSED" } else { "FAILED" };
    let _ = write!(
        s,
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>lvskit lab: {verdict}</title>\
<style>body{{font-family:sans-serif;margin:2em}}pre{{background:#f4f4f4;padding:1em}}\
.ok{{color:#080}}.fail{{color:#c00}}td,th{{padding:2px 8px;text-align:left}}</style></head><body>\n"
    );
    let _ = writeln!(
        s,
        "<h1>lvskit lab: LVS-DR with lb1 ({}) and lb2 ({}) — {verdict}</h1>",
        escape(&outcome.directors[0]),
        escape(&outcome.directors[1])
    );
    let _ = writeln!(s, "<h2>Timeline</h2>\n{}", svg(outcome));
    let _ = writeln!(s, "<h2>Expectations</h2>\n<table>");
    for e in &outcome.expectations {
        let (class, mark) = if e.passed {
            ("ok", "ok")
        } else {
            ("fail", "FAIL")
        };
        let _ = writeln!(
            s,
            "<tr><td class=\"{class}\">{mark}</td><td>{}</td><td>{}</td></tr>",
            escape(&e.what),
            escape(&e.measured)
        );
    }
    let _ = writeln!(
        s,
        "</table>\n<h2>Final table</h2>\n<pre>{}</pre>",
        escape(&outcome.table)
    );
    let _ = writeln!(s, "<h2>Narration</h2>\n<pre>");
    for (time, text) in &outcome.events {
        let _ = writeln!(
            s,
            "[{:7.2} s] {}",
            offset(outcome.start, *time),
            escape(text)
        );
    }
    let _ = writeln!(s, "</pre>\n</body></html>");
    s
}

fn offset(start: SystemTime, t: SystemTime) -> f64 {
    t.duration_since(start).unwrap_or_default().as_secs_f64()
}

/// The SVG: a lane for the VIP holder, one per app (requests per second,
/// and whether each director's IPVS table held it), and phase markers.
fn svg(outcome: &Outcome) -> String {
    let end = outcome
        .requests
        .iter()
        .map(|r| r.start)
        .chain(outcome.adverts.iter().map(|a| a.time))
        .chain(outcome.phases.iter().map(|p| p.end))
        .max()
        .unwrap_or(outcome.start);
    let total = offset(outcome.start, end).max(1.0);
    let x = |t: SystemTime| LEFT + (WIDTH - LEFT - 10.0) * offset(outcome.start, t) / total;
    let apps = outcome.topology.apps.len();
    let lanes = 1 + apps * 3;
    let height = 40.0 + LANE * lanes as f64 + 30.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" font-size=\"11\">"
    );
    // Phases.
    for (i, phase) in outcome.phases.iter().enumerate() {
        let (a, b) = (x(phase.start), x(phase.end));
        let fill = if i % 2 == 0 { "#f7f7f7" } else { "#ececec" };
        let _ = writeln!(
            s,
            "<rect x=\"{a:.1}\" y=\"20\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{fill}\"/>\
<text x=\"{:.1}\" y=\"14\">{}</text>",
            (b - a).max(1.0),
            LANE * lanes as f64,
            a + 2.0,
            escape(&phase.name)
        );
    }
    for w in &outcome.windows {
        let (a, b) = (x(w.start), x(w.end));
        let _ = writeln!(
            s,
            "<rect x=\"{a:.1}\" y=\"20\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#f00\" opacity=\"0.08\"><title>{}</title></rect>",
            (b - a).max(1.0),
            LANE * lanes as f64,
            escape(&w.why)
        );
    }
    // Lane 0: VIP holder from the adverts (a bar per advert interval).
    let y0 = 20.0;
    let _ = writeln!(s, "<text x=\"4\" y=\"{:.1}\">VIP holder</text>", y0 + 16.0);
    let step = outcome.topology.advert_int;
    for advert in outcome.adverts.iter().filter(|a| a.priority > 0) {
        let a = x(advert.time);
        let b = x(advert.time + step);
        let _ = writeln!(
            s,
            "<rect x=\"{a:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"/>",
            y0 + 4.0,
            (b - a).max(0.5),
            LANE - 8.0,
            if advert.director == 0 {
                "#1f77b4"
            } else {
                "#d62728"
            }
        );
    }
    // Per app: requests per second, and IPVS membership on lb1 and lb2.
    let mut per_second: BTreeMap<(String, u64), usize> = BTreeMap::new();
    let mut failed_per_second: BTreeMap<u64, usize> = BTreeMap::new();
    for r in &outcome.requests {
        let second = offset(outcome.start, r.start) as u64;
        match &r.outcome {
            Ok(app) => *per_second.entry((app.clone(), second)).or_insert(0) += 1,
            Err(_) => *failed_per_second.entry(second).or_insert(0) += 1,
        }
    }
    let max = per_second.values().copied().max().unwrap_or(1).max(1) as f64;
    for (i, address) in outcome.topology.apps.iter().enumerate() {
        let name = format!("app{}", i + 1);
        let y = y0 + LANE * (1 + i * 3) as f64;
        let colour = COLOURS[i % COLOURS.len()];
        let _ = writeln!(s, "<text x=\"4\" y=\"{:.1}\">{name} req/s</text>", y + 16.0);
        for ((app, second), n) in per_second.range((name.clone(), 0)..=(name.clone(), u64::MAX)) {
            debug_assert_eq!(app, &name);
            let t = outcome.start + std::time::Duration::from_secs(*second);
            let a = x(t);
            let b = x(t + std::time::Duration::from_secs(1));
            let h = (LANE - 6.0) * (*n as f64) / max;
            let _ = writeln!(
                s,
                "<rect x=\"{a:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{colour}\"><title>{n} req</title></rect>",
                y + LANE - 3.0 - h,
                (b - a - 0.5).max(0.5)
            );
        }
        for director in 0..2 {
            let y = y + LANE * (1 + director) as f64;
            let _ = writeln!(
                s,
                "<text x=\"4\" y=\"{:.1}\">{name} in lb{} IPVS</text>",
                y + 16.0,
                director + 1
            );
            let samples: Vec<_> = outcome
                .samples
                .iter()
                .filter(|sample| sample.director == director)
                .collect();
            for pair in samples.windows(2) {
                if pair[0].destinations.iter().any(|(a, _)| a == address) {
                    let a = x(pair[0].time);
                    let b = x(pair[1].time);
                    let _ = writeln!(
                        s,
                        "<rect x=\"{a:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{colour}\" opacity=\"0.5\"/>",
                        y + 8.0,
                        (b - a).max(0.5),
                        LANE - 16.0
                    );
                }
            }
        }
    }
    // Failures as red ticks under the last lane.
    let y = y0 + LANE * lanes as f64;
    for (second, n) in &failed_per_second {
        let a = x(outcome.start + std::time::Duration::from_secs(*second));
        let _ = writeln!(
            s,
            "<rect x=\"{a:.1}\" y=\"{:.1}\" width=\"3\" height=\"10\" fill=\"#c00\"><title>{n} failed</title></rect>",
            y + 2.0
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"4\" y=\"{:.1}\">failed requests</text><text x=\"{:.1}\" y=\"{:.1}\">{total:.0} s</text>",
        y + 11.0,
        WIDTH - 40.0,
        y + 24.0
    );
    s.push_str("</svg>");
    s
}
