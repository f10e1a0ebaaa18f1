//! The lexer and preprocessor: keepalived's `read_line()` semantics.
//!
//! Each physical line goes through the same steps as in keepalived's
//! `lib/parser.c`:
//!
//! 1. comments are removed: `#` and `!` start a comment except inside double
//!    quotes; `\#` and `\!` stand for the characters themselves;
//! 2. `@id` / `@^id` lines are kept only when the config id matches (or, for
//!    `@^`, does not);
//! 3. `$NAME=value` defines `NAME` (a trailing `\` continues the value on the
//!    next lines); definitions are expanded when used, recursively, as `$NAME`
//!    or `${NAME}`;
//! 4. `~SEQ(VAR, …) text` and `~LST(VAR, …) text` repeat `text`;
//! 5. `include PATTERN` reads files (globs, `{a,b}`, relative to the
//!    including file);
//! 6. braces are split off wherever they stand, so every `{` and `}` becomes
//!    an item of its own;
//! 7. what is left is split into words; a double-quoted word keeps its spaces.
//!
//! The output is a flat list of [`Item`]s, each with its [`Span`].

use std::collections::{HashMap, VecDeque};

use compact_str::CompactString;
use std::path::{Path, PathBuf};

use crate::diag::{Code, Diagnostic, KeepalivedClass, Severity};
use crate::source::{FileId, FileSystem, SourceMap, Span, normalize};

/// Limits that keep the preprocessor bounded on hostile input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest include nesting.
    pub max_include_depth: usize,
    /// Most lines that `~SEQ`/`~LST` and multiline definitions may generate.
    pub max_generated_lines: usize,
    /// Longest line after expansion, in bytes.
    pub max_line_len: usize,
    /// Most definition expansions in one line.
    pub max_expansions_per_line: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_include_depth: 32,
            max_generated_lines: 1_000_000,
            max_line_len: 1 << 20,
            max_expansions_per_line: 4096,
        }
    }
}

/// Preprocessor settings.
#[derive(Debug, Clone)]
pub struct PreprocessOptions {
    /// The config id that `@id` lines are compared with; `None` means no id
    /// (every `@id` line is dropped, every `@^id` line kept).
    pub config_id: Option<String>,
    /// Seed for `${_RANDOM}` (keepalived seeds from the clock).
    pub random_seed: u64,
    /// Input limits.
    pub limits: Limits,
}

impl Default for PreprocessOptions {
    fn default() -> PreprocessOptions {
        PreprocessOptions {
            config_id: default_config_id(),
            random_seed: 0x5eed,
            limits: Limits::default(),
        }
    }
}

/// keepalived's default config id: the host name up to its first dot.
pub fn default_config_id() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    let short = name.split('.').next().unwrap_or(name);
    (!short.is_empty()).then(|| short.to_string())
}

/// One word of a configuration line: 40 bytes, and the 80,000-line
/// benchmark has 118,000 of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The word, without surrounding double quotes (stored inline when
    /// short: most words are). keepalived treats a quoted word as the same
    /// word unquoted, so whether it was quoted is not kept; its span
    /// includes the quotes.
    pub text: CompactString,
    /// Where it was written.
    pub span: Span,
}

/// One line of configuration after preprocessing and brace splitting: a
/// view into [`Preprocessed`]'s shared word and text buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// The words of the line (never empty).
    pub tokens: &'a [Token],
    /// The line's text after preprocessing, before splitting into words,
    /// kept for script keywords (which re-split it with shell quoting; see
    /// [`keeps_raw`]); empty for other lines.
    pub raw: &'a str,
    /// The span of the whole line.
    pub span: Span,
}

/// One preprocessed item.
///
/// Lines point into [`Preprocessed::words`] and [`Preprocessed::raw`]:
/// one buffer for all the words of a file instead of a vector per line
/// (the 80,000-line benchmark has 200,000 words).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A line of words; see [`Preprocessed::line`].
    Line {
        /// Its words: a range of [`Preprocessed::words`].
        words: std::ops::Range<u32>,
        /// Its text for script keywords: a range of [`Preprocessed::raw`].
        raw: std::ops::Range<u32>,
        /// The span of the whole line.
        span: Span,
    },
    /// A `{`.
    Open(Span),
    /// A `}`.
    Close(Span),
}

/// Text with the source column of each byte, so positions survive comment
/// removal and definition expansion.
#[derive(Debug, Clone)]
struct SText {
    s: String,
    /// Column of each byte; `None` while the text is unmodified (column =
    /// `base + index`).
    cols: Option<Vec<u32>>,
    base: u32,
}

impl SText {
    fn new(s: String, base: u32) -> SText {
        SText {
            s,
            cols: None,
            base,
        }
    }

    fn col(&self, i: usize) -> u32 {
        match &self.cols {
            Some(v) => v.get(i).or(v.last()).copied().unwrap_or(self.base),
            None => self.base + i as u32,
        }
    }

    fn cols_mut(&mut self) -> &mut Vec<u32> {
        let base = self.base;
        let len = self.s.len();
        self.cols
            .get_or_insert_with(|| (0..len as u32).map(|i| base + i).collect())
    }

    /// Replaces byte range `r` with `text`, whose bytes all get column `col`.
    fn replace(&mut self, r: std::ops::Range<usize>, text: &str, col: u32) {
        let cols = self.cols_mut();
        cols.splice(r.clone(), std::iter::repeat_n(col, text.len()));
        self.s.replace_range(r, text);
    }

    fn remove(&mut self, r: std::ops::Range<usize>) {
        self.replace(r, "", 0);
    }

    fn truncate(&mut self, n: usize) {
        if let Some(c) = &mut self.cols {
            c.truncate(n);
        }
        self.s.truncate(n);
    }

    fn slice(&self, r: std::ops::Range<usize>) -> SText {
        let base = self.col(r.start);
        let cols = self.cols.as_ref().map(|c| c[r.clone()].to_vec());
        SText {
            s: self.s[r].to_string(),
            cols,
            base,
        }
    }
}

