//! The served tree: what a walk of the site directory found, keyed by the
//! URL path that serves it.
//!
//! Invariants: a key is a `/`-joined path of names the walk itself read
//! from the directory (no `.`/`..`, no hidden entries, no symlinks
//! followed), so a request can only name what the walk found: path
//! traversal has nothing to resolve. A file is opened again only through
//! [`Tree::read`], which refuses a symlink or non-regular file in its
//! place. The walk is bounded (entries, depth, file size).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// At most this many files and directories are served.
pub(crate) const MAX_ENTRIES: usize = 10_000;
/// Directories deeper than this are not walked.
pub(crate) const MAX_DEPTH: usize = 16;
/// Larger files are skipped (logged once per walk).
pub(crate) const MAX_FILE: u64 = 4 << 20;

/// What a file is served as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `.md`: rendered.
    Markdown,
    /// An image or text file, served as is with this content type.
    Asset(&'static str),
}

/// Whether a served file changed: its size and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) len: u64,
    pub(crate) modified: Option<SystemTime>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct File {
    /// Relative to the root, as walked (`design/mcp.md`).
    pub(crate) rel: String,
    pub(crate) kind: Kind,
    pub(crate) stamp: Stamp,
}

/// The walk's result. Pages are keyed without `.md` (`design/mcp`);
/// assets by their file name (`img/a.png`); directories by their path
/// (`design`, the root is `""`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Tree {
    pub(crate) files: BTreeMap<String, File>,
    pub(crate) dirs: BTreeMap<String, ()>,
    pub(crate) skipped: usize,
}

fn asset_type(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "txt" => "text/plain; charset=utf-8",
        _ => return None,
    })
}

/// `name` ends in `.md`, case-insensitively; the stem.
pub(crate) fn md_stem(name: &str) -> Option<&str> {
    let cut = name.len().checked_sub(3)?;
    let (stem, ext) = (name.get(..cut)?, name.get(cut..)?);
    (ext.eq_ignore_ascii_case(".md") && !stem.is_empty()).then_some(stem)
}

