//! Pid files and private files, written the careful way keepalived learned
//! from CVE-2018-19044/19045/19046: never through a symlink, created
//! exclusively, with an explicit mode.

use anyhow::{Context, Result, bail};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

/// Creates `path` afresh (an existing regular file is replaced, a symlink
/// is refused) with `mode`, and writes `contents`.
pub fn write_private(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            bail!(
                "{} is a symlink: refusing to write through it",
                path.display()
            )
        }
        Ok(meta) if !meta.is_file() => bail!("{} is not a regular file", path.display()),
        Ok(_) => std::fs::remove_file(path)
            .with_context(|| format!("remove the old {}", path.display()))?,
        Err(_) => {}
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(path)
        .with_context(|| format!("create {}", path.display()))?;
    file.write_all(contents)
        .with_context(|| format!("write {}", path.display()))
}

/// Pid files held for the life of the daemon; removed on drop.
#[derive(Debug)]
pub struct PidFiles {
    paths: Vec<PathBuf>,
}

impl PidFiles {
    /// Writes this process's pid to every path. Fails if one names a
    /// running process other than this one (another daemon).
    pub fn create(paths: &[PathBuf]) -> Result<PidFiles> {
        let me = std::process::id();
        let mut created = PidFiles { paths: Vec::new() };
        for path in paths {
            if let Ok(text) = std::fs::read_to_string(path)
                && let Ok(pid) = text.trim().parse::<u32>()
                && pid != me
                && Path::new("/proc").join(pid.to_string()).exists()
            {
                bail!(
                    "{} names pid {pid}, which is running: is another daemon using it?",
                    path.display()
                );
            }
            write_private(path, format!("{me}\n").as_bytes(), 0o644)?;
            created.paths.push(path.clone());
        }
        Ok(created)
    }
}

impl Drop for PidFiles {
    fn drop(&mut self) {
        for path in &self.paths {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_are_refused_and_files_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "keep").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(write_private(&link, b"x", 0o600).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");

        let file = dir.path().join("file");
        write_private(&file, b"one", 0o600).unwrap();
        write_private(&file, b"two", 0o600).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "two");
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn pid_files_hold_our_pid_and_vanish_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lvskitd.pid");
        let files = PidFiles::create(std::slice::from_ref(&path)).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap().trim(),
            std::process::id().to_string()
        );
        drop(files);
        assert!(!path.exists());
    }

    #[test]
    fn a_live_foreign_pid_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lvskitd.pid");
        // pid 1 always runs.
        std::fs::write(&path, "1\n").unwrap();
        assert!(PidFiles::create(&[path]).is_err());
    }
}