/// The bytes C's `isspace` accepts, which separate words.
fn is_white(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\x0c' | b'\n' | b'\r' | b'\x0b')
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// A definition made with `$NAME=value`, or a predefined one.
#[derive(Debug, Clone)]
struct Def {
    value: String,
    multiline: bool,
    kind: DefKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DefKind {
    Plain,
    Pwd,
    Instance,
    Random,
}

/// The iterations of a loop (variable assignments) and its text.
type LoopSpec = (VecDeque<Vec<(String, String)>>, String);

/// A running `~SEQ` or `~LST`.
#[derive(Debug, Clone)]
struct Loop {
    /// (variable names, values) for each iteration still to come.
    iterations: VecDeque<Vec<(String, String)>>,
    text: String,
    line: LineOrigin,
}

#[derive(Debug, Clone, Copy)]
struct LineOrigin {
    file: FileId,
    line: u32,
}

/// What include checking is switched on (keepalived's `include_check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct IncludeFlags {
    read: bool,
    matched: bool,
    wildcard: bool,
    brace: bool,
}

impl IncludeFlags {
    fn union(self, o: IncludeFlags) -> IncludeFlags {
        IncludeFlags {
            read: self.read || o.read,
            matched: self.matched || o.matched,
            wildcard: self.wildcard || o.wildcard,
            brace: self.brace || o.brace,
        }
    }
}

/// The result of preprocessing.
#[derive(Debug, Default)]
pub struct Preprocessed {
    /// Items in order.
    pub items: Vec<Item>,
    /// The words of all lines, in order.
    pub words: Vec<Token>,
    /// The kept text of script lines, one after the other.
    pub raw: String,
    /// Every file read.
    pub sources: SourceMap,
    /// Problems found while preprocessing.
    pub diagnostics: Vec<Diagnostic>,
}

impl Preprocessed {
    /// The line an item is, if it is one.
    pub fn line(&self, item: &Item) -> Option<Line<'_>> {
        let Item::Line { words, raw, span } = item else {
            return None;
        };
        Some(Line {
            tokens: self
                .words
                .get(words.start as usize..words.end as usize)
                .unwrap_or_default(),
            raw: self
                .raw
                .get(raw.start as usize..raw.end as usize)
                .unwrap_or_default(),
            span: *span,
        })
    }

    /// Adds a line whose words were pushed onto [`Preprocessed::words`]
    /// from index `first` on; keeps `raw` if the keyword needs it.
    fn push_line(&mut self, first: usize, raw: &str, span: Span) {
        let Some(keyword) = self.words.get(first) else {
            return;
        };
        let raw_start = self.raw.len() as u32;
        if keeps_raw(&keyword.text) {
            self.raw.push_str(raw);
        }
        self.items.push(Item::Line {
            words: first as u32..self.words.len() as u32,
            raw: raw_start..self.raw.len() as u32,
            span,
        });
    }
}

struct Pre<'a> {
    fs: &'a dyn FileSystem,
    opts: &'a PreprocessOptions,
    out: Preprocessed,
    defs: HashMap<String, Def>,
    include_stack: Vec<PathBuf>,
    include_check: IncludeFlags,
    loops: Vec<Loop>,
    pending: VecDeque<(SText, LineOrigin)>,
    multiline_def: Option<String>,
    generated: usize,
    rng: u64,
    limit_hit: bool,
}

/// Preprocesses `path` and everything it includes.
pub fn preprocess(fs: &dyn FileSystem, path: &Path, opts: &PreprocessOptions) -> Preprocessed {
    let mut pre = Pre::new(fs, opts);
    let main_flags = IncludeFlags {
        read: true,
        matched: true,
        wildcard: true,
        brace: false,
    };
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        fs.current_dir().join(path)
    };
    pre.include(&path.display().to_string(), main_flags, None, None);
    pre.out
}

/// Preprocesses configuration text held in memory; `name` is used in
/// messages and as the base for relative includes.
pub fn preprocess_str(
    fs: &dyn FileSystem,
    name: &Path,
    text: &str,
    opts: &PreprocessOptions,
) -> Preprocessed {
    let mut pre = Pre::new(fs, opts);
    let id = pre.out.sources.add(name.to_path_buf(), text.to_string());
    pre.include_stack.push(normalize(name));
    pre.read_file(id, name);
    pre.out
}

