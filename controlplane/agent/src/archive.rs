//! Service data as a tar archive: packing `/srv/<service>` and unpacking an
//! archive **confined** to a staging directory.
//!
//! Invariants of [`unpack`]: every entry lands inside `staging`; only
//! files, directories, symlinks and hard links are created; no entry is
//! written under a symlink or over an existing entry (files are created
//! with `O_EXCL`); a hard link's target is a file already unpacked; every
//! symlink, resolved through the tree's own symlinks, stays inside it;
//! entry count and content bytes are bounded. [`install`] swaps the
//! checked staging dir into place, so a refused archive writes nothing
//! under the service root.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use tar::EntryType;

/// Symlinks followed while resolving one (a loop is refused).
const MAX_HOPS: u32 = 40;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_entries: u64,
    pub max_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The archive is refused; nothing of it is installed.
    #[error("entry {entry}: {reason}")]
    Refused { entry: String, reason: String },
    #[error("archive: {0}")]
    Malformed(String),
    #[error("{0}")]
    Io(#[from] io::Error),
}

fn refused(entry: impl std::fmt::Display, reason: impl Into<String>) -> ArchiveError {
    ArchiveError::Refused {
        entry: entry.to_string(),
        reason: reason.into(),
    }
}

/// What an import unpacked.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Unpacked {
    pub entries: u64,
    pub bytes: u64,
}

/// Writes `dir` as a tar (paths relative to it, symlinks as symlinks, mode,
/// owner and mtime kept) to `out`.
pub fn pack(dir: &Path, out: impl Write) -> io::Result<()> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    b.append_dir_all(".", dir)?;
    b.into_inner()?.flush()
}

/// `p` as its normal components: refused when absolute or with `..`.
fn relative(p: &Path, what: &str) -> Result<PathBuf, ArchiveError> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => return Err(refused(p.display(), format!("{what} has `..`"))),
            Component::RootDir | Component::Prefix(_) => {
                return Err(refused(p.display(), format!("{what} is absolute")));
            }
        }
    }
    Ok(out)
}

