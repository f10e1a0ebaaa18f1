//! Every sample configuration of Debian's keepalived package gets the same
//! verdict from lvskit as from `keepalived -t` (the differential oracle), and
//! round-trips through the canonical formatter.

mod common;

use lvskit_kconf::{Options, format, parse_file, parse_str};

#[test]
fn debian_samples_same_verdict_as_keepalived() {
    let mut mismatches = Vec::new();
    for file in common::samples() {
        let theirs = common::expected_code(common::keepalived_t(&file));
        let (ours, rendered) = common::ours(&file);
        if ours != theirs {
            mismatches.push(format!(
                "{}: keepalived -t {theirs}, lvskit {ours}\n{rendered}",
                file.display()
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn debian_samples_round_trip_through_the_formatter() {
    for file in common::samples() {
        let first = parse_file(&file, &Options::offline());
        let text = format(&first.config);
        let second = parse_str(&text, &Options::offline());
        assert_eq!(
            first.config,
            second.config,
            "{} does not round-trip; canonical text:\n{text}",
            file.display()
        );
        // The canonical form is a fixed point.
        assert_eq!(format(&second.config), text, "{}", file.display());
    }
}

#[test]
fn conditional_sample_follows_the_config_id() {
    let file = common::samples_dir().join("keepalived.conf.conditional_conf");
    let mut prios = Vec::new();
    for id in ["high", "low", "other"] {
        let mut opts = Options::offline();
        opts.preprocess.config_id = Some(id.to_string());
        let p = parse_file(&file, &opts);
        let vi = &p.config.vrrp_instances[0];
        let script = p.config.vrrp_scripts[0]
            .script
            .as_ref()
            .map(|s| s.command.clone());
        prios.push((vi.priority, script));
    }
    assert_eq!(
        prios,
        [
            (
                170,
                Some("/etc/keepalived/scripts/check_high_VI_0.sh".to_string())
            ),
            (
                85,
                Some("/etc/keepalived/scripts/check_low_VI_0.sh".to_string())
            ),
            (100, None),
        ]
    );
    // keepalived agrees on the verdict with the same id.
    let out = std::process::Command::new("keepalived")
        .args(["-t", "-i", "high", "-f"])
        .arg(&file)
        .current_dir(tempfile::tempdir().expect("temp dir").path())
        .status()
        .expect("keepalived is installed (see common::keepalived_t)");
    let mut opts = Options::default();
    opts.preprocess.config_id = Some("high".into());
    assert_eq!(
        Some(common::expected_code(parse_file(&file, &opts).exit_code())),
        out.code()
    );
}
