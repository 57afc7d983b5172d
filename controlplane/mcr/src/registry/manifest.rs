//! Manifest parsing and validation (pure; fuzzed): OCI image manifest, OCI
//! index, Docker v2 schema 2 and Docker manifest list.
//!
//! Invariant: a [`Parsed`] names only syntactically valid descriptors
//! (canonical digests, sizes ≥ 0); whether they exist is the core's check.
//! The bytes themselves are never rewritten: they are stored as received.

use serde::Deserialize;

use super::digest::Digest;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Manifests are at most this many bytes.
pub const MAX_MANIFEST: usize = 4 * 1024 * 1024;

/// Whether `media_type` is one of the four manifest types.
pub fn is_manifest_type(media_type: &str) -> bool {
    matches!(
        media_type,
        OCI_MANIFEST | OCI_INDEX | DOCKER_MANIFEST | DOCKER_LIST
    )
}

/// Layers a registry never requires to be present.
pub fn is_non_distributable(media_type: &str) -> bool {
    media_type.starts_with("application/vnd.oci.image.layer.nondistributable.")
        || media_type == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
}

/// A validated descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

/// What the core needs from a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub media_type: String,
    pub artifact_type: Option<String>,
    /// Blobs that must be linked (config and distributable layers).
    pub blobs: Vec<Descriptor>,
    /// Manifests that must be stored in the repository (an index's children).
    pub manifests: Vec<Descriptor>,
    pub subject: Option<Descriptor>,
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
    /// An image manifest's config media type (the referrers' fallback artifactType).
    pub config_media_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    media_type: Option<String>,
    digest: String,
    size: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    schema_version: Option<i64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<RawDescriptor>,
    layers: Option<Vec<RawDescriptor>>,
    manifests: Option<Vec<RawDescriptor>>,
    subject: Option<RawDescriptor>,
    annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Why a manifest was refused: `MANIFEST_INVALID` with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

fn bad(m: impl Into<String>) -> Invalid {
    Invalid(m.into())
}

fn descriptor(d: RawDescriptor, what: &str) -> Result<Descriptor, Invalid> {
    let digest = Digest::parse(&d.digest).map_err(|e| bad(format!("{what}: digest: {e}")))?;
    let size = u64::try_from(d.size).map_err(|_| bad(format!("{what}: negative size")))?;
    let media_type = d
        .media_type
        .filter(|m| !m.is_empty())
        .ok_or_else(|| bad(format!("{what}: mediaType is required")))?;
    Ok(Descriptor {
        media_type,
        digest,
        size,
    })
}

/// The type a PUT declares: `Content-Type` without parameters, else the
/// body's `mediaType`; both present must agree.
pub fn media_type(content_type: Option<&str>, body: &[u8]) -> Result<String, Invalid> {
    let declared = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim().to_owned())
        .filter(|c| !c.is_empty() && c != "application/json" && c != "application/octet-stream");
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Peek {
        media_type: Option<String>,
        schema_version: Option<i64>,
    }
    let peek: Peek =
        serde_json::from_slice(body).map_err(|e| bad(format!("not a JSON object: {e}")))?;
    if peek.schema_version == Some(1) {
        return Err(bad("schema 1 manifests are not supported"));
    }
    match (declared, peek.media_type) {
        (Some(d), Some(m)) if d != m => Err(bad(format!(
            "Content-Type {d} disagrees with the manifest's mediaType {m}"
        ))),
        (Some(d), _) => Ok(d),
        (None, Some(m)) => Ok(m),
        (None, None) => Err(bad("no media type: send Content-Type or mediaType")),
    }
}

