//! gRPC `Mounts`, `Policy` and `Kv` (mc.crypt.v1): each RPC answers
//! `UNAVAILABLE` "sealed" before it decodes anything, then calls the core
//! operation its REST twin calls. JSON configs and secrets travel as JSON
//! text; proto3 empty strings mean "not given".

use std::collections::BTreeMap;

use mc_proto::crypt::v1 as pb;
use serde_json::{Map, Value};
use tonic::{Request, Response, Status as GrpcStatus};

use super::grpc::Services;
use crate::core::{
    Caller, ExplainInput, KvDelete, KvMetadata, KvMetadataInput, KvOptions, KvVersion, KvWrite,
    Mount, MountInput, MountUpdate, PolicyCapability, PolicyEffect, PolicyRule, Subject,
};
use crate::error::CryptError;

type Reply<T> = Result<Response<T>, GrpcStatus>;

fn json_object(field: &str, text: &str) -> Result<Map<String, Value>, CryptError> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(CryptError::invalid(field, "a JSON object")),
        Err(e) => Err(CryptError::invalid(field, format!("not JSON: {e}"))),
    }
}

fn optional_json(field: &str, text: &str) -> Result<Option<Value>, CryptError> {
    if text.is_empty() {
        return Ok(None);
    }
    json_object(field, text).map(|m| Some(Value::Object(m)))
}

fn mount_pb(m: Mount) -> pb::MountInfo {
    pb::MountInfo {
        id: m.id,
        name: m.name,
        r#type: m.kind,
        description: m.description,
        config_json: m.config.to_string(),
        created_at: m.created_at,
    }
}

pub(crate) fn rule_pb(r: PolicyRule) -> pb::PolicyRule {
    pb::PolicyRule {
        id: r.id,
        priority: r.priority,
        effect: match r.effect {
            PolicyEffect::Allow => "allow",
            PolicyEffect::Deny => "deny",
        }
        .to_owned(),
        enabled: Some(r.enabled),
        description: r.description,
        accounts: r.accounts,
        roles: r.roles,
        tags: r.tags,
        account_types: r.account_types,
        paths: r.paths,
        capabilities: r
            .capabilities
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect(),
    }
}

