//! Diagnostics: what went wrong, where, how bad it is for keepalived, and how
//! to show it (terminal snippets or JSON).

use serde::Serialize;

use crate::source::{SourceMap, Span};

/// How bad a diagnostic is for the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The configuration is wrong; keepalived reports it as a config error.
    Error,
    /// Probably a mistake, or something lvskit ignores.
    Warning,
    /// Extra information.
    Note,
}

/// keepalived's own classification of a configuration problem
/// (`config_err_t` in keepalived's `lib/parser.h`, in the same order).
///
/// `keepalived -t` keeps the *highest* class it has seen and maps it to its
/// exit code; [`exit_code`] does the same, so the codes match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum KeepalivedClass {
    /// A configuration file could not be found or read.
    FileNotFound = 1,
    /// An interface the configuration needs does not exist.
    BadInterface = 2,
    /// keepalived cannot run this configuration.
    Fatal = 3,
    /// More than one file matched the main configuration path.
    MultipleFiles = 4,
    /// A keyword that is not valid here.
    UnknownKeyword = 5,
    /// A `{` where none is expected.
    UnexpectedOpen = 6,
    /// A block keyword without its `{`.
    MissingOpen = 7,
    /// A `}` with no open block.
    UnexpectedClose = 8,
    /// End of input with blocks still open.
    MissingClose = 9,
    /// A `"` without its partner.
    UnmatchedQuote = 10,
    /// A keyword without a parameter it needs.
    MissingParameter = 11,
    /// A number that is malformed or out of range.
    InvalidNumber = 12,
    /// Any other configuration error.
    General = 13,
    /// A warning that keepalived still counts as a configuration problem.
    Warning = 14,
    /// A deprecated keyword or form.
    Deprecated = 15,
    /// Scripts would run while `enable_script_security` is off.
    Security = 16,
}

/// What the exit code of `keepalived -t` would be for these diagnostics:
/// 0 OK, 4 cannot run, 5 errors but would run, 6 script security.
///
/// A diagnostic that [aborts](Diagnostic::aborts) the parse gives 4: keepalived
/// 2.2.7 stops there (its `-t` then reports 2, a crash code; see the crate
/// documentation's list of deliberate differences).
pub fn exit_code<'a>(diagnostics: impl IntoIterator<Item = &'a Diagnostic>) -> i32 {
    let mut max = None;
    for d in diagnostics {
        if d.aborts {
            return 4;
        }
        max = max.max(d.class);
    }
    match max {
        None => 0,
        Some(c) if c <= KeepalivedClass::Fatal => 4,
        Some(KeepalivedClass::Security) => 6,
        Some(_) => 5,
    }
}

/// A stable machine-readable identifier of a kind of diagnostic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Code {
    /// A keyword not valid in this block.
    UnknownKeyword,
    /// A `{` after a keyword that takes no block.
    UnexpectedOpen,
    /// A block keyword not followed by `{`.
    MissingOpen,
    /// A `}` with nothing to close.
    UnexpectedClose,
    /// A block never closed.
    MissingClose,
    /// A `"` not closed on its line.
    UnmatchedQuote,
    /// A keyword without a needed parameter.
    MissingParameter,
    /// A malformed or out-of-range number.
    InvalidNumber,
    /// A malformed IP address or prefix.
    InvalidAddress,
    /// A value not among those allowed.
    InvalidValue,
    /// An include that matched nothing, or could not be read.
    Include,
    /// A file that includes itself, directly or not.
    IncludeLoop,
    /// A definition that expands to itself forever.
    RecursiveDefinition,
    /// `$NAME` with no definition: kept literally.
    UndefinedDefinition,
    /// A malformed `~SEQ` or `~LST`.
    InvalidLoop,
    /// An interface that does not exist on this machine.
    MissingInterface,
    /// A script that is missing, not executable or unsafe.
    Script,
    /// Scripts would run without `enable_script_security`.
    ScriptSecurity,
    /// A keyword keepalived knows and lvskit keeps but does not act on.
    NotSupported,
    /// A semantic problem in the configuration (missing address, duplicate…).
    Semantic,
    /// An input limit was reached (size, nesting, expansions).
    Limit,
}

/// One problem found in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// How bad it is.
    pub severity: Severity,
    /// Which kind of problem.
    pub code: Code,
    /// keepalived's class for the same problem, if keepalived reports it as a
    /// configuration error (this decides the exit code).
    pub class: Option<KeepalivedClass>,
    /// One-line description.
    pub message: String,
    /// Where the problem is.
    pub span: Option<Span>,
    /// Other places that explain it.
    pub labels: Vec<(Span, String)>,
    /// A suggestion ("did you mean …").
    pub help: Option<String>,
    /// keepalived stops reading the configuration here (a keyword without a
    /// parameter it needs): it cannot run the configuration at all.
    pub aborts: bool,
}

