//! `sh` and `dh`: source and destination hashing over a 256-bucket table
//! (net/netfilter/ipvs/ip_vs_sh.c, ip_vs_dh.c).

use super::hash::{dh_bucket, sh_bucket};
use super::{Change, Request, Scheduler, View};

/// The table size of sh and dh: `1 << CONFIG_IP_VS_SH_TAB_BITS` (and
/// `..._DH_TAB_BITS`), 8 bits by default and in Debian's kernels.
pub const HASH_TABLE_SIZE: usize = 256;

/// The service flags that change how sh and mh hash (`IP_VS_SVC_F_SCHED1`
/// and `IP_VS_SVC_F_SCHED2`; ipvsadm `-b sh-fallback,sh-port` or
/// `mh-fallback,mh-port`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HashFlags {
    /// When the hashed destination is unavailable, probe further slots.
    pub fallback: bool,
    /// Hash the client's port as well as its address.
    pub port: bool,
}

impl From<crate::model::ServiceFlags> for HashFlags {
    /// The sh/mh bits of a service's flags (`SCHED1` is fallback, `SCHED2`
    /// is port, for both schedulers).
    fn from(flags: crate::model::ServiceFlags) -> Self {
        use crate::model::ServiceFlags;
        HashFlags {
            fallback: flags.contains(ServiceFlags::SH_FALLBACK),
            port: flags.contains(ServiceFlags::SH_PORT),
        }
    }
}

/// Source hashing, as `ip_vs_sh.c`.
///
/// The table has 256 buckets, filled in list order: each destination takes
/// as many consecutive buckets as its weight (at least one, also with weight
/// 0), and the list repeats until the table is full. The table is rebuilt on
/// every change of the list or of a weight. A client address (and, with
/// [`HashFlags::port`], port) hashes to bucket `ihash = hash_32(port +
/// fold(addr), 8)`, the top 8 bits of the product with the golden ratio
/// `0x61C88647`. If the bucket's destination has weight 0 or is overloaded
/// there is no destination, unless [`HashFlags::fallback`] is set: then the
/// buckets `((ihash + k) % 256 + ihash) & 255` for `k = 0, 1, ...` are tried
/// in turn.
#[derive(Debug, Clone)]
pub struct SourceHashing {
    flags: HashFlags,
    buckets: Vec<Option<u32>>,
}

impl SourceHashing {
    /// A source-hashing scheduler with these flags.
    pub fn new(flags: HashFlags) -> Self {
        SourceHashing {
            flags,
            buckets: vec![None; HASH_TABLE_SIZE],
        }
    }

    /// The destination index of each bucket.
    pub fn buckets(&self) -> &[Option<u32>] {
        &self.buckets
    }
}

impl Scheduler for SourceHashing {
    fn name(&self) -> &'static str {
        "sh"
    }

    fn destinations_changed(&mut self, view: View<'_>, _change: Change) {
        let destinations = view.destinations();
        if destinations.is_empty() {
            self.buckets.fill(None);
            return;
        }
        let mut current = 0;
        let mut filled = 0u64;
        for bucket in &mut self.buckets {
            *bucket = Some(current as u32);
            filled += 1;
            if filled >= u64::from(destinations[current].weight()) {
                current = (current + 1) % destinations.len();
                filled = 0;
            }
        }
    }

    fn schedule(&mut self, view: View<'_>, request: &Request) -> Option<usize> {
        let destinations = view.destinations();
        let folded = view.fold(request.client.ip());
        let port = if self.flags.port {
            request.client.port()
        } else {
            0
        };
        let available = |bucket: usize| -> Result<usize, bool> {
            // Ok(pick), Err(true): occupied but unavailable, Err(false): empty.
            match self.buckets[bucket] {
                None => Err(false),
                Some(i) if destinations[i as usize].is_available() => Ok(i as usize),
                Some(_) => Err(true),
            }
        };
        let first = sh_bucket(folded, port, 0);
        match available(first) {
            Ok(i) => return Some(i),
            Err(false) => return None,
            Err(true) if !self.flags.fallback => return None,
            Err(true) => {}
        }
        for k in 0..HASH_TABLE_SIZE {
            let offset = ((k + first) % HASH_TABLE_SIZE) as u32;
            match available(sh_bucket(folded, port, offset)) {
                Ok(i) => return Some(i),
                Err(false) => return None,
                Err(true) => {}
            }
        }
        None
    }
}

