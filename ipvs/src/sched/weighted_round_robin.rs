//! `wrr`: weighted round robin (net/netfilter/ipvs/ip_vs_wrr.c).

use super::{Change, Request, Scheduler, View};

/// Weighted round-robin scheduling, as `ip_vs_wrr.c`.
///
/// The kernel walks the list in passes with a current weight `cw`: a pass
/// takes, one per pick, every destination whose weight is at least `cw` (and
/// that is not overloaded). After each pass `cw` drops by `di`, the greatest
/// common divisor of the positive weights; when it reaches 0 it restarts at
/// `mw = max weight - (di - 1)`, so the last pass of a cycle is at `cw = 1`
/// or lower and also catches weights below `di`. Over a full cycle each
/// destination of weight `w` is picked `w / di` times.
///
/// Any change of the list or of a weight (the kernel's add/del/upd hooks)
/// recomputes `di` and `mw`, puts the cursor back on the list head and
/// clamps `cw`: to `mw` if it is above `mw` or 0, else (when `di > 1`) to
/// `(cw / di) * di + 1`.
#[derive(Debug, Clone, Default)]
pub struct WeightedRoundRobin {
    /// Index of the current entry; `None` is the list head.
    cursor: Option<usize>,
    /// Current weight.
    cw: i64,
    /// Maximum weight, less `di - 1`.
    mw: i64,
    /// Decrement: the gcd of the positive weights, or 1.
    di: i64,
    /// Each destination's weight, or 0 while it is overloaded (a pass never
    /// takes weight 0: `cw` is at least 1 while the list is walked).
    effective: Vec<i64>,
}

fn gcd(mut a: i64, mut b: i64) -> i64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl WeightedRoundRobin {
    /// A weighted round-robin scheduler; its state is set when the pool
    /// initializes it.
    pub fn new() -> Self {
        WeightedRoundRobin::default()
    }

    fn effective_weight(view: &View<'_>, index: usize) -> i64 {
        let d = &view.destinations()[index];
        if d.is_overloaded() {
            0
        } else {
            i64::from(d.weight())
        }
    }

    fn recompute(&mut self, view: View<'_>) {
        self.effective.clear();
        self.effective
            .extend((0..view.destinations().len()).map(|i| Self::effective_weight(&view, i)));
        let weights = view.destinations().iter().map(|d| i64::from(d.weight()));
        let di = weights
            .clone()
            .filter(|&w| w > 0)
            .fold(0, |g, w| if g > 0 { gcd(w, g) } else { w });
        self.di = if di > 0 { di } else { 1 };
        self.mw = weights.max().unwrap_or(0).max(0) - (self.di - 1);
    }
}

