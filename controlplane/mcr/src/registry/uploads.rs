//! Blob uploads: POST (session, monolithic, mount), PATCH (chunked, with or
//! without `Content-Range`), PUT (close and verify), GET (status), DELETE.
//!
//! Invariant: each request is all or nothing — bytes of a request that
//! fails (short body, limit, disconnect, out-of-order chunk) are cut off
//! and the hasher restored, so a retry sees 416 or succeeds; a blob becomes
//! visible only after its digest verified and its row committed.

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use futures_util::StreamExt;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use super::auth::Action;
use super::digest::{Algorithm, Digest, Hasher};
use super::range::content_range;
use super::{Ctx, empty, parse_digest, set};
use crate::core::uploads::{Handle, Session, check_owner};
use crate::error::{Code, RegistryError};
use crate::model::RepoName;

fn location(repo: &RepoName, uuid: &str) -> String {
    // `_state` is ignored: clients written against distribution append
    // `&digest=` to the Location verbatim.
    let hex = uuid.replace('-', "");
    let state = hex.get(..22).unwrap_or(&hex);
    format!("/v2/{repo}/blobs/uploads/{uuid}?_state={state}")
}

fn accepted(repo: &RepoName, s: &Session, status: StatusCode) -> Response {
    let mut r = empty(status);
    set(&mut r, "location", &location(repo, &s.uuid));
    set(
        &mut r,
        "range",
        &format!("0-{}", s.offset.saturating_sub(1)),
    );
    set(&mut r, "docker-upload-uuid", &s.uuid);
    r
}

fn created(repo: &RepoName, digest: &Digest) -> Response {
    let mut r = empty(StatusCode::CREATED);
    set(&mut r, "location", &format!("/v2/{repo}/blobs/{digest}"));
    set(&mut r, "docker-content-digest", &digest.to_string());
    r
}

fn out_of_order(repo: &RepoName, s: &Session) -> RegistryError {
    RegistryError::new(
        StatusCode::RANGE_NOT_SATISFIABLE,
        Code::BlobUploadInvalid,
        "chunk does not start at the upload's current offset",
    )
    .header(axum::http::header::LOCATION, location(repo, &s.uuid))
    .header(
        axum::http::header::RANGE,
        format!("0-{}", s.offset.saturating_sub(1)),
    )
    .detail(serde_json::json!({"offset": s.offset}))
}

