//! Fuzz the keepalived.conf parser: any bytes must give a result (no panic),
//! in bounded time and memory, and the model must format and render.

#![no_main]

use libfuzzer_sys::fuzz_target;
use lvskit_kconf::preprocess::Limits;
use lvskit_kconf::{Options, format, parse_str};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut opts = Options::offline();
    opts.preprocess.config_id = Some("lb1".into());
    // Tighter than the defaults so every input finishes quickly.
    opts.preprocess.limits = Limits {
        max_include_depth: 8,
        max_generated_lines: 20_000,
        max_line_len: 64 * 1024,
        max_expansions_per_line: 512,
    };
    let parsed = parse_str(&text, &opts);
    let _ = parsed.exit_code();
    let _ = parsed.render();
    let _ = parsed.diagnostics_json();
    let canonical = format(&parsed.config);
    let _ = parse_str(&canonical, &Options::offline());
});
