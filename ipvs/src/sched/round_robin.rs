//! `rr`: round robin (net/netfilter/ipvs/ip_vs_rr.c).

use super::{Change, Request, Scheduler, View};

/// Round-robin scheduling, as `ip_vs_rr.c`.
///
/// The kernel keeps a cursor on the list, initially the list head. A pick
/// walks the list circularly from the entry after the cursor, skipping the
/// head, and takes the first destination with weight above 0 that is not
/// overloaded; the cursor entry itself is tried last. The cursor then rests
/// on the pick. A failed pick leaves the cursor where it was. When the
/// cursor's destination is removed the cursor steps back to the previous
/// entry (or the head). Adding a destination (always at the front) does not
/// move the cursor.
#[derive(Debug, Clone, Default)]
pub struct RoundRobin {
    /// Index of the cursor entry; `None` is the list head.
    cursor: Option<usize>,
}

impl RoundRobin {
    /// A round-robin scheduler with its cursor on the list head.
    pub fn new() -> Self {
        RoundRobin { cursor: None }
    }
}

impl Scheduler for RoundRobin {
    fn name(&self) -> &'static str {
        "rr"
    }

    fn destinations_changed(&mut self, _view: View<'_>, change: Change) {
        self.cursor = match (change, self.cursor) {
            (Change::Initialized, _) => None,
            (Change::Added(at), Some(c)) if at <= c => Some(c + 1),
            (Change::Removed(at), Some(c)) if at == c => c.checked_sub(1),
            (Change::Removed(at), Some(c)) if at < c => Some(c - 1),
            (_, cursor) => cursor,
        };
    }

    fn schedule(&mut self, view: View<'_>, _request: &Request) -> Option<usize> {
        let destinations = view.destinations();
        let start = self.cursor.map_or(0, |c| c + 1);
        // After the cursor to the end, then (if the cursor is not the head)
        // from the first entry up to and including the cursor.
        let wrap_end = self.cursor.map_or(0, |c| c + 1);
        let pick = (start..destinations.len())
            .chain(0..wrap_end)
            .find(|&i| destinations[i].is_available())?;
        self.cursor = Some(pick);
        Some(pick)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Destination;
    use super::super::testing::{address, picks, pool};
    use super::*;

    #[test]
    fn rotates_and_skips_quiesced_and_overloaded() {
        // List [A w1, B w0, C w1, D w1], D overloaded. From the head:
        // A, then B (weight 0) and D (overloaded) are skipped: C, A, C, ...
        let mut p = pool(Box::new(RoundRobin::new()), &[1, 0, 1, 1]);
        p.set_overloaded(3, true);
        assert_eq!(
            picks(&mut p, 5),
            vec![Some(0), Some(2), Some(0), Some(2), Some(0)]
        );
    }

    #[test]
    fn removal_of_the_cursor_steps_back() {
        // [A, B, C]: picks A, B; cursor on B (index 1). Removing B puts the
        // cursor on A, so the next pick is C (now index 1).
        let mut p = pool(Box::new(RoundRobin::new()), &[1, 1, 1]);
        assert_eq!(picks(&mut p, 2), vec![Some(0), Some(1)]);
        p.remove(address(2)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(picks(&mut p, 1), vec![Some(1)]);
        // Removing the first entry while the cursor is on it puts the cursor
        // on the head: the next pick is the (new) first entry.
        assert_eq!(picks(&mut p, 1), vec![Some(0)]);
        p.remove(address(1)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.destination(0).address(), address(3));
        assert_eq!(picks(&mut p, 1), vec![Some(0)]);
    }

    #[test]
    fn an_added_destination_waits_for_the_wrap() {
        // [A, B]: pick A (cursor A). Adding N puts it first: [N, A, B]; the
        // cursor stays on A, so B comes next, then N, then A.
        let mut p = pool(Box::new(RoundRobin::new()), &[1, 1]);
        assert_eq!(picks(&mut p, 1), vec![Some(0)]);
        p.add(Destination::new(address(9), 1))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(picks(&mut p, 3), vec![Some(2), Some(0), Some(1)]);
    }

    #[test]
    fn the_cursor_itself_is_tried_last_and_failure_keeps_it() {
        let mut p = pool(Box::new(RoundRobin::new()), &[1, 1]);
        assert_eq!(picks(&mut p, 1), vec![Some(0)]);
        // Quiesce B: only A (the cursor) remains and is picked again.
        let quiesce = super::super::testing::weight(0);
        p.update(address(2), quiesce)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(picks(&mut p, 2), vec![Some(0), Some(0)]);
        p.update(address(1), quiesce)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(picks(&mut p, 1), vec![None]);
    }
}