/// Refuses `rel` when any directory above it in `staging` is a symlink or
/// not a directory; creates the missing ones.
fn parents(staging: &Path, rel: &Path) -> Result<(), ArchiveError> {
    let mut at = staging.to_path_buf();
    let Some(parent) = rel.parent() else {
        return Ok(());
    };
    for c in parent.components() {
        at.push(c);
        match fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_dir() => {}
            Ok(_) => return Err(refused(rel.display(), "lies under a symlink or a file")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => fs::create_dir(&at)?,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Permission bits only: no setuid, setgid or sticky bit.
fn perms(mode: u32) -> fs::Permissions {
    fs::Permissions::from_mode(mode & 0o777)
}

/// Owners are kept when the agent may set them (it runs as root).
fn chown(path: &Path, h: &tar::Header) {
    if let (Ok(uid), Ok(gid)) = (h.uid(), h.gid()) {
        let (uid, gid) = (u32::try_from(uid).ok(), u32::try_from(gid).ok());
        let _ = std::os::unix::fs::lchown(path, uid, gid);
    }
}

/// Unpacks `archive` into the empty directory `staging`, checking every
/// entry (module header). On an error `staging` holds a partial tree the
/// caller deletes.
pub fn unpack(
    archive: impl Read,
    staging: &Path,
    limits: Limits,
) -> Result<Unpacked, ArchiveError> {
    let mut ar = tar::Archive::new(archive);
    let mut done = Unpacked::default();
    let mut symlinks = Vec::new();
    let mut dirs = Vec::new();
    let entries = ar
        .entries()
        .map_err(|e| ArchiveError::Malformed(e.to_string()))?;
    for entry in entries {
        let mut e = entry.map_err(|e| ArchiveError::Malformed(e.to_string()))?;
        done.entries += 1;
        if done.entries > limits.max_entries {
            return Err(refused(
                done.entries,
                format!("more than {} entries", limits.max_entries),
            ));
        }
        let raw = e
            .path()
            .map_err(|e| ArchiveError::Malformed(e.to_string()))?
            .into_owned();
        let rel = relative(&raw, "the path")?;
        let kind = e.header().entry_type();
        let name = rel.display().to_string();
        if rel.as_os_str().is_empty() {
            if kind.is_dir() {
                continue;
            }
            return Err(refused(raw.display(), "names the tree's root"));
        }
        parents(staging, &rel)?;
        let dst = staging.join(&rel);
        let mode = e.header().mode().unwrap_or(0o600);
        match kind {
            EntryType::Regular | EntryType::Continuous => {
                let size = e.size();
                done.bytes = done.bytes.saturating_add(size);
                if done.bytes > limits.max_bytes {
                    return Err(refused(
                        &name,
                        format!("more than {} bytes in all", limits.max_bytes),
                    ));
                }
                let mut f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&dst)
                    .map_err(|e| exists(&name, e))?;
                let copied = io::copy(&mut (&mut e).take(size), &mut f)?;
                if copied != size {
                    return Err(ArchiveError::Malformed(format!("{name}: truncated")));
                }
                f.set_permissions(perms(mode))?;
                if let Ok(t) = e.header().mtime() {
                    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t);
                    let _ = f.set_modified(t);
                }
                chown(&dst, e.header());
            }
            EntryType::Directory => {
                match fs::symlink_metadata(&dst) {
                    Ok(m) if m.file_type().is_dir() => {}
                    Ok(_) => return Err(refused(&name, "already exists as another type")),
                    Err(_) => fs::create_dir(&dst)?,
                }
                chown(&dst, e.header());
                dirs.push((dst, mode));
            }
            EntryType::Symlink => {
                let target = e
                    .link_name()
                    .map_err(|e| ArchiveError::Malformed(e.to_string()))?
                    .ok_or_else(|| refused(&name, "a symlink without a target"))?
                    .into_owned();
                if target.is_absolute() {
                    return Err(refused(&name, "a symlink to an absolute path"));
                }
                std::os::unix::fs::symlink(&target, &dst).map_err(|e| exists(&name, e))?;
                chown(&dst, e.header());
                symlinks.push(rel);
            }
            EntryType::Link => {
                let target = e
                    .link_name()
                    .map_err(|e| ArchiveError::Malformed(e.to_string()))?
                    .ok_or_else(|| refused(&name, "a hard link without a target"))?;
                let target = relative(&target, "the hard link's target")?;
                parents(staging, &target)?;
                let src = staging.join(&target);
                match fs::symlink_metadata(&src) {
                    Ok(m) if m.file_type().is_file() => {}
                    _ => {
                        return Err(refused(
                            &name,
                            "a hard link to something that is not a file in the tree",
                        ));
                    }
                }
                fs::hard_link(&src, &dst).map_err(|e| exists(&name, e))?;
            }
            other => {
                return Err(refused(
                    &name,
                    format!("type {other:?} (only files, directories and links)"),
                ));
            }
        }
    }
    for link in &symlinks {
        if leaves(staging, link)? {
            return Err(refused(
                link.display(),
                "a symlink that leaves the tree (or loops)",
            ));
        }
    }
    // Last, so a read-only directory did not block its own contents.
    for (dir, mode) in dirs.iter().rev() {
        fs::set_permissions(dir, perms(*mode))?;
    }
    Ok(done)
}

fn exists(name: &str, e: io::Error) -> ArchiveError {
    if e.kind() == io::ErrorKind::AlreadyExists {
        refused(name, "appears twice (or over a symlink)")
    } else {
        e.into()
    }
}

/// Whether the symlink at `link` (relative to `root`) resolves, through
/// every symlink in the tree, to somewhere outside `root`.
fn leaves(root: &Path, link: &Path) -> io::Result<bool> {
    let mut at: Vec<OsString> = link
        .parent()
        .map(|p| p.iter().map(OsString::from).collect())
        .unwrap_or_default();
    let mut todo: VecDeque<OsString> = VecDeque::new();
    let first = fs::read_link(root.join(link))?;
    if first.is_absolute() {
        return Ok(true);
    }
    todo.extend(first.iter().map(OsString::from));
    let mut hops = 0;
    while let Some(c) = todo.pop_front() {
        match Path::new(&c).components().next() {
            None | Some(Component::CurDir) => {}
            Some(Component::ParentDir) => {
                if at.pop().is_none() {
                    return Ok(true);
                }
            }
            Some(Component::RootDir | Component::Prefix(_)) => return Ok(true),
            Some(Component::Normal(n)) => {
                at.push(n.to_owned());
                let p: PathBuf = std::iter::once(root.as_os_str().to_owned())
                    .chain(at.iter().cloned())
                    .collect();
                if fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink()) {
                    hops += 1;
                    if hops > MAX_HOPS {
                        return Ok(true);
                    }
                    let t = fs::read_link(&p)?;
                    if t.is_absolute() {
                        return Ok(true);
                    }
                    at.pop();
                    for c in t.iter().rev() {
                        todo.push_front(OsString::from(c));
                    }
                }
            }
        }
    }
    Ok(false)
}

