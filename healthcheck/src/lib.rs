//! Real-server health checks with keepalived's retry and quorum semantics.
