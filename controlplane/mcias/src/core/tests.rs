//! Unit tests of the core, against a temporary store: no processes.
