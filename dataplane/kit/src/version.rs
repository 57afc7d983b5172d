//! Build identity, baked in by `build.rs` from `git describe`.

/// `git describe --tags --always --dirty` of the tree this binary was built from.
pub const GIT_DESCRIBE: &str = env!("MC_GIT_DESCRIBE");

/// The crate version plus the commit, e.g. `0.1.0 (a1b2c3d-dirty)`: what `--version` prints.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("MC_GIT_DESCRIBE"),
    ")"
);
