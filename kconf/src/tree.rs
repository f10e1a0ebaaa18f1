//! The block tree: preprocessed items grouped into keyword nodes and blocks,
//! with keepalived's keyword tables, brace checking and error recovery.
//!
//! keepalived reads blocks with a table of keywords for each block
//! (`process_stream` in `lib/parser.c`). This module does the same and
//! reports the same problems, with two improvements that do not change the
//! exit code:
//!
//! * an unknown keyword followed by a block skips that block whole
//!   (keepalived instead reads its contents as part of the parent block and
//!   lets its `}` close the parent);
//! * a keyword that is not valid here but is valid in an enclosing block
//!   means a `}` is missing: the error points at the `{` that was never
//!   closed, and parsing resumes in the enclosing block.

use bumpalo::Bump;
use serde::Serialize;

use crate::diag::{Code, Diagnostic, KeepalivedClass};
use crate::keywords;
use crate::preprocess::{Item, Line, Preprocessed, Token};
use crate::source::Span;

/// Which keyword table a block uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub enum Context {
    /// The top level of the file.
    Top,
    /// `global_defs`.
    GlobalDefs,
    /// `vrrp_instance`.
    VrrpInstance,
    /// `authentication` inside `vrrp_instance`.
    Authentication,
    /// `vrrp_sync_group`.
    VrrpSyncGroup,
    /// `vrrp_script`.
    VrrpScript,
    /// `vrrp_track_file`.
    VrrpTrackFile,
    /// `vrrp_track_process`.
    VrrpTrackProcess,
    /// `garp_group`.
    GarpGroup,
    /// `bfd_instance`.
    BfdInstance,
    /// `virtual_server`.
    VirtualServer,
    /// `real_server`.
    RealServer,
    /// `TCP_CHECK`.
    TcpCheck,
    /// `HTTP_GET`.
    HttpGet,
    /// `SSL_GET`.
    SslGet,
    /// `SMTP_CHECK`.
    SmtpCheck,
    /// `DNS_CHECK`.
    DnsCheck,
    /// `MISC_CHECK`.
    MiscCheck,
    /// `UDP_CHECK`.
    UdpCheck,
    /// `PING_CHECK`.
    PingCheck,
    /// `FILE_CHECK`.
    FileCheck,
    /// `BFD_CHECK`.
    BfdCheck,
    /// `url` inside `HTTP_GET` / `SSL_GET`.
    Url,
    /// `host` inside `SMTP_CHECK`.
    SmtpHost,
    /// The top-level `SSL` block.
    Ssl,
}

impl Context {
    /// The keyword that opens this block (for messages).
    pub fn name(self) -> &'static str {
        match self {
            Context::Top => "top level",
            Context::GlobalDefs => "global_defs",
            Context::VrrpInstance => "vrrp_instance",
            Context::Authentication => "authentication",
            Context::VrrpSyncGroup => "vrrp_sync_group",
            Context::VrrpScript => "vrrp_script",
            Context::VrrpTrackFile => "vrrp_track_file",
            Context::VrrpTrackProcess => "vrrp_track_process",
            Context::GarpGroup => "garp_group",
            Context::BfdInstance => "bfd_instance",
            Context::VirtualServer => "virtual_server",
            Context::RealServer => "real_server",
            Context::TcpCheck => "TCP_CHECK",
            Context::HttpGet => "HTTP_GET",
            Context::SslGet => "SSL_GET",
            Context::SmtpCheck => "SMTP_CHECK",
            Context::DnsCheck => "DNS_CHECK",
            Context::MiscCheck => "MISC_CHECK",
            Context::UdpCheck => "UDP_CHECK",
            Context::PingCheck => "PING_CHECK",
            Context::FileCheck => "FILE_CHECK",
            Context::BfdCheck => "BFD_CHECK",
            Context::Url => "url",
            Context::SmtpHost => "host",
            Context::Ssl => "SSL",
        }
    }

    /// Every context, for searching where a keyword belongs.
    pub const ALL: [Context; 25] = [
        Context::Top,
        Context::GlobalDefs,
        Context::VrrpInstance,
        Context::Authentication,
        Context::VrrpSyncGroup,
        Context::VrrpScript,
        Context::VrrpTrackFile,
        Context::VrrpTrackProcess,
        Context::GarpGroup,
        Context::BfdInstance,
        Context::VirtualServer,
        Context::RealServer,
        Context::TcpCheck,
        Context::HttpGet,
        Context::SslGet,
        Context::SmtpCheck,
        Context::DnsCheck,
        Context::MiscCheck,
        Context::UdpCheck,
        Context::PingCheck,
        Context::FileCheck,
        Context::BfdCheck,
        Context::Url,
        Context::SmtpHost,
        Context::Ssl,
    ];
}

