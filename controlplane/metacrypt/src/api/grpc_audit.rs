//! gRPC `mc.crypt.v1.Audit`: the same query as REST `GET sys/audit`.

use mc_proto::crypt::v1 as pb;
use tonic::{Request, Response, Status};

use super::grpc::Services;
use crate::core::AuditQuery;

#[tonic::async_trait]
impl pb::audit_server::Audit for Services {
    async fn query(
        &self,
        r: Request<pb::AuditQueryRequest>,
    ) -> Result<Response<pb::AuditQueryResponse>, Status> {
        let r = r.into_inner();
        let page = self.0.audit_query(&AuditQuery {
            since: r.since,
            until: r.until,
            actor: r.actor,
            action: r.action,
            before: r.before,
            limit: r.limit,
        })?;
        Ok(Response::new(pb::AuditQueryResponse {
            events: page
                .events
                .into_iter()
                .map(|e| pb::AuditEventInfo {
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
            next_before: page.next_before,
        }))
    }
}