/// The first symlink under `root` that leaves it, if any (a check over a
/// whole tree, for tests and the fuzz target).
pub fn escaping_symlink(root: &Path) -> io::Result<Option<PathBuf>> {
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        for e in fs::read_dir(root.join(&rel))? {
            let e = e?;
            let path = rel.join(e.file_name());
            let t = e.file_type()?;
            if t.is_symlink() && leaves(root, &path)? {
                return Ok(Some(path));
            }
            if t.is_dir() {
                todo.push(path);
            }
        }
    }
    Ok(None)
}

/// Unpacks `archive` for `service` under `root`: into a fresh 0700 staging
/// dir beside it, then, only when every entry checked out, swapped into
/// `root/<service>` (the old tree moved aside, then deleted). On an error
/// the staging dir is deleted and `root/<service>` is untouched.
pub fn install(
    archive: impl Read,
    root: &Path,
    service: &str,
    limits: Limits,
) -> Result<Unpacked, ArchiveError> {
    fs::create_dir_all(root)?;
    let tag = rand::random::<u64>();
    let staging = root.join(format!(".import-{service}-{tag:016x}"));
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&staging)
        .map_err(ArchiveError::Io)?;
    let r = unpack(archive, &staging, limits);
    let done = match r {
        Ok(d) => d,
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    let target = root.join(service);
    let old = root.join(format!(".old-{service}-{tag:016x}"));
    let had = match fs::rename(&target, &old) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(e.into());
        }
    };
    if let Err(e) = fs::rename(&staging, &target) {
        if had {
            let _ = fs::rename(&old, &target);
        }
        let _ = fs::remove_dir_all(&staging);
        return Err(e.into());
    }
    if had {
        let _ = fs::remove_dir_all(&old);
    }
    Ok(done)
}

/// A writer that counts and hashes (sha256) what passes through.
pub struct Hashing<W> {
    inner: W,
    ctx: aws_lc_rs::digest::Context,
    pub bytes: u64,
}

impl<W: Write> Hashing<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            ctx: aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256),
            bytes: 0,
        }
    }

    /// The lower-case hex sha256, the byte count and the inner writer.
    pub fn finish(self) -> (String, u64, W) {
        (hex(self.ctx.finish().as_ref()), self.bytes, self.inner)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.ctx.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

pub fn hex(b: &[u8]) -> String {
    use std::fmt::Write as _;
    b.iter()
        .fold(String::with_capacity(b.len() * 2), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
}

#[cfg(test)]
mod tests;