fn content_length(ctx: &Ctx) -> Option<u64> {
    ctx.headers
        .get(axum::http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The chunk's expected length from `Content-Range`, checked against the
/// session's offset (416) and `Content-Length` (400).
fn expected(ctx: &Ctx, repo: &RepoName, s: &Session) -> Result<Option<u64>, RegistryError> {
    let Some(v) = ctx.headers.get(axum::http::header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let r = v.to_str().ok().and_then(content_range).ok_or_else(|| {
        RegistryError::bad(
            Code::BlobUploadInvalid,
            "Content-Range must be <first>-<last>",
        )
    })?;
    if r.first != s.offset {
        return Err(out_of_order(repo, s));
    }
    if content_length(ctx).is_some_and(|n| n != r.len()) {
        return Err(RegistryError::bad(
            Code::SizeInvalid,
            "Content-Length disagrees with Content-Range",
        ));
    }
    Ok(Some(r.len()))
}

/// Refuses a write of `need` more bytes that would leave the data
/// directory's filesystem with less than `min_free` (507, nothing written).
fn check_space(ctx: &Ctx, need: u64) -> Result<(), RegistryError> {
    let min = ctx.mcr.config.min_free;
    if min == 0 {
        return Ok(());
    }
    let free = ctx.mcr.core.fs.free_bytes()?;
    if free.saturating_sub(need) < min {
        return Err(RegistryError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            Code::Unknown,
            format!(
                "the registry is out of disk space: uploads are refused while less than {min} bytes would stay free"
            ),
        )
        .header(axum::http::header::RETRY_AFTER, "60"));
    }
    Ok(())
}

/// How often (in bytes written) a body of unknown length re-checks `min_free`.
const SPACE_CHECK: u64 = 64 << 20;

/// How many body bytes [`append`] gathers before one write to the file.
const WRITE_BATCH: usize = 512 * 1024;

/// Appends the body to the session: all or nothing.
async fn append(
    ctx: &Ctx,
    s: &mut Session,
    body: Body,
    expect: Option<u64>,
) -> Result<(), RegistryError> {
    let fs = &ctx.mcr.core.fs;
    let max = ctx.mcr.config.max_blob_size;
    let mut file = tokio::fs::File::from_std(fs.session_writer(&s.uuid, s.offset)?);
    file.seek(std::io::SeekFrom::Start(s.offset)).await?;
    // Unknown length (a streamed PATCH) or a large body: hashed beside the writes.
    let offload = expect
        .or_else(|| content_length(ctx))
        .is_none_or(|len| len >= super::hashing::OFFLOAD);
    let mut hasher = super::hashing::Hashing::new(s.hasher.clone(), offload);
    let mut n = 0_u64;
    let mut stream = body.into_data_stream();
    // Chunks arrive as HTTP/2 DATA frames (16 KiB); every `tokio::fs` write
    // is a hop to the blocking pool, so they are gathered and written in
    // `WRITE_BATCH`-sized pieces.
    let mut pending = Vec::with_capacity(WRITE_BATCH);
    let result: Result<Hasher, RegistryError> = async {
        check_space(ctx, expect.or_else(|| content_length(ctx)).unwrap_or(0))?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| {
                RegistryError::bad(Code::BlobUploadInvalid, "the request body was cut short")
            })?;
            let before = n;
            n += chunk.len() as u64;
            if before / SPACE_CHECK != n / SPACE_CHECK {
                check_space(ctx, 0)?;
            }
            if s.offset + n > max {
                return Err(RegistryError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    Code::SizeInvalid,
                    format!("blobs are at most {max} bytes"),
                ));
            }
            if expect.is_some_and(|e| n > e) {
                return Err(RegistryError::bad(
                    Code::SizeInvalid,
                    "body longer than Content-Range",
                ));
            }
            if pending.is_empty() && chunk.len() >= WRITE_BATCH {
                file.write_all(&chunk).await?;
            } else {
                pending.extend_from_slice(&chunk);
                if pending.len() >= WRITE_BATCH {
                    file.write_all(&pending).await?;
                    pending.clear();
                }
            }
            hasher.update(chunk).await?;
        }
        file.write_all(&pending).await?;
        if expect.is_some_and(|e| n != e) {
            return Err(RegistryError::bad(
                Code::SizeInvalid,
                "body shorter than Content-Range",
            ));
        }
        file.flush().await?;
        hasher.finish().await
    }
    .await;
    drop(file);
    match result {
        Ok(hasher) => {
            s.offset += n;
            s.hasher = hasher;
            Ok(())
        }
        Err(e) => {
            // Cut the failed request's bytes off; the session is unchanged.
            fs.session_writer(&s.uuid, s.offset)?;
            Err(e)
        }
    }
}

