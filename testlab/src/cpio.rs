//! A writer for the `newc` cpio format, the format of Linux initramfs
//! archives (kernel `Documentation/driver-api/early-userspace/buffer-format.rst`).
//!
//! ```text
//! "070701" ino mode uid gid nlink mtime filesize devmajor devminor
//!          rdevmajor rdevminor namesize check     (13 fields, 8 hex digits each)
//! name\0 padded to 4 bytes, then data padded to 4 bytes
//! ```
//!
//! Archives may be concatenated: the kernel unpacks them in order, and a
//! later file replaces an earlier one at the same path.

use std::collections::BTreeSet;
use std::path::{Component, Path};

/// An archive being built in memory. Parent directories are added
/// automatically, once.
#[derive(Debug, Default)]
pub(crate) struct Archive {
    bytes: Vec<u8>,
    next_ino: u32,
    dirs: BTreeSet<String>,
}

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;

impl Archive {
    pub(crate) fn new() -> Archive {
        Archive::default()
    }

    /// Adds a directory (and its parents) with mode 0755.
    pub(crate) fn dir(&mut self, path: &str) {
        let path = normalize(path);
        if path.is_empty() || self.dirs.contains(&path) {
            return;
        }
        self.parents(&path);
        self.entry(&path, S_IFDIR | 0o755, &[]);
        self.dirs.insert(path);
    }

    /// Adds a regular file with `mode` permission bits.
    pub(crate) fn file(&mut self, path: &str, mode: u32, data: &[u8]) {
        let path = normalize(path);
        self.parents(&path);
        self.entry(&path, S_IFREG | (mode & 0o7777), data);
    }

    /// Adds a symbolic link `path` pointing to `target`.
    pub(crate) fn symlink(&mut self, path: &str, target: &str) {
        let path = normalize(path);
        self.parents(&path);
        self.entry(&path, S_IFLNK | 0o777, target.as_bytes());
    }

    /// Ends the archive with the trailer and returns its bytes.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[]);
        self.bytes
    }

    fn parents(&mut self, path: &str) {
        if let Some(parent) = Path::new(path).parent().and_then(Path::to_str) {
            self.dir(parent);
        }
    }

    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.next_ino += 1;
        let name_size = name.len() + 1;
        let fields = [
            self.next_ino,
            mode,
            0, // uid
            0, // gid
            if mode & S_IFDIR != 0 { 2 } else { 1 },
            0, // mtime: reproducible archives
            u32::try_from(data.len()).expect("file under 4 GiB"),
            0,
            0,
            0,
            0,
            u32::try_from(name_size).expect("short name"),
            0,
        ];
        self.bytes.extend_from_slice(b"070701");
        for field in fields {
            self.bytes
                .extend_from_slice(format!("{field:08x}").as_bytes());
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
    }
}

/// `"/usr/bin/x"` → `"usr/bin/x"`, without `.` components.
fn normalize(path: &str) -> String {
    Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newc_header_layout_and_padding() {
        let mut a = Archive::new();
        a.file("/bin/x", 0o755, b"hello");
        let bytes = a.finish();
        // First entry: the parent directory "bin".
        assert_eq!(&bytes[..6], b"070701");
        assert_eq!(&bytes[6..14], b"00000001"); // ino
        assert_eq!(&bytes[14..22], b"000041ed"); // dir, 0755
        assert_eq!(&bytes[94..102], b"00000004"); // namesize "bin\0"
        assert_eq!(&bytes[110..114], b"bin\0");
        assert!(bytes.len().is_multiple_of(4));
        let file = bytes
            .windows(6)
            .position(|w| w == b"bin/x\0")
            .expect("file entry");
        assert_eq!(&bytes[file - 110 + 14..file - 110 + 22], b"000081ed");
        assert_eq!(&bytes[file - 110 + 54..file - 110 + 62], b"00000005"); // size
        assert!(bytes.windows(5).any(|w| w == b"hello"));
        assert!(bytes.windows(11).any(|w| w == b"TRAILER!!!\0"));
    }

    #[test]
    fn directories_are_added_once() {
        let mut a = Archive::new();
        a.file("usr/bin/a", 0o755, b"");
        a.file("usr/bin/b", 0o755, b"");
        a.symlink("usr/bin/c", "a");
        let bytes = a.finish();
        let count = bytes.windows(8).filter(|w| w == b"usr/bin\0").count();
        assert_eq!(count, 1);
    }
}