fn rule_from_pb(r: pb::PolicyRule) -> Result<PolicyRule, CryptError> {
    let effect = match r.effect.as_str() {
        "" | "allow" => PolicyEffect::Allow,
        "deny" => PolicyEffect::Deny,
        _ => return Err(CryptError::invalid("effect", "allow or deny")),
    };
    let capabilities = r
        .capabilities
        .iter()
        .enumerate()
        .map(|(i, c)| {
            PolicyCapability::parse(c).ok_or_else(|| {
                CryptError::invalid(
                    format!("capabilities[{i}]"),
                    "one of read, list, create, update, patch, delete",
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PolicyRule {
        id: r.id,
        priority: r.priority,
        effect,
        enabled: r.enabled.unwrap_or(true),
        description: r.description,
        accounts: r.accounts,
        roles: r.roles,
        tags: r.tags,
        account_types: r.account_types,
        paths: r.paths,
        capabilities,
    })
}

fn version_pb(v: KvVersion) -> pb::KvVersionInfo {
    pb::KvVersionInfo {
        version: v.version,
        created_time: v.created_time,
        deletion_time: v.deletion_time,
        destroyed: v.destroyed,
    }
}

fn metadata_pb(m: KvMetadata) -> pb::KvMetadata {
    pb::KvMetadata {
        current_version: m.current_version,
        oldest_version: m.oldest_version,
        created_time: m.created_time,
        updated_time: m.updated_time,
        max_versions: m.max_versions,
        cas_required: m.cas_required,
        delete_version_after: m.delete_version_after,
        custom_metadata: m.custom_metadata.into_iter().collect(),
        versions: m
            .versions
            .into_iter()
            .filter_map(|(k, v)| {
                k.parse::<u64>().ok().map(|n| {
                    (
                        n,
                        pb::KvVersionInfo {
                            version: n,
                            created_time: v.created_time,
                            deletion_time: v.deletion_time,
                            destroyed: v.destroyed,
                        },
                    )
                })
            })
            .collect(),
    }
}

impl Services {
    fn unsealed(&self) -> Result<(), GrpcStatus> {
        Ok(self.0.require_unsealed()?)
    }
}

#[tonic::async_trait]
impl pb::mounts_server::Mounts for Services {
    async fn list(&self, _: Request<pb::ListMountsRequest>) -> Reply<pb::ListMountsResponse> {
        self.unsealed()?;
        let mounts = self.0.list_mounts()?.into_iter().map(mount_pb).collect();
        Ok(Response::new(pb::ListMountsResponse { mounts }))
    }

    async fn get(&self, r: Request<pb::GetMountRequest>) -> Reply<pb::MountInfo> {
        self.unsealed()?;
        Ok(Response::new(mount_pb(
            self.0.get_mount(&r.into_inner().name)?,
        )))
    }

    async fn create(&self, r: Request<pb::CreateMountRequest>) -> Reply<pb::MountInfo> {
        self.unsealed()?;
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let input = MountInput {
            name: r.name,
            kind: r.r#type,
            description: r.description,
            config: optional_json("config_json", &r.config_json)?,
        };
        Ok(Response::new(mount_pb(self.0.create_mount(&c, input)?)))
    }

    async fn update(&self, r: Request<pb::UpdateMountRequest>) -> Reply<pb::MountInfo> {
        self.unsealed()?;
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let input = MountUpdate {
            description: r.description,
            config: optional_json("config_json", &r.config_json)?,
        };
        Ok(Response::new(mount_pb(
            self.0.update_mount(&c, &r.name, input)?,
        )))
    }

    async fn delete(&self, r: Request<pb::DeleteMountRequest>) -> Reply<pb::DeleteMountResponse> {
        self.unsealed()?;
        let c = Caller::from_grpc(&r);
        self.0.delete_mount(&c, &r.into_inner().name)?;
        Ok(Response::new(pb::DeleteMountResponse {}))
    }

    async fn rotate_dek(&self, r: Request<pb::RotateDekRequest>) -> Reply<pb::RotateDekResponse> {
        self.unsealed()?;
        let c = Caller::from_grpc(&r);
        let out = self.0.rotate_dek(&c, &r.into_inner().name)?;
        Ok(Response::new(pb::RotateDekResponse {
            mount: out.mount,
            dek_version: out.dek_version,
            rows: out.rows,
        }))
    }
}

#[tonic::async_trait]
impl pb::policy_server::Policy for Services {
    async fn list(&self, _: Request<pb::ListRulesRequest>) -> Reply<pb::ListRulesResponse> {
        self.unsealed()?;
        let rules = self.0.list_rules()?.into_iter().map(rule_pb).collect();
        Ok(Response::new(pb::ListRulesResponse { rules }))
    }

    async fn get(&self, r: Request<pb::GetRuleRequest>) -> Reply<pb::PolicyRule> {
        self.unsealed()?;
        Ok(Response::new(rule_pb(self.0.get_rule(&r.into_inner().id)?)))
    }

    async fn create(&self, r: Request<pb::PolicyRule>) -> Reply<pb::PolicyRule> {
        self.unsealed()?;
        let c = Caller::from_grpc(&r);
        let rule = rule_from_pb(r.into_inner())?;
        Ok(Response::new(rule_pb(self.0.create_rule(&c, rule)?)))
    }

    async fn update(&self, r: Request<pb::PolicyRule>) -> Reply<pb::PolicyRule> {
        self.unsealed()?;
        let c = Caller::from_grpc(&r);
        let rule = rule_from_pb(r.into_inner())?;
        let id = rule.id.clone();
        Ok(Response::new(rule_pb(self.0.update_rule(&c, &id, rule)?)))
    }

    async fn delete(&self, r: Request<pb::DeleteRuleRequest>) -> Reply<pb::DeleteRuleResponse> {
        self.unsealed()?;
        let c = Caller::from_grpc(&r);
        self.0.delete_rule(&c, &r.into_inner().id)?;
        Ok(Response::new(pb::DeleteRuleResponse {}))
    }

    async fn explain(&self, r: Request<pb::ExplainRequest>) -> Reply<pb::ExplainResponse> {
        self.unsealed()?;
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let input = ExplainInput {
            path: r.path,
            capability: r.capability,
            subject: r.subject.map(|s| Subject {
                account_id: s.account_id,
                username: s.username,
                account_type: s.account_type,
                roles: s.roles,
                tags: s.tags,
            }),
        };
        let e = self.0.explain(&c, input)?;
        Ok(Response::new(pb::ExplainResponse {
            allowed: e.verdict.allowed,
            decision: e.verdict.decision.to_owned(),
            rule: e.verdict.rule.unwrap_or_default(),
            matched: e.verdict.matched,
        }))
    }
}

fn versions(r: pb::KvVersionsRequest) -> (String, String, KvDelete) {
    (
        r.mount,
        r.path,
        KvDelete {
            versions: r.versions,
        },
    )
}

#[tonic::async_trait]
impl pb::kv_server::Kv for Services {
    async fn read(&self, r: Request<pb::KvReadRequest>) -> Reply<pb::KvReadResponse> {
        self.unsealed()?;
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let out = self.0.kv_read(&c, &r.mount, &r.path, r.version)?;
        Ok(Response::new(pb::KvReadResponse {
            data_json: out
                .data
                .map(|d| Value::Object(d).to_string())
                .unwrap_or_default(),
            metadata: Some(version_pb(out.metadata)),
        }))
    }

    async fn write(&self, r: Request<pb::KvWriteRequest>) -> Reply<pb::KvVersionInfo> {
        self.unsealed()?;
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let data = json_object("data_json", &r.data_json).map_err(|e| {
            self.0
                .kv_authorize_write(&c, &r.mount, &r.path, false)
                .err()
                .unwrap_or(e)
        })?;
        let input = KvWrite {
            data,
            options: KvOptions { cas: r.cas },
        };
        Ok(Response::new(version_pb(
            self.0.kv_write(&c, &r.mount, &r.path, &input)?,
        )))
    }

    async fn patch(&self, r: Request<pb::KvWriteRequest>) -> Reply<pb::KvVersionInfo> {
        self.unsealed()?;
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let data = json_object("data_json", &r.data_json).map_err(|e| {
            self.0
                .kv_authorize_write(&c, &r.mount, &r.path, true)
                .err()
                .unwrap_or(e)
        })?;
        let input = KvWrite {
            data,
            options: KvOptions { cas: r.cas },
        };
        Ok(Response::new(version_pb(
            self.0.kv_patch(&c, &r.mount, &r.path, &input)?,
        )))
    }

    async fn delete_latest(&self, r: Request<pb::KvPathRequest>) -> Reply<pb::KvEmpty> {
        self.unsealed()?;
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        self.0.kv_delete_latest(&c, &r.mount, &r.path)?;
        Ok(Response::new(pb::KvEmpty {}))
    }

    async fn delete_versions(&self, r: Request<pb::KvVersionsRequest>) -> Reply<pb::KvEmpty> {
        self.unsealed()?;
        let c = Caller::from_grpc(&r);
        let (mount, path, input) = versions(r.into_inner());
        self.0.kv_delete_versions(&c, &mount, &path, &input)?;
        Ok(Response::new(pb::KvEmpty {}))
    }

    async fn undelete(&self, r: Request<pb::KvVersionsRequest>) -> Reply<pb::KvEmpty> {
        self.unsealed()?;
        let c = Caller::from_grpc(&r);
        let (mount, path, input) = versions(r.into_inner());
        self.0.kv_undelete(&c, &mount, &path, &input)?;
        Ok(Response::new(pb::KvEmpty {}))
    }

    async fn destroy(&self, r: Request<pb::KvVersionsRequest>) -> Reply<pb::KvEmpty> {
        self.unsealed()?;
        let c = Caller::from_grpc(&r);
        let (mount, path, input) = versions(r.into_inner());
        self.0.kv_destroy(&c, &mount, &path, &input)?;
        Ok(Response::new(pb::KvEmpty {}))
    }

    async fn read_metadata(&self, r: Request<pb::KvPathRequest>) -> Reply<pb::KvMetadata> {
        self.unsealed()?;
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        Ok(Response::new(metadata_pb(
            self.0.kv_read_metadata(&c, &r.mount, &r.path)?,
        )))
    }

    async fn write_metadata(
        &self,
        r: Request<pb::KvWriteMetadataRequest>,
    ) -> Reply<pb::KvMetadata> {
        self.unsealed()?;
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let custom: BTreeMap<String, String> = r.custom_metadata.into_iter().collect();
        let input = KvMetadataInput {
            max_versions: r.max_versions,
            cas_required: r.cas_required,
            delete_version_after: r.delete_version_after,
            custom_metadata: (r.replace_custom_metadata || !custom.is_empty()).then_some(custom),
        };
        Ok(Response::new(metadata_pb(
            self.0.kv_write_metadata(&c, &r.mount, &r.path, &input)?,
        )))
    }

    async fn delete_metadata(&self, r: Request<pb::KvPathRequest>) -> Reply<pb::KvEmpty> {
        self.unsealed()?;
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        self.0.kv_delete_metadata(&c, &r.mount, &r.path)?;
        Ok(Response::new(pb::KvEmpty {}))
    }

    async fn list(&self, r: Request<pb::KvPathRequest>) -> Reply<pb::KvListResponse> {
        self.unsealed()?;
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let keys = self.0.kv_list(&c, &r.mount, &r.path)?.keys;
        Ok(Response::new(pb::KvListResponse { keys }))
    }

    async fn read_config(&self, r: Request<pb::KvConfigRequest>) -> Reply<pb::KvMountConfig> {
        self.unsealed()?;
        let c = Caller::from_grpc(&r);
        let cfg = self.0.kv_read_config(&c, &r.into_inner().mount)?;
        Ok(Response::new(pb::KvMountConfig {
            max_versions: cfg.max_versions,
            cas_required: cfg.cas_required,
            delete_version_after: cfg.delete_version_after,
        }))
    }

    async fn write_config(&self, r: Request<pb::KvWriteConfigRequest>) -> Reply<pb::KvMountConfig> {
        self.unsealed()?;
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let input = crate::core::KvConfigInput {
            max_versions: r.max_versions,
            cas_required: r.cas_required,
            delete_version_after: r.delete_version_after,
        };
        let cfg = self.0.kv_write_config(&c, &r.mount, &input)?;
        Ok(Response::new(pb::KvMountConfig {
            max_versions: cfg.max_versions,
            cas_required: cfg.cas_required,
            delete_version_after: cfg.delete_version_after,
        }))
    }
}
