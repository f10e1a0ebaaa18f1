//! `virtual_server_group` members → IPVS service keys.
//!
//! keepalived.conf(5) allows, per line: `IP [PORT]`, an address range
//! written `A.B.C.D-E` (the last part replaced), `A.B.C.D-W.X.Y.Z`, or
//! `A.B.C.D/NN`, each with an optional port; and `fwmark N [inet|inet6]`.
//! Every address of a range is one IPVS service.

use anyhow::{Context, Result, bail, ensure};
use lvskit_ipvs::{Family, Protocol, ServiceKey};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The most services one group line may expand to: a mistyped range must
/// not create millions of services.
pub const MAX_RANGE: u128 = 4096;

/// The service keys of a group's entries (`entries` as kconf keeps them,
/// one line's words each). `family` is used for an `fwmark` line without
/// `inet`/`inet6` (keepalived takes it from the real servers).
pub fn service_keys(
    entries: &[Vec<String>],
    protocol: Protocol,
    family: Family,
) -> Result<Vec<ServiceKey>> {
    let mut keys = Vec::new();
    for words in entries {
        let line = words.join(" ");
        match words.as_slice() {
            [fwmark, mark, rest @ ..] if fwmark == "fwmark" => {
                let mark: u32 = mark.parse().with_context(|| format!("`{line}`: mark"))?;
                let family = match rest {
                    [] => family,
                    [f] if f == "inet" => Family::Ipv4,
                    [f] if f == "inet6" => Family::Ipv6,
                    _ => bail!("`{line}`: expected `fwmark N [inet|inet6]`"),
                };
                keys.push(ServiceKey::Fwmark { family, mark });
            }
            [range, rest @ ..] if rest.len() <= 1 => {
                let port = match rest.first() {
                    Some(port) => port.parse().with_context(|| format!("`{line}`: port"))?,
                    None => 0,
                };
                for address in addresses(range).with_context(|| format!("`{line}`"))? {
                    keys.push(ServiceKey::Address {
                        protocol,
                        address,
                        port,
                    });
                }
            }
            _ => bail!("`{line}`: expected `IP[-LAST] [PORT]` or `fwmark N`"),
        }
    }
    Ok(keys)
}

/// The addresses of `IP`, `IP-LAST`, `IP-IP` or `IP/NN`, in order.
pub fn addresses(text: &str) -> Result<Vec<IpAddr>> {
    if let Some((first, prefix)) = text.split_once('/') {
        let first: IpAddr = first.parse().context("address")?;
        let prefix: u32 = prefix.parse().context("prefix length")?;
        let bits = address_bits(first);
        ensure!(
            prefix <= bits,
            "prefix /{prefix} is longer than the address"
        );
        let host_bits = bits - prefix;
        let mask = if host_bits >= 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        };
        let network = to_number(first) & !mask;
        return span(first, network, network | mask);
    }
    let Some((first, last)) = text.split_once('-') else {
        return Ok(vec![text.parse().context("address")?]);
    };
    let first: IpAddr = first.parse().context("address")?;
    let last = match last.parse::<IpAddr>() {
        Ok(last) => last,
        // Only the last part is written: decimal for IPv4, hex for IPv6.
        Err(_) => match first {
            IpAddr::V4(v4) => {
                let octet: u8 = last.parse().context("last octet of the range")?;
                let [a, b, c, _] = v4.octets();
                IpAddr::V4(Ipv4Addr::new(a, b, c, octet))
            }
            IpAddr::V6(v6) => {
                let group = u16::from_str_radix(last, 16).context("last group of the range")?;
                let mut segments = v6.segments();
                segments[7] = group;
                IpAddr::V6(Ipv6Addr::from(segments))
            }
        },
    };
    ensure!(
        first.is_ipv4() == last.is_ipv4(),
        "a range cannot mix IPv4 and IPv6"
    );
    span(first, to_number(first), to_number(last))
}

fn address_bits(address: IpAddr) -> u32 {
    if address.is_ipv4() { 32 } else { 128 }
}

fn to_number(address: IpAddr) -> u128 {
    match address {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// `low..=high` as addresses of `like`'s family.
fn span(like: IpAddr, low: u128, high: u128) -> Result<Vec<IpAddr>> {
    ensure!(low <= high, "the range ends before it starts");
    ensure!(
        high - low < MAX_RANGE,
        "the range has more than {MAX_RANGE} addresses"
    );
    Ok((low..=high)
        .map(|n| match like {
            // `n` lies between two IPv4 addresses, so it fits in 32 bits.
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(n as u32)),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(n)),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(lines: &[&str]) -> Vec<Vec<String>> {
        lines
            .iter()
            .map(|l| l.split_whitespace().map(str::to_owned).collect())
            .collect()
    }

    fn ips(text: &str) -> Vec<String> {
        addresses(text)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn the_range_forms_of_the_manual() {
        assert_eq!(
            ips("192.168.200.1-3"),
            ["192.168.200.1", "192.168.200.2", "192.168.200.3"]
        );
        assert_eq!(
            ips("192.168.200.254-192.168.201.1"),
            [
                "192.168.200.254",
                "192.168.200.255",
                "192.168.201.0",
                "192.168.201.1"
            ]
        );
        assert_eq!(ips("192.168.202.9/30").len(), 4);
        assert_eq!(ips("192.168.202.9/30")[0], "192.168.202.8");
        assert_eq!(ips("fd00::1-3"), ["fd00::1", "fd00::2", "fd00::3"]);
        assert_eq!(ips("10.0.0.100"), ["10.0.0.100"]);
    }

    #[test]
    fn bad_ranges_are_refused() {
        for bad in [
            "10.0.0.5-1",
            "10.0.0.1-fd00::1",
            "10.0.0.0/8",
            "10.0.0.1/33",
            "10.0.0.1-300",
            "nonsense",
        ] {
            assert!(addresses(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn group_lines_become_service_keys() {
        let keys = service_keys(
            &words(&[
                "10.0.0.100-101 80",
                "10.0.0.200",
                "fwmark 7",
                "fwmark 8 inet6",
            ]),
            Protocol::Tcp,
            Family::Ipv4,
        )
        .unwrap();
        let address = |a: &str, port| ServiceKey::Address {
            protocol: Protocol::Tcp,
            address: a.parse().unwrap(),
            port,
        };
        assert_eq!(
            keys,
            [
                address("10.0.0.100", 80),
                address("10.0.0.101", 80),
                address("10.0.0.200", 0),
                ServiceKey::Fwmark {
                    family: Family::Ipv4,
                    mark: 7
                },
                ServiceKey::Fwmark {
                    family: Family::Ipv6,
                    mark: 8
                },
            ]
        );
        assert!(service_keys(&words(&["fwmark x"]), Protocol::Tcp, Family::Ipv4).is_err());
        assert!(service_keys(&words(&["10.0.0.1 80 extra"]), Protocol::Tcp, Family::Ipv4).is_err());
    }
}
