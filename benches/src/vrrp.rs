//! The VRRP engine steps the `vrrp` criterion bench times and the
//! `vrrp_engine_steps` example counts instructions of (under callgrind).

use std::hint::black_box;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use lvskit_vrrp::wire::{Authentication, ChecksumContext, ChecksumMode, Repr, Version};
use lvskit_vrrp::{Config, Instance, RxMeta, State, VirtualAddress};

fn ip(s: &str) -> IpAddr {
    s.parse().expect("literal address")
}

/// A one-VIP VRRPv3 advert from 10.0.3.2 (VRID 51, priority 200, 1 s) to
/// 224.0.0.18, with the pseudo-header checksum, and its checksum context.
pub fn one_vip_v3() -> (Vec<u8>, ChecksumContext) {
    one_vip_v3_at(200)
}

/// [`one_vip_v3`] at another priority.
pub fn one_vip_v3_at(priority: u8) -> (Vec<u8>, ChecksumContext) {
    let ctx = ChecksumContext {
        source: ip("10.0.3.2"),
        destination: ip("224.0.0.18"),
        mode: ChecksumMode::PseudoHeader,
    };
    let repr = Repr {
        version: Version::V3,
        vrid: 51,
        priority,
        adver_int: 100,
        authentication: Authentication::None,
        addresses: vec![ip("10.0.3.100")],
    };
    (repr.to_vec(&ctx).expect("valid advert"), ctx)
}

/// Which engine step to repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A backup (priority 100) hears its master (200): validate, follow,
    /// re-arm the Master_Down_Timer.
    BackupFollowsMaster,
    /// A master (250) hears a lower priority (200): validate, re-advertise
    /// (RFC 9568), notify `MASTER_RX_LOWER_PRI`. The advert is the same
    /// every time, as in a stable network, so the engine knows it valid
    /// from the previous step.
    MasterReadvertises,
    /// As [`Step::MasterReadvertises`], but the advert alternates between
    /// priorities 200 and 199, so every step runs every receive check.
    MasterReadvertisesChanging,
}

/// An instance in the state [`Step`] needs, fed the advert of
/// [`one_vip_v3`] (or alternately [`one_vip_v3_at`] 199) once per
/// [`EngineStep::step`] call, 1 ms apart.
#[derive(Debug)]
pub struct EngineStep {
    instance: Instance,
    adverts: [Vec<u8>; 2],
    alternate: bool,
    next: usize,
    meta: RxMeta,
    now: Instant,
}

impl EngineStep {
    /// Sets up the instance (started, settled, actions drained).
    pub fn new(step: Step) -> EngineStep {
        let (bytes, ctx) = one_vip_v3();
        let (other, _) = one_vip_v3_at(199);
        let meta = RxMeta::new(ctx.source, ctx.destination, 255);
        let mut config = Config::new(
            51,
            ip("10.0.3.1"),
            vec![VirtualAddress::new(ip("10.0.3.100"))],
        );
        config.priority = match step {
            Step::BackupFollowsMaster => 100,
            Step::MasterReadvertises | Step::MasterReadvertisesChanging => 250,
        };
        let mut instance = Instance::new(config).expect("valid config");
        let mut now = Instant::now();
        instance.startup(now);
        if step != Step::BackupFollowsMaster {
            now = instance.poll_timeout().expect("Master_Down_Timer");
            instance.handle_timeout(now);
        }
        while instance.poll_action().is_some() {}
        EngineStep {
            instance,
            adverts: [bytes, other],
            alternate: step == Step::MasterReadvertisesChanging,
            next: 0,
            meta,
            now,
        }
    }

    /// One step: 1 ms later, `handle_packet` and drain every action.
    #[inline(never)]
    pub fn step(&mut self) {
        self.now += Duration::from_millis(1);
        self.instance
            .handle_packet(self.now, &self.meta, black_box(&self.adverts[self.next]))
            .expect("advert accepted");
        if self.alternate {
            self.next ^= 1;
        }
        while let Some(action) = self.instance.poll_action() {
            black_box(action);
        }
    }

    /// The instance's state (unchanged by steps).
    pub fn state(&self) -> State {
        self.instance.state()
    }
}