/// Parses and validates `body` as `media_type`.
pub fn parse(media_type: &str, body: &[u8]) -> Result<Parsed, Invalid> {
    if body.len() > MAX_MANIFEST {
        return Err(bad("manifest too large"));
    }
    if !is_manifest_type(media_type) {
        return Err(bad(format!("unsupported manifest media type {media_type}")));
    }
    let raw: Raw = serde_json::from_slice(body).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    if raw.schema_version != Some(2) {
        return Err(bad("schemaVersion must be 2"));
    }
    if let Some(m) = &raw.media_type
        && m != media_type
    {
        return Err(bad("mediaType disagrees with the declared type"));
    }
    let index = matches!(media_type, OCI_INDEX | DOCKER_LIST);
    let docker = matches!(media_type, DOCKER_MANIFEST | DOCKER_LIST);
    if docker && (raw.subject.is_some() || raw.artifact_type.is_some()) {
        return Err(bad("Docker manifests carry no subject or artifactType"));
    }
    let mut out = Parsed {
        media_type: media_type.to_owned(),
        artifact_type: raw.artifact_type.filter(|a| !a.is_empty()),
        blobs: Vec::new(),
        manifests: Vec::new(),
        subject: raw.subject.map(|s| descriptor(s, "subject")).transpose()?,
        annotations: raw.annotations,
        config_media_type: None,
    };
    if index {
        if raw.config.is_some() || raw.layers.is_some() {
            return Err(bad("an index has manifests, not config or layers"));
        }
        for (i, d) in raw.manifests.unwrap_or_default().into_iter().enumerate() {
            let d = descriptor(d, &format!("manifests[{i}]"))?;
            if is_manifest_type(&d.media_type) {
                out.manifests.push(d);
            } else if docker {
                return Err(bad(format!("manifests[{i}]: not a manifest type")));
            } else {
                out.blobs.push(d);
            }
        }
    } else {
        if raw.manifests.is_some() {
            return Err(bad("an image manifest has no manifests list"));
        }
        let config = raw.config.ok_or_else(|| bad("config is required"))?;
        let config = descriptor(config, "config")?;
        out.config_media_type = Some(config.media_type.clone());
        out.blobs.push(config);
        let Some(layers) = raw.layers else {
            return Err(bad("layers is required"));
        };
        for (i, d) in layers.into_iter().enumerate() {
            let d = descriptor(d, &format!("layers[{i}]"))?;
            if !is_non_distributable(&d.media_type) {
                out.blobs.push(d);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::digest::Algorithm;

    fn d(bytes: &[u8]) -> String {
        Digest::of(Algorithm::Sha256, bytes).to_string()
    }

    #[test]
    fn image_manifest_and_index() {
        let m = serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": d(b"c"), "size": 1},
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d(b"l"), "size": 1},
                {"mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar", "digest": d(b"x"), "size": 9}
            ],
            "subject": {"mediaType": OCI_MANIFEST, "digest": d(b"s"), "size": 3}
        });
        let body = serde_json::to_vec(&m).expect("json");
        assert_eq!(media_type(None, &body), Ok(OCI_MANIFEST.to_owned()));
        let p = parse(OCI_MANIFEST, &body).expect("valid");
        assert_eq!(
            p.blobs.len(),
            2,
            "the non-distributable layer is not required"
        );
        assert_eq!(p.subject.map(|s| s.size), Some(3));
        assert_eq!(
            p.config_media_type.as_deref(),
            Some("application/vnd.oci.image.config.v1+json")
        );
        assert!(
            media_type(Some(OCI_INDEX), &body).is_err(),
            "disagreeing types"
        );
        assert!(parse(DOCKER_MANIFEST, &body).is_err());

        let i = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": d(b"a"), "size": 5, "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": "application/vnd.example.sbom", "digest": d(b"b"), "size": 5}
        ]});
        let p = parse(OCI_INDEX, &serde_json::to_vec(&i).expect("json")).expect("index");
        assert_eq!((p.manifests.len(), p.blobs.len()), (1, 1));
    }

    #[test]
    fn refusals() {
        let cases = [
            serde_json::json!({"schemaVersion": 1, "name": "x"}),
            serde_json::json!({"schemaVersion": 2, "layers": []}),
            serde_json::json!({"schemaVersion": 2, "config": {"mediaType": "a", "digest": "md5:00", "size": 1}, "layers": []}),
            serde_json::json!({"schemaVersion": 2, "config": {"mediaType": "a", "digest": d(b"c"), "size": -1}, "layers": []}),
            serde_json::json!({"schemaVersion": 2, "config": {"digest": d(b"c"), "size": 1}, "layers": []}),
        ];
        for c in cases {
            assert!(
                parse(OCI_MANIFEST, &serde_json::to_vec(&c).expect("json")).is_err(),
                "{c}"
            );
        }
        assert!(parse(OCI_MANIFEST, b"not json").is_err());
        assert!(parse("text/plain", b"{}").is_err());
        assert!(media_type(None, br#"{"schemaVersion":1}"#).is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_or_refuse_without_panic(b in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            for t in [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST] {
                let _ = parse(t, &b);
            }
            let _ = media_type(None, &b);
        }
    }
}