/// Verifies the session against `digest` and commits the blob.
async fn finish(
    ctx: &Ctx,
    repo: &RepoName,
    s: &mut Session,
    digest: Digest,
) -> Result<Response, RegistryError> {
    let fs = ctx.mcr.core.fs.clone();
    let uuid = s.uuid.clone();
    let got = if digest.algorithm() == s.hasher.algorithm() {
        s.hasher.clone().finish()
    } else {
        let alg = digest.algorithm();
        let path = fs.session_data(&uuid)?;
        crate::core::blocking(move || {
            let mut h = Hasher::new(alg);
            let mut f = std::fs::File::open(path)?;
            let mut buf = vec![0_u8; 256 * 1024];
            loop {
                let n = std::io::Read::read(&mut f, &mut buf)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
            Ok(h.finish())
        })
        .await?
    };
    let remove = |fs: &crate::storage::Storage| {
        ctx.mcr.sessions.remove(&uuid);
        if let Err(e) = fs.remove_session(&uuid) {
            tracing::warn!(error = %e, "removing an upload session");
        }
    };
    if got != digest {
        s.done = true;
        remove(&fs);
        return Err(RegistryError::bad(
            Code::DigestInvalid,
            "the content does not match the digest",
        )
        .detail(serde_json::json!({"digest": digest.to_string()})));
    }
    let mcr = ctx.mcr.clone();
    let (r, d, size) = (repo.clone(), digest.clone(), s.offset);
    let staged = fs.session_data(&uuid)?;
    let hex = uuid.replace('-', "");
    let inc = hex.get(..16).unwrap_or(&hex).to_owned();
    crate::core::blocking(move || mcr.core.commit_upload(&r, &d, staged, &inc, size)).await?;
    s.done = true;
    remove(&fs);
    Ok(created(repo, &digest))
}

fn algorithm(ctx: &Ctx) -> Result<Algorithm, RegistryError> {
    match ctx.param("digest-algorithm") {
        None => Ok(Algorithm::Sha256),
        Some(a) => Algorithm::parse(a).ok_or_else(|| {
            RegistryError::bad(
                Code::DigestInvalid,
                format!("unsupported digest algorithm {a}"),
            )
        }),
    }
}

pub(super) async fn start(
    ctx: &Ctx,
    repo: &RepoName,
    body: Body,
) -> Result<Response, RegistryError> {
    let mount = ctx.param("mount");
    let who = ctx.authorize(repo, &[Action::Pull, Action::Push]).await?;
    if let Some(m) = mount {
        let digest = parse_digest(m)?;
        if let Some(from) = ctx.param("from").and_then(RepoName::parse)
            && ctx
                .mcr
                .auth
                .may_pull(&ctx.headers, ctx.principal.clone(), &from)
                .await
        {
            let mcr = ctx.mcr.clone();
            let (r, d) = (repo.clone(), digest.clone());
            if crate::core::blocking(move || mcr.core.mount(&r, &from, &d)).await? {
                return Ok(created(repo, &digest));
            }
        }
        // Not mountable: a new session, as the spec asks (never revealing why).
    }
    let digest = match ctx.param("digest") {
        Some(d) if mount.is_none() => Some(parse_digest(d)?),
        _ => None,
    };
    let alg = match &digest {
        Some(d) => d.algorithm(),
        None => algorithm(ctx)?,
    };
    let fs = &ctx.mcr.core.fs;
    // Nothing is created when the disk is already too full for the body.
    if let Err(e) = check_space(ctx, content_length(ctx).unwrap_or(0)) {
        return refuse(body, e).await;
    }
    let handle = ctx
        .mcr
        .sessions
        .open(fs, repo.as_str(), &who.actor.account_id, alg)?;
    let mut s = handle.lock().await;
    match digest {
        Some(d) => {
            let expect = content_length(ctx);
            let appended = append(ctx, &mut s, body, expect).await;
            if let Err(e) = appended {
                ctx.mcr.sessions.remove(&s.uuid);
                let _ = fs.remove_session(&s.uuid);
                return Err(e);
            }
            finish(ctx, repo, &mut s, d).await
        }
        None => Ok(accepted(repo, &s, StatusCode::ACCEPTED)),
    }
}

async fn session(
    ctx: &Ctx,
    repo: &RepoName,
    uuid: &str,
) -> Result<(Handle, String), RegistryError> {
    let who = ctx.authorize(repo, &[Action::Pull, Action::Push]).await?;
    let h = ctx
        .mcr
        .sessions
        .get(&ctx.mcr.core.fs, uuid, repo.as_str(), &who.actor.account_id)?;
    Ok((h, who.actor.account_id))
}

pub(super) async fn patch(
    ctx: &Ctx,
    repo: &RepoName,
    uuid: &str,
    body: Body,
) -> Result<Response, RegistryError> {
    let (h, owner) = match session(ctx, repo, uuid).await {
        Ok(v) => v,
        Err(e) => return refuse(body, e).await,
    };
    // Another request holds the session: this chunk cannot be in order.
    let Ok(mut s) = h.try_lock() else {
        let err = {
            let s = h.lock().await;
            out_of_order(repo, &s)
        };
        return refuse(body, err).await;
    };
    let checked = check_owner(&s, repo.as_str(), &owner)
        .and_then(|()| expected(ctx, repo, &s))
        .and_then(|e| {
            // An upload alone larger than the quota left: 413 at once.
            if let Some(n) = e.or_else(|| content_length(ctx)) {
                let size = s.offset.saturating_add(n);
                crate::core::quota::check_upload_size(&ctx.mcr.core.store, repo.as_str(), size)?;
            }
            Ok(e)
        });
    let expect = match checked {
        Ok(v) => v,
        Err(e) => {
            drop(s);
            return refuse(body, e).await;
        }
    };
    append(ctx, &mut s, body, expect).await?;
    Ok(accepted(repo, &s, StatusCode::ACCEPTED))
}

/// How much of a refused chunk is read before the refusal is sent, and for how long.
const DRAIN_LIMIT: usize = 1 << 20;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// Answers `err` after reading (and dropping) what the client is still sending,
/// up to a bound: a refusal sent first makes the server reset an HTTP/2 stream
/// mid-upload, and some clients then report the reset instead of the 416 or 400.
async fn refuse<T>(body: Body, err: RegistryError) -> Result<T, RegistryError> {
    let mut stream = body.into_data_stream();
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        let mut n = 0_usize;
        while let Some(Ok(chunk)) = stream.next().await {
            n += chunk.len();
            if n > DRAIN_LIMIT {
                break;
            }
        }
    })
    .await;
    Err(err)
}

