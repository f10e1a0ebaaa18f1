//! Sync groups (keepalived's `vrrp_sync_group`): instances that change state
//! together, sans IO.
//!
//! A [`SyncGroup`] owns its member [`Instance`]s and takes the same inputs,
//! addressed to a member by index. After every input it coordinates:
//!
//! - if a member is in FAULT by its own cause (link, weight-0 track), every
//!   other member goes to FAULT too ([`FaultCause::SyncGroup`](crate::FaultCause));
//!   when no member has its own fault left, they all leave FAULT together;
//! - if a member becomes Master, every Backup member becomes Master
//!   ([`Reason::SyncGroup`]);
//! - if a member leaves Master for Backup, every Master member becomes Backup.
//!
//! Group-level notifications (`GROUP name MASTER|BACKUP|FAULT|STOP`) follow
//! the members' ones.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use crate::action::{Action, Notify, NotifyEvent, NotifyScope, State};
use crate::instance::{Instance, LinkState, RxMeta, TrackId, TrackStatus};
use crate::{InputError, RxDrop, log};

/// An output of a [`SyncGroup`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GroupAction {
    /// An action of member `index`.
    Member {
        /// Index of the member in the group.
        index: usize,
        /// Its action.
        action: Action,
    },
    /// A group notification (`GROUP`, the group name, the state, 0).
    Notify(Notify),
}

/// Why [`SyncGroup::reconfigure_member`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReconfigureError {
    /// No such member.
    #[error(transparent)]
    Input(InputError),
    /// The member refused the configuration.
    #[error(transparent)]
    Config(crate::ConfigError),
}

/// Instances that change state together. One
/// member's Master/Backup transition pulls the others along, and one
/// member's own FAULT puts all in FAULT.
#[derive(Debug, Clone)]
pub struct SyncGroup {
    name: Arc<str>,
    members: Vec<Instance>,
    state: State,
    notifications: VecDeque<Notify>,
}

impl SyncGroup {
    /// A group of stopped instances.
    pub fn new(name: impl Into<Arc<str>>, members: Vec<Instance>) -> Self {
        SyncGroup {
            name: name.into(),
            members,
            state: State::Initialize,
            notifications: VecDeque::new(),
        }
    }

    /// The group name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The members, in index order.
    pub fn members(&self) -> &[Instance] {
        &self.members
    }

    /// The group state: FAULT if any member is, Master if all are, Initialize
    /// if all are, Backup otherwise.
    pub fn state(&self) -> State {
        self.state
    }

    fn compute_state(&self) -> State {
        let all = |s: State| self.members.iter().all(|m| m.state() == s);
        if self.members.iter().any(|m| m.state() == State::Fault) {
            State::Fault
        } else if all(State::Initialize) {
            State::Initialize
        } else if all(State::Master) {
            State::Master
        } else {
            State::Backup
        }
    }

    /// Starts every member; if one starts as master (an owner), the others
    /// follow it.
    pub fn startup(&mut self, now: Instant) {
        for member in &mut self.members {
            member.startup(now);
        }
        let master = self.members.iter().position(|m| m.state() == State::Master);
        self.coordinate(now, master.map(|index| (index, State::Backup)));
    }

    /// Stops every member (each master sends priority 0).
    pub fn shutdown(&mut self, now: Instant) {
        for member in &mut self.members {
            member.shutdown(now);
        }
        self.coordinate(now, None);
    }

    /// A received packet, routed to the member with the packet's VRID and
    /// address family (and interface, when both sides know it). A packet no
    /// member takes is dropped with [`RxDrop::Vrid`] (not counted: no member
    /// owns it).
    pub fn handle_packet(
        &mut self,
        now: Instant,
        meta: &RxMeta,
        bytes: &[u8],
    ) -> Result<(), RxDrop> {
        let vrid = *bytes.get(1).ok_or(RxDrop::Length {
            len: bytes.len(),
            needed: crate::wire::HEADER_LEN,
        })?;
        let family = crate::wire::AddressFamily::of(&meta.source);
        let index = self
            .members
            .iter()
            .position(|m| {
                let config = m.config();
                config.vrid == vrid
                    && config.family() == family
                    && match (config.ifindex, meta.ifindex) {
                        (Some(want), Some(got)) => want == got,
                        _ => true,
                    }
            })
            .ok_or(RxDrop::Vrid(vrid))?;
        let before = self.members[index].state();
        let result = self.members[index].handle_packet(now, meta, bytes);
        self.coordinate(now, Some((index, before)));
        result
    }