impl Tree {
    /// Walks `root` (bounded; hidden entries and symlinks skipped).
    pub(crate) fn walk(root: &Path) -> std::io::Result<Self> {
        let mut tree = Tree::default();
        tree.dirs.insert(String::new(), ());
        // Depth first, names sorted: the same tree gives the same result.
        let mut todo: Vec<(PathBuf, String, usize)> = vec![(root.to_owned(), String::new(), 0)];
        let mut first = true;
        while let Some((dir, prefix, depth)) = todo.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                // The root must be readable; a subdirectory may vanish mid-walk.
                Err(e) if first => return Err(e),
                Err(_) => continue,
            };
            first = false;
            let mut names: Vec<(String, std::fs::Metadata)> = Vec::new();
            for e in entries.flatten() {
                let Ok(name) = e.file_name().into_string() else {
                    tree.skipped += 1;
                    continue;
                };
                if name.starts_with('.') || name.contains('/') {
                    continue;
                }
                // symlink_metadata: a symlink is never followed.
                if let Ok(meta) = e.path().symlink_metadata() {
                    names.push((name, meta));
                }
            }
            names.sort_by(|a, b| a.0.cmp(&b.0));
            for (name, meta) in names.into_iter().rev() {
                if tree.files.len() + tree.dirs.len() >= MAX_ENTRIES {
                    tree.skipped += 1;
                    continue;
                }
                let rel = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}/{name}")
                };
                if meta.is_dir() {
                    if depth + 1 < MAX_DEPTH {
                        tree.dirs.insert(rel.clone(), ());
                        todo.push((dir.join(&name), rel, depth + 1));
                    } else {
                        tree.skipped += 1;
                    }
                    continue;
                }
                if !meta.is_file() {
                    continue;
                }
                if meta.len() > MAX_FILE {
                    tracing::warn!(file = %rel, bytes = meta.len(), "larger than 4 MiB: not served");
                    tree.skipped += 1;
                    continue;
                }
                let stamp = Stamp {
                    len: meta.len(),
                    modified: meta.modified().ok(),
                };
                let (key, kind) = match (md_stem(&rel), asset_type(&name)) {
                    (Some(stem), _) => (stem.to_owned(), Kind::Markdown),
                    (None, Some(t)) => (rel.clone(), Kind::Asset(t)),
                    (None, None) => continue,
                };
                tree.files.insert(key, File { rel, kind, stamp });
            }
        }
        // Directories with nothing to serve below them are left out of the nav.
        let files: Vec<String> = tree.files.keys().cloned().collect();
        tree.dirs.retain(|d, _| {
            d.is_empty()
                || files.iter().any(|f| {
                    f.strip_prefix(d.as_str())
                        .is_some_and(|r| r.starts_with('/'))
                })
        });
        Ok(tree)
    }

    /// The page of directory `dir`: its `README.md` or `index.md`.
    pub(crate) fn dir_page(&self, dir: &str) -> Option<(&str, &File)> {
        ["README", "index", "readme"].iter().find_map(|n| {
            let key = if dir.is_empty() {
                (*n).to_owned()
            } else {
                format!("{dir}/{n}")
            };
            self.files.get_key_value(&key).map(|(k, f)| (k.as_str(), f))
        })
    }

    /// The bytes of `file` under `root`, refusing a symlink or anything but
    /// a regular file now in its place, and anything over [`MAX_FILE`].
    pub(crate) fn read(root: &Path, file: &File) -> std::io::Result<Vec<u8>> {
        use rustix::fs::{Mode, OFlags};
        use std::io::Read;
        let fd = rustix::fs::open(
            root.join(&file.rel),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let f = std::fs::File::from(fd);
        if !f.metadata()?.is_file() {
            return Err(std::io::Error::other("not a regular file"));
        }
        let mut out = Vec::new();
        f.take(MAX_FILE + 1).read_to_end(&mut out)?;
        if out.len() as u64 > MAX_FILE {
            return Err(std::io::Error::other("larger than 4 MiB"));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn the_walk_keys_pages_assets_and_dirs_and_skips_hidden_and_symlinks() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        write(root, "README.md", "# Home");
        write(root, "design/mcp.md", "# MCP");
        write(root, "design/x.PNG", "png");
        write(root, "notes.rs", "fn main() {}");
        write(root, ".git/config", "x");
        write(root, ".hidden.md", "x");
        write(root, "empty/other.bin", "x");
        std::os::unix::fs::symlink("/etc", root.join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", root.join("host.md")).unwrap();
        let t = Tree::walk(root).unwrap();
        let keys: Vec<&str> = t.files.keys().map(String::as_str).collect();
        assert_eq!(keys, ["README", "design/mcp", "design/x.PNG"]);
        assert_eq!(t.files["design/x.PNG"].kind, Kind::Asset("image/png"));
        let dirs: Vec<&str> = t.dirs.keys().map(String::as_str).collect();
        assert_eq!(dirs, ["", "design"]);
        assert_eq!(t.dir_page("").map(|p| p.0), Some("README"));
        assert_eq!(t.dir_page("design").map(|p| p.0), None);
        assert_eq!(Tree::read(root, &t.files["README"]).unwrap(), b"# Home");
    }

    #[test]
    fn a_file_replaced_by_a_symlink_is_not_read() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "a.md", "# A");
        let t = Tree::walk(d.path()).unwrap();
        std::fs::remove_file(d.path().join("a.md")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", d.path().join("a.md")).unwrap();
        assert!(Tree::read(d.path(), &t.files["a"]).is_err());
    }

    #[test]
    fn md_stems() {
        assert_eq!(md_stem("a.md"), Some("a"));
        assert_eq!(md_stem("d/A.MD"), Some("d/A"));
        assert_eq!(md_stem(".md"), None);
        assert_eq!(md_stem("amd"), None);
        assert_eq!(md_stem("é.md"), Some("é"));
    }
}
