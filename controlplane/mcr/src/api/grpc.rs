//! gRPC (`mc.registry.v1`) adapter: each RPC is one call into
//! [`super::ops`], the same one its REST twin makes, plus the proto
//! conversions. The auth layer in front of both has checked the map.

use std::sync::Arc;

use mc_kit::api::ApiError;
use mc_proto::registry::v1 as pb;
use mc_service::caller::Caller;
use tonic::{Request, Response, Status};

use super::ops::{self, NamespaceUpdate, RepoUpdate};
use crate::Mcr;
use crate::core::admin::{QuotaInfo, RepoInfo};
use crate::core::inspect::{DescriptorView, ManifestView};
use crate::policy::{Action, Effect, Rule};

type Reply<T> = Result<Response<T>, Status>;

/// Page size when a request names none.
const PAGE: usize = 100;

fn n(v: u32) -> usize {
    if v == 0 { PAGE } else { v as usize }
}

fn opt(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// Every `mc.registry.v1` service, sharing one [`Mcr`].
#[derive(Clone)]
pub(crate) struct Services(Arc<Mcr>);

impl Services {
    pub(crate) fn add(mcr: Arc<Mcr>, routes: &mut tonic::service::RoutesBuilder) {
        let s = Self(mcr);
        routes
            .add_service(pb::repositories_server::RepositoriesServer::new(s.clone()))
            .add_service(pb::namespaces_server::NamespacesServer::new(s.clone()))
            .add_service(pb::quotas_server::QuotasServer::new(s.clone()))
            .add_service(pb::policy_server::PolicyServer::new(s.clone()))
            .add_service(pb::audit_server::AuditServer::new(s));
    }
}

fn repo_pb(r: RepoInfo) -> pb::Repository {
    pb::Repository {
        name: r.name,
        created_at: r.created_at,
        updated_at: r.updated_at,
        tag_count: r.tag_count,
        manifest_count: r.manifest_count,
        size_bytes: r.size_bytes,
        public_pull: r.public_pull,
        quota_bytes: r.quota_bytes,
        immutable_tags: r.immutable_tags,
        reclaimable_blobs: r.reclaimable_blobs,
        reclaimable_bytes: r.reclaimable_bytes,
    }
}

fn descriptor_pb(d: DescriptorView) -> pb::Descriptor {
    pb::Descriptor {
        media_type: d.media_type,
        digest: d.digest,
        size: d.size,
        artifact_type: d.artifact_type.unwrap_or_default(),
        platform: d.platform.unwrap_or_default(),
        annotations: d.annotations.into_iter().collect(),
    }
}

fn manifest_pb(m: ManifestView) -> pb::Manifest {
    let all = |v: Vec<DescriptorView>| v.into_iter().map(descriptor_pb).collect();
    pb::Manifest {
        repository: m.repository,
        digest: m.digest,
        media_type: m.media_type,
        size: m.size,
        artifact_type: m.artifact_type.unwrap_or_default(),
        config: m.config.map(descriptor_pb),
        layers: all(m.layers),
        manifests: all(m.manifests),
        subject: m.subject.map(descriptor_pb),
        annotations: m.annotations.into_iter().collect(),
        referrers: all(m.referrers),
        tags: m.tags,
        pushed_at: m.pushed_at,
        pushed_by: m.pushed_by,
    }
}

fn quota_pb(q: QuotaInfo) -> pb::Quota {
    pb::Quota {
        repository: q.repository,
        quota_bytes: q.quota_bytes,
        used_bytes: q.used_bytes,
        namespace: q.namespace,
        namespace_quota_bytes: q.namespace_quota_bytes,
        namespace_used_bytes: q.namespace_used_bytes,
    }
}

fn rule_pb(r: Rule) -> pb::Rule {
    pb::Rule {
        id: r.id,
        priority: r.priority,
        effect: match r.effect {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
        }
        .into(),
        enabled: r.enabled,
        description: r.description,
        accounts: r.accounts,
        roles: r.roles,
        tags: r.tags,
        account_types: r.account_types,
        repositories: r.repositories,
        actions: r.actions.iter().map(|a| a.name().to_owned()).collect(),
        tag_patterns: r.tag_patterns,
    }
}

fn rule_from(r: Option<pb::Rule>) -> Result<Rule, ApiError> {
    let r = r.ok_or_else(|| ApiError::invalid("rule", "required"))?;
    let effect = match r.effect.as_str() {
        "allow" => Effect::Allow,
        "deny" => Effect::Deny,
        _ => return Err(ApiError::invalid("rule.effect", "allow or deny")),
    };
    let actions = r
        .actions
        .iter()
        .map(|a| {
            Action::parse(a)
                .ok_or_else(|| ApiError::invalid("rule.actions", "pull, push or delete"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Rule {
        id: r.id,
        priority: r.priority,
        effect,
        enabled: r.enabled,
        description: r.description,
        accounts: r.accounts,
        roles: r.roles,
        tags: r.tags,
        account_types: r.account_types,
        repositories: r.repositories,
        actions,
        tag_patterns: r.tag_patterns,
    })
}

#[tonic::async_trait]
impl pb::repositories_server::Repositories for Services {
    async fn list(
        &self,
        r: Request<pb::ListRepositoriesRequest>,
    ) -> Reply<pb::ListRepositoriesResponse> {
        let c = Caller::from_grpc(&r);
        let q = r.into_inner();
        let repos = ops::list_repositories(&self.0, &c, q.prefix, opt(q.last), n(q.n)).await?;
        Ok(Response::new(pb::ListRepositoriesResponse {
            repositories: repos.into_iter().map(repo_pb).collect(),
        }))
    }

    async fn get(&self, r: Request<pb::GetRepositoryRequest>) -> Reply<pb::Repository> {
        let c = Caller::from_grpc(&r);
        let info = ops::get_repository(&self.0, &c, &r.into_inner().name).await?;
        Ok(Response::new(repo_pb(info)))
    }

    async fn update(&self, r: Request<pb::UpdateRepositoryRequest>) -> Reply<pb::Repository> {
        let c = Caller::from_grpc(&r);
        let q = r.into_inner();
        let u = RepoUpdate {
            public_pull: q.public_pull.map(Some),
            quota_bytes: q.quota_bytes,
            immutable_tags: q.immutable_tags.map(|t| t.globs),
        };
        let info = ops::update_repository(&self.0, &c, &q.name, u).await?;
        Ok(Response::new(repo_pb(info)))
    }

    async fn delete(
        &self,
        r: Request<pb::DeleteRepositoryRequest>,
    ) -> Reply<pb::DeleteRepositoryResponse> {
        let c = Caller::from_grpc(&r);
        ops::delete_repository(&self.0, &c, &r.into_inner().name).await?;
        Ok(Response::new(pb::DeleteRepositoryResponse {}))
    }

    async fn list_tags(&self, r: Request<pb::ListTagsRequest>) -> Reply<pb::ListTagsResponse> {
        let c = Caller::from_grpc(&r);
        let q = r.into_inner();
        let tags = ops::list_tags(&self.0, &c, &q.repository, opt(q.last), n(q.n)).await?;
        Ok(Response::new(pb::ListTagsResponse {
            tags: tags
                .into_iter()
                .map(|t| pb::Tag {
                    tag: t.tag,
                    digest: t.digest,
                    media_type: t.media_type,
                    size: t.size,
                    updated_at: t.updated_at,
                    updated_by: t.updated_by,
                })
                .collect(),
        }))
    }

    async fn get_manifest(&self, r: Request<pb::GetManifestRequest>) -> Reply<pb::Manifest> {
        let c = Caller::from_grpc(&r);
        let q = r.into_inner();
        let m = ops::get_manifest(&self.0, &c, &q.repository, &q.reference).await?;
        Ok(Response::new(manifest_pb(m)))
    }
}

#[tonic::async_trait]
impl pb::namespaces_server::Namespaces for Services {
    async fn get(&self, r: Request<pb::GetNamespaceRequest>) -> Reply<pb::Namespace> {
        let name = r.into_inner().name;
        let s = ops::get_namespace(&self.0, &name).await?;
        Ok(Response::new(pb::Namespace {
            name,
            public_pull: s.public_pull,
            quota_bytes: s.quota_bytes,
        }))
    }

    async fn update(&self, r: Request<pb::UpdateNamespaceRequest>) -> Reply<pb::Namespace> {
        let c = Caller::from_grpc(&r);
        let q = r.into_inner();
        let u = NamespaceUpdate {
            public_pull: q.public_pull,
            quota_bytes: q.quota_bytes,
        };
        let s = ops::update_namespace(&self.0, &c, &q.name, u).await?;
        Ok(Response::new(pb::Namespace {
            name: q.name,
            public_pull: s.public_pull,
            quota_bytes: s.quota_bytes,
        }))
    }
}

#[tonic::async_trait]
impl pb::quotas_server::Quotas for Services {
    async fn get(&self, r: Request<pb::GetQuotaRequest>) -> Reply<pb::Quota> {
        let q = ops::get_quota(&self.0, &r.into_inner().repository).await?;
        Ok(Response::new(quota_pb(q)))
    }

    async fn set(&self, r: Request<pb::SetQuotaRequest>) -> Reply<pb::Quota> {
        let c = Caller::from_grpc(&r);
        let q = r.into_inner();
        let info = ops::set_quota(&self.0, &c, &q.repository, q.quota_bytes).await?;
        Ok(Response::new(quota_pb(info)))
    }
}

#[tonic::async_trait]
impl pb::policy_server::Policy for Services {
    async fn list_rules(&self, _: Request<pb::ListRulesRequest>) -> Reply<pb::ListRulesResponse> {
        let rules = ops::list_rules(&self.0).await?;
        Ok(Response::new(pb::ListRulesResponse {
            rules: rules.into_iter().map(rule_pb).collect(),
        }))
    }

    async fn get_rule(&self, r: Request<pb::GetRuleRequest>) -> Reply<pb::Rule> {
        Ok(Response::new(rule_pb(
            ops::get_rule(&self.0, &r.into_inner().id).await?,
        )))
    }

    async fn create_rule(&self, r: Request<pb::CreateRuleRequest>) -> Reply<pb::Rule> {
        let c = Caller::from_grpc(&r);
        let rule = rule_from(r.into_inner().rule)?;
        Ok(Response::new(rule_pb(
            ops::create_rule(&self.0, &c, rule).await?,
        )))
    }

    async fn update_rule(&self, r: Request<pb::UpdateRuleRequest>) -> Reply<pb::Rule> {
        let c = Caller::from_grpc(&r);
        let q = r.into_inner();
        let rule = rule_from(q.rule)?;
        Ok(Response::new(rule_pb(
            ops::update_rule(&self.0, &c, &q.id, rule).await?,
        )))
    }

    async fn delete_rule(
        &self,
        r: Request<pb::DeleteRuleRequest>,
    ) -> Reply<pb::DeleteRuleResponse> {
        let c = Caller::from_grpc(&r);
        ops::delete_rule(&self.0, &c, &r.into_inner().id).await?;
        Ok(Response::new(pb::DeleteRuleResponse {}))
    }

    async fn explain(&self, r: Request<pb::ExplainRequest>) -> Reply<pb::ExplainResponse> {
        let q = r.into_inner();
        let d = ops::explain(
            &self.0,
            ops::ExplainInput {
                username: q.username,
                account_id: q.account_id,
                roles: q.roles,
                tags: q.tags,
                account_type: q.account_type,
                repository: q.repository,
                action: q.action,
                tag: opt(q.tag),
            },
        )?;
        Ok(Response::new(pb::ExplainResponse {
            allowed: d.allowed,
            rule: d.rule.unwrap_or_default(),
            reason: d.reason,
        }))
    }
}

#[tonic::async_trait]
impl pb::audit_server::Audit for Services {
    async fn query(&self, r: Request<pb::AuditQueryRequest>) -> Reply<pb::AuditQueryResponse> {
        let q = r.into_inner();
        let before = (q.before != 0).then_some(q.before);
        let events = ops::audit(&self.0, before, n(q.limit), opt(q.action), opt(q.target)).await?;
        Ok(Response::new(pb::AuditQueryResponse {
            events: events
                .into_iter()
                .map(|e| pb::AuditEvent {
                    seq: e.seq,
                    at: e.at,
                    actor: e.actor,
                    action: e.action,
                    target: e.target,
                    source_ip: e.source_ip,
                    result: e.result,
                    detail: e.detail,
                })
                .collect(),
        }))
    }
}