impl<'a> Pre<'a> {
    fn new(fs: &'a dyn FileSystem, opts: &'a PreprocessOptions) -> Pre<'a> {
        let mut defs = HashMap::new();
        for (name, kind, value) in [
            ("_PWD", DefKind::Pwd, ""),
            ("_INSTANCE", DefKind::Instance, ""),
            ("_RANDOM", DefKind::Random, ""),
            ("_HASH", DefKind::Plain, "#"),
            ("_BANG", DefKind::Plain, "!"),
        ] {
            defs.insert(
                name.to_string(),
                Def {
                    value: value.to_string(),
                    multiline: false,
                    kind,
                },
            );
        }
        Pre {
            fs,
            opts,
            out: Preprocessed::default(),
            defs,
            include_stack: Vec::new(),
            include_check: IncludeFlags::default(),
            loops: Vec::new(),
            pending: VecDeque::new(),
            multiline_def: None,
            generated: 0,
            rng: opts.random_seed | 1,
            limit_hit: false,
        }
    }

    fn diag(&mut self, d: Diagnostic) {
        if self.out.diagnostics.len() < 10_000 {
            self.out.diagnostics.push(d);
        }
    }

    fn span(&self, o: LineOrigin, col: u32, len: u32) -> Span {
        Span {
            file: o.file,
            line: o.line,
            col,
            len,
        }
    }

    /// Opens the files matching `pattern` and reads them in order.
    fn include(
        &mut self,
        pattern: &str,
        flags: IncludeFlags,
        from: Option<(LineOrigin, &Path)>,
        from_span: Option<Span>,
    ) {
        let flags = flags.union(self.include_check);
        let base = from
            .and_then(|(_, p)| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| self.fs.current_dir());
        let has_brace = pattern.contains('{');
        // Each match with its text when finding it already read it (a
        // literal path is looked for by reading it: not read twice).
        let mut matched: Vec<(String, Option<String>)> = Vec::new();
        let mut missing_literal = Vec::new();
        let mut wildcard_unmatched = false;
        for alt in expand_braces(pattern) {
            let abs = if alt.starts_with('/') {
                alt.clone()
            } else {
                format!("{}/{}", base.display(), alt)
            };
            let is_wild = alt.contains(['*', '?', '[']);
            let found = if is_wild {
                self.fs.glob(&abs).into_iter().map(|f| (f, None)).collect()
            } else if let Ok(text) = self.fs.read(Path::new(&abs)) {
                vec![(abs.clone(), Some(text))]
            } else if !self.fs.glob(&abs).is_empty() {
                vec![(abs.clone(), None)]
            } else {
                Vec::new()
            };
            if found.is_empty() {
                if is_wild {
                    wildcard_unmatched = true;
                } else {
                    missing_literal.push(alt.clone());
                }
            }
            matched.extend(found);
        }
        let span = from_span.unwrap_or_else(|| Span::file_start(FileId(0)));
        let at = from_span.map(|_| span);
        if matched.is_empty() {
            let (error, message) = if !missing_literal.is_empty() {
                (
                    if has_brace {
                        flags.brace || flags.matched
                    } else {
                        flags.matched
                    },
                    format!("config files missing '{pattern}'"),
                )
            } else {
                (
                    flags.wildcard,
                    format!("no config files matched '{pattern}'"),
                )
            };
            self.include_problem(error, at, message);
            return;
        }
        if !missing_literal.is_empty() && has_brace {
            self.include_problem(
                flags.brace,
                at,
                format!("some config files missing: '{pattern}'"),
            );
            if flags.brace {
                return;
            }
        }
        let _ = wildcard_unmatched;
        for (file, text) in matched {
            if file.ends_with('/') {
                self.include_problem(
                    flags.read,
                    at,
                    format!("configuration file '{file}' is a directory - skipping"),
                );
                continue;
            }
            let path = normalize(Path::new(&file));
            if self.fs.is_executable(&path) {
                self.include_problem(
                    flags.read,
                    at,
                    format!(
                        "configuration file '{file}' is not a regular non-executable file - skipping"
                    ),
                );
                continue;
            }
            if self.include_stack.contains(&path) {
                let mut d = Diagnostic::new(
                    Severity::Error,
                    Code::IncludeLoop,
                    Some(KeepalivedClass::Fatal),
                    at,
                    format!("include loop: '{}' includes itself", path.display()),
                );
                d.help = Some(format!(
                    "include chain: {}",
                    self.include_stack
                        .iter()
                        .chain(std::iter::once(&path))
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(" -> ")
                ));
                self.diag(d);
                continue;
            }
            if self.include_stack.len() >= self.opts.limits.max_include_depth {
                self.diag(Diagnostic::new(
                    Severity::Error,
                    Code::Limit,
                    Some(KeepalivedClass::Fatal),
                    at,
                    format!(
                        "includes nested deeper than {} files",
                        self.opts.limits.max_include_depth
                    ),
                ));
                continue;
            }
            // The text read while matching is this file's unless `..`
            // made the normalised path a different one.
            let text = text.filter(|_| Path::new(&file) == path);
            let text = match text.map_or_else(|| self.fs.read(&path), Ok) {
                Ok(t) => t,
                Err(e) => {
                    self.include_problem(
                        flags.read,
                        at,
                        format!("configuration file '{file}' open problem ({e}) - skipping"),
                    );
                    continue;
                }
            };
            let id = self.out.sources.add(path.clone(), text);
            let saved_check = self.include_check;
            self.include_stack.push(path.clone());
            self.read_file(id, &path);
            self.include_stack.pop();
            self.include_check = saved_check;
        }
    }

    fn include_problem(&mut self, error: bool, span: Option<Span>, message: String) {
        let d = if error {
            Diagnostic::new(
                Severity::Error,
                Code::Include,
                Some(KeepalivedClass::FileNotFound),
                span,
                message,
            )
        } else {
            Diagnostic::new(Severity::Warning, Code::Include, None, span, message).with_help(
                "keepalived skips it; set `include_check` in global_defs to make it an error",
            )
        };
        self.diag(d);
    }

    fn read_file(&mut self, id: FileId, path: &Path) {
        // The text is taken out while it is read (an include loop cannot
        // come back to it) and put back for rendering.
        let Some(text) = self.out.sources.take_text(id) else {
            return;
        };
        self.read_text(id, path, &text);
        self.out.sources.put_text(id, text);
    }

    fn read_text(&mut self, id: FileId, path: &Path, text: &str) {
        // About one item per 16 bytes and one word per 14 of configuration:
        // growing the lists once up front avoids copying them while they
        // double (reserved pages that stay unused cost nothing).
        self.out.items.reserve(text.len() / 12);
        self.out.words.reserve(text.len() / 10);
        let mut next = 0;
        let mut lineno = 0u32;
        // Like `text.split('\n')`: a text ending in a newline has an empty
        // last line.
        while next <= text.len() {
            let start = next;
            lineno += 1;
            if self.limit_hit {
                return;
            }
            let origin = LineOrigin {
                file: id,
                line: lineno,
            };
            if self.multiline_def.is_none()
                && self.pending.is_empty()
                && self.loops.is_empty()
                && let Some(n) = self.plain_line(text, start, origin)
            {
                next = n;
                continue;
            }
            let end = text[start..].find('\n').map_or(text.len(), |e| start + e);
            next = end + 1;
            let line = text[start..end].trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                self.end_multiline_def();
                continue;
            }
            let mut st = SText::new(line.to_string(), 1);
            self.decomment(&mut st, origin);
            if st.s.is_empty() {
                continue;
            }
            self.logical(st, origin, path);
            self.drain(path);
        }
        self.end_multiline_def();
    }

    fn end_multiline_def(&mut self) {
        if let Some(name) = self.multiline_def.take()
            && let Some(d) = self.defs.get_mut(&name)
            && d.value.is_empty()
        {
            d.multiline = false;
        }
    }

    /// Removes comments and leading/trailing blanks (keepalived's `decomment`).
    fn decomment(&mut self, st: &mut SText, origin: LineOrigin) {
        let lead = st.s.bytes().take_while(|b| is_blank(*b)).count();
        if lead > 0 {
            if st.cols.is_none() {
                st.base += lead as u32;
                st.s.drain(..lead);
            } else {
                st.remove(0..lead);
            }
        }
        let mut quote = false;
        let mut cont = false;
        let mut skip: Option<usize> = None;
        let mut i = 0;
        while i < st.s.len() {
            let b = st.s.as_bytes()[i];
            match b {
                b'"' => {
                    if skip.is_none() {
                        quote = !quote;
                    }
                    i += 1;
                }
                b'\\' => {
                    if i + 1 < st.s.len() {
                        let n = st.s.as_bytes()[i + 1];
                        if !quote && (n == b'#' || n == b'!') {
                            st.remove(i..i + 1);
                            i += 1;
                        } else {
                            i += 2;
                        }
                    } else {
                        st.truncate(i);
                        cont = true;
                        break;
                    }
                }
                b'!' | b'#' => {
                    if !quote && skip.is_none() {
                        skip = Some(i);
                    }
                    i += 1;
                }
                _ => i += 1,
            }
        }
        if quote {
            let span = self.span(origin, st.col(0), st.s.len() as u32);
            self.diag(Diagnostic::error(
                Code::UnmatchedQuote,
                KeepalivedClass::General,
                span,
                "unterminated quote",
            ));
        }
        if let Some(s) = skip {
            st.truncate(s.min(st.s.len()));
        }
        let keep = st.s.trim_end_matches([' ', '\t']).len();
        st.truncate(keep);
        if cont {
            let col = st.col(st.s.len());
            let at = st.s.len();
            st.replace(at..at, "\\", col);
        }
        // A cut inside a multi-byte character cannot happen: all the bytes we
        // cut at are ASCII.
    }

    /// Processes one decommented logical line (keepalived's inner loop of
    /// `read_line`): multiline definitions, `@id`, `$NAME=`, loops,
    /// expansion, include, braces.
    fn logical(&mut self, mut st: SText, origin: LineOrigin, path: &Path) {
        if let Some(name) = self.multiline_def.clone() {
            let mut s = st.s.clone();
            let more = s.ends_with('\\');
            if more {
                s.pop();
                let t = s.trim_end_matches([' ', '\t']).len();
                s.truncate(t);
                s.push('\n');
            } else {
                self.multiline_def = None;
            }
            if let Some(d) = self.defs.get_mut(&name) {
                if s.len() >= 2 || (!s.is_empty() && !more) {
                    d.value.push_str(&s);
                }
                if !more && d.value.is_empty() {
                    d.multiline = false;
                }
            }
            return;
        }
        let mut expansions = 0usize;
        loop {
            if st.s.starts_with('@') {
                let (rev, ofs) = if st.s.as_bytes().get(1) == Some(&b'^') {
                    (true, 2)
                } else {
                    (false, 1)
                };
                let Some(end) = st.s[ofs..].find([' ', '\t']).map(|e| e + ofs) else {
                    return;
                };
                let id = &st.s[ofs..end];
                let matches = self.opts.config_id.as_deref() == Some(id);
                if matches == rev {
                    return;
                }
                let rest = end + st.s[end..].bytes().take_while(|b| is_blank(*b)).count();
                st.remove(0..rest);
            }
            if st.s.starts_with('$') && self.definition(&st.s) {
                return;
            }
            if st.s.starts_with("~SEQ") || st.s.starts_with("~LST") {
                let span = self.span(origin, st.col(0), st.s.len() as u32);
                let is_seq = st.s.as_bytes()[1] == b'S';
                let parsed = if is_seq {
                    self.parse_seq(&st.s, span)
                } else {
                    parse_lst(&st.s, span).map_err(|e| (e, span))
                };
                match parsed {
                    Ok((iterations, text)) => self.loops.push(Loop {
                        iterations,
                        text,
                        line: origin,
                    }),
                    Err((msg, span)) => self.diag(Diagnostic::error(
                        Code::InvalidLoop,
                        KeepalivedClass::General,
                        span,
                        msg,
                    )),
                }
                return;
            }
            if st.s.starts_with('~') {
                break;
            }
            if !st.s.contains('$') {
                break;
            }
            match self.replace_params(&mut st, origin, path, &mut expansions) {
                Replaced::Nothing => break,
                Replaced::Stop => return,
                Replaced::Some => {
                    self.decomment(&mut st, origin);
                    if !(st.s.starts_with('@') || st.s.contains('$')) {
                        break;
                    }
                }
            }
        }
        self.emit(st, origin, path);
    }

    /// `$NAME=value`: records a definition. Returns false if the line is not
    /// a definition.
    fn definition(&mut self, s: &str) -> bool {
        let b = s.as_bytes();
        if b.len() < 2 || !(b[1].is_ascii_alphabetic() || b[1] == b'_') {
            return false;
        }
        let mut p = 2;
        while p < b.len() && b[p] != b'=' {
            if !(b[p].is_ascii_alphanumeric() || b[p] == b'_') {
                return false;
            }
            p += 1;
        }
        if p >= b.len() {
            return false;
        }
        let name = s[1..p].to_string();
        let mut value = s[p + 1..].trim_start_matches([' ', '\t']).to_string();
        let multiline = value.ends_with('\\');
        if multiline {
            value.pop();
            let t = value.trim_end_matches([' ', '\t']).len();
            value.truncate(t);
            if !value.is_empty() {
                value.push('\n');
            }
            self.multiline_def = Some(name.clone());
        }
        self.defs.insert(
            name,
            Def {
                value,
                multiline,
                kind: DefKind::Plain,
            },
        );
        true
    }

    fn parse_seq(&mut self, s: &str, span: Span) -> Result<LoopSpec, (String, Span)> {
        let bad = || (format!("invalid ~SEQ definition '{s}'"), span);
        let mut p = &s[4..];
        let hex = p.starts_with('x');
        if hex {
            p = &p[1..];
        }
        p = p.trim_start_matches([' ', '\t']);
        let Some(rest) = p.strip_prefix('(') else {
            return Err(bad());
        };
        let Some(close) = rest.find(')') else {
            return Err(bad());
        };
        let inner = &rest[..close];
        let text = rest[close + 1..]
            .trim_start_matches([' ', '\t'])
            .to_string();
        let mut parts = inner.split(',').map(|x| x.trim_matches([' ', '\t']));
        let var = parts.next().unwrap_or("").to_string();
        if var.is_empty() || var.contains([' ', '\t']) {
            return Err(bad());
        }
        let mut nums = Vec::new();
        for part in parts {
            let expanded = self.expand_simple(part);
            nums.push(parse_c_long(&expanded).ok_or_else(bad)?);
        }
        let (start, step, end) = match nums.as_slice() {
            [end] => {
                let end = *end;
                (
                    if end < 0 { -1 } else { 1 },
                    if end < 1 { -1 } else { 1 },
                    end,
                )
            }
            [start, end] => (*start, if start <= end { 1 } else { -1 }, *end),
            [start, step, end] => {
                if *step == 0 || (start < end && *step < 0) || (start > end && *step > 0) {
                    return Err((format!("invalid ~SEQ values '{s}'"), span));
                }
                (*start, *step, *end)
            }
            _ => return Err(bad()),
        };
        if hex && (start < 0 || end < 0) {
            return Err((
                format!("~SEQx is only valid for positive numbers '{s}'"),
                span,
            ));
        }
        let count = ((end as i128 - start as i128) / step as i128 + 1).max(0) as u128;
        if count as usize > self.opts.limits.max_generated_lines || count > u32::MAX as u128 {
            return Err((
                format!("~SEQ would generate {count} lines, more than the limit"),
                span,
            ));
        }
        let mut it = VecDeque::new();
        let mut v = start;
        loop {
            let val = if hex { format!("{v:x}") } else { v.to_string() };
            it.push_back(vec![(var.clone(), val)]);
            let Some(n) = v.checked_add(step) else { break };
            v = n;
            if (step > 0 && v > end) || (step < 0 && v < end) {
                break;
            }
        }
        Ok((it, text))
    }

    /// Expands plain (single-line) definitions in a `~SEQ` parameter.
    fn expand_simple(&self, s: &str) -> String {
        let mut out = s.to_string();
        for _ in 0..16 {
            let Some(pos) = out.find('$') else { break };
            let Some((name, len, _)) = reference_at(&out[pos..]) else {
                break;
            };
            match self.defs.get(name) {
                Some(d) if !d.multiline && d.kind == DefKind::Plain => {
                    let v = d.value.clone();
                    out.replace_range(pos..pos + len, &v);
                }
                _ => break,
            }
        }
        out
    }

    /// Replaces `$NAME` / `${NAME}` references.
    fn replace_params(
        &mut self,
        st: &mut SText,
        origin: LineOrigin,
        path: &Path,
        expansions: &mut usize,
    ) -> Replaced {
        let mut found = false;
        let mut cur = 0;
        while let Some(off) = st.s[cur..].find('$') {
            let pos = cur + off;
            if pos + 1 >= st.s.len() {
                break;
            }
            let Some((name, len, params)) = reference_at(&st.s[pos..]) else {
                cur = pos + 1;
                continue;
            };
            let name = name.to_string();
            let params = params.map(str::to_string);
            let at_end = pos + len == st.s.len();
            let col = st.col(pos);
            // `${_ENV NAME}`: the process environment (an lvskit extension;
            // keepalived 2.2.7 leaves it as written).
            if name == "_ENV" {
                let Some(var) = params.as_deref().filter(|p| !p.is_empty()) else {
                    cur = pos + 1;
                    continue;
                };
                let value = std::env::var(var).unwrap_or_default();
                st.replace(pos..pos + len, &value, col);
                found = true;
                *expansions += 1;
                cur = pos;
                if !self.check_growth(st, origin, col, expansions) {
                    return Replaced::Stop;
                }
                continue;
            }
            let Some(def) = self.defs.get(&name) else {
                if !name.starts_with('_') {
                    let span = self.span(origin, col, len as u32);
                    self.diag(
                        Diagnostic::warning(
                            Code::UndefinedDefinition,
                            span,
                            format!("`${name}` is not defined; it is kept as written"),
                        )
                        .with_help(format!("define it before use with `${name}=value`")),
                    );
                }
                cur = pos + 1;
                continue;
            };
            if params.is_some() && def.kind != DefKind::Random {
                cur = pos + 1;
                continue;
            }
            if def.multiline && !at_end {
                cur = pos + 1;
                continue;
            }
            let (kind, multiline, plain_value) = (def.kind, def.multiline, def.value.clone());
            let value = match kind {
                DefKind::Plain => plain_value,
                DefKind::Pwd => path
                    .parent()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                DefKind::Instance => self.opts.config_id.clone().unwrap_or_default(),
                DefKind::Random => {
                    let (lo, hi) = random_bounds(params.as_deref());
                    let r = self.next_random();
                    let range = hi.saturating_sub(lo).saturating_add(1).max(1);
                    (lo + r % range).to_string()
                }
            };
            found = true;
            *expansions += 1;
            if multiline {
                let mut lines = value.split('\n');
                let first = lines.next().unwrap_or("").to_string();
                let rest: Vec<String> = lines.map(str::to_string).collect();
                st.replace(pos..pos + len, &first, col);
                for (k, l) in rest.into_iter().enumerate() {
                    if l.is_empty() {
                        continue;
                    }
                    self.generated += 1;
                    self.pending.insert(k, (SText::new(l, col), origin));
                }
            } else {
                st.replace(pos..pos + len, &value, col);
            }
            if !self.check_growth(st, origin, col, expansions) {
                return Replaced::Stop;
            }
            if value.trim_start_matches([' ', '\t']).starts_with('~') {
                break;
            }
            cur = pos;
        }
        if found {
            Replaced::Some
        } else {
            Replaced::Nothing
        }
    }

    fn check_growth(
        &mut self,
        st: &SText,
        origin: LineOrigin,
        col: u32,
        expansions: &usize,
    ) -> bool {
        if *expansions > self.opts.limits.max_expansions_per_line
            || st.s.len() > self.opts.limits.max_line_len
            || self.generated > self.opts.limits.max_generated_lines
        {
            let span = self.span(origin, col, 1);
            self.diag(
                Diagnostic::error(
                    Code::RecursiveDefinition,
                    KeepalivedClass::General,
                    span,
                    "definition expands without end (recursive definition)",
                )
                .with_help("a definition must not refer to itself, directly or through others"),
            );
            if self.generated > self.opts.limits.max_generated_lines {
                self.limit_hit = true;
            }
            return false;
        }
        true
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*: deterministic for a given seed.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33
    }

    /// After expansion: include, or split at braces and emit items.
    fn emit(&mut self, st: SText, origin: LineOrigin, path: &Path) {
        // An expansion can leave nothing.
        if st.s.is_empty() {
            return;
        }
        if let Some((flags, rest)) = include_directive(&st.s) {
            let pattern = st.s[rest..].trim_start_matches([' ', '\t']).to_string();
            let span = self.span(origin, st.col(0), st.s.len() as u32);
            self.include(&pattern, flags, Some((origin, path)), Some(span));
            return;
        }
        if let Some(args) = st.s.strip_prefix("include_check")
            && (args.is_empty() || args.starts_with([' ', '\t']))
        {
            self.include_check_set(args);
        }
        // Split at the first `{` or `}` outside double quotes.
        let b = st.s.as_bytes();
        let mut split: Option<(usize, usize)> = None;
        if b[0] == b'{' || b[0] == b'}' {
            let skip = 1 + b[1..].iter().take_while(|c| is_blank(**c)).count();
            if skip < b.len() {
                split = Some((1, skip));
            }
        } else {
            let mut i = 0;
            while i < b.len() {
                match b[i] {
                    b'"' => match b[i + 1..].iter().position(|c| *c == b'"') {
                        Some(q) => i += q + 2,
                        None => break,
                    },
                    b'{' | b'}' => {
                        split = Some((i, i));
                        break;
                    }
                    _ => i += 1,
                }
            }
        }
        let (head, residue) = match split {
            Some((end, rest_start)) => {
                let rest_end = st.s.trim_end_matches([' ', '\t']).len();
                let residue = st.slice(rest_start..rest_end.max(rest_start));
                let mut head = st;
                head.truncate(end);
                (head, Some(residue))
            }
            None => (st, None),
        };
        let trimmed = head.s.trim_end_matches([' ', '\t']).len();
        let mut head = head;
        head.truncate(trimmed);
        self.push_piece(head, origin);
        if let Some(r) = residue
            && !r.s.is_empty()
        {
            // keepalived feeds the residue back through the whole line loop.
            self.logical_residue(r, origin, path);
        }
    }

    fn logical_residue(&mut self, st: SText, origin: LineOrigin, path: &Path) {
        self.logical(st, origin, path);
    }

    fn push_piece(&mut self, st: SText, origin: LineOrigin) {
        if st.s.is_empty() {
            return;
        }
        let span = self.span(origin, st.col(0), st.s.len() as u32);
        if st.s == "{" {
            self.out.items.push(Item::Open(span));
            return;
        }
        if st.s == "}" {
            self.out.items.push(Item::Close(span));
            return;
        }
        let mut words = std::mem::take(&mut self.out.words);
        let first = words.len();
        self.tokenize_into(&st, origin, &mut words);
        self.out.words = words;
        self.out.push_line(first, &st.s, span);
    }

    /// The fast path for a line with nothing to preprocess: one pass over
    /// the bytes from `start` that splits braces and words in place, with the
    /// same result as the general path. Returns where the next line starts,
    /// or `None` (having emitted nothing) when the line needs the general
    /// path: a comment, quote, escape or definition character, an `@`/`~`
    /// line or an `include` at the start of the line or after a brace, or
    /// an unusual blank (vertical tab, form feed, a carriage return before
    /// the end).
    fn plain_line(&mut self, text: &str, start: usize, origin: LineOrigin) -> Option<usize> {
        let b = text.as_bytes();
        let marks = (
            self.out.items.len(),
            self.out.words.len(),
            self.out.raw.len(),
        );
        let col = |i: usize| (i - start) as u32 + 1;
        // The piece being read: where it starts, its first word, where its
        // last word ends.
        let mut piece: Option<(usize, usize, usize)> = None;
        let mut i = start;
        // Indentation comes in runs of four spaces: skip them four at a time.
        while b.get(i..).and_then(<[u8]>::first_chunk) == Some(b"    ") {
            i += 4;
        }
        let next = loop {
            let class = b.get(i).map_or(Class::Newline, |c| CLASSES[*c as usize]);
            match class {
                Class::Blank => i += 1,
                Class::Word => {
                    if piece.is_none() {
                        let rest = &b[i..];
                        if matches!(rest[0], b'@' | b'~') || rest.starts_with(b"include") {
                            break None;
                        }
                        piece = Some((i, self.out.words.len(), i));
                    }
                    let word = i;
                    while b
                        .get(i)
                        .is_some_and(|c| CLASSES[*c as usize] == Class::Word)
                    {
                        i += 1;
                    }
                    self.out.words.push(Token {
                        text: CompactString::from(&text[word..i]),
                        span: self.span(origin, col(word), (i - word) as u32),
                    });
                    if let Some(p) = &mut piece {
                        p.2 = i;
                    }
                }
                Class::Brace => {
                    self.end_piece(text, piece.take(), origin, start);
                    let span = self.span(origin, col(i), 1);
                    self.out.items.push(if b[i] == b'{' {
                        Item::Open(span)
                    } else {
                        Item::Close(span)
                    });
                    i += 1;
                }
                Class::CarriageReturn => {
                    // Only at the end of the line, as in a CRLF file.
                    let crs = b[i..].iter().take_while(|c| **c == b'\r').count();
                    if !matches!(b.get(i + crs), None | Some(b'\n')) {
                        break None;
                    }
                    i += crs;
                }
                Class::Newline => {
                    self.end_piece(text, piece.take(), origin, start);
                    break Some(i + 1);
                }
                Class::Special => break None,
            }
        };
        if next.is_none() {
            self.out.items.truncate(marks.0);
            self.out.words.truncate(marks.1);
            self.out.raw.truncate(marks.2);
        }
        next
    }

    /// Emits the line a piece of [`Pre::plain_line`] makes.
    fn end_piece(
        &mut self,
        text: &str,
        piece: Option<(usize, usize, usize)>,
        origin: LineOrigin,
        line_start: usize,
    ) {
        if let Some((start, first, end)) = piece {
            let span = self.span(
                origin,
                (start - line_start) as u32 + 1,
                (end - start) as u32,
            );
            self.out.push_line(first, &text[start..end], span);
        }
    }

    /// keepalived's `alloc_strvec`: whitespace-separated words; a word that
    /// starts with `"` runs to the next `"`.
    fn tokenize_into(&mut self, st: &SText, origin: LineOrigin, out: &mut Vec<Token>) {
        let s = &st.s;
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            while i < b.len() && is_white(b[i]) {
                i += 1;
            }
            if i >= b.len() {
                break;
            }
            if b[i] == b'"' {
                let start = i + 1;
                match b[start..].iter().position(|c| *c == b'"') {
                    Some(q) => {
                        let end = start + q;
                        out.push(Token {
                            text: CompactString::from(&s[start..end]),
                            span: self.span(origin, st.col(i), (end + 1 - i) as u32),
                        });
                        i = end + 1;
                    }
                    None => {
                        let span = self.span(origin, st.col(i), (b.len() - i) as u32);
                        self.diag(Diagnostic::error(
                            Code::UnmatchedQuote,
                            KeepalivedClass::UnmatchedQuote,
                            span,
                            "unmatched quote",
                        ));
                        break;
                    }
                }
            } else {
                let start = i;
                while i < b.len() && !is_white(b[i]) && b[i] != b'"' {
                    i += 1;
                }
                out.push(Token {
                    text: CompactString::from(&s[start..i]),
                    span: self.span(origin, st.col(start), (i - start) as u32),
                });
            }
        }
    }

    fn include_check_set(&mut self, args: &str) {
        let words: Vec<&str> = args.split_ascii_whitespace().collect();
        if words.is_empty() {
            self.include_check = IncludeFlags {
                read: true,
                matched: true,
                wildcard: true,
                brace: true,
            };
            return;
        }
        for (i, w) in words.iter().enumerate() {
            let (mode, name) = match w.as_bytes()[0] {
                b'-' => (-1, &w[1..]),
                b'+' => (1, &w[1..]),
                _ => {
                    if i != 0 {
                        continue;
                    }
                    self.include_check = IncludeFlags::default();
                    (0, *w)
                }
            };
            let mut f = IncludeFlags::default();
            match name {
                "read" => f.read = true,
                "match" => f.matched = true,
                "wildcard_match" => f.wildcard = true,
                "brace_match" => f.brace = true,
                _ => continue,
            }
            match mode {
                0 => {
                    f.read = true;
                    self.include_check = f;
                }
                1 => self.include_check = self.include_check.union(f),
                _ => {
                    let c = &mut self.include_check;
                    c.read &= !f.read;
                    c.matched &= !f.matched;
                    c.wildcard &= !f.wildcard;
                    c.brace &= !f.brace;
                }
            }
        }
    }

    /// Runs queued lines: multiline definition lines first, then loops.
    fn drain(&mut self, path: &Path) {
        loop {
            if self.limit_hit {
                self.pending.clear();
                self.loops.clear();
                return;
            }
            if let Some((st, origin)) = self.pending.pop_front() {
                self.logical(st, origin, path);
                continue;
            }
            let Some(top) = self.loops.last_mut() else {
                return;
            };
            let Some(vars) = top.iterations.pop_front() else {
                self.loops.pop();
                continue;
            };
            let text = top.text.clone();
            let origin = top.line;
            for (name, value) in vars {
                self.defs.insert(
                    name,
                    Def {
                        value,
                        multiline: false,
                        kind: DefKind::Plain,
                    },
                );
            }
            self.generated += 1;
            if self.generated > self.opts.limits.max_generated_lines {
                let span = self.span(origin, 1, 1);
                self.diag(Diagnostic::error(
                    Code::Limit,
                    KeepalivedClass::General,
                    span,
                    format!(
                        "loops generate more than {} lines",
                        self.opts.limits.max_generated_lines
                    ),
                ));
                self.limit_hit = true;
                continue;
            }
            if !text.is_empty() {
                self.logical(SText::new(text, 1), origin, path);
            }
        }
    }
}

