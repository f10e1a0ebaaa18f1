//! Faults on a lab's bridges, made with nftables in the switch namespace.
//!
//! The host has no `sch_netem`, so loss is an nftables rule in the bridge
//! family's forward hook: `numgen random mod 100 < N drop`. Each fault is
//! its own base chain (`table bridge lvskit`, chain `f<n>`) and is removed
//! when the [`Fault`] is dropped.
//!
//! Link faults are plain `ip link set down`: [`crate::Node::link_down`] and
//! [`crate::Port::down`].

use crate::netns::{Lab, Node, Port};
use anyhow::{Context, Result, ensure};

/// An active fault. Dropping it (or calling [`Fault::remove`]) lifts it.
#[derive(Debug)]
#[must_use = "the fault is lifted when this value is dropped"]
pub struct Fault {
    switch: Node,
    chain: String,
    description: String,
    active: bool,
}

impl Fault {
    /// What this fault does, e.g. `loss 30% from p1`.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Lifts the fault now and reports whether nftables agreed.
    pub fn remove(mut self) -> Result<()> {
        self.active = false;
        delete_chain(&self.switch, &self.chain)
    }
}

impl Drop for Fault {
    fn drop(&mut self) {
        if self.active {
            let _ = delete_chain(&self.switch, &self.chain);
        }
    }
}

fn delete_chain(switch: &Node, chain: &str) -> Result<()> {
    switch
        .run([
            "nft",
            &format!("flush chain bridge lvskit {chain}; delete chain bridge lvskit {chain}"),
        ])
        .map(drop)
}

impl Lab {
    /// Drops `percent` % of the frames that enter the bridge from `port`
    /// (that is, sent by the node behind it), chosen at random per frame and
    /// per forwarded copy. Other directions are untouched, so a ping from
    /// that node loses `percent` % of its round trips.
    pub fn loss(&self, port: &Port, percent: u8) -> Result<Fault> {
        ensure!(percent <= 100, "loss of {percent}% is not a percentage");
        self.add_fault(
            port,
            loss_rule(port.name(), percent),
            format!("loss {percent}% from {} ({})", port.node(), port.name()),
        )
    }

    /// Partitions two members of a bridge: no frame passes between `a` and
    /// `b`, in either direction; both still reach everybody else.
    pub fn partition(&self, a: &Port, b: &Port) -> Result<Fault> {
        ensure!(
            a.bridge() == b.bridge(),
            "{} and {} are on different bridges",
            a.name(),
            b.name()
        );
        self.add_fault(
            a,
            format!(
                "iifname \"{a}\" oifname \"{b}\" drop\n    iifname \"{b}\" oifname \"{a}\" drop",
                a = a.name(),
                b = b.name()
            ),
            format!("partition {} | {}", a.node(), b.node()),
        )
    }

    /// Drops every frame that enters the bridge from `port` (the node's link
    /// stays up: a silent, one-way failure).
    pub fn blackhole(&self, port: &Port) -> Result<Fault> {
        self.add_fault(
            port,
            format!("iifname \"{}\" drop", port.name()),
            format!("blackhole from {} ({})", port.node(), port.name()),
        )
    }

    fn add_fault(&self, port: &Port, rules: String, description: String) -> Result<Fault> {
        let chain = format!("f{}", self.next_id());
        let script = format!(
            "table bridge lvskit {{\n  chain {chain} {{\n    type filter hook forward priority 0; policy accept;\n    {rules}\n  }}\n}}\n"
        );
        let path = self.dir().join(format!("{chain}.nft"));
        std::fs::write(&path, script).with_context(|| format!("write {}", path.display()))?;
        let switch = port.switch().clone();
        switch
            .run(["nft", "-f", &path.to_string_lossy()])
            .with_context(|| format!("cannot add fault: {description}"))?;
        Ok(Fault {
            switch,
            chain,
            description,
            active: true,
        })
    }
}

/// The nftables rule for `percent` % loss from `port` (0 and 100 need no
/// random number: nft rejects `< 100` for a value of `mod 100`).
fn loss_rule(port: &str, percent: u8) -> String {
    match percent {
        0 => format!("iifname \"{port}\" counter"),
        100 => format!("iifname \"{port}\" drop"),
        n => format!("iifname \"{port}\" numgen random mod 100 < {n} drop"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_rules_cover_the_edges() {
        assert_eq!(loss_rule("p1", 0), "iifname \"p1\" counter");
        assert_eq!(
            loss_rule("p1", 30),
            "iifname \"p1\" numgen random mod 100 < 30 drop"
        );
        assert_eq!(
            loss_rule("p1", 99),
            "iifname \"p1\" numgen random mod 100 < 99 drop"
        );
        assert_eq!(loss_rule("p1", 100), "iifname \"p1\" drop");
    }
}
