//! Declarative reconcile: from the kernel's state and a desired state, the
//! smallest plan of add, edit and delete operations.
//!
//! What the plan guarantees:
//! - it never deletes and re-adds what an edit can change: a service's
//!   scheduler, flags, timeout, netmask and persistence engine are edited in
//!   place (`IPVS_CMD_SET_SERVICE`), and so are a destination's forwarding
//!   method, weight, thresholds and tunnel settings (`IPVS_CMD_SET_DEST`);
//! - it never flushes;
//! - the deletion of a service is not followed by deletions of its
//!   destinations (the kernel removes them with it);
//! - it touches only services in the [`Scope`] plus the desired ones;
//! - applied to the state it produces, it is empty (idempotence).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::model::{
    Destination, DestinationKey, DestinationStatus, Service, ServiceKey, ServiceStatus,
};
use crate::netlink::{Command, CommandAttribute, IpvsMessage};

/// A service and its destinations as the kernel reports them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceState {
    /// The service.
    pub service: ServiceStatus,
    /// Its destinations.
    pub destinations: Vec<DestinationStatus>,
}

/// A service and the destinations it should have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredService {
    /// The service.
    #[serde(flatten)]
    pub service: Service,
    /// Its destinations.
    #[serde(default)]
    pub destinations: Vec<Destination>,
}

/// Which kernel services an owner manages: those it may edit or delete.
/// Desired services are always in scope.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Scope {
    /// Every service in the kernel (or namespace).
    #[default]
    All,
    /// Only the desired services: others are never touched.
    DesiredOnly,
    /// Address-keyed services on these virtual addresses.
    Addresses(BTreeSet<IpAddr>),
    /// These services.
    Services(BTreeSet<ServiceKey>),
}

impl Scope {
    /// Whether the owner manages the service.
    pub fn contains(&self, key: &ServiceKey) -> bool {
        match self {
            Scope::All => true,
            Scope::DesiredOnly => false,
            Scope::Addresses(addrs) => {
                matches!(key, ServiceKey::Address { address, .. } if addrs.contains(address))
            }
            Scope::Services(keys) => keys.contains(key),
        }
    }
}

/// The state an owner wants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Desired {
    /// The services and their destinations.
    #[serde(default)]
    pub services: Vec<DesiredService>,
    /// Which other kernel services the owner manages.
    #[serde(default)]
    pub scope: Scope,
}

/// Why a desired state cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DesiredError {
    /// The same service appears twice.
    #[error("service {0} is listed twice")]
    DuplicateService(ServiceKey),
    /// The same destination appears twice in a service.
    #[error("destination {destination} of {service} is listed twice")]
    DuplicateDestination {
        /// The service.
        service: ServiceKey,
        /// The destination.
        destination: DestinationKey,
    },
}

/// One change to the kernel's IPVS table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Operation {
    /// `IPVS_CMD_NEW_SERVICE`.
    AddService(Service),
    /// `IPVS_CMD_SET_SERVICE`.
    EditService(Service),
    /// `IPVS_CMD_DEL_SERVICE` (its destinations go with it).
    DeleteService(ServiceKey),
    /// `IPVS_CMD_NEW_DEST`.
    AddDestination {
        /// The service.
        service: ServiceKey,
        /// The destination.
        destination: Destination,
    },
    /// `IPVS_CMD_SET_DEST`.
    EditDestination {
        /// The service.
        service: ServiceKey,
        /// The destination's new settings.
        destination: Destination,
    },
    /// `IPVS_CMD_DEL_DEST`.
    DeleteDestination {
        /// The service.
        service: ServiceKey,
        /// The destination.
        destination: DestinationKey,
    },
}

impl Operation {
    /// The command this operation sends.
    pub fn command(&self) -> Command {
        match self {
            Operation::AddService(_) => Command::NewService,
            Operation::EditService(_) => Command::SetService,
            Operation::DeleteService(_) => Command::DelService,
            Operation::AddDestination { .. } => Command::NewDestination,
            Operation::EditDestination { .. } => Command::SetDestination,
            Operation::DeleteDestination { .. } => Command::DelDestination,
        }
    }