/// What a byte is to [`Pre::plain_line`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Part of a word.
    Word,
    /// Space or tab.
    Blank,
    /// `{` or `}`.
    Brace,
    /// `\r`: allowed at the end of a line only.
    CarriageReturn,
    /// `\n`.
    Newline,
    /// Needs the general path: `#`, `!`, `"`, `\\`, `$`, vertical tab, form
    /// feed.
    Special,
}

static CLASSES: [Class; 256] = {
    let mut t = [Class::Word; 256];
    t[b' ' as usize] = Class::Blank;
    t[b'\t' as usize] = Class::Blank;
    t[b'{' as usize] = Class::Brace;
    t[b'}' as usize] = Class::Brace;
    t[b'\r' as usize] = Class::CarriageReturn;
    t[b'\n' as usize] = Class::Newline;
    let special = [b'#', b'!', b'"', b'\\', b'$', 0x0b, 0x0c];
    let mut k = 0;
    while k < special.len() {
        t[special[k] as usize] = Class::Special;
        k += 1;
    }
    t
};

/// Keywords whose line text is kept in [`Line::raw`]: the script keywords,
/// which keepalived re-splits with shell quoting.
///
/// Called for the first word of every line, so it rejects cheaply: all of
/// them are at least six bytes long, and the search for `script` compares
/// six-byte arrays (no `memcmp` call) only where an `s` stands.
pub fn keeps_raw(keyword: &str) -> bool {
    let b = keyword.as_bytes();
    if b.len() < 6 {
        return false;
    }
    let named = match b[0] {
        b'n' => b.starts_with(b"notify"),
        b'm' => keyword == "misc_path",
        b'q' => matches!(keyword, "quorum_up" | "quorum_down"),
        _ => false,
    };
    named || (0..=b.len() - 6).any(|i| b[i] == b's' && b[i..].first_chunk::<6>() == Some(b"script"))
}

