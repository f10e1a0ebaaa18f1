//! A keepalived.conf parser: the whole grammar, a typed model, and
//! diagnostics that point at the right line across included files.
//!
//! This crate is being built in stages; this stage holds the lexer and
//! preprocessor ([`preprocess`]), positions ([`source`]) and diagnostics
//! ([`diag`]).

pub mod diag;
pub mod preprocess;
pub mod source;