    /// The request message.
    pub fn to_message(&self) -> IpvsMessage {
        let attributes = match self {
            Operation::AddService(s) | Operation::EditService(s) => {
                vec![CommandAttribute::Service(s.to_attributes())]
            }
            Operation::DeleteService(k) => vec![CommandAttribute::Service(k.to_attributes())],
            Operation::AddDestination {
                service,
                destination,
            }
            | Operation::EditDestination {
                service,
                destination,
            } => vec![
                CommandAttribute::Service(service.to_attributes()),
                CommandAttribute::Destination(destination.to_attributes()),
            ],
            Operation::DeleteDestination {
                service,
                destination,
            } => vec![
                CommandAttribute::Service(service.to_attributes()),
                CommandAttribute::Destination(destination.to_attributes()),
            ],
        };
        IpvsMessage::new(self.command(), attributes)
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operation::AddService(s) => write!(f, "add service {} ({})", s.key, s.scheduler),
            Operation::EditService(s) => write!(f, "edit service {} ({})", s.key, s.scheduler),
            Operation::DeleteService(k) => write!(f, "delete service {k}"),
            Operation::AddDestination {
                service,
                destination: d,
            } => write!(
                f,
                "add destination {} to {service} ({:?}, weight {})",
                d.key(),
                d.forwarding,
                d.weight
            ),
            Operation::EditDestination {
                service,
                destination: d,
            } => write!(
                f,
                "edit destination {} of {service} ({:?}, weight {})",
                d.key(),
                d.forwarding,
                d.weight
            ),
            Operation::DeleteDestination {
                service,
                destination,
            } => write!(f, "delete destination {destination} of {service}"),
        }
    }
}

/// The operations that take the kernel from its state to the desired one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// In the order they are sent.
    pub operations: Vec<Operation>,
}

impl Plan {
    /// Whether nothing needs to change.
    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }
    /// How many operations.
    pub fn len(&self) -> usize {
        self.operations.len()
    }
}

/// Compute the plan. Pure: the caller reads `current` from the kernel.
pub fn plan(current: &[ServiceState], desired: &Desired) -> Result<Plan, DesiredError> {
    let mut wanted: BTreeMap<ServiceKey, &DesiredService> = BTreeMap::new();
    for d in &desired.services {
        if wanted.insert(d.service.key, d).is_some() {
            return Err(DesiredError::DuplicateService(d.service.key));
        }
        let mut seen = BTreeSet::new();
        for dest in &d.destinations {
            if !seen.insert(dest.key()) {
                return Err(DesiredError::DuplicateDestination {
                    service: d.service.key,
                    destination: dest.key(),
                });
            }
        }
    }
    let existing: BTreeMap<ServiceKey, &ServiceState> =
        current.iter().map(|s| (s.service.service.key, s)).collect();

    let mut operations = Vec::new();
    for key in existing.keys() {
        if !wanted.contains_key(key) && desired.scope.contains(key) {
            operations.push(Operation::DeleteService(*key));
        }
    }
    for want in &desired.services {
        let key = want.service.key;
        match existing.get(&key) {
            None => {
                operations.push(Operation::AddService(want.service.clone()));
                operations.extend(want.destinations.iter().map(|d| Operation::AddDestination {
                    service: key,
                    destination: d.clone(),
                }));
            }
            Some(have) => {
                if !have.service.service.same_config(&want.service) {
                    operations.push(Operation::EditService(want.service.clone()));
                }
                let have_dests: BTreeMap<DestinationKey, &Destination> = have
                    .destinations
                    .iter()
                    .map(|d| (d.destination.key(), &d.destination))
                    .collect();
                let want_keys: BTreeSet<DestinationKey> =
                    want.destinations.iter().map(|d| d.key()).collect();
                for k in have_dests.keys() {
                    if !want_keys.contains(k) {
                        operations.push(Operation::DeleteDestination {
                            service: key,
                            destination: *k,
                        });
                    }
                }
                for d in &want.destinations {
                    match have_dests.get(&d.key()) {
                        None => operations.push(Operation::AddDestination {
                            service: key,
                            destination: d.clone(),
                        }),
                        Some(h) if **h != *d => operations.push(Operation::EditDestination {
                            service: key,
                            destination: d.clone(),
                        }),
                        Some(_) => {}
                    }
                }
            }
        }
    }
    Ok(Plan { operations })
}

/// What `apply` did.
#[derive(Debug)]
pub struct ApplyReport {
    /// The plan that was sent.
    pub plan: Plan,
    /// One result per operation, in plan order.
    pub results: Vec<Result<(), Error>>,
}

impl ApplyReport {
    /// How many operations were sent.
    pub fn operations(&self) -> usize {
        self.plan.len()
    }
    /// The operations that failed, with their errors.
    pub fn failures(&self) -> impl Iterator<Item = (&Operation, &Error)> {
        self.plan
            .operations
            .iter()
            .zip(&self.results)
            .filter_map(|(op, r)| r.as_ref().err().map(|e| (op, e)))
    }
    /// Whether every operation succeeded.
    pub fn is_success(&self) -> bool {
        self.results.iter().all(Result::is_ok)
    }
}
