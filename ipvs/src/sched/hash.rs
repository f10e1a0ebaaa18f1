//! The hash functions the kernel's hashing schedulers use, bit for bit.
//!
//! * `sh` and `dh`: `hash_32(v, 8)` of include/linux/hash.h, the top 8 bits
//!   of `v * 0x61C88647` (the golden ratio), where `v` is `port + fold(addr)`
//!   for sh and `fold(addr)` for dh (net/netfilter/ipvs/ip_vs_sh.c,
//!   ip_vs_dh.c). Older kernels used `(v * 2654435761) & 0xff` here; 6.1 uses
//!   `hash_32`, and the differential test against Debian's 6.1 kernel agrees.
//! * `mh`: `hsiphash` (include/linux/siphash.h, lib/siphash.c). On 64-bit
//!   kernels `hsiphash` is SipHash-1-3 with a 128-bit key, truncated to its low
//!   32 bits; on 32-bit kernels it is HalfSipHash-1-3. We implement the 64-bit
//!   variant, the one an x86-64 or arm64 director runs. The keys are
//!   constants, not boot-time random (ip_vs_mh.c `generate_hash_secret`), so a
//!   userspace replica reproduces the kernel's tables exactly.

use std::net::IpAddr;

use super::AddressFamily;

/// `GOLDEN_RATIO_32` of include/linux/hash.h.
pub(crate) const GOLDEN_RATIO_32: u32 = 0x61C8_8647;

/// `hash_32(value, bits)` of include/linux/hash.h (the generic version, which
/// x86 uses): the top `bits` bits of `value * GOLDEN_RATIO_32`.
#[inline]
pub(crate) fn hash_32(value: u32, bits: u32) -> u32 {
    value.wrapping_mul(GOLDEN_RATIO_32) >> (32 - bits)
}

/// First Maglev key (offset and lookup hash), both halves equal.
pub(crate) const MH_KEY1: [u64; 2] = [2_654_435_761, 2_654_435_761];
/// Second Maglev key (skip hash), both halves equal.
pub(crate) const MH_KEY2: [u64; 2] = [2_654_446_892, 2_654_446_892];

/// The 32-bit "fold" of an address as the kernel computes it for hashing:
/// for an IPv4 service the first 32-bit word of `union nf_inet_addr`, for an
/// IPv6 service the XOR of its four words, in host order.
///
/// The family is the *service's*, as in the kernel: an IPv4 real server of an
/// IPv6 service sits in the first word with the rest zero, and an IPv6
/// address seen by an IPv4 service contributes only its first word.
pub(crate) fn fold(family: AddressFamily, address: IpAddr) -> u32 {
    match (family, address) {
        (_, IpAddr::V4(v4)) => u32::from(v4),
        (AddressFamily::Inet, IpAddr::V6(v6)) => {
            let o = v6.octets();
            u32::from_be_bytes([o[0], o[1], o[2], o[3]])
        }
        (AddressFamily::Inet6, IpAddr::V6(v6)) => {
            let o = v6.octets();
            o.chunks_exact(4)
                .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
                .fold(0, |acc, w| acc ^ w)
        }
    }
}

/// SipHash with `C` compression and `D` finalization rounds over `data`,
/// keyed with `key` (the layout of the kernel's `siphash_key_t`). The
/// reference the unrolled [`hsiphash_u32`] is tested against.
#[cfg(test)]
pub(crate) fn siphash<const C: usize, const D: usize>(key: [u64; 2], data: &[u8]) -> u64 {
    let mut v = [
        0x736f_6d65_7073_6575_u64 ^ key[0],
        0x646f_7261_6e64_6f6d_u64 ^ key[1],
        0x6c79_6765_6e65_7261_u64 ^ key[0],
        0x7465_6462_7974_6573_u64 ^ key[1],
    ];
    let mut words = data.chunks_exact(8);
    for word in &mut words {
        let m = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
        v[3] ^= m;
        for _ in 0..C {
            sip_round(&mut v);
        }
        v[0] ^= m;
    }
    let mut last = [0u8; 8];
    let tail = words.remainder();
    last[..tail.len()].copy_from_slice(tail);
    let b = ((data.len() as u64) << 56) | u64::from_le_bytes(last);
    v[3] ^= b;
    for _ in 0..C {
        sip_round(&mut v);
    }
    v[0] ^= b;
    v[2] ^= 0xff;
    for _ in 0..D {
        sip_round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// One SipRound.
#[inline(always)]
fn sip_round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13) ^ v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16) ^ v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21) ^ v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17) ^ v[2];
    v[2] = v[2].rotate_left(32);
}

/// The kernel's `hsiphash(&v, sizeof(u32), key)` on a 64-bit kernel
/// (`hsiphash_1u32`): SipHash-1-3 of the four little-endian bytes of
/// `value`, low 32 bits. The four-byte message fits the final block, so
/// there is no compression round before it.
#[inline(always)]
pub(crate) fn hsiphash_u32(value: u32, key: [u64; 2]) -> u32 {
    let mut v = [
        0x736f_6d65_7073_6575_u64 ^ key[0],
        0x646f_7261_6e64_6f6d_u64 ^ key[1],
        0x6c79_6765_6e65_7261_u64 ^ key[0],
        0x7465_6462_7974_6573_u64 ^ key[1],
    ];
    let b = (4u64 << 56) | u64::from(value);
    v[3] ^= b;
    sip_round(&mut v);
    v[0] ^= b;
    v[2] ^= 0xff;
    sip_round(&mut v);
    sip_round(&mut v);
    sip_round(&mut v);
    (v[0] ^ v[1] ^ v[2] ^ v[3]) as u32
}

