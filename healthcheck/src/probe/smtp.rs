//! SMTP_CHECK: read the 220 greeting, send HELO (or EHLO) and expect 250,
//! send QUIT and expect 221 (RFC 5321 §4.1.1, §4.2 reply format, §4.5.3.1.4
//! line length limit).

use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::socket::io;
use crate::config::{ConnectOptions, SmtpCheck};
use crate::error::ProbeError;

/// Longest reply line accepted (RFC 5321 §4.5.3.1.5: 512 octets).
const MAX_LINE: u64 = 512;
/// Most lines accepted in one multi-line reply.
const MAX_LINES: usize = 64;

/// Reads one reply; returns its code and first line.
async fn read_reply<R: AsyncBufReadExt + Unpin>(
    reader: &mut R,
    stage: &'static str,
) -> Result<(u16, String), ProbeError> {
    let mut first = None;
    for _ in 0..MAX_LINES {
        let mut line = Vec::new();
        (&mut *reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut line)
            .await
            .map_err(io("read"))?;
        let text = String::from_utf8_lossy(&line).trim_end().to_owned();
        let bad = || ProbeError::Smtp {
            stage,
            reply: text.chars().take(80).collect(),
        };
        if line.last() != Some(&b'\n') || line.len() < 4 {
            return Err(bad());
        }
        let code: u16 = std::str::from_utf8(&line[..3])
            .ok()
            .and_then(|c| c.parse().ok())
            .ok_or_else(bad)?;
        let first = first.get_or_insert((code, text.clone()));
        if first.0 != code {
            return Err(bad());
        }
        match line[3] {
            b'-' => continue,
            b' ' | b'\r' | b'\n' => return Ok(first.clone()),
            _ => return Err(bad()),
        }
    }
    Err(ProbeError::Smtp {
        stage,
        reply: "too many reply lines".into(),
    })
}

/// Parses the first reply in `bytes` as the SMTP checker would read it
/// from a server (fuzz entry point; never panics).
pub fn parse_reply(bytes: &[u8]) -> Result<(u16, String), ProbeError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| ProbeError::Io(crate::error::IoFailure::new("runtime", &e)))?;
    let mut reader = bytes;
    runtime.block_on(read_reply(&mut reader, "banner"))
}

async fn expect<R: AsyncBufReadExt + Unpin>(
    reader: &mut R,
    stage: &'static str,
    want: u16,
) -> Result<(), ProbeError> {
    let (code, line) = read_reply(reader, stage).await?;
    if code != want {
        return Err(ProbeError::Smtp {
            stage,
            reply: line.chars().take(80).collect(),
        });
    }
    Ok(())
}

/// The SMTP_CHECK probe.
pub(crate) async fn probe(
    dst: SocketAddr,
    co: &ConnectOptions,
    smtp: &SmtpCheck,
) -> Result<(), ProbeError> {
    let stream = super::tcp::connect(dst, co).await?;
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    expect(&mut reader, "banner", 220).await?;
    let verb = if smtp.ehlo { "EHLO" } else { "HELO" };
    let name: String = smtp.helo_name.chars().filter(|c| !c.is_control()).collect();
    write
        .write_all(format!("{verb} {name}\r\n").as_bytes())
        .await
        .map_err(io("write"))?;
    expect(&mut reader, if smtp.ehlo { "EHLO" } else { "HELO" }, 250).await?;
    write.write_all(b"QUIT\r\n").await.map_err(io("write"))?;
    expect(&mut reader, "QUIT", 221).await
}