/// What follows a keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Nothing: the keyword and its arguments are the whole line.
    Plain,
    /// A `{ … }` block of value lines (addresses, names…).
    Values,
    /// A `{ … }` block of keywords with its own table.
    Block(Context),
}

/// One keyword line, with its block if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node<'a> {
    /// The line's words: the keyword, then its arguments (never empty),
    /// borrowed from the preprocessor's word buffer.
    pub words: &'a [Token],
    /// The whole line as written (script keywords re-split it).
    pub raw: &'a str,
    /// The block that follows, if any.
    pub body: Body<'a>,
}

impl<'a> Node<'a> {
    /// The keyword text.
    pub fn name(&self) -> &str {
        &self.keyword().text
    }

    /// The keyword.
    pub fn keyword(&self) -> &'a Token {
        &self.words[0]
    }

    /// The words after the keyword.
    pub fn args(&self) -> &'a [Token] {
        &self.words[1..]
    }
}

/// The block after a keyword: slices of the arena the tree is built in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body<'a> {
    /// No block.
    None,
    /// Value lines.
    Values(&'a [Line<'a>]),
    /// Keyword nodes.
    Block(&'a [Node<'a>]),
}

impl<'a> Body<'a> {
    /// The nodes of a keyword block (empty for other bodies).
    pub fn nodes(&self) -> &'a [Node<'a>] {
        match self {
            Body::Block(n) => n,
            _ => &[],
        }
    }

    /// The value lines of a value block (empty for other bodies).
    pub fn values(&self) -> &'a [Line<'a>] {
        match self {
            Body::Values(v) => v,
            _ => &[],
        }
    }
}

/// An open block: its keyword line and the nodes read so far.
struct Frame<'a> {
    ctx: Context,
    /// The keyword and its arguments (none for the top level).
    words: &'a [Token],
    raw: &'a str,
    open: Option<Span>,
    /// Where this block's nodes start in [`Builder::pending`].
    first: usize,
}

/// Groups items into a tree of nodes, reporting brace and keyword problems.
/// The nodes borrow their words from `pre`; each block's nodes are one slice
/// of `arena` (no allocation per block, nothing to free node by node).
pub fn build<'a>(
    pre: &'a Preprocessed,
    arena: &'a Bump,
    diags: &mut Vec<Diagnostic>,
) -> &'a [Node<'a>] {
    let mut b = Builder {
        pre,
        arena,
        pending: Vec::new(),
        values: Vec::new(),
        pos: 0,
        diags,
        missing_close_reported: false,
    };
    b.run()
}