/// `a % d` for a fixed divisor by multiplication (Lemire, Kaser and Kurz,
/// "Faster remainder by direct computation", 2019); exact for every 32-bit
/// `a` and non-zero 32-bit `d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FastModulo {
    divisor: u64,
    magic: u64,
}

impl FastModulo {
    pub(crate) fn new(divisor: u32) -> Self {
        let divisor = u64::from(divisor.max(1));
        FastModulo {
            divisor,
            magic: (u64::MAX / divisor).wrapping_add(1),
        }
    }

    #[inline(always)]
    pub(crate) fn reduce(&self, a: u32) -> u32 {
        let low = self.magic.wrapping_mul(u64::from(a));
        ((u128::from(low) * u128::from(self.divisor)) >> 64) as u32
    }
}

/// `ip_vs_sh_hashkey`: bucket in the 256-entry source-hashing table,
/// `(offset + hash_32(port + fold, 8)) & 255`.
#[inline]
pub(crate) fn sh_bucket(folded: u32, port: u16, offset: u32) -> usize {
    let hash = hash_32(u32::from(port).wrapping_add(folded), 8);
    (offset.wrapping_add(hash) & 0xff) as usize
}

/// `ip_vs_dh_hashkey`: bucket in the 256-entry destination-hashing table,
/// `hash_32(fold, 8)`.
#[inline]
pub(crate) fn dh_bucket(folded: u32) -> usize {
    hash_32(folded, 8) as usize
}

/// `ip_vs_mh_hashkey`: the Maglev hash of an address, port and offset.
#[inline]
pub(crate) fn mh_hash(folded: u32, port: u16, offset: u32, key: [u64; 2]) -> u32 {
    hsiphash_u32(
        offset.wrapping_add(u32::from(port)).wrapping_add(folded),
        key,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Key 00 01 .. 0f as two little-endian words, as in the SipHash paper.
    const PAPER_KEY: [u64; 2] = [0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908];

    #[test]
    fn siphash_2_4_matches_the_papers_vectors() {
        // Appendix A of "SipHash: a fast short-input PRF" (Aumasson,
        // Bernstein): key 00..0f, message 00..0e (15 bytes) gives
        // a129ca6149be45e5; the empty message gives 726fdb47dd0e0e31.
        let message: Vec<u8> = (0u8..15).collect();
        assert_eq!(siphash::<2, 4>(PAPER_KEY, &message), 0xa129_ca61_49be_45e5);
        assert_eq!(siphash::<2, 4>(PAPER_KEY, &[]), 0x726f_db47_dd0e_0e31);
    }

    proptest! {
        /// The unrolled four-byte path equals the generic SipHash-1-3.
        #[test]
        fn hsiphash_u32_is_siphash_1_3(value: u32, k0: u64, k1: u64) {
            prop_assert_eq!(
                hsiphash_u32(value, [k0, k1]),
                siphash::<1, 3>([k0, k1], &value.to_le_bytes()) as u32
            );
        }

        /// The multiplicative remainder is exact.
        #[test]
        fn fast_modulo_is_exact(a: u32, d in 1u32..) {
            prop_assert_eq!(FastModulo::new(d).reduce(a), a % d);
        }

        /// The round function and padding agree with the standard library's
        /// SipHash-2-4 on arbitrary input; SipHash-1-3 is the same code with
        /// other round counts.
        #[test]
        #[allow(deprecated)]
        fn siphash_2_4_matches_std(k0: u64, k1: u64, data: Vec<u8>) {
            use std::hash::Hasher;
            let mut std_hasher = std::hash::SipHasher::new_with_keys(k0, k1);
            std_hasher.write(&data);
            prop_assert_eq!(siphash::<2, 4>([k0, k1], &data), std_hasher.finish());
        }
    }

    #[test]
    fn fold_follows_the_service_family() {
        let v4: IpAddr = "192.168.1.10".parse().unwrap_or(IpAddr::from([0u8; 4]));
        assert_eq!(fold(AddressFamily::Inet, v4), 0xc0a8_010a);
        assert_eq!(fold(AddressFamily::Inet6, v4), 0xc0a8_010a);
        let v6: IpAddr = "2001:db8::1:2".parse().unwrap_or(IpAddr::from([0u8; 16]));
        // Words 20010db8, 00000000, 00000000, 00010002.
        assert_eq!(fold(AddressFamily::Inet6, v6), 0x2001_0db8 ^ 0x0001_0002);
        assert_eq!(fold(AddressFamily::Inet, v6), 0x2001_0db8);
    }

    #[test]
    fn sh_bucket_worked_example() {
        // 10.0.0.1 = 0x0a000001. 0x0a000001 * 0x61c88647 mod 2^32:
        // 0x0a << 24 times 0x61c88647 leaves (0x0a * 0x47 = 0x2c6) -> 0xc6
        // in the top byte, so 0xc6000000 + 0x61c88647 = 0x27c88647 mod 2^32;
        // the top 8 bits are 0x27 = 39.
        assert_eq!(sh_bucket(0x0a00_0001, 0, 0), 39);
        // Port 1: 2 * 0x61c88647 = 0xc3910c8e, + 0xc6000000 = 0x89910c8e
        // mod 2^32 -> 0x89 = 137.
        assert_eq!(sh_bucket(0x0a00_0001, 1, 0), 137);
        // The offset is added after hashing.
        assert_eq!(sh_bucket(0x0a00_0001, 0, 0x10), 55);
        assert_eq!(dh_bucket(0x0a00_0001), 39);
    }
}
