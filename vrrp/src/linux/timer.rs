//! A one-shot timer with microsecond precision, for the protocol timers.
//!
//! tokio's timer wheel has a resolution of one millisecond and rounds every
//! deadline up to the next tick, which alone would cost up to 1 ms of the
//! failover budget (the bound is 1 ms over 3·interval + skew at
//! 100 ms adverts and 2 ms at 10 ms). A `timerfd` (timerfd_create(2)) on
//! CLOCK_MONOTONIC — the clock behind `std::time::Instant` — wakes within
//! the kernel's timer slack (50 µs by default) instead.

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::{Duration, Instant};

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::io::unix::AsyncFd;

use super::Error;

/// Lets tokio poll the timerfd, which owns its descriptor.
#[derive(Debug)]
pub(crate) struct OwnedTimerFd(TimerFd);

impl AsRawFd for OwnedTimerFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// A re-armable one-shot timer on CLOCK_MONOTONIC.
#[derive(Debug)]
pub struct PreciseTimer {
    fd: AsyncFd<OwnedTimerFd>,
    deadline: Option<Instant>,
}

impl PreciseTimer {
    /// Creates a disarmed timer; must run inside a tokio runtime.
    pub fn new() -> Result<Self, Error> {
        let timer = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )
        .map_err(|errno| Error::Io {
            operation: "timerfd_create",
            source: errno.into(),
        })?;
        let fd = super::sys::register(OwnedTimerFd(timer)).map_err(|source| Error::Io {
            operation: "register timerfd with tokio",
            source,
        })?;
        Ok(Self { fd, deadline: None })
    }

    /// The armed deadline.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Arms the timer for `deadline`, or disarms it with `None`. A deadline
    /// in the past fires at once.
    pub fn set(&mut self, deadline: Option<Instant>) -> Result<(), Error> {
        if self.deadline == deadline {
            return Ok(());
        }
        self.deadline = deadline;
        let timer = &self.fd.get_ref().0;
        let result = match deadline {
            None => timer.unset(),
            Some(deadline) => {
                // A zero it_value would disarm: wait at least 1 ns.
                let delay = deadline
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_nanos(1));
                timer.set(
                    Expiration::OneShot(TimeSpec::from_duration(delay)),
                    TimerSetTimeFlags::empty(),
                )
            }
        };
        result.map_err(|errno| Error::Io {
            operation: "timerfd_settime",
            source: errno.into(),
        })
    }

    /// Waits until the armed deadline has passed; pends forever when
    /// disarmed. Cancel-safe: dropping the future loses nothing.
    pub async fn wait(&mut self) -> Result<Instant, Error> {
        loop {
            let Some(deadline) = self.deadline else {
                return std::future::pending().await;
            };
            let mut guard = self.fd.readable().await.map_err(|source| Error::Io {
                operation: "poll timerfd",
                source,
            })?;
            match guard.try_io(|fd| fd.get_ref().0.wait().map_err(std::io::Error::from)) {
                Ok(Ok(())) => {
                    self.deadline = None;
                    return Ok(deadline);
                }
                Ok(Err(source)) => {
                    return Err(Error::Io {
                        operation: "read timerfd",
                        source,
                    });
                }
                Err(_would_block) => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn past_deadline_fires_at_once_and_rearms() {
        let mut timer = PreciseTimer::new().unwrap();
        let past = Instant::now();
        timer.set(Some(past)).unwrap();
        assert_eq!(timer.deadline(), Some(past));
        assert_eq!(timer.wait().await.unwrap(), past);
        assert_eq!(timer.deadline(), None);
        timer.set(Some(past)).unwrap();
        timer.set(None).unwrap();
        assert_eq!(timer.deadline(), None);
    }
}
