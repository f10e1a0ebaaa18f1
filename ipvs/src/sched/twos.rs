//! `twos`: weighted power of two choices (net/netfilter/ipvs/ip_vs_twos.c).

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::{Change, Request, Scheduler, View};

/// Power-of-two-choices scheduling, as `ip_vs_twos.c`.
///
/// Among destinations with weight above 0 that are not overloaded, with
/// total weight `T`, two random numbers `r1, r2` in `0..=T` (the kernel's
/// 32-bit random number modulo `T + 1`) each choose the first destination at
/// which the running weight sum reaches the number. The pick is the second
/// choice if its `overhead / weight` is strictly lower, else the first.
///
/// The random source is injectable: [`PowerOfTwoChoices::with_rng`] takes
/// any [`rand::Rng`], e.g. a seeded one for reproducible simulation. The
/// kernel's own random numbers cannot be replayed, so this one matches the
/// kernel's rule and distribution, not its individual picks. Linux 6.1 has
/// the module, but Debian's 6.1 kernels are built without it
/// (`CONFIG_IP_VS_TWOS` unset).
#[derive(Debug, Clone)]
pub struct PowerOfTwoChoices<R = SmallRng> {
    rng: R,
}

impl PowerOfTwoChoices<SmallRng> {
    /// A scheduler with a small fast generator seeded with `seed`.
    pub fn seeded(seed: u64) -> Self {
        PowerOfTwoChoices {
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    /// A scheduler seeded from the thread-local generator (itself seeded by
    /// the operating system).
    pub fn from_os_rng() -> Self {
        PowerOfTwoChoices {
            rng: SmallRng::from_rng(&mut rand::rng()),
        }
    }
}

impl<R: Rng> PowerOfTwoChoices<R> {
    /// A scheduler drawing from `rng`.
    pub fn with_rng(rng: R) -> Self {
        PowerOfTwoChoices { rng }
    }
}

impl<R: Rng + Send> Scheduler for PowerOfTwoChoices<R> {
    fn name(&self) -> &'static str {
        "twos"
    }

    fn destinations_changed(&mut self, _view: View<'_>, _change: Change) {}

    fn schedule(&mut self, view: View<'_>, _request: &Request) -> Option<usize> {
        let destinations = view.destinations();
        let total: u64 = destinations
            .iter()
            .filter(|d| d.is_available())
            .map(|d| u64::from(d.weight()))
            .sum();
        if total == 0 {
            return None;
        }
        let modulus = total + 1;
        let mut r1 = (u64::from(self.rng.next_u32()) % modulus) as i64;
        let mut r2 = (u64::from(self.rng.next_u32()) % modulus) as i64;
        let (mut first, mut second) = (None, None);
        for (i, d) in destinations.iter().enumerate() {
            if !d.is_available() {
                continue;
            }
            let w = i64::from(d.weight());
            r1 -= w;
            r2 -= w;
            if r1 <= 0 && first.is_none() {
                first = Some(i);
            }
            if r2 <= 0 && second.is_none() {
                second = Some(i);
            }
            if first.is_some() && second.is_some() {
                break;
            }
        }
        let (first, second) = (first?, second?);
        let load = |i: usize| {
            let d = &destinations[i];
            (u128::from(d.overhead()), u128::from(d.weight()))
        };
        let ((o1, w1), (o2, w2)) = (load(first), load(second));
        if w2 * o1 > w1 * o2 {
            Some(second)
        } else {
            Some(first)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::ConnectionState;
    use super::super::testing::{pool, request};
    use super::*;

    /// A generator that returns fixed numbers, to walk through the rule.
    struct Fixed(Vec<u32>);
    impl rand::TryRng for Fixed {
        type Error = std::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            Ok(self.0.remove(0))
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            Ok(u64::from(self.0.remove(0)))
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            dst.fill(0);
            Ok(())
        }
    }

    #[test]
    fn worked_choices() {
        // [A w1, B w2, C w3]: T = 6, numbers modulo 7.
        // r1 = 3: A (3-1=2), B (2-2=0 <= 0) -> B. r2 = 6: A 5, B 3, C 0 -> C.
        // Loads: B 0/2, C 0/3 -> equal, keep the first choice, B.
        let twos = PowerOfTwoChoices::with_rng(Fixed(vec![3, 6, 10, 6]));
        let mut p = pool(Box::new(twos), &[1, 2, 3]);
        assert_eq!(p.schedule(&request(1, 1)), Some(1));
        p.bind(1, ConnectionState::Active);
        // r1 = 10 % 7 = 3 -> B (256/2 = 128); r2 = 6 -> C (0/3) -> C.
        assert_eq!(p.schedule(&request(1, 1)), Some(2));
    }

    #[test]
    fn seeded_is_reproducible_and_skips_unavailable() {
        let mut a = pool(Box::new(PowerOfTwoChoices::seeded(7)), &[1, 0, 5, 2]);
        let mut b = pool(Box::new(PowerOfTwoChoices::seeded(7)), &[1, 0, 5, 2]);
        for _ in 0..200 {
            let (x, y) = (a.schedule(&request(1, 1)), b.schedule(&request(1, 1)));
            assert_eq!(x, y);
            assert_ne!(x, Some(1));
            if let Some(i) = x {
                a.bind(i, ConnectionState::Active);
                b.bind(i, ConnectionState::Active);
            }
        }
        let mut empty = pool(Box::new(PowerOfTwoChoices::seeded(1)), &[0, 0]);
        assert_eq!(empty.schedule(&request(1, 1)), None);
    }
}