enum Replaced {
    Nothing,
    Some,
    Stop,
}

/// Parses a reference at the start of `s` (which starts with `$`):
/// returns (name, length of the reference, parameters inside braces).
fn reference_at(s: &str) -> Option<(&str, usize, Option<&str>)> {
    let b = s.as_bytes();
    let braces = b.get(1) == Some(&b'{');
    let start = if braces { 2 } else { 1 };
    let first = *b.get(start)?;
    if !(first.is_ascii_alphabetic() || first == b'_') {
        return None;
    }
    let mut p = start + 1;
    while p < b.len() && (b[p].is_ascii_alphanumeric() || b[p] == b'_') {
        p += 1;
    }
    let name = &s[start..p];
    if braces {
        let close = p + s[p..].find('}')?;
        let params = s[p..close].trim_matches(' ');
        let ok_params =
            name == "_ENV" || s[p..close].bytes().all(|c| c == b' ' || c.is_ascii_digit());
        if !ok_params || (!params.is_empty() && s[p..close].ends_with(' ')) {
            return None;
        }
        let params = (!params.is_empty()).then_some(params);
        Some((name, close + 1, params))
    } else {
        match b.get(p) {
            None | Some(b' ' | b'\t' | b',' | b')') => Some((name, p, None)),
            _ => None,
        }
    }
}