pub(super) async fn put(
    ctx: &Ctx,
    repo: &RepoName,
    uuid: &str,
    body: Body,
) -> Result<Response, RegistryError> {
    let (h, owner) = match session(ctx, repo, uuid).await {
        Ok(v) => v,
        Err(e) => return refuse(body, e).await,
    };
    let mut s = h.lock().await;
    let checked = check_owner(&s, repo.as_str(), &owner).and_then(|()| {
        let d = ctx.param("digest").ok_or_else(|| {
            RegistryError::bad(Code::DigestInvalid, "the digest parameter is required")
        })?;
        Ok((parse_digest(d)?, expected(ctx, repo, &s)?))
    });
    let (digest, expect) = match checked {
        Ok(v) => v,
        Err(e) => {
            drop(s);
            return refuse(body, e).await;
        }
    };
    append(ctx, &mut s, body, expect).await?;
    finish(ctx, repo, &mut s, digest).await
}

pub(super) async fn status(
    ctx: &Ctx,
    repo: &RepoName,
    uuid: &str,
) -> Result<Response, RegistryError> {
    let (h, owner) = session(ctx, repo, uuid).await?;
    let s = h.lock().await;
    check_owner(&s, repo.as_str(), &owner)?;
    Ok(accepted(repo, &s, StatusCode::NO_CONTENT))
}

pub(super) async fn cancel(
    ctx: &Ctx,
    repo: &RepoName,
    uuid: &str,
) -> Result<Response, RegistryError> {
    let (h, owner) = session(ctx, repo, uuid).await?;
    let mut s = h.lock().await;
    check_owner(&s, repo.as_str(), &owner)?;
    s.done = true;
    ctx.mcr.sessions.remove(&s.uuid);
    ctx.mcr.core.fs.remove_session(&s.uuid)?;
    Ok(empty(StatusCode::NO_CONTENT))
}
