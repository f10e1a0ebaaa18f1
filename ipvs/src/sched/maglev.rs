//! `mh`: Maglev hashing (net/netfilter/ipvs/ip_vs_mh.c; Eisenbud et al.,
//! "Maglev", NSDI 2016, section 3.4).

use super::hash::{FastModulo, MH_KEY1, MH_KEY2, mh_hash};
use super::{Change, Error, HashFlags, Request, Scheduler, View};

/// The table sizes the kernel offers, indexed by
/// `CONFIG_IP_VS_MH_TAB_INDEX - 8` (ip_vs_mh.c `primes[]`).
pub const KERNEL_TABLE_SIZES: [usize; 10] = [
    251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071,
];

/// The default `CONFIG_IP_VS_MH_TAB_INDEX` (Kconfig default, also Debian's).
pub const KERNEL_DEFAULT_TABLE_INDEX: u8 = 12;

/// The parameters of a Maglev lookup table: its (prime) size and the number
/// of weight bits kept before weights are shifted down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaglevTable {
    size: usize,
    weight_bits: u32,
}

fn is_prime(n: usize) -> bool {
    if n < 2 {
        return false;
    }
    let mut d = 2;
    while d * d <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 1;
    }
    true
}

impl MaglevTable {
    /// The kernel's table for `CONFIG_IP_VS_MH_TAB_INDEX = index` (8..=17):
    /// size `primes[index - 8]` and `index / 2` weight bits
    /// (`IP_VS_MH_TAB_BITS`).
    pub fn kernel(index: u8) -> Result<Self, Error> {
        let size = index
            .checked_sub(8)
            .and_then(|i| KERNEL_TABLE_SIZES.get(usize::from(i)))
            .ok_or(Error::TableIndexOutOfRange(index))?;
        Ok(MaglevTable {
            size: *size,
            weight_bits: u32::from(index / 2),
        })
    }

    /// The kernel's default table: 4093 slots, 6 weight bits.
    pub fn kernel_default() -> Self {
        MaglevTable {
            size: KERNEL_TABLE_SIZES[usize::from(KERNEL_DEFAULT_TABLE_INDEX - 8)],
            weight_bits: u32::from(KERNEL_DEFAULT_TABLE_INDEX / 2),
        }
    }

    /// A table of another prime size (e.g. 65537), with `weight_bits` weight
    /// bits. Not a size the kernel can be built with.
    pub fn custom(size: usize, weight_bits: u32) -> Result<Self, Error> {
        if !is_prime(size) {
            return Err(Error::TableSizeNotPrime(size));
        }
        Ok(MaglevTable { size, weight_bits })
    }

    /// The number of slots.
    pub fn size(&self) -> usize {
        self.size
    }
}

/// Maglev hashing, as `ip_vs_mh.c`.
///
/// **Table.** Each destination, in list order, gets an `offset` and a `skip`
/// from `hsiphash` of `fold(addr) + port` under two fixed keys (2654435761
/// and 2654446892, both key halves; not random, so the table is the kernel's): `offset = h1 % M`, `skip = h2 % (M - 1) + 1`; its
/// preference list is `offset, offset + skip, ...` modulo the prime `M`.
/// Weights come from `last_weight` (so quiescing to 0 keeps the table):
/// divided by their gcd and shifted right so the largest fits the weight
/// bits; a destination gets `turns = max(that, 1 if last_weight > 0)`. The
/// table is filled in rounds over the list: each destination in turn claims
/// its next free preferred slot, `turns` times in a row, until all `M` slots
/// are taken. It is rebuilt on every change of the list or of a weight.
///
/// **Lookup.** The client address (and port, with [`HashFlags::port`])
/// hashes to slot `h1(fold(addr) + port) % M`. If that destination has
/// weight 0 or is overloaded there is no destination, unless
/// [`HashFlags::fallback`]: then slots `h1(fold(addr) + port + (ihash + k) %
/// M) % M` for `k = 0, 1, ...` are tried in turn.
#[derive(Debug, Clone)]
pub struct MaglevHashing {
    params: MaglevTable,
    modulo: FastModulo,
    flags: HashFlags,
    /// Destination index per slot; `u32::MAX` for an empty slot.
    lookup: Vec<u32>,
    /// Whether each destination has weight above 0 and is not overloaded, kept
    /// here so a lookup touches two small arrays only.
    available: Vec<bool>,
    /// Scratch space reused between rebuilds.
    scratch: Scratch,
    /// The last rebuild's error (more destinations than slots). The kernel
    /// refuses such a change (-EINVAL); here the table is left empty.
    error: Option<Error>,
}