/// An arena sized for the tree of `pre`: at most one node or value line
/// per item (pages of it that stay unused are never touched).
pub fn arena_for(pre: &Preprocessed) -> Bump {
    Bump::with_capacity(pre.items.len() * std::mem::size_of::<Node<'_>>())
}

struct Builder<'a, 'd> {
    pre: &'a Preprocessed,
    arena: &'a Bump,
    /// The nodes of the open blocks, innermost last: each block's nodes
    /// are its tail from [`Frame::first`] on (one buffer instead of a
    /// growing vector per block).
    pending: Vec<Node<'a>>,
    /// The value lines of the value block being read.
    values: Vec<Line<'a>>,
    pos: usize,
    diags: &'d mut Vec<Diagnostic>,
    missing_close_reported: bool,
}

impl<'a> Builder<'a, '_> {
    /// Closes the innermost block: its nodes, the tail of
    /// [`Builder::pending`], move into one slice of the arena.
    fn close_frame(&mut self, stack: &mut Vec<Frame<'a>>) {
        let Some(f) = stack.pop() else { return };
        let nodes = self
            .arena
            .alloc_slice_fill_iter(self.pending.drain(f.first..));
        self.pending.push(Node {
            words: f.words,
            raw: f.raw,
            body: Body::Block(nodes),
        });
    }

    fn items(&self) -> &'a [Item] {
        &self.pre.items
    }

    fn run(&mut self) -> &'a [Node<'a>] {
        let mut stack: Vec<Frame<'a>> = vec![Frame {
            ctx: Context::Top,
            words: &[],
            raw: "",
            open: None,
            first: 0,
        }];
        let items = self.items();
        while let Some(item) = items.get(self.pos) {
            self.pos += 1;
            match item {
                Item::Close(span) => {
                    if stack.len() > 1 {
                        self.close_frame(&mut stack);
                    } else {
                        self.diags.push(Diagnostic::error(
                            Code::UnexpectedClose,
                            KeepalivedClass::UnexpectedClose,
                            *span,
                            "extra `}` with no block to close",
                        ));
                    }
                }
                Item::Open(span) => {
                    let d = Diagnostic::error(
                        Code::UnexpectedOpen,
                        KeepalivedClass::UnexpectedOpen,
                        *span,
                        "unexpected `{`: no block keyword before it",
                    );
                    self.diags.push(d);
                    self.skip_block();
                }
                Item::Line { .. } => {
                    if let Some(line) = self.pre.line(item) {
                        self.line(line, &mut stack);
                    }
                }
            }
        }
        // End of input with blocks still open.
        while stack.len() > 1 {
            if let Some(f) = stack.last()
                && let Some(kw) = f.words.first()
            {
                self.report_unclosed(f.open, kw, None);
            }
            self.close_frame(&mut stack);
        }
        self.arena.alloc_slice_fill_iter(self.pending.drain(..))
    }

    fn report_unclosed(&mut self, open: Option<Span>, kw: &Token, revealed_by: Option<&Token>) {
        let at = open.unwrap_or(kw.span);
        let mut d = Diagnostic::error(
            Code::MissingClose,
            KeepalivedClass::MissingClose,
            at,
            format!("block `{}` is never closed: missing `}}`", kw.text),
        )
        .with_label(kw.span, "this block");
        if let Some(t) = revealed_by {
            d = d.with_label(
                t.span,
                format!(
                    "`{}` belongs to an enclosing block, so the `}}` is missing before it",
                    t.text
                ),
            );
            d.help = Some(format!("add `}}` to close `{}` before this line", kw.text));
        } else {
            d.help = Some(format!("add `}}` at the end of the `{}` block", kw.text));
        }
        // keepalived counts all missing braces in one message; our per-block
        // errors carry the same class.
        self.missing_close_reported = true;
        self.diags.push(d);
    }

    /// Skips a balanced `{ … }` whose `{` has just been consumed.
    fn skip_block(&mut self) {
        let mut depth = 1usize;
        while let Some(item) = self.items().get(self.pos) {
            match item {
                Item::Open(_) => depth += 1,
                Item::Close(_) => {
                    depth -= 1;
                    if depth == 0 {
                        self.pos += 1;
                        return;
                    }
                }
                Item::Line { .. } => {}
            }
            self.pos += 1;
        }
    }

    fn next_is_open(&self) -> Option<Span> {
        match self.items().get(self.pos) {
            Some(Item::Open(s)) => Some(*s),
            _ => None,
        }
    }

    fn line(&mut self, line: Line<'a>, stack: &mut Vec<Frame<'a>>) {
        let Some(kw) = line.tokens.first() else {
            return;
        };
        let ctx = stack.last().map(|f| f.ctx).unwrap_or(Context::Top);
        let kind = match keywords::lookup(ctx, &kw.text) {
            Some(k) => k,
            None => {
                // Valid in an enclosing block? Then `}`s are missing.
                let ancestor = (0..stack.len().saturating_sub(1))
                    .rev()
                    .find(|i| keywords::lookup(stack[*i].ctx, &kw.text).is_some());
                if let Some(target) = ancestor {
                    while stack.len() > target + 1 {
                        if let Some(f) = stack.last()
                            && let Some(k) = f.words.first()
                        {
                            self.report_unclosed(f.open, k, Some(kw));
                        }
                        self.close_frame(stack);
                    }
                    self.line(line, stack);
                    return;
                }
                self.unknown(kw, ctx);
                if self.next_is_open().is_some() {
                    self.pos += 1;
                    self.skip_block();
                }
                return;
            }
        };
        let Line {
            tokens: words, raw, ..
        } = line;
        match kind {
            Kind::Plain => {
                if let Some(open) = self.next_is_open() {
                    let kw = &words[0];
                    self.pos += 1;
                    self.diags.push(
                        Diagnostic::error(
                            Code::UnexpectedOpen,
                            KeepalivedClass::UnexpectedOpen,
                            open,
                            format!("`{}` does not take a block", kw.text),
                        )
                        .with_label(kw.span, "this keyword takes no `{ … }`"),
                    );
                    self.skip_block();
                }
                self.pending.push(Node {
                    words,
                    raw,
                    body: Body::None,
                });
            }
            Kind::Values => {
                let kw = &words[0];
                let open = self.next_is_open();
                if open.is_some() {
                    self.pos += 1;
                } else {
                    // keepalived only logs this and reads the lines anyway.
                    self.diags.push(Diagnostic::warning(
                        Code::MissingOpen,
                        kw.span,
                        format!("`{{` missing after `{}`", kw.text),
                    ));
                }
                let values = self.values(kw, open, stack);
                self.pending.push(Node {
                    words,
                    raw,
                    body: Body::Values(values),
                });
            }
            Kind::Block(sub) => {
                let kw = &words[0];
                let open = self.next_is_open();
                if open.is_some() {
                    self.pos += 1;
                } else {
                    self.diags.push(Diagnostic::error(
                        Code::MissingOpen,
                        KeepalivedClass::MissingOpen,
                        kw.span,
                        format!("`{{` missing after block keyword `{}`", kw.text),
                    ));
                }
                // The node itself is attached when the frame closes.
                stack.push(Frame {
                    ctx: sub,
                    words,
                    raw,
                    open,
                    first: self.pending.len(),
                });
            }
        }
    }

    /// Reads value lines up to the closing `}`.
    fn values(
        &mut self,
        kw: &Token,
        open: Option<Span>,
        stack: &mut [Frame<'a>],
    ) -> &'a [Line<'a>] {
        self.values.clear();
        while let Some(item) = self.items().get(self.pos) {
            match item {
                Item::Close(_) => {
                    self.pos += 1;
                    return self.arena.alloc_slice_copy(&self.values);
                }
                Item::Open(s) => {
                    self.diags.push(Diagnostic::error(
                        Code::UnexpectedOpen,
                        KeepalivedClass::UnexpectedOpen,
                        *s,
                        format!("unexpected `{{` inside `{}`", kw.text),
                    ));
                    self.pos += 1;
                    self.skip_block();
                }
                Item::Line { .. } => {
                    let Some(l) = self.pre.line(item) else {
                        self.pos += 1;
                        continue;
                    };
                    let first = &l.tokens[0];
                    let belongs_outside = !looks_like_value(&first.text)
                        && stack
                            .iter()
                            .any(|f| keywords::lookup(f.ctx, &first.text).is_some());
                    if belongs_outside {
                        self.report_unclosed(open, kw, Some(first));
                        return self.arena.alloc_slice_copy(&self.values);
                    }
                    self.pos += 1;
                    self.values.push(l);
                }
            }
        }
        self.report_unclosed(open, kw, None);
        self.arena.alloc_slice_copy(&self.values)
    }

    fn unknown(&mut self, kw: &Token, ctx: Context) {
        let mut d = Diagnostic::error(
            Code::UnknownKeyword,
            KeepalivedClass::UnknownKeyword,
            kw.span,
            format!("unknown keyword `{}` in {}", kw.text, ctx.name()),
        );
        if let Some(s) = suggest(ctx, &kw.text) {
            d.help = Some(format!("did you mean `{s}`?"));
        } else if let Some(other) = Context::ALL
            .iter()
            .find(|c| **c != ctx && keywords::lookup(**c, &kw.text).is_some())
        {
            d.help = Some(format!(
                "`{}` is a keyword of `{}`, not of {}",
                kw.text,
                other.name(),
                ctx.name()
            ));
        }
        self.diags.push(d);
    }
}

/// A value line starts with an address, a number or a name that is not a
/// keyword; used to tell a forgotten `}` from a value.
fn looks_like_value(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_digit() || c == ':' || c == '[')
        || s.parse::<std::net::IpAddr>().is_ok()
}

/// The closest keyword of `ctx` to `word`, if close enough to be a typo.
pub fn suggest(ctx: Context, word: &str) -> Option<&'static str> {
    let lower = word.to_ascii_lowercase();
    let mut best: Option<(usize, &'static str)> = None;
    for k in keywords::all(ctx) {
        let d = strsim::damerau_levenshtein(&lower, &k.to_ascii_lowercase());
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, k));
        }
    }
    let (d, k) = best?;
    let limit = (word.len() / 3).clamp(1, 3);
    (d <= limit).then_some(k)
}
