//! Every log message of the crate, in one place so that operators can grep
//! them. The wording follows keepalived's where one exists.

use std::net::IpAddr;

use crate::action::{Reason, State};
use crate::config::TrackKind;
use crate::stats::RxDrop;

pub(crate) fn transition(name: &str, from: State, to: State, reason: &Reason) {
    tracing::info!(instance = name, %from, %to, ?reason, "({name}) Entering {to} STATE");
}

pub(crate) fn dropped(name: &str, source: &IpAddr, drop: &RxDrop) {
    tracing::debug!(instance = name, %source, %drop, "({name}) dropping received advert: {drop}");
}

pub(crate) fn owner_conflict(name: &str, source: &IpAddr) {
    tracing::warn!(
        instance = name,
        %source,
        "({name}) received advert with priority 255 from {source} while we are the address owner"
    );
}

pub(crate) fn track_changed(name: &str, kind: &TrackKind, up: bool) {
    let status = if up { "up" } else { "down" };
    tracing::info!(
        instance = name,
        ?kind,
        status,
        "({name}) tracked {kind:?} is {status}"
    );
}

pub(crate) fn priority_changed(name: &str, from: u8, to: u8) {
    tracing::info!(
        instance = name,
        from,
        to,
        "({name}) Changing effective priority from {from} to {to}"
    );
}

pub(crate) fn group_transition(name: &str, from: State, to: State) {
    tracing::info!(group = name, %from, %to, "VRRP_Group({name}) Syncing instances to {to} state");
}