    /// Processes every member's expired timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        for index in 0..self.members.len() {
            if self.members[index]
                .poll_timeout()
                .is_some_and(|at| at <= now)
            {
                let before = self.members[index].state();
                self.members[index].handle_timeout(now);
                self.coordinate(now, Some((index, before)));
            }
        }
    }

    /// A tracking result for member `index`.
    pub fn handle_track(
        &mut self,
        now: Instant,
        index: usize,
        track: TrackId,
        status: TrackStatus,
    ) -> Result<(), InputError> {
        self.with_member(now, index, |m| m.handle_track(now, track, status))
    }

    /// The link state of member `index`'s interface.
    pub fn handle_link_state(
        &mut self,
        now: Instant,
        index: usize,
        link: LinkState,
    ) -> Result<(), InputError> {
        self.with_member(now, index, |m| {
            m.handle_link_state(now, link);
            Ok(())
        })
    }

    /// A new configuration for member `index`, taken in place (see
    /// [`Instance::reconfigure`]); the group then coordinates as after any
    /// input (a member that went to FAULT through a new track takes the
    /// group along).
    pub fn reconfigure_member(
        &mut self,
        now: Instant,
        index: usize,
        config: crate::Config,
    ) -> Result<(), ReconfigureError> {
        self.with_member(now, index, |m| Ok(m.reconfigure(now, config)))
            .map_err(ReconfigureError::Input)?
            .map_err(ReconfigureError::Config)
    }

    /// The index of the member named `name`.
    pub fn member_index(&self, name: &str) -> Option<usize> {
        self.members.iter().position(|m| &*m.config().name == name)
    }

    /// The earliest timer of any member.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.members.iter().filter_map(Instance::poll_timeout).min()
    }

    /// The next action: members' actions in member order, then group
    /// notifications.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<GroupAction> {
        for (index, member) in self.members.iter_mut().enumerate() {
            if let Some(action) = member.poll_action() {
                return Some(GroupAction::Member { index, action });
            }
        }
        self.notifications.pop_front().map(GroupAction::Notify)
    }

    /// Runs an input on member `index`, then coordinates the group.
    fn with_member<T>(
        &mut self,
        now: Instant,
        index: usize,
        input: impl FnOnce(&mut Instance) -> Result<T, InputError>,
    ) -> Result<T, InputError> {
        let member = self
            .members
            .get_mut(index)
            .ok_or(InputError::NoSuchMember(index))?;
        let before = member.state();
        let result = input(member);
        self.coordinate(now, Some((index, before)));
        result
    }

    fn coordinate(&mut self, now: Instant, changed: Option<(usize, State)>) {
        let faulty = self.members.iter().any(|m| m.own_fault().is_some());
        for member in &mut self.members {
            let group_fault = faulty && member.own_fault().is_none();
            member.set_group_fault(now, group_fault);
        }
        if let Some((origin, before)) = changed {
            let after = self.members[origin].state();
            if !faulty && after != before {
                for (index, member) in self.members.iter_mut().enumerate() {
                    if index == origin {
                        continue;
                    }
                    match (before, after) {
                        (_, State::Master) => member.follow_master(now),
                        (State::Master, State::Backup) => member.follow_backup(now),
                        _ => {}
                    }
                }
            }
        }
        let state = self.compute_state();
        if state != self.state {
            log::group_transition(&self.name, self.state, state);
            self.state = state;
            let event = match state {
                State::Master => NotifyEvent::Master,
                State::Backup => NotifyEvent::Backup,
                State::Fault => NotifyEvent::Fault,
                // Every member stopped: the group's `notify_stop`.
                State::Initialize => NotifyEvent::Stop,
            };
            self.notifications.push_back(Notify {
                scope: NotifyScope::Group,
                name: self.name.clone(),
                event,
                priority: 0,
            });
        }
    }
}