fn random_bounds(params: Option<&str>) -> (u64, u64) {
    let mut lo = 0u64;
    let mut hi = 32767u64;
    if let Some(p) = params {
        let mut it = p.split_ascii_whitespace().map(|x| x.parse::<u64>().ok());
        if let Some(Some(a)) = it.next() {
            lo = a;
        }
        if let Some(Some(b)) = it.next() {
            hi = b;
        }
    }
    if hi < lo {
        std::mem::swap(&mut lo, &mut hi);
    }
    (lo, hi)
}

/// `strtol(s, &end, 0)` over the whole string: decimal, `0x` hex, `0` octal.
fn parse_c_long(s: &str) -> Option<i64> {
    let s = s.trim_matches([' ', '\t']);
    let (neg, digits) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = if let Some(h) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        i64::from_str_radix(h, 16).ok()?
    } else if digits.len() > 1 && digits.starts_with('0') {
        i64::from_str_radix(&digits[1..], 8).ok()?
    } else {
        digits.parse::<i64>().ok()?
    };
    Some(if neg { -v } else { v })
}

/// `~LST(VAR, a, b, c) text` or `~LST({V1, V2}, {a1, a2}, {b1, b2}) text`.
fn parse_lst(s: &str, _span: Span) -> Result<LoopSpec, String> {
    let bad = || format!("invalid ~LST specification '{s}'");
    let p = s[4..].trim_start_matches([' ', '\t']);
    let p = p.strip_prefix('(').ok_or_else(bad)?;
    // Find the closing ')' of the specification.
    let close = p.find(')').ok_or_else(bad)?;
    let inner = &p[..close];
    let text = p[close + 1..].trim_start_matches([' ', '\t']).to_string();
    let groups = split_groups(inner).ok_or_else(bad)?;
    let mut groups = groups.into_iter();
    let vars = groups.next().ok_or_else(bad)?;
    if vars.iter().any(|v| v.is_empty()) {
        return Err(bad());
    }
    let mut it = VecDeque::new();
    for values in groups {
        if values.len() > vars.len() {
            return Err(format!("~LST specification has too many values '{s}'"));
        }
        let mut set = Vec::new();
        for (k, v) in vars.iter().enumerate() {
            set.push((v.clone(), values.get(k).cloned().unwrap_or_default()));
        }
        it.push_back(set);
    }
    if it.is_empty() {
        return Err(bad());
    }
    Ok((it, text))
}

