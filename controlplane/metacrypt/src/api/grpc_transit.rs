//! gRPC `Transit` (mc.crypt.v1): each RPC answers `UNAVAILABLE` "sealed"
//! before it decodes anything, then calls the core operation its REST twin
//! calls. Bytes are bytes; proto3 zeros and empty strings mean "not given".
//! One item is a single call (its error is the RPC's status); several are a
//! batch answered per item.

use mc_proto::crypt::v1 as pb;
use serde::Serialize;
use tonic::{Request, Response, Status as GrpcStatus};

use super::grpc::Services;
use crate::core::transit::{
    ConfigKey, CreateKey, DatakeyRequest, DecryptItem, Dialect, EncryptItem, EncryptOut,
    HashRequest, HmacItem, HmacParams, Input, MAX_BATCH, Period, RandomRequest, RewrapItem,
    SignItem, SignParams, TransitError, VerifyItem,
};
use crate::core::{Answer, Batched, Caller, EncryptRequest, HmacRequest, SignRequest};
use crate::error::CryptError;

type Reply<T> = Result<Response<T>, GrpcStatus>;

fn some(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn bytes(b: Vec<u8>) -> Option<Input> {
    (!b.is_empty()).then(|| Input::bytes(b))
}

fn version(v: u32) -> Option<u32> {
    (v != 0).then_some(v)
}

/// One item → a single call; several → a batch (bounded before anything
/// runs). No item is one empty item, which the operation refuses by field
/// after the policy check.
fn batched<I: Default>(items: Vec<I>) -> Result<Batched<I>, CryptError> {
    match items.len() {
        0 => Ok(Batched::one(I::default())),
        n if n > MAX_BATCH => Err(CryptError::invalid(
            "items",
            format!("at most {MAX_BATCH} items"),
        )),
        1 => Ok(Batched::one(items.into_iter().next().unwrap_or_default())),
        _ => Ok(Batched {
            item: I::default(),
            batch_input: Some(items),
            partial_failure_response_code: None,
        }),
    }
}

/// Per-item results: `ok` builds an answered item, `err` a failed one.
fn results<T: Serialize, R>(
    a: Answer<T>,
    ok: impl Fn(T, String) -> R,
    err: impl Fn(String, String) -> R,
) -> Vec<R> {
    match a {
        Answer::One(v) => vec![ok(v, String::new())],
        Answer::Batch { results, .. } => results
            .batch_results
            .into_iter()
            .map(|r| {
                let reference = r.reference.unwrap_or_default();
                match r.outcome {
                    Ok(v) => ok(v, reference),
                    Err(e) => err(error_text(&e), reference),
                }
            })
            .collect(),
    }
}

fn error_text(e: &TransitError) -> String {
    e.to_string()
}

fn key_json(v: serde_json::Value) -> pb::TransitKeyJson {
    pb::TransitKeyJson {
        json: v.to_string(),
    }
}

fn sign_params(p: Option<pb::TransitSignParams>) -> SignParams {
    let p = p.unwrap_or_default();
    SignParams {
        hash_algorithm: some(p.hash_algorithm),
        algorithm: None,
        prehashed: Some(p.prehashed),
        signature_algorithm: some(p.signature_algorithm),
        marshaling_algorithm: some(p.marshaling_algorithm),
        key_version: version(p.key_version),
    }
}

impl Services {
    fn open(&self) -> Result<(), GrpcStatus> {
        Ok(self.0.require_unsealed()?)
    }
}

#[tonic::async_trait]
impl pb::transit_server::Transit for Services {
    async fn list_keys(&self, r: Request<pb::TransitMountRequest>) -> Reply<pb::TransitKeyList> {
        self.open()?;
        let c = Caller::from_grpc(&r);
        let keys = self.0.transit_list_keys(&c, &r.into_inner().mount)?;
        Ok(Response::new(pb::TransitKeyList { keys }))
    }

    async fn create_key(
        &self,
        r: Request<pb::TransitCreateKeyRequest>,
    ) -> Reply<pb::TransitKeyJson> {
        self.open()?;
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let req = CreateKey {
            kind: some(r.r#type),
            derived: Some(r.derived),
            exportable: Some(r.exportable),
            auto_rotate_period: Some(Period::Seconds(r.auto_rotate_period)),
            ..CreateKey::default()
        };
        Ok(Response::new(key_json(
            self.0.transit_create_key(&c, &r.mount, &r.name, &req)?,
        )))
    }

    async fn get_key(&self, r: Request<pb::TransitKeyRequest>) -> Reply<pb::TransitKeyJson> {
        self.open()?;
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        Ok(Response::new(key_json(self.0.transit_read_key(
            &c,
            &r.mount,
            &r.name,
            Dialect::Native,
        )?)))
    }

    async fn update_key_config(
        &self,
        r: Request<pb::TransitKeyConfigRequest>,
    ) -> Reply<pb::TransitKeyJson> {
        self.open()?;
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let req = ConfigKey {
            min_decryption_version: r.min_decryption_version,
            min_encryption_version: r.min_encryption_version,
            deletion_allowed: r.deletion_allowed,
            exportable: r.exportable,
            allow_plaintext_backup: None,
            auto_rotate_period: r.auto_rotate_period.map(Period::Seconds),
        };
        Ok(Response::new(key_json(
            self.0.transit_config_key(&c, &r.mount, &r.name, &req)?,
        )))
    }

    async fn rotate_key(&self, r: Request<pb::TransitKeyRequest>) -> Reply<pb::TransitKeyJson> {
        self.open()?;
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        Ok(Response::new(key_json(
            self.0.transit_rotate_key(&c, &r.mount, &r.name)?,
        )))
    }

    async fn trim_key(&self, r: Request<pb::TransitTrimRequest>) -> Reply<pb::TransitKeyJson> {
        self.open()?;
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let v = self
            .0
            .transit_trim_key(&c, &r.mount, &r.name, Some(r.min_available_version))?;
        Ok(Response::new(key_json(v)))
    }

    async fn delete_key(&self, r: Request<pb::TransitKeyRequest>) -> Reply<pb::TransitEmpty> {
        self.open()?;
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        self.0.transit_delete_key(&c, &r.mount, &r.name)?;
        Ok(Response::new(pb::TransitEmpty {}))
    }

    async fn export_key(&self, r: Request<pb::TransitExportRequest>) -> Reply<pb::TransitKeyJson> {
        self.open()?;
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let v = self.0.transit_export_key(
            &c,
            &r.mount,
            &r.kind,
            &r.name,
            some(r.version).as_deref(),
            Dialect::Native,
        )?;
        Ok(Response::new(key_json(v)))
    }

    async fn encrypt(
        &self,
        r: Request<pb::TransitEncryptRequest>,
    ) -> Reply<pb::TransitCiphertexts> {
        self.open()?;
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let items = r
            .items
            .into_iter()
            .map(|i| EncryptItem {
                plaintext: Some(Input::bytes(i.plaintext)),
                context: bytes(i.context),
                key_version: version(i.key_version),
                associated_data: bytes(i.associated_data),
                nonce: None,
                reference: some(i.reference),
            })
            .collect();
        let req = EncryptRequest {
            batch: batched(items)?,
            kind: some(r.r#type),
        };
        let a = self.0.transit_encrypt(&c, &r.mount, &r.name, &req)?;
        Ok(Response::new(pb::TransitCiphertexts {
            results: ciphertexts(a),
        }))
    }

    async fn decrypt(&self, r: Request<pb::TransitDecryptRequest>) -> Reply<pb::TransitPlaintexts> {
        self.open()?;
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let items = r
            .items
            .into_iter()
            .map(|i| DecryptItem {
                ciphertext: Some(i.ciphertext),
                context: bytes(i.context),
                associated_data: bytes(i.associated_data),
                nonce: None,
                reference: some(i.reference),
            })
            .collect();
        let a = self
            .0
            .transit_decrypt(&c, &r.mount, &r.name, &batched(items)?)?;
        let results = results(
            a,
            |v, reference| pb::TransitPlaintext {
                plaintext: v.plaintext.to_vec(),
                error: String::new(),
                reference,
            },
            |error, reference| pb::TransitPlaintext {
                plaintext: Vec::new(),
                error,
                reference,
            },
        );
        Ok(Response::new(pb::TransitPlaintexts { results }))
    }

    async fn rewrap(&self, r: Request<pb::TransitRewrapRequest>) -> Reply<pb::TransitCiphertexts> {
        self.open()?;
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let items = r
            .items
            .into_iter()
            .map(|i| RewrapItem {
                ciphertext: Some(i.ciphertext),
                context: bytes(i.context),
                key_version: version(i.key_version),
                nonce: None,
                reference: some(i.reference),
            })
            .collect();
        let a = self
            .0
            .transit_rewrap(&c, &r.mount, &r.name, &batched(items)?)?;
        Ok(Response::new(pb::TransitCiphertexts {
            results: ciphertexts(a),
        }))
    }

    async fn generate_data_key(
        &self,
        r: Request<pb::TransitDataKeyRequest>,
    ) -> Reply<pb::TransitDataKey> {
        self.open()?;
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let req = Batched::one(DatakeyRequest {
            bits: version(r.bits),
            context: bytes(r.context),
            key_version: version(r.key_version),
            nonce: None,
            reference: None,
        });
        let kind = if r.plaintext { "plaintext" } else { "wrapped" };
        let out = match self.0.transit_datakey(&c, &r.mount, kind, &r.name, &req)? {
            Answer::One(v) => v,
            Answer::Batch { .. } => {
                return Err(CryptError::internal("datakey answered a batch").into());
            }
        };
        Ok(Response::new(pb::TransitDataKey {
            ciphertext: out.ciphertext,
            key_version: out.key_version,
            plaintext: out.plaintext.map(|p| p.to_vec()).unwrap_or_default(),
        }))
    }

    async fn sign(&self, r: Request<pb::TransitSignRequest>) -> Reply<pb::TransitSignatures> {
        self.open()?;
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let items = r
            .items
            .into_iter()
            .map(|i| SignItem {
                input: Some(Input::bytes(i.input)),
                context: bytes(i.context),
                reference: some(i.reference),
            })
            .collect();
        let req = SignRequest {
            params: sign_params(r.params),
            batch: batched(items)?,
        };
        let a = self.0.transit_sign(&c, &r.mount, &r.name, &req)?;
        let results = results(
            a,
            |v, reference| pb::TransitSignature {
                signature: v.signature,
                key_version: v.key_version,
                error: String::new(),
                reference,
            },
            |error, reference| pb::TransitSignature {
                error,
                reference,
                ..Default::default()
            },
        );
        Ok(Response::new(pb::TransitSignatures { results }))
    }

    async fn verify(&self, r: Request<pb::TransitVerifyRequest>) -> Reply<pb::TransitVerdicts> {
        self.open()?;
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let items = r
            .items
            .into_iter()
            .map(|i| VerifyItem {
                input: Some(Input::bytes(i.input)),
                signature: some(i.signature),
                hmac: some(i.hmac),
                context: bytes(i.context),
                reference: some(i.reference),
            })
            .collect();
        let req = SignRequest {
            params: sign_params(r.params),
            batch: batched(items)?,
        };
        let a = self.0.transit_verify(&c, &r.mount, &r.name, &req)?;
        let results = results(
            a,
            |v, reference| pb::TransitVerdict {
                valid: v.valid,
                error: String::new(),
                reference,
            },
            |error, reference| pb::TransitVerdict {
                valid: false,
                error,
                reference,
            },
        );
        Ok(Response::new(pb::TransitVerdicts { results }))
    }

    async fn hmac(&self, r: Request<pb::TransitHmacRequest>) -> Reply<pb::TransitHmacs> {
        self.open()?;
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let items = r
            .items
            .into_iter()
            .map(|i| HmacItem {
                input: Some(Input::bytes(i.input)),
                reference: some(i.reference),
            })
            .collect();
        let req = HmacRequest {
            params: HmacParams {
                algorithm: some(r.algorithm),
                key_version: version(r.key_version),
            },
            batch: batched(items)?,
        };
        let a = self.0.transit_hmac(&c, &r.mount, &r.name, &req)?;
        let results = results(
            a,
            |v, reference| pb::TransitHmac {
                hmac: v.hmac,
                error: String::new(),
                reference,
            },
            |error, reference| pb::TransitHmac {
                hmac: String::new(),
                error,
                reference,
            },
        );
        Ok(Response::new(pb::TransitHmacs { results }))
    }

    async fn random_bytes(&self, r: Request<pb::TransitRandomRequest>) -> Reply<pb::TransitRandom> {
        self.open()?;
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let req = RandomRequest {
            bytes: version(r.bytes),
            format: some(r.format),
            source: None,
            url_bytes: None,
        };
        let out = self.0.transit_random(&c, &r.mount, &req)?;
        Ok(Response::new(pb::TransitRandom {
            random_bytes: out.random_bytes,
        }))
    }

    async fn hash(&self, r: Request<pb::TransitHashRequest>) -> Reply<pb::TransitHashSum> {
        self.open()?;
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let req = HashRequest {
            input: Some(Input::bytes(r.input)),
            algorithm: some(r.algorithm),
            format: some(r.format),
        };
        Ok(Response::new(pb::TransitHashSum {
            sum: self.0.transit_hash(&c, &r.mount, &req)?.sum,
        }))
    }
}

fn ciphertexts(a: Answer<EncryptOut>) -> Vec<pb::TransitCiphertext> {
    results(
        a,
        |v, reference| pb::TransitCiphertext {
            ciphertext: v.ciphertext,
            key_version: v.key_version,
            error: String::new(),
            reference,
        },
        |error, reference| pb::TransitCiphertext {
            error,
            reference,
            ..Default::default()
        },
    )
}
