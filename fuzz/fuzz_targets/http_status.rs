//! Fuzzes the HTTP_GET response path: status line and header parsing
//! (hyper, bounded head), status-code check and the streamed MD5 digest,
//! plus the `status_code` list parser. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lvskit_healthcheck::config::{HttpGet, HttpVersion, StatusCodes, UrlCheck};
use lvskit_healthcheck::probe::http::check_response_bytes;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, response)) = data.split_first() else { return };
    if let Ok(text) = std::str::from_utf8(response) {
        let _ = text.parse::<StatusCodes>();
    }
    let http = HttpGet {
        version: if selector & 1 == 0 { HttpVersion::Http10 } else { HttpVersion::Http11 },
        ..HttpGet::default()
    };
    let mut url = UrlCheck::new("/");
    if selector & 2 != 0 {
        url.digest = Some([selector; 16]);
    }
    let _ = check_response_bytes(response, &http, &url);
});
