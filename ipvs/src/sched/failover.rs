//! `fo` and `ovf`: the weight-ordered schedulers
//! (net/netfilter/ipvs/ip_vs_fo.c, ip_vs_ovf.c).

use super::{Change, Request, Scheduler, View};

/// Weighted failover, as `ip_vs_fo.c`: the destination of highest weight
/// that is not overloaded; the first in list order among equals. Weight-0
/// destinations are never picked.
#[derive(Debug, Clone, Copy, Default)]
pub struct WeightedFailover;

impl WeightedFailover {
    /// The failover scheduler (it has no state).
    pub fn new() -> Self {
        WeightedFailover
    }
}

/// The first destination of highest weight among `candidates`, picking only
/// weights above 0.
fn first_highest(candidates: impl Iterator<Item = (usize, u32)>) -> Option<usize> {
    let mut best: Option<(usize, u32)> = None;
    for (i, weight) in candidates {
        if weight > best.map_or(0, |(_, w)| w) {
            best = Some((i, weight));
        }
    }
    best.map(|(i, _)| i)
}

impl Scheduler for WeightedFailover {
    fn name(&self) -> &'static str {
        "fo"
    }

    fn destinations_changed(&mut self, _view: View<'_>, _change: Change) {}

    fn schedule(&mut self, view: View<'_>, _request: &Request) -> Option<usize> {
        first_highest(
            view.destinations()
                .iter()
                .enumerate()
                .filter(|(_, d)| !d.is_overloaded())
                .map(|(i, d)| (i, d.weight())),
        )
    }
}

/// Overflow-connection scheduling, as `ip_vs_ovf.c`: the destination of
/// highest weight whose active connections do not exceed its weight (and
/// that is not overloaded, weight above 0); the first in list order among
/// equals. Connections "overflow" to the next weight once a destination has
/// more active connections than its weight.
#[derive(Debug, Clone, Copy, Default)]
pub struct Overflow;

impl Overflow {
    /// The overflow scheduler (it has no state).
    pub fn new() -> Self {
        Overflow
    }
}

impl Scheduler for Overflow {
    fn name(&self) -> &'static str {
        "ovf"
    }

    fn destinations_changed(&mut self, _view: View<'_>, _change: Change) {}

    fn schedule(&mut self, view: View<'_>, _request: &Request) -> Option<usize> {
        first_highest(
            view.destinations()
                .iter()
                .enumerate()
                .filter(|(_, d)| {
                    !d.is_overloaded() && u64::from(d.active_connections()) <= u64::from(d.weight())
                })
                .map(|(i, d)| (i, d.weight())),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::ConnectionState;
    use super::super::testing::{pool, request};
    use super::*;

    #[test]
    fn fo_takes_the_first_highest_weight() {
        // [A w2, B w5, C w5, D w0]: B and C tie at 5 -> B (first).
        let mut p = pool(Box::new(WeightedFailover::new()), &[2, 5, 5, 0]);
        assert_eq!(p.schedule(&request(1, 1)), Some(1));
        p.set_overloaded(1, true);
        assert_eq!(p.schedule(&request(1, 1)), Some(2));
        p.set_overloaded(2, true);
        assert_eq!(p.schedule(&request(1, 1)), Some(0));
        p.set_overloaded(0, true);
        // Only D (weight 0) is left: nothing.
        assert_eq!(p.schedule(&request(1, 1)), None);
    }

    #[test]
    fn ovf_overflows_once_active_exceeds_weight() {
        // [A w1, B w2]: B while active <= 2, i.e. for the 1st, 2nd and 3rd
        // connection (active 0, 1, 2 before each); at 3 active it overflows
        // to A, which takes 2 (active 0, 1); then nothing.
        let mut p = pool(Box::new(Overflow::new()), &[1, 2]);
        let mut got = Vec::new();
        for _ in 0..6 {
            let pick = p.schedule(&request(1, 1));
            if let Some(i) = pick {
                p.bind(i, ConnectionState::Active);
            }
            got.push(pick);
        }
        assert_eq!(got, vec![Some(1), Some(1), Some(1), Some(0), Some(0), None]);
    }
}
