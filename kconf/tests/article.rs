//! The configuration of the article this project starts from
//! ("Load balancing and failover of LXC containers using LVS", Flockport),
//! exactly as it was scraped: addresses lost, closing braces missing. And the
//! same with lb2's `state SLAVE`.

use lvskit_kconf::diag::{Code, KeepalivedClass, Severity};
use lvskit_kconf::model::InitialState;
use lvskit_kconf::{Options, parse_str};

/// The scraped config, verbatim (the scrape kept the comment line).
const ARTICLE: &str = "! Configuration File for keepalived

vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 100
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass pass
    virtual_ipaddress {
virtual_server 80 {
    delay_loop 6
    lb_algo rr
    lb_kind DR
    persistence_timeout 50
    protocol TCP

    real_server 80 {
        weight 10
        TCP_CHECK {
            connect_timeout 3
            connect_port 80

    real_server 80 {
        weight 10
        TCP_CHECK {
            connect_timeout 3
            connect_port 80
";

fn errors(p: &lvskit_kconf::Parsed) -> Vec<(Code, u32, u32)> {
    p.diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| {
            let s = d.span.expect("errors have a position");
            (d.code, s.line, s.col)
        })
        .collect()
}

#[test]
fn missing_braces_are_reported_at_the_brace_that_opened_the_block() {
    let p = parse_str(ARTICLE, &Options::offline());
    assert_eq!(p.exit_code(), 5, "{}", p.render());
    let e = errors(&p);
    // authentication's `{` (line 9, column 20) is never closed: revealed by
    // virtual_ipaddress, which belongs to vrrp_instance.
    assert!(e.contains(&(Code::MissingClose, 9, 20)), "{e:?}");
    // virtual_ipaddress's and vrrp_instance's, revealed by virtual_server.
    assert!(e.contains(&(Code::MissingClose, 12, 23)), "{e:?}");
    assert!(e.contains(&(Code::MissingClose, 3, 20)), "{e:?}");
    // The first real_server and its TCP_CHECK, revealed by the second
    // real_server; the rest at the end of the file.
    for (line, col) in [(22, 19), (20, 20), (28, 19), (26, 20), (13, 19)] {
        assert!(
            e.contains(&(Code::MissingClose, line, col)),
            "({line}, {col}) in {e:?}"
        );
    }
    assert_eq!(e.iter().filter(|x| x.0 == Code::MissingClose).count(), 8);
    // No keyword is reported as unknown: the braces were the problem.
    assert!(!e.iter().any(|x| x.0 == Code::UnknownKeyword), "{e:?}");
    let revealed = p
        .diagnostics
        .iter()
        .find(|d| d.span.is_some_and(|s| s.line == 9))
        .expect("authentication error");
    assert!(
        revealed
            .labels
            .iter()
            .any(|(s, m)| s.line == 12 && m.contains("virtual_ipaddress"))
    );
    assert!(revealed.help.as_deref().unwrap_or("").contains("}"));
}

#[test]
fn virtual_and_real_servers_without_an_address_are_errors() {
    let p = parse_str(ARTICLE, &Options::offline());
    let e = errors(&p);
    assert!(e.contains(&(Code::InvalidAddress, 13, 16)), "{e:?}");
    assert!(e.contains(&(Code::InvalidAddress, 20, 17)), "{e:?}");
    assert!(e.contains(&(Code::InvalidAddress, 26, 17)), "{e:?}");
    let vs = p
        .diagnostics
        .iter()
        .find(|d| d.code == Code::InvalidAddress && d.span.is_some_and(|s| s.line == 13))
        .expect("virtual server error");
    assert!(
        vs.help
            .as_deref()
            .unwrap_or("")
            .contains("virtual_server <IP> 80")
    );
    // Skipped, as keepalived skips it; the VRRP instance is still there.
    assert!(p.config.virtual_servers.is_empty());
    let vi = &p.config.vrrp_instances[0];
    assert_eq!(
        (vi.name.as_str(), vi.priority, vi.state),
        ("VI_1", 100, InitialState::Master)
    );
    assert_eq!(vi.virtual_router_id, Some(51));
}

#[test]
fn state_slave_is_an_error_with_a_hint_and_runs_as_backup() {
    let text = ARTICLE
        .replace("state MASTER", "state SLAVE")
        .replace("priority 100", "priority 50");
    let p = parse_str(&text, &Options::offline());
    let d = p
        .diagnostics
        .iter()
        .find(|d| d.code == Code::InvalidValue)
        .expect("state SLAVE is reported");
    assert_eq!(d.severity, Severity::Error);
    assert_eq!(d.class, Some(KeepalivedClass::General));
    let s = d.span.expect("position");
    assert_eq!((s.line, s.col, s.len), (4, 11, 5));
    assert!(
        d.help.as_deref().unwrap_or("").contains("BACKUP"),
        "{:?}",
        d.help
    );
    let vi = &p.config.vrrp_instances[0];
    assert_eq!((vi.state, vi.priority), (InitialState::Backup, 50));
}

#[test]
fn rendered_and_json_forms_point_at_the_lines() {
    let p = parse_str(ARTICLE, &Options::offline());
    let text = p.render();
    assert!(
        text.contains("block `authentication` is never closed"),
        "{text}"
    );
    assert!(text.contains("keepalived.conf:9:20"), "{text}");
    let json = p.diagnostics_json();
    assert_eq!(json["exit_code"], 5);
    let first = &json["diagnostics"][0];
    assert_eq!(first["code"], "missing-close");
    assert_eq!(first["line"], 9);
    assert_eq!(first["column"], 20);
}

#[test]
fn misspelled_keyword_gets_did_you_mean() {
    let p = parse_str(
        "vrrp_instance VI_1 {\n    virtual_routr_id 51\n    priorty 100\n}\n",
        &Options::offline(),
    );
    let helps: Vec<_> = p
        .diagnostics
        .iter()
        .filter(|d| d.code == Code::UnknownKeyword)
        .map(|d| d.help.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        helps,
        [
            "did you mean `virtual_router_id`?",
            "did you mean `priority`?"
        ]
    );
    let p = parse_str(
        "vrrp_instance VI_1 {\n    lb_algo rr\n}\n",
        &Options::offline(),
    );
    let d = p
        .diagnostics
        .iter()
        .find(|d| d.code == Code::UnknownKeyword)
        .unwrap();
    assert!(
        d.help.as_deref().unwrap_or("").contains("virtual_server"),
        "{:?}",
        d.help
    );
}

#[test]
fn unknown_block_is_skipped_whole() {
    let p = parse_str(
        "vrrp_instance VI_1 {\n    bogus_block {\n        priority 7\n    }\n    priority 9\n}\n",
        &Options::offline(),
    );
    assert_eq!(p.config.vrrp_instances[0].priority, 9);
    let unknown = p
        .diagnostics
        .iter()
        .filter(|d| d.code == Code::UnknownKeyword)
        .count();
    assert_eq!(unknown, 1);
}

#[test]
fn notify_fifos_and_their_scripts_are_typed_and_format_back() {
    let text = "global_defs {\n    notify_fifo /run/ka.fifo\n    notify_fifo_script \"/usr/bin/reader -v\" root\n    vrrp_notify_fifo /run/vrrp.fifo keepalived_script daemon\n    lvs_notify_fifo /run/lvs.fifo\n}\n";
    let p = parse_str(text, &Options::offline());
    assert!(p.diagnostics.is_empty(), "{}", p.render());
    let g = &p.config.global;
    assert_eq!(g.notify_fifo.path.as_deref(), Some("/run/ka.fifo"));
    let script = g.notify_fifo.script.as_ref().expect("notify_fifo_script");
    assert_eq!(script.argv, ["/usr/bin/reader", "-v"]);
    assert_eq!(script.user.as_deref(), Some("root"));
    assert_eq!(g.vrrp_notify_fifo.path.as_deref(), Some("/run/vrrp.fifo"));
    assert_eq!(
        g.vrrp_notify_fifo.owner,
        Some(("keepalived_script".into(), Some("daemon".into())))
    );
    assert_eq!(g.lvs_notify_fifo.path.as_deref(), Some("/run/lvs.fifo"));
    assert!(g.lvs_notify_fifo.script.is_none());
    let again = parse_str(
        &lvskit_kconf::format::format(&p.config),
        &Options::offline(),
    );
    assert_eq!(again.config.global, p.config.global);
}