impl Scheduler for WeightedRoundRobin {
    fn name(&self) -> &'static str {
        "wrr"
    }

    fn destinations_changed(&mut self, view: View<'_>, change: Change) {
        self.recompute(view);
        self.cursor = None;
        if change == Change::Initialized || self.cw > self.mw || self.cw == 0 {
            self.cw = self.mw;
        } else if self.di > 1 {
            self.cw = (self.cw / self.di) * self.di + 1;
        }
    }

    fn counters_changed(&mut self, view: View<'_>, index: usize) {
        if index < self.effective.len() {
            self.effective[index] = Self::effective_weight(&view, index);
        }
    }

    fn schedule(&mut self, _view: View<'_>, _request: &Request) -> Option<usize> {
        if self.mw == 0 {
            return None;
        }
        // The common case, and the first stretch of the kernel's walk: a
        // destination after the cursor still qualifies in this pass.
        let start = self.cursor.map_or(0, |p| p + 1);
        let cw = self.cw;
        if let Some(offset) = self
            .effective
            .get(start..)
            .and_then(|rest| rest.iter().position(|&weight| weight >= cw))
        {
            self.cursor = Some(start + offset);
            return self.cursor;
        }
        let last = self.cursor;
        let mut stop: Option<usize> = None;
        let mut last_pass = false;
        let mut restarted = false;
        loop {
            // The walk reached the list head.
            self.cw -= self.di;
            if self.cw <= 0 {
                self.cw = self.mw;
                if last_pass || last.is_none() {
                    self.cursor = None;
                    return None;
                }
                restarted = true;
            }
            last_pass = self.cw <= self.di;
            if last_pass && restarted && last.is_some() {
                stop = last;
            }
            for (i, &weight) in self.effective.iter().enumerate() {
                if weight >= self.cw {
                    self.cursor = Some(i);
                    return Some(i);
                }
                if stop == Some(i) {
                    self.cursor = Some(i);
                    return None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Destination;
    use super::super::testing::{address, picks, pool};
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn worked_cycle_for_weights_4_3_2() {
        // Weights [A4, B3, C2]: di = 1, mw = 4.
        // cw=4: A. cw=3: A, B. cw=2: A, B, C. cw=1: A, B, C. Then cw=4 again.
        let mut p = pool(Box::new(WeightedRoundRobin::new()), &[4, 3, 2]);
        let got: Vec<_> = picks(&mut p, 10).into_iter().flatten().collect();
        assert_eq!(got, vec![0, 0, 1, 0, 1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn gcd_steps_and_mw_offset() {
        // Weights [A6, B4]: di = 2, mw = 6 - 1 = 5.
        // cw=5: A. cw=3: A, B. cw=1: A, B. Then cw <= 0 -> mw = 5: A ...
        let mut p = pool(Box::new(WeightedRoundRobin::new()), &[6, 4]);
        let got: Vec<_> = picks(&mut p, 6).into_iter().flatten().collect();
        assert_eq!(got, vec![0, 0, 1, 0, 1, 0]);
    }

    #[test]
    fn all_zero_or_overloaded_gives_none() {
        let mut p = pool(Box::new(WeightedRoundRobin::new()), &[0, 0]);
        assert_eq!(picks(&mut p, 1), vec![None]);
        let mut p = pool(Box::new(WeightedRoundRobin::new()), &[2, 1]);
        p.set_overloaded(0, true);
        p.set_overloaded(1, true);
        assert_eq!(picks(&mut p, 1), vec![None]);
        // Overload cleared: picks resume.
        p.set_overloaded(1, false);
        assert_eq!(picks(&mut p, 2), vec![Some(1), Some(1)]);
    }

    #[test]
    fn a_change_resets_the_cursor_and_clamps_cw() {
        // [A4, B3, C2]: picks A, A (cw=3, cursor A). Adding N (w1) at the
        // front resets the cursor to the head; di = 1 so cw stays 3.
        // cw=3 from the head: A(idx 1), B(idx 2); cw=2: A, B, C; cw=1: N, ...
        let mut p = pool(Box::new(WeightedRoundRobin::new()), &[4, 3, 2]);
        assert_eq!(picks(&mut p, 2), vec![Some(0), Some(0)]);
        p.add(Destination::new(address(9), 1))
            .unwrap_or_else(|e| panic!("{e}"));
        let got: Vec<_> = picks(&mut p, 6).into_iter().flatten().collect();
        assert_eq!(got, vec![1, 2, 1, 2, 3, 0]);
        // An edit with di > 1: weights [N2, A4, B2, C2]... set N to 2 and
        // the rest to even numbers: di = 2, mw = 3; cw = 1 -> (1/2)*2+1 = 1.
        let set = super::super::testing::weight;
        p.update(address(9), set(2))
            .unwrap_or_else(|e| panic!("{e}"));
        p.update(address(2), set(2))
            .unwrap_or_else(|e| panic!("{e}"));
        p.update(address(3), set(2))
            .unwrap_or_else(|e| panic!("{e}"));
        // Now [N2, A4, B2, C2]: di = 2, mw = 3. The cw left from before was
        // 1 (the pass that just picked N); clamped to 1, the pass at cw=1 from
        // the head picks N, A, B, C; then cw = 3: A; cw = 1: N, A, B, C.
        let got: Vec<_> = picks(&mut p, 9).into_iter().flatten().collect();
        assert_eq!(got, vec![0, 1, 2, 3, 1, 0, 1, 2, 3]);
    }

    proptest! {
        /// Over a full cycle (sum of w/di picks) each destination is picked
        /// exactly w/di times.
        #[test]
        fn proportions_are_exact_over_a_cycle(weights in proptest::collection::vec(0u32..40, 1..12)) {
            let mut p = pool(Box::new(WeightedRoundRobin::new()), &weights);
            let g = weights.iter().filter(|&&w| w > 0).fold(0u32, |g, &w| {
                if g == 0 { w } else { gcd(i64::from(w), i64::from(g)) as u32 }
            });
            prop_assume!(g > 0);
            let cycle: u32 = weights.iter().map(|w| w / g).sum();
            let mut counts = vec![0u32; weights.len()];
            for pick in picks(&mut p, cycle as usize) {
                let i = pick.ok_or_else(|| TestCaseError::fail("no pick"))?;
                counts[i] += 1;
            }
            let expected: Vec<u32> = weights.iter().map(|w| w / g).collect();
            prop_assert_eq!(counts, expected);
        }
    }
}
