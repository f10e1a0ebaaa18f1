//! Tier 2: `lvskit-app` in a network namespace, reached the way an LVS-DR
//! director reaches it (a frame to the app's MAC, addressed to the VIP), and
//! cleaned up on SIGTERM.

use anyhow::{Result, ensure};
use lvskit_testlab::{Lab, Node, Process, require_root};
use nix::sys::signal::Signal;
use std::time::Duration;

const VIP: &str = "10.0.0.100";

/// A client and one app node on a bridge.
fn topology(lab: &Lab) -> Result<(Node, Node)> {
    let lan = lab.bridge("lan")?;
    let client = lab.node("client")?;
    let app = lab.node("app")?;
    lab.connect(&client, "eth0", &lan)?;
    lab.connect(&app, "eth0", &lan)?;
    client.add_addr("eth0", "10.0.0.9/24")?;
    app.add_addr("eth0", "10.0.0.11/24")?;
    Ok((client, app))
}

fn start_app(app: &Node, name: &str, mode: &str) -> Result<Process> {
    let process = app.spawn(
        name,
        [
            env!("CARGO_BIN_EXE_lvskit-app"),
            "--name",
            name,
            "--vip",
            VIP,
            "--listen",
            "0.0.0.0:80",
            "--mode",
            mode,
        ],
    )?;
    process.wait_for_output("ready on", Duration::from_secs(10))?;
    Ok(process)
}

fn get(client: &Node, path: &str) -> Result<String> {
    let url = format!("http://{VIP}{path}");
    Ok(client
        .run(["curl", "-sS", "--fail", "--max-time", "3", &url])?
        .trim()
        .to_owned())
}

fn stop(process: &mut Process) -> Result<()> {
    process.signal(Signal::SIGTERM);
    let status = process.wait_timeout(Duration::from_secs(10))?;
    ensure!(
        status.success(),
        "lvskit-app exited with {status}\n{}",
        process.stderr()
    );
    ensure!(process.stdout().contains("stopped"), "{}", process.stdout());
    Ok(())
}

#[test]
fn netns_app_loopback_vip_arp_sysctls_and_cleanup() -> Result<()> {
    require_root();
    let lab = Lab::new()?;
    let (client, app) = topology(&lab)?;
    let mut process = start_app(&app, "app1", "lo")?;

    ensure!(app.has_addr("lo", VIP)?, "the VIP is not on lo");
    ensure!(app.sysctl_get("net.ipv4.conf.all.arp_ignore")? == "1");
    ensure!(app.sysctl_get("net.ipv4.conf.all.arp_announce")? == "2");

    // arp_ignore=1: the app does not answer ARP for the VIP, so a client on
    // the same link cannot reach it without a director.
    let direct = client.exec(["curl", "-s", "--max-time", "1", &format!("http://{VIP}/")])?;
    ensure!(!direct.status.success(), "the app answered ARP for the VIP");
    let neighbour = client.run(["ip", "neigh", "show", VIP])?;
    ensure!(
        !neighbour.contains("lladdr"),
        "the client learned a MAC for the VIP: {neighbour}"
    );

    // What the director does in DR mode: the frame goes to the app's MAC,
    // the packet stays addressed to the VIP.
    client.run([
        "ip",
        "route",
        "add",
        &format!("{VIP}/32"),
        "via",
        "10.0.0.11",
    ])?;
    ensure!(get(&client, "/")? == "app1");
    ensure!(get(&client, "/health")? == "ok");

    stop(&mut process)?;
    ensure!(!app.has_addr("lo", VIP)?, "the VIP stayed on lo");
    ensure!(app.sysctl_get("net.ipv4.conf.all.arp_ignore")? == "0");
    ensure!(app.sysctl_get("net.ipv4.conf.all.arp_announce")? == "0");
    let after = client.exec(["curl", "-s", "--max-time", "1", &format!("http://{VIP}/")])?;
    ensure!(!after.status.success(), "the VIP still answers after exit");
    Ok(())
}

#[test]
fn netns_app_keeps_what_was_there_before() -> Result<()> {
    require_root();
    let lab = Lab::new()?;
    let (_client, app) = topology(&lab)?;
    app.add_addr("lo", &format!("{VIP}/32"))?;
    app.sysctl("net.ipv4.conf.all.arp_ignore", "1")?;
    let mut process = start_app(&app, "app1", "lo")?;
    stop(&mut process)?;
    ensure!(
        app.has_addr("lo", VIP)?,
        "a VIP the app did not add was removed"
    );
    ensure!(app.sysctl_get("net.ipv4.conf.all.arp_ignore")? == "1");
    ensure!(app.sysctl_get("net.ipv4.conf.all.arp_announce")? == "0");
    Ok(())
}

#[test]
fn netns_app_nftables_redirect_and_cleanup() -> Result<()> {
    require_root();
    let lab = Lab::new()?;
    let (client, app) = topology(&lab)?;
    let mut process = start_app(&app, "app2", "nft")?;

    ensure!(
        !app.has_addr("lo", VIP)?,
        "redirect mode must not add the VIP"
    );
    let ruleset = app.run(["nft", "list", "ruleset"])?;
    ensure!(ruleset.contains("redirect"), "no redirect rule:\n{ruleset}");
    client.run([
        "ip",
        "route",
        "add",
        &format!("{VIP}/32"),
        "via",
        "10.0.0.11",
    ])?;
    ensure!(get(&client, "/")? == "app2");
    ensure!(get(&client, "/health")? == "ok");

    stop(&mut process)?;
    let ruleset = app.run(["nft", "list", "ruleset"])?;
    ensure!(
        !ruleset.contains("lvskit_app"),
        "the table stayed:\n{ruleset}"
    );
    Ok(())
}