/// Splits `a, {b, c}, d` into groups: `[a]`, `[b, c]`, `[d]`.
fn split_groups(s: &str) -> Option<Vec<Vec<String>>> {
    let mut out = Vec::new();
    let mut rest = s.trim_matches([' ', '\t']);
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('{') {
            let end = r.find('}')?;
            out.push(
                r[..end]
                    .split(',')
                    .map(|x| x.trim_matches([' ', '\t']).to_string())
                    .collect(),
            );
            rest = r[end + 1..].trim_start_matches([' ', '\t']);
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            out.push(vec![rest[..end].trim_matches([' ', '\t']).to_string()]);
            rest = &rest[end..];
        }
        rest = rest.trim_start_matches([' ', '\t']);
        if let Some(r) = rest.strip_prefix(',') {
            rest = r.trim_start_matches([' ', '\t']);
            if rest.is_empty() {
                return None;
            }
        } else if !rest.is_empty() {
            return None;
        }
    }
    Some(out)
}

/// Recognises `include`, `includer`, `includem`, `includew`, `includeb` and
/// `includea`; returns the check flags and where the pattern starts.
fn include_directive(s: &str) -> Option<(IncludeFlags, usize)> {
    let rest = s.strip_prefix("include")?;
    let b = rest.as_bytes();
    let first = *b.first()?;
    if first == b' ' || first == b'\t' {
        return Some((IncludeFlags::default(), 8));
    }
    if b.len() >= 2 && (b[1] == b' ' || b[1] == b'\t') {
        let f = |read, matched, wildcard, brace| IncludeFlags {
            read,
            matched,
            wildcard,
            brace,
        };
        let flags = match first {
            b'r' => f(true, false, false, false),
            b'm' => f(true, true, false, false),
            b'w' => f(true, true, true, false),
            b'b' => f(true, false, false, true),
            b'a' => f(true, true, true, true),
            _ => return None,
        };
        return Some((flags, 9));
    }
    None
}