impl Diagnostic {
    /// A new diagnostic.
    pub fn new(
        severity: Severity,
        code: Code,
        class: Option<KeepalivedClass>,
        span: Option<Span>,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            severity,
            code,
            class,
            message: message.into(),
            span,
            labels: Vec::new(),
            help: None,
            aborts: false,
        }
    }

    /// An error that keepalived classifies as `class`.
    pub fn error(
        code: Code,
        class: KeepalivedClass,
        span: Span,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic::new(Severity::Error, code, Some(class), Some(span), message)
    }

    /// A warning that does not change keepalived's exit code.
    pub fn warning(code: Code, span: Span, message: impl Into<String>) -> Self {
        Diagnostic::new(Severity::Warning, code, None, Some(span), message)
    }

    /// Adds a help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a secondary label.
    pub fn with_label(mut self, span: Span, text: impl Into<String>) -> Self {
        self.labels.push((span, text.into()));
        self
    }
}

/// Renders diagnostics as terminal text with source snippets
/// (codespan-reporting), without colours.
pub fn render(sources: &SourceMap, diagnostics: &[Diagnostic]) -> String {
    use codespan_reporting::diagnostic::{Diagnostic as CsDiag, Label};
    use codespan_reporting::files::SimpleFiles;
    use codespan_reporting::term::{self, Config};

    // Only the files the diagnostics point into: codespan indexes the lines
    // of each file it is given, which costs as much as reading it again.
    let mut files = SimpleFiles::new();
    let mut ids: Vec<Option<usize>> = vec![None; sources.files().len()];
    let spans = diagnostics
        .iter()
        .flat_map(|d| d.span.iter().chain(d.labels.iter().map(|(s, _)| s)));
    for span in spans {
        if let (Some(slot), Some(f)) = (ids.get_mut(span.file.0 as usize), sources.get(span.file))
            && slot.is_none()
        {
            *slot = Some(files.add(f.path.display().to_string(), f.text.as_str()));
        }
    }
    let label = |span: &Span, primary: bool, text: &str| -> Option<Label<usize>> {
        let file = sources.get(span.file)?;
        let range = file.byte_range(span);
        let id = (*ids.get(span.file.0 as usize)?)?;
        let l = if primary {
            Label::primary(id, range)
        } else {
            Label::secondary(id, range)
        };
        Some(l.with_message(text))
    };
    let mut out = term::termcolor::NoColor::new(Vec::new());
    let config = Config::default();
    for d in diagnostics {
        let mut cs = match d.severity {
            Severity::Error => CsDiag::error(),
            Severity::Warning => CsDiag::warning(),
            Severity::Note => CsDiag::note(),
        }
        .with_message(&d.message)
        .with_code(code_name(d.code));
        let mut labels = Vec::new();
        if let Some(s) = &d.span {
            labels.extend(label(s, true, ""));
        }
        for (s, t) in &d.labels {
            labels.extend(label(s, false, t));
        }
        cs = cs.with_labels(labels);
        if let Some(h) = &d.help {
            cs = cs.with_notes(vec![format!("help: {h}")]);
        }
        // Rendering into a Vec cannot fail except on a bad span, which
        // byte_range clamps; fall back to the plain message just in case.
        if term::emit_to_write_style(&mut out, &config, &files, &cs).is_err() {
            let _ = std::io::Write::write_all(out.get_mut(), format!("{}\n", d.message).as_bytes());
        }
    }
    String::from_utf8_lossy(&out.into_inner()).into_owned()
}

/// The kebab-case name of a code, as it appears in JSON and in rendered text.
pub fn code_name(code: Code) -> String {
    serde_json::to_value(code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// One diagnostic in the JSON form for tools.
#[derive(Debug, Serialize)]
struct JsonDiagnostic<'a> {
    severity: Severity,
    code: Code,
    keepalived_class: Option<KeepalivedClass>,
    message: &'a str,
    file: Option<String>,
    line: Option<u32>,
    column: Option<u32>,
    help: Option<&'a str>,
    related: Vec<JsonRelated>,
}

#[derive(Debug, Serialize)]
struct JsonRelated {
    file: String,
    line: u32,
    column: u32,
    message: String,
}

/// Diagnostics as a JSON document for tools: `{"exit_code": N, "diagnostics": [...]}`.
pub fn to_json(sources: &SourceMap, diagnostics: &[Diagnostic]) -> serde_json::Value {
    let list: Vec<JsonDiagnostic<'_>> = diagnostics
        .iter()
        .map(|d| JsonDiagnostic {
            severity: d.severity,
            code: d.code,
            keepalived_class: d.class,
            message: &d.message,
            file: d.span.map(|s| sources.name(s.file)),
            line: d.span.map(|s| s.line),
            column: d.span.map(|s| s.col),
            help: d.help.as_deref(),
            related: d
                .labels
                .iter()
                .map(|(s, m)| JsonRelated {
                    file: sources.name(s.file),
                    line: s.line,
                    column: s.col,
                    message: m.clone(),
                })
                .collect(),
        })
        .collect();
    serde_json::json!({
        "exit_code": exit_code(diagnostics),
        "diagnostics": list,
    })
}