#[derive(Debug, Clone, Default)]
struct Scratch {
    skip: Vec<u32>,
    perm: Vec<u32>,
    turns: Vec<u32>,
    filled: Vec<u64>,
}

const EMPTY: u32 = u32::MAX;

impl MaglevHashing {
    /// A Maglev scheduler with this table and these flags.
    pub fn new(params: MaglevTable, flags: HashFlags) -> Self {
        MaglevHashing {
            params,
            modulo: FastModulo::new(params.size as u32),
            flags,
            lookup: vec![EMPTY; params.size],
            available: Vec::new(),
            scratch: Scratch::default(),
            error: None,
        }
    }

    /// The destination index of each slot (`None` for an empty slot).
    pub fn slots(&self) -> impl Iterator<Item = Option<usize>> + '_ {
        self.lookup
            .iter()
            .map(|&s| (s != EMPTY).then_some(s as usize))
    }

    /// The error of the last rebuild, if the destinations did not fit.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// Rebuilds the lookup table for `view` (the kernel's
    /// `ip_vs_mh_reassign`).
    pub fn rebuild(&mut self, view: View<'_>) {
        let m = self.params.size;
        let destinations = view.destinations();
        self.available.clear();
        self.available
            .extend(destinations.iter().map(|d| d.is_available()));
        self.error = None;
        if destinations.len() > m {
            self.error = Some(Error::TooManyDestinations {
                destinations: destinations.len(),
                size: m,
            });
            self.lookup.fill(EMPTY);
            return;
        }
        let gcd = destinations
            .iter()
            .map(|d| d.last_weight())
            .filter(|&w| w > 0)
            .fold(0u32, |g, w| if g > 0 { gcd(w, g) } else { w });
        if gcd < 1 {
            self.lookup.fill(EMPTY);
            return;
        }
        let max = destinations
            .iter()
            .map(|d| d.last_weight())
            .max()
            .unwrap_or(0)
            / gcd;
        let fls = u32::BITS - max.leading_zeros();
        let shift = fls.saturating_sub(self.params.weight_bits);

        let s = &mut self.scratch;
        s.skip.clear();
        s.perm.clear();
        s.turns.clear();
        for d in destinations {
            let folded = view.fold(d.address().ip());
            let port = d.address().port();
            let offset = mh_hash(folded, port, 0, MH_KEY1) % m as u32;
            let skip = mh_hash(folded, port, 0, MH_KEY2) % (m as u32 - 1) + 1;
            s.perm.push(offset);
            s.skip.push(skip);
            let lw = d.last_weight();
            let turns = (lw / gcd) >> shift;
            s.turns.push(if turns == 0 {
                u32::from(lw != 0)
            } else {
                turns
            });
        }
        s.filled.clear();
        s.filled.resize(m.div_ceil(64), 0);

        let n = destinations.len();
        let (mut current, mut claimed, mut placed) = (0usize, 0u32, 0usize);
        while placed < m {
            let turns = s.turns[current];
            if turns < 1 {
                current = (current + 1) % n;
                continue;
            }
            let (mut c, skip) = (s.perm[current] as usize, s.skip[current] as usize);
            while s.filled[c / 64] & (1 << (c % 64)) != 0 {
                c += skip;
                if c >= m {
                    c -= m;
                }
            }
            s.perm[current] = c as u32;
            s.filled[c / 64] |= 1 << (c % 64);
            self.lookup[c] = current as u32;
            placed += 1;
            claimed += 1;
            if claimed >= turns {
                claimed = 0;
                current = (current + 1) % n;
            }
        }
    }
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Scheduler for MaglevHashing {
    fn name(&self) -> &'static str {
        "mh"
    }

    fn destinations_changed(&mut self, view: View<'_>, _change: Change) {
        self.rebuild(view);
    }

    fn counters_changed(&mut self, view: View<'_>, index: usize) {
        if let Some(slot) = self.available.get_mut(index) {
            *slot = view.destinations()[index].is_available();
        }
    }

    fn schedule(&mut self, view: View<'_>, request: &Request) -> Option<usize> {
        let m = self.params.size as u32;
        let folded = view.fold(request.client.ip());
        let port = if self.flags.port {
            request.client.port()
        } else {
            0
        };
        let first = self.modulo.reduce(mh_hash(folded, port, 0, MH_KEY1));
        let slot = self.lookup[first as usize];
        if slot == EMPTY {
            return None;
        }
        if self.available[slot as usize] {
            return Some(slot as usize);
        }
        if !self.flags.fallback {
            return None;
        }
        for k in 0..m {
            let offset = (k + first) % m;
            let slot =
                self.lookup[self.modulo.reduce(mh_hash(folded, port, offset, MH_KEY1)) as usize];
            if slot == EMPTY {
                return None;
            }
            if self.available[slot as usize] {
                return Some(slot as usize);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::address;
    use super::super::{AddressFamily, Destination, Pool, Request};
    use super::*;
    use proptest::prelude::*;
    use std::net::SocketAddr;
    use std::time::Instant;

    fn table(params: MaglevTable, destinations: Vec<Destination>) -> (Pool, Vec<Option<usize>>) {
        let p = Pool::with_destinations(
            AddressFamily::Inet,
            Box::new(MaglevHashing::new(params, HashFlags::default())),
            destinations,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut mh = MaglevHashing::new(params, HashFlags::default());
        mh.rebuild(p.as_view());
        let slots = mh.slots().collect();
        (p, slots)
    }

    fn counts(slots: &[Option<usize>], n: usize) -> Vec<usize> {
        let mut c = vec![0; n];
        for s in slots.iter().flatten() {
            c[*s] += 1;
        }
        c
    }

    #[test]
    fn kernel_parameters() {
        assert_eq!(MaglevTable::kernel_default().size(), 4093);
        assert_eq!(MaglevTable::kernel(8).map(|t| t.size()), Ok(251));
        assert_eq!(MaglevTable::kernel(17).map(|t| t.size()), Ok(131071));
        assert_eq!(MaglevTable::kernel(7), Err(Error::TableIndexOutOfRange(7)));
        assert_eq!(MaglevTable::custom(65537, 8).map(|t| t.size()), Ok(65537));
        assert_eq!(
            MaglevTable::custom(65536, 8),
            Err(Error::TableSizeNotPrime(65536))
        );
    }

    #[test]
    fn weights_set_the_share_of_slots() {
        // [A w1, B w3] in a 251-slot table: A takes 1 slot, then B 3, in
        // rounds: 251 = 62 * 4 + 3 -> A 62 + 1 = 63, B 188.
        let params = MaglevTable::kernel(8).unwrap_or_else(|e| panic!("{e}"));
        let (_, slots) = table(
            params,
            vec![
                Destination::new(address(1), 1),
                Destination::new(address(2), 3),
            ],
        );
        assert_eq!(counts(&slots, 2), vec![63, 188]);
    }

    #[test]
    fn large_weights_are_shifted_into_the_weight_bits() {
        // [A w1000, B w1]: gcd 1, max 1000 (fls 10) with 4 bits (index 8):
        // shift 6, turns A = 1000 >> 6 = 15, B = 1 >> 6 = 0 -> 1.
        // 251 = 15 * 16 + 11 -> A 15 * 15 + 11 = 236, B 15.
        let params = MaglevTable::kernel(8).unwrap_or_else(|e| panic!("{e}"));
        let (_, slots) = table(
            params,
            vec![
                Destination::new(address(1), 1000),
                Destination::new(address(2), 1),
            ],
        );
        assert_eq!(counts(&slots, 2), vec![236, 15]);
    }

    #[test]
    fn quiescing_keeps_the_table_and_fallback_moves_only_its_clients() {
        let flags = HashFlags {
            fallback: true,
            port: false,
        };
        let mut p = Pool::with_destinations(
            AddressFamily::Inet,
            Box::new(MaglevHashing::new(MaglevTable::kernel_default(), flags)),
            (1..=5).map(|n| Destination::new(address(n), 1)).collect(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let request = |n: u16| {
            Request::new(
                Instant::now(),
                SocketAddr::from(([192, 0, 2, (n % 250) as u8], 1000 + n)),
                SocketAddr::from(([198, 51, 100, 1], 80)),
            )
        };
        let before: Vec<_> = (0..250).map(|n| p.schedule(&request(n))).collect();
        p.update(address(3), super::super::testing::weight(0))
            .unwrap_or_else(|e| panic!("{e}"));
        let after: Vec<_> = (0..250).map(|n| p.schedule(&request(n))).collect();
        for (b, a) in before.iter().zip(&after) {
            if *b == Some(2) {
                assert!(a.is_some() && *a != Some(2));
            } else {
                assert_eq!(a, b);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// With equal weights each destination gets floor(M/N) or ceil(M/N)
        /// slots.
        #[test]
        fn equal_weights_share_the_table_evenly(n in 1usize..60, weight in 1u32..100) {
            let params = MaglevTable::kernel(9).unwrap_or_else(|e| panic!("{e}"));
            let m = params.size();
            let (_, slots) = table(params, (0..n).map(|i| Destination::new(SocketAddr::from(([10, 1, (i / 250) as u8, (i % 250) as u8 + 1], 8080)), weight)).collect());
            prop_assert!(slots.iter().all(Option::is_some));
            for c in counts(&slots, n) {
                prop_assert!(c == m / n || c == m.div_ceil(n), "{} slots of {} for {} destinations", c, m, n);
            }
        }

        /// Removing one of N destinations moves all of its slots and few of
        /// the others'. Maglev promises little disruption when the table is
        /// much larger than the number of destinations (M > 100 N in the
        /// paper); in the kernel's 65521-slot table with up to 100
        /// destinations at most 2% of the others' slots move (measured worst
        /// case 0.6%). In small tables it can be far more: 12.5% for 12
        /// destinations in 4093 slots.
        #[test]
        fn removal_disrupts_little(n in 5usize..100, victim in 0usize..100) {
            let victim = victim % n;
            let params = MaglevTable::kernel(16).unwrap_or_else(|e| panic!("{e}"));
            let m = params.size();
            let all: Vec<Destination> = (0..n).map(|i| Destination::new(SocketAddr::from(([10, 2, 0, i as u8 + 1], 80)), 1)).collect();
            let (before_pool, before) = table(params, all.clone());
            let mut rest = all.clone();
            let gone = rest.remove(victim).address();
            let (after_pool, after) = table(params, rest);
            let addr = |p: &Pool, s: Option<usize>| s.map(|i| p.destination(i).address());
            let mut moved_others = 0usize;
            for (b, a) in before.iter().zip(&after) {
                let (b, a) = (addr(&before_pool, *b), addr(&after_pool, *a));
                prop_assert!(a != Some(gone));
                if b != Some(gone) && a != b {
                    moved_others += 1;
                }
            }
            prop_assert!(moved_others * 100 <= m * 2, "{} of {} other slots moved", moved_others, m);
        }
    }
}