/// Expands `{a,b}` alternatives in a path pattern, as glob's `GLOB_BRACE`.
pub fn expand_braces(pattern: &str) -> Vec<String> {
    fn go(p: &str, out: &mut Vec<String>, budget: &mut usize) {
        if *budget == 0 {
            return;
        }
        let b = p.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'\\' {
                i += 2;
                continue;
            }
            if b[i] == b'{' {
                // Find the matching close brace and top-level commas.
                let mut depth = 0;
                let mut commas = Vec::new();
                let mut j = i;
                let mut close = None;
                while j < b.len() {
                    match b[j] {
                        b'\\' => j += 1,
                        b'{' => depth += 1,
                        b'}' => {
                            depth -= 1;
                            if depth == 0 {
                                close = Some(j);
                                break;
                            }
                        }
                        b',' if depth == 1 => commas.push(j),
                        _ => {}
                    }
                    j += 1;
                }
                if let Some(c) = close {
                    let mut bounds = vec![i];
                    bounds.extend(&commas);
                    bounds.push(c);
                    for w in bounds.windows(2) {
                        let alt = format!("{}{}{}", &p[..i], &p[w[0] + 1..w[1]], &p[c + 1..]);
                        go(&alt, out, budget);
                    }
                    return;
                }
            }
            i += 1;
        }
        *budget -= 1;
        out.push(p.to_string());
    }
    let mut out = Vec::new();
    let mut budget = 4096;
    go(pattern, &mut out, &mut budget);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::MemFs;

    fn pre(text: &str) -> Preprocessed {
        let fs = MemFs::new();
        let opts = PreprocessOptions {
            config_id: Some("lb1".into()),
            ..PreprocessOptions::default()
        };
        preprocess_str(&fs, Path::new("/etc/k.conf"), text, &opts)
    }

    fn render(p: &Preprocessed) -> Vec<String> {
        p.items
            .iter()
            .map(|i| match (i, p.line(i)) {
                (Item::Open(_), _) => "{".to_string(),
                (Item::Close(_), _) => "}".to_string(),
                (_, l) => l
                    .unwrap()
                    .tokens
                    .iter()
                    .map(|t| t.text.to_string())
                    .collect::<Vec<_>>()
                    .join("|"),
            })
            .collect()
    }

    #[test]
    fn comments_quotes_and_escapes() {
        let p = pre("a b # c\nd \"x # y\" ! z\ne \\#f \\!g\n\"q\"r\n");
        assert_eq!(render(&p), ["a|b", "d|x # y", "e|#f|!g", "q|r"]);
        assert!(p.diagnostics.is_empty());
    }

    #[test]
    fn braces_split_anywhere() {
        let p = pre("vrrp_instance X { state MASTER }\n}}{\n");
        assert_eq!(
            render(&p),
            ["vrrp_instance|X", "{", "state|MASTER", "}", "}", "}", "{"]
        );
        // Columns survive the split.
        let l = p.line(&p.items[2]).unwrap();
        assert_eq!(l.tokens[0].span.col, 19);
        assert_eq!(l.tokens[1].span.col, 25);
    }

    #[test]
    fn definitions_lazy_recursive_and_braced() {
        let p = pre("$A=x $B\n$B=y\nk $A ${B}z\n$M=one \\\ntwo\nm $M\n");
        assert_eq!(render(&p), ["k|x|y|yz", "m|one", "two"]);
    }

    #[test]
    fn recursive_definition_is_an_error() {
        let p = pre("$A=$A\nk $A\n");
        assert!(
            p.diagnostics
                .iter()
                .any(|d| d.code == Code::RecursiveDefinition)
        );
        let p = pre("$A=x $A\nk $A\n");
        assert!(
            p.diagnostics
                .iter()
                .any(|d| d.code == Code::RecursiveDefinition)
        );
    }

    #[test]
    fn undefined_definition_is_kept() {
        let p = pre("k $NOPE\n");
        assert_eq!(render(&p), ["k|$NOPE"]);
        assert_eq!(p.diagnostics[0].code, Code::UndefinedDefinition);
    }

    #[test]
    fn conditionals() {
        let p = pre("@lb1 a\n@lb2 b\n@^lb1 c\n@^lb2 d\n@lb1\n");
        assert_eq!(render(&p), ["a", "d"]);
    }

    #[test]
    fn seq_and_lst() {
        let p = pre("~SEQ(i, 3) k $i\n~SEQx(h, 9, 3, 15) h $h\n~SEQ(i,2,1) d $i\n");
        assert_eq!(
            render(&p),
            ["k|1", "k|2", "k|3", "h|9", "h|c", "h|f", "d|2", "d|1"]
        );
        let p = pre("~LST(v, a, b) x $v\n~LST({P,Q}, {1,2}, {3}) y $P $Q\n");
        assert_eq!(render(&p), ["x|a", "x|b", "y|1|2", "y|3"]);
        let p = pre("~SEQ(i, 1, 0, 5) k\n");
        assert_eq!(p.diagnostics[0].code, Code::InvalidLoop);
    }

    #[test]
    fn nested_loops() {
        let p = pre("~SEQ(i, 2) ~SEQ(j, 2) k $i $j\n");
        assert_eq!(render(&p), ["k|1|1", "k|1|2", "k|2|1", "k|2|2"]);
    }

    #[test]
    fn predefined() {
        let p = pre("k ${_INSTANCE} $_PWD \"${_HASH}\" ${_RANDOM 5 5}\n");
        assert_eq!(render(&p), ["k|lb1|/etc|#|5"]);
    }

    #[test]
    fn includes_globs_braces_and_loops() {
        let mut fs = MemFs::new();
        fs.insert("/etc/k/main.conf", "a\ninclude conf.d/*.conf\ninclude {x,y}.inc\ninclude missing.conf\ninclude main.conf\n");
        fs.insert("/etc/k/conf.d/2.conf", "two\n");
        fs.insert("/etc/k/conf.d/1.conf", "one\n");
        fs.insert("/etc/k/x.inc", "x\n");
        fs.insert("/etc/k/y.inc", "y\n");
        let opts = PreprocessOptions::default();
        let p = preprocess(&fs, Path::new("/etc/k/main.conf"), &opts);
        assert_eq!(render(&p), ["a", "one", "two", "x", "y"]);
        let codes: Vec<_> = p.diagnostics.iter().map(|d| (d.code, d.class)).collect();
        assert_eq!(
            codes,
            [
                (Code::Include, None),
                (Code::IncludeLoop, Some(KeepalivedClass::Fatal))
            ]
        );
        // The included file's tokens carry their own file and line.
        let l = p.line(&p.items[2]).unwrap();
        assert_eq!(p.sources.name(l.span.file), "/etc/k/conf.d/2.conf");
        assert_eq!(l.span.line, 1);
    }

    #[test]
    fn include_check_makes_missing_an_error() {
        let mut fs = MemFs::new();
        fs.insert("/k.conf", "include_check\ninclude nope.conf\n");
        let p = preprocess(&fs, Path::new("/k.conf"), &PreprocessOptions::default());
        assert_eq!(p.diagnostics[0].class, Some(KeepalivedClass::FileNotFound));
    }

    #[test]
    fn fast_path_matches_general_path() {
        // A trailing comment sends every line through the general path.
        let plain = "vrrp_instance V { state MASTER }\n  virtual_server 10.0.0.1 80 {\n\tdelay_loop 6 }\n}}{ x\n notify_master /bin/a b\n a{b}c\t\n\n   \nk v\r\n    four\n         nine {\n        }\n    \t x\n";
        let commented: String = plain.lines().map(|l| format!("{l} # c\n")).collect();
        let a = pre(plain);
        let b = pre(&commented);
        assert_eq!(a.items, b.items);
        assert_eq!(a.words, b.words);
        assert_eq!(a.raw, b.raw);
        assert!(a.items.len() > 10);
    }

    #[test]
    fn directives_after_a_brace_are_directives() {
        // A brace starts a new logical line: `@id` applies to the rest.
        let p = pre("k {@lb2 y\nm {@lb1 z\n");
        assert_eq!(render(&p), ["k", "{", "m", "{", "z"]);
    }

    #[test]
    fn expansion_to_nothing_is_no_line() {
        // Found by the fuzzer: a definition expanding to an empty line.
        let p = pre("$E=\n$E\n${E}\nk\n");
        assert_eq!(render(&p), ["k"]);
    }

    #[test]
    fn keeps_raw_is_the_script_keywords() {
        let mut kept = Vec::new();
        for ctx in crate::tree::Context::ALL {
            for k in crate::keywords::all(ctx) {
                let plain = k.contains("script")
                    || k.starts_with("notify")
                    || matches!(k, "misc_path" | "quorum_up" | "quorum_down");
                assert_eq!(keeps_raw(k), plain, "{k}");
                if plain {
                    kept.push(k);
                }
            }
        }
        assert!(kept.contains(&"track_script") && kept.contains(&"notify_master"));
        assert!(keeps_raw("xscript") && !keeps_raw("scrip") && !keeps_raw("10.0.0.1"));
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_token_stays_small() {
        // One per word: the big configurations hold hundreds of thousands.
        assert_eq!(std::mem::size_of::<Token>(), 40);
    }

    #[test]
    fn brace_expansion() {
        assert_eq!(expand_braces("a{b,c{d,e}}f"), ["abf", "acdf", "acef"]);
        assert_eq!(expand_braces("plain"), ["plain"]);
    }
}