/// Destination hashing, as `ip_vs_dh.c`.
///
/// The table has 256 buckets, assigned to the destinations in list order one
/// bucket each, the list repeating (weights do not matter). The address the
/// client connected to hashes to bucket `hash_32(fold(addr), 8)`. A
/// destination with weight 0 or overloaded gives no destination.
#[derive(Debug, Clone)]
pub struct DestinationHashing {
    buckets: Vec<Option<u32>>,
}

impl Default for DestinationHashing {
    fn default() -> Self {
        DestinationHashing {
            buckets: vec![None; HASH_TABLE_SIZE],
        }
    }
}

impl DestinationHashing {
    /// A destination-hashing scheduler.
    pub fn new() -> Self {
        DestinationHashing::default()
    }

    /// The destination index of each bucket.
    pub fn buckets(&self) -> &[Option<u32>] {
        &self.buckets
    }
}

impl Scheduler for DestinationHashing {
    fn name(&self) -> &'static str {
        "dh"
    }

    fn destinations_changed(&mut self, view: View<'_>, _change: Change) {
        // The kernel rebuilds on add and delete only; the table does not
        // depend on weights, so rebuilding on an edit gives the same table.
        let n = view.destinations().len();
        for (i, bucket) in self.buckets.iter_mut().enumerate() {
            *bucket = (n > 0).then(|| (i % n) as u32);
        }
    }

    fn schedule(&mut self, view: View<'_>, request: &Request) -> Option<usize> {
        let bucket = dh_bucket(view.fold(request.virtual_address.ip()));
        let i = self.buckets[bucket]? as usize;
        view.destinations()[i].is_available().then_some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{address, pool};
    use super::super::{Destination, Request};
    use super::*;
    use proptest::prelude::*;
    use std::net::SocketAddr;
    use std::time::Instant;

    fn from(client: [u8; 4], port: u16) -> Request {
        Request::new(
            Instant::now(),
            SocketAddr::from((client, port)),
            SocketAddr::from(([198, 51, 100, 1], 80)),
        )
    }

    #[test]
    fn sh_table_follows_weights_in_list_order() {
        // [A w3, B w0, C w1]: A A A B C A A A B C ... (B, weight 0, still
        // takes one bucket).
        let p = pool(
            Box::new(SourceHashing::new(HashFlags::default())),
            &[3, 0, 1],
        );
        let view = p.as_view();
        let mut sh = SourceHashing::new(HashFlags::default());
        sh.destinations_changed(view, Change::Initialized);
        let head: Vec<_> = sh.buckets()[..10].iter().map(|b| b.unwrap_or(99)).collect();
        assert_eq!(head, vec![0, 0, 0, 1, 2, 0, 0, 0, 1, 2]);
        // 256 = 51 * 5 + 1: the last bucket is A again.
        assert_eq!(sh.buckets()[255], Some(0));
    }

    #[test]
    fn sh_worked_pick_and_fallback() {
        // Weights [1, 1, 1]: bucket b holds destination b % 3.
        // Client 10.0.0.1 hashes to bucket 39 (see hash.rs); 39 % 3 = 0 -> A.
        let mut p = pool(
            Box::new(SourceHashing::new(HashFlags::default())),
            &[1, 1, 1],
        );
        assert_eq!(p.schedule(&from([10, 0, 0, 1], 5000)), Some(0));
        // With A quiesced there is no destination without fallback.
        let quiesce = super::super::testing::weight(0);
        p.update(address(1), quiesce)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.schedule(&from([10, 0, 0, 1], 5000)), None);

        // With fallback: ihash = 39. k = 0: offset 39, bucket (39 + 39) = 78,
        // 78 % 3 = 0 -> A again (quiesced). k = 1: offset 40, bucket 79,
        // 79 % 3 = 1 -> B.
        let flags = HashFlags {
            fallback: true,
            port: false,
        };
        let mut p = pool(Box::new(SourceHashing::new(flags)), &[1, 1, 1]);
        p.update(address(1), quiesce)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.schedule(&from([10, 0, 0, 1], 5000)), Some(1));
    }

    #[test]
    fn sh_port_flag_hashes_the_port() {
        // Client 10.0.0.1 port 1: bucket 137 -> 137 % 3 = 2 (C); without
        // the flag the port is ignored: bucket 39 -> A.
        let flags = HashFlags {
            fallback: false,
            port: true,
        };
        let mut p = pool(Box::new(SourceHashing::new(flags)), &[1, 1, 1]);
        assert_eq!(p.schedule(&from([10, 0, 0, 1], 1)), Some(2));
        let mut p = pool(
            Box::new(SourceHashing::new(HashFlags::default())),
            &[1, 1, 1],
        );
        assert_eq!(p.schedule(&from([10, 0, 0, 1], 1)), Some(0));
    }

    #[test]
    fn dh_hashes_the_virtual_address() {
        // VIP 10.0.0.1 -> bucket 39 -> 39 % 4 = 3 -> D.
        let mut p = pool(Box::new(DestinationHashing::new()), &[1, 1, 1, 1]);
        let request = Request::new(
            Instant::now(),
            SocketAddr::from(([192, 0, 2, 9], 1234)),
            SocketAddr::from(([10, 0, 0, 1], 80)),
        );
        assert_eq!(p.schedule(&request), Some(3));
        p.set_overloaded(3, true);
        assert_eq!(p.schedule(&request), None);
    }

    proptest! {
        /// sh is stable: the same client always gets the same destination,
        /// and adding a destination only moves clients whose bucket changed
        /// owner (every pick equals the bucket owner).
        #[test]
        fn sh_is_stable(clients in proptest::collection::vec(any::<[u8; 4]>(), 1..50), weights in proptest::collection::vec(1u32..4, 1..8)) {
            let mut p = pool(Box::new(SourceHashing::new(HashFlags::default())), &weights);
            let first: Vec<_> = clients.iter().map(|&c| p.schedule(&from(c, 1))).collect();
            let again: Vec<_> = clients.iter().map(|&c| p.schedule(&from(c, 2))).collect();
            prop_assert_eq!(&first, &again);
            for pick in &first {
                prop_assert!(pick.is_some());
            }
            // Adding a destination and removing it again restores every pick.
            p.add(Destination::new(address(200), 2)).map_err(|e| TestCaseError::fail(e.to_string()))?;
            p.remove(address(200)).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let after: Vec<_> = clients.iter().map(|&c| p.schedule(&from(c, 3))).collect();
            prop_assert_eq!(&first, &after);
        }

        /// dh is stable per virtual address.
        #[test]
        fn dh_is_stable(vips in proptest::collection::vec(any::<[u8; 4]>(), 1..50), n in 1usize..20) {
            let mut p = pool(Box::new(DestinationHashing::new()), &vec![1; n]);
            for vip in vips {
                let r = Request::new(Instant::now(), SocketAddr::from(([192, 0, 2, 1], 1)), SocketAddr::from((vip, 80)));
                let a = p.schedule(&r);
                prop_assert_eq!(a, p.schedule(&r));
                prop_assert_eq!(a, Some(dh_bucket(u32::from_be_bytes(vip)) % n));
            }
        }
    }
}
