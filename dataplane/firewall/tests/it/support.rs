//! Builds real `.mmdb` files with the Perl MaxMind DB writer.

use std::path::{Path, PathBuf};
use std::process::Command;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/make-mmdb.pl");

const INSTALL_HINT: &str = "the GeoIP tests build real MaxMind DB files with perl and \
    MaxMind::DB::Writer::Tree: run scripts/test, or `apt-get install -y perl \
    libmaxmind-db-writer-perl`";

/// Writes `dir/name` as a GeoIP2-Country database with the given
/// `NETWORK=CC` records and returns its path. Panics (fails the test) if
/// perl or the writer module is missing.
pub(crate) fn make_mmdb(dir: &Path, name: &str, specs: &[&str]) -> PathBuf {
    make_mmdb_typed(dir, name, specs, None)
}

/// As [`make_mmdb`], with another `database_type`.
pub(crate) fn make_mmdb_typed(
    dir: &Path,
    name: &str,
    specs: &[&str],
    database_type: Option<&str>,
) -> PathBuf {
    let out = dir.join(name);
    let mut cmd = Command::new("perl");
    cmd.arg(SCRIPT).arg(&out).args(specs);
    if let Some(t) = database_type {
        cmd.env("MMDB_DATABASE_TYPE", t);
    }
    let output = match cmd.output() {
        Ok(output) => output,
        Err(e) => panic!("cannot run perl ({e}): {INSTALL_HINT}"),
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("Can't locate MaxMind/DB/Writer"),
        "MaxMind::DB::Writer::Tree is not installed: {INSTALL_HINT}\n{stderr}"
    );
    assert!(
        output.status.success(),
        "make-mmdb.pl failed ({}):\n{stderr}",
        output.status
    );
    out
}
