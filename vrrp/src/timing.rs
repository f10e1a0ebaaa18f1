//! The timer formulas of RFC 3768 §6.1 and RFC 9568 §6.1, exact to the
//! nanosecond (never truncated to whole seconds or centiseconds).

use std::time::Duration;

use crate::wire::Version;

const NANOS_PER_SECOND: u64 = 1_000_000_000;
const NANOS_PER_CENTISECOND: u64 = 10_000_000;

/// An advertisement interval in wire units (v2: seconds; v3: centiseconds)
/// as a duration.
pub fn adver_interval(version: Version, units: u16) -> Duration {
    match version {
        Version::V2 => Duration::from_nanos(u64::from(units) * NANOS_PER_SECOND),
        Version::V3 => Duration::from_nanos(u64::from(units) * NANOS_PER_CENTISECOND),
    }
}

/// Skew_Time.
///
/// - v2 (RFC 3768 §6.1): `(256 − Priority) / 256` seconds, whatever the
///   interval; exact in nanoseconds (`(256 − p) · 3 906 250 ns`).
/// - v3 (RFC 9568 §6.1): `((256 − Priority) · Master_Adver_Interval) / 256`
///   centiseconds, computed in nanoseconds and rounded down to the
///   nanosecond (the exact value is a multiple of half a nanosecond).
pub fn skew_time(version: Version, priority: u8, master_adver_int: u16) -> Duration {
    let weight = 256 - u64::from(priority);
    match version {
        Version::V2 => Duration::from_nanos(weight * NANOS_PER_SECOND / 256),
        Version::V3 => {
            Duration::from_nanos(weight * u64::from(master_adver_int) * NANOS_PER_CENTISECOND / 256)
        }
    }
}

/// Master_Down_Interval = 3 · Master_Adver_Interval + Skew_Time (RFC 9568
/// §6.1; RFC 3768 §6.1 with the configured interval).
pub fn master_down_interval(version: Version, priority: u8, master_adver_int: u16) -> Duration {
    3 * adver_interval(version, master_adver_int) + skew_time(version, priority, master_adver_int)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalived_reference_figures() {
        // Priority 50 at 1 s (v2): 3 + 206/256 s = 3.8046875 s.
        assert_eq!(
            master_down_interval(Version::V2, 50, 1),
            Duration::from_nanos(3_804_687_500)
        );
        // Priority 50 at 100 ms (v3): 0.3 + 206·10/256 cs = 0.38046875 s.
        assert_eq!(
            master_down_interval(Version::V3, 50, 10),
            Duration::from_nanos(380_468_750)
        );
        // v3 at 1 cs, priority 255: skew is 1/256 cs = 39 062.5 ns, not 0.
        assert_eq!(skew_time(Version::V3, 255, 1), Duration::from_nanos(39_062));
    }
}
