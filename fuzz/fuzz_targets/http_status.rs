//! Fuzzes what the checkers parse from servers: above all the HTTP_GET
//! response path (status line and header parsing by hyper with a bounded
//! head, the status-code check and the streamed MD5 digest), plus the
//! `status_code` list parser, SMTP replies, DNS replies and FILE_CHECK
//! content. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lvskit_healthcheck::config::{FileCheck, HttpGet, HttpVersion, StatusCodes, UrlCheck};
use lvskit_healthcheck::probe::{dns, file, http, smtp};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else { return };
    match selector >> 4 {
        0 => {
            let _ = dns::judge_reply(bytes, u16::from(selector));
        }
        1 => {
            let _ = smtp::parse_reply(bytes);
        }
        2 => {
            let text = String::from_utf8_lossy(bytes);
            let check = FileCheck { path: "/dev/null".into(), weight: i32::from(selector & 0x0f) - 8, reverse: selector & 1 == 1 };
            let _ = file::judge_content(&text, &check);
            let _ = text.parse::<StatusCodes>();
        }
        _ => {
            let http = HttpGet {
                version: if selector & 1 == 0 { HttpVersion::Http10 } else { HttpVersion::Http11 },
                ..HttpGet::default()
            };
            let mut url = UrlCheck::new("/");
            if selector & 2 != 0 {
                url.digest = Some([selector; 16]);
            }
            let _ = http::check_response_bytes(bytes, &http, &url);
        }
    }
});
