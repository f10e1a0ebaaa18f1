//! Source files, positions and the file system the preprocessor reads from.

use std::collections::BTreeMap;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use serde::Serialize;

/// Index of a file in a [`SourceMap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct FileId(pub u32);

/// Where a token comes from: file, 1-based line, 1-based byte column, length.
///
/// Text produced by a `$NAME` expansion carries the position of the `$`
/// reference that produced it, so diagnostics point at the line the user wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Span {
    /// File the token was read from.
    pub file: FileId,
    /// 1-based line number.
    pub line: u32,
    /// 1-based byte column.
    pub col: u32,
    /// Length in bytes (at least 1 for rendering).
    pub len: u32,
}

impl Span {
    /// A span that points at the start of a file (for whole-file messages).
    pub fn file_start(file: FileId) -> Span {
        Span {
            file,
            line: 1,
            col: 1,
            len: 0,
        }
    }
}

/// One file that was read while parsing.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Path as it was resolved (the include target after globbing).
    pub path: PathBuf,
    /// The file's text (invalid UTF-8 replaced by U+FFFD).
    pub text: String,
    /// Byte offset of each line's start, indexed when a diagnostic is
    /// rendered (most parses render none).
    line_starts: OnceLock<Vec<usize>>,
}

impl SourceFile {
    fn new(path: PathBuf, text: String) -> SourceFile {
        SourceFile {
            path,
            text,
            line_starts: OnceLock::new(),
        }
    }

    fn line_starts(&self) -> &[usize] {
        self.line_starts.get_or_init(|| {
            let newlines = self.text.bytes().enumerate().filter(|(_, b)| *b == b'\n');
            std::iter::once(0)
                .chain(newlines.map(|(i, _)| i + 1))
                .collect()
        })
    }

    /// Byte range of a span in this file's text, clamped to the text.
    pub fn byte_range(&self, span: &Span) -> std::ops::Range<usize> {
        let line_starts = self.line_starts();
        let line = (span.line.max(1) as usize - 1).min(line_starts.len() - 1);
        let start_of_line = line_starts[line];
        let end_of_line = line_starts
            .get(line + 1)
            .copied()
            .unwrap_or(self.text.len());
        let start = (start_of_line + span.col.max(1) as usize - 1).min(end_of_line);
        let end = (start + span.len as usize).min(end_of_line.max(start));
        let start = floor_char_boundary(&self.text, start);
        let end = floor_char_boundary(&self.text, end.max(start));
        start..end
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// All files read during one parse, indexed by [`FileId`].
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    /// Adds a file and returns its id.
    pub fn add(&mut self, path: PathBuf, text: String) -> FileId {
        self.files.push(SourceFile::new(path, text));
        FileId(self.files.len() as u32 - 1)
    }

    /// Takes a file's text out while it is being read (see [`SourceMap::put_text`]).
    pub(crate) fn take_text(&mut self, id: FileId) -> Option<String> {
        self.files
            .get_mut(id.0 as usize)
            .map(|f| std::mem::take(&mut f.text))
    }

    /// Puts back a text taken with [`SourceMap::take_text`].
    pub(crate) fn put_text(&mut self, id: FileId, text: String) {
        if let Some(f) = self.files.get_mut(id.0 as usize) {
            f.text = text;
        }
    }

    /// The file with this id.
    pub fn get(&self, id: FileId) -> Option<&SourceFile> {
        self.files.get(id.0 as usize)
    }

    /// All files, in the order they were first read.
    pub fn files(&self) -> &[SourceFile] {
        &self.files
    }

    /// Display name of a file.
    pub fn name(&self, id: FileId) -> String {
        self.get(id)
            .map(|f| f.path.display().to_string())
            .unwrap_or_else(|| "<unknown>".to_string())
    }
}

/// What the preprocessor reads files through: the real file system, or an
/// in-memory one for tests and fuzzing.
pub trait FileSystem {
    /// Reads a whole file. Bytes that are not UTF-8 become U+FFFD.
    fn read(&self, path: &Path) -> io::Result<String>;
    /// Expands one glob pattern (no braces; those are expanded before) into
    /// the sorted list of matching regular files and directories (directories
    /// end with `/`, as with glob's `GLOB_MARK`).
    fn glob(&self, pattern: &str) -> Vec<String>;
    /// Whether the file has any execute bit set (keepalived refuses those as
    /// configuration files).
    fn is_executable(&self, path: &Path) -> bool;
    /// The current directory, used for relative paths of the main file.
    fn current_dir(&self) -> PathBuf;
}

/// The host's file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealFs;

impl FileSystem for RealFs {
    fn read(&self, path: &Path) -> io::Result<String> {
        let bytes = std::fs::read(path)?;
        Ok(match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    fn glob(&self, pattern: &str) -> Vec<String> {
        let Ok(paths) = glob::glob(pattern) else {
            return Vec::new();
        };
        let mut out: Vec<String> = paths
            .filter_map(Result::ok)
            .map(|p| {
                let mut s = p.display().to_string();
                if p.is_dir() {
                    s.push('/');
                }
                s
            })
            .collect();
        out.sort();
        out
    }

    fn is_executable(&self, path: &Path) -> bool {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    }

    fn current_dir(&self) -> PathBuf {
        std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"))
    }
}

/// An in-memory file system: a map from absolute path to contents. Used by
/// the fuzz target and by tests that must not touch the disk.
#[derive(Debug, Clone, Default)]
pub struct MemFs {
    files: BTreeMap<PathBuf, String>,
}

impl MemFs {
    /// An empty file system.
    pub fn new() -> MemFs {
        MemFs::default()
    }

    /// Adds (or replaces) a file; relative paths are taken from `/`.
    pub fn insert(&mut self, path: impl AsRef<Path>, text: impl Into<String>) {
        self.files
            .insert(normalize(&Path::new("/").join(path)), text.into());
    }
}

impl FileSystem for MemFs {
    fn read(&self, path: &Path) -> io::Result<String> {
        self.files
            .get(&normalize(path))
            .cloned()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    fn glob(&self, pattern: &str) -> Vec<String> {
        let Ok(p) = glob::Pattern::new(pattern) else {
            return Vec::new();
        };
        let options = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: true,
        };
        self.files
            .keys()
            .map(|k| k.display().to_string())
            .filter(|k| p.matches_with(k, options))
            .collect()
    }

    fn is_executable(&self, _path: &Path) -> bool {
        false
    }

    fn current_dir(&self) -> PathBuf {
        PathBuf::from("/")
    }
}

/// Lexically normalises a path: removes `.` and resolves `..` without
/// touching the file system.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}
