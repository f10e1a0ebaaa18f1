//! A keepalived.conf parser: the whole grammar, a typed model, and
//! diagnostics that point at the right line across included files.
