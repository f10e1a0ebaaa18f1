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
