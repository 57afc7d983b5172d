//! `Sync`: declarative deploys. The operator sends every service that
//! should run (`mcctl sync DIR`: the definitions in a directory); the
//! master compares them with its service rows and deploys the new ones,
//! redeploys the changed ones (with the fields that changed) and undeploys
//! the ones not listed. `dry_run` reports the same plan, each deploy's
//! node as placement would choose it, and changes nothing.
//!
//! Invariants: every definition is validated before anything changes (one
//! bad file refuses the whole sync, naming `specs[i].<field>`), names are
//! unique; applying goes through `deploy::deploy` and `deploy::undeploy`,
//! so their locking, records and rules (no implicit migration) hold;
//! undeploys never purge data.

use std::collections::BTreeMap;

use mc_kit::api::{ApiError, Invalid};
use mc_proto::deploy::v1 as pb;
use mc_service::caller::Caller;
use serde_json::Value;

use crate::Master;
use crate::deploy::{self, step, steps_pb};
use crate::spec::ServiceDef;
use crate::store::{self, ServiceRow};

/// Most definitions in one sync.
pub(crate) const MAX_SPECS: usize = 256;

/// What a sync does to one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    Deploy,
    Update,
    Undeploy,
    Unchanged,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Self::Deploy => "deploy",
            Self::Update => "update",
            Self::Undeploy => "undeploy",
            Self::Unchanged => "unchanged",
        }
    }
}

struct Planned {
    action: Action,
    name: String,
    def: Option<ServiceDef>,
    old: Option<ServiceRow>,
    diff: Vec<String>,
}

/// `path → value` of every leaf of a JSON value (`components[0].image`).
fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&p, x, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), x, out);
            }
        }
        _ => {
            out.insert(prefix.to_owned(), v.to_string());
        }
    }
}

/// The changed fields from `old` to `new`: `-path: old`, `+path: new`.
pub(crate) fn diff(old: &ServiceDef, new: &ServiceDef) -> Vec<String> {
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    flatten("", &serde_json::to_value(old).unwrap_or_default(), &mut a);
    flatten("", &serde_json::to_value(new).unwrap_or_default(), &mut b);
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    for k in keys {
        match (a.get(k), b.get(k)) {
            (Some(x), Some(y)) if x == y => {}
            (x, y) => {
                if let Some(x) = x {
                    out.push(format!("-{k}: {x}"));
                }
                if let Some(y) = y {
                    out.push(format!("+{k}: {y}"));
                }
            }
        }
    }
    out
}

/// Validates every spec and compares them with the service rows.
fn plan(m: &Master, specs: Vec<pb::ServiceSpec>) -> Result<Vec<Planned>, ApiError> {
    if specs.len() > MAX_SPECS {
        return Err(Invalid::new("specs", format!("at most {MAX_SPECS} services")).into());
    }
    let mut defs: Vec<ServiceDef> = Vec::new();
    for (i, s) in specs.into_iter().enumerate() {
        let def = ServiceDef::from_proto(s)
            .map_err(|e| Invalid::new(format!("specs[{i}].{}", e.field), e.message))?;
        if defs.iter().any(|d| d.name == def.name) {
            return Err(Invalid::new(
                format!("specs[{i}].name"),
                format!("{} is listed twice", def.name),
            )
            .into());
        }
        defs.push(def);
    }
    let mut rows: BTreeMap<String, ServiceRow> = store::services(&m.store)
        .map_err(ApiError::internal)?
        .into_iter()
        .map(|r| (r.def.name.clone(), r))
        .collect();
    let mut out = Vec::new();
    for def in defs {
        let old = rows.remove(&def.name);
        let (action, diff) = match &old {
            None => (Action::Deploy, Vec::new()),
            Some(o) if o.def == def => (Action::Unchanged, Vec::new()),
            Some(o) => (Action::Update, diff(&o.def, &def)),
        };
        out.push(Planned {
            action,
            name: def.name.clone(),
            def: Some(def),
            old,
            diff,
        });
    }
    out.extend(rows.into_values().map(|o| Planned {
        action: Action::Undeploy,
        name: o.def.name.clone(),
        def: None,
        old: Some(o),
        diff: Vec::new(),
    }));
    out.sort_by(|a, b| (a.action, &a.name).cmp(&(b.action, &b.name)));
    Ok(out)
}

/// What a dry run says of one planned change: the node and whether it
/// would be possible (placement, no implicit migration).
fn preview(m: &Master, p: &Planned) -> pb::SyncChange {
    let mut c = change(p);
    match (&p.def, &p.old) {
        (Some(def), Some(old)) if !def.node.is_empty() && def.node != old.node => {
            c.success = false;
            c.steps = steps_pb(&[step(
                "place",
                false,
                format!(
                    "{} runs on {}; moving it is a migration (mcctl migrate)",
                    def.name, old.node
                ),
            )]);
        }
        (Some(def), None) => match crate::registry::place(m, &def.node) {
            Ok(n) => {
                c.steps = steps_pb(&[step("place", true, format!("node {}", n.name))]);
                c.node = n.name;
            }
            Err(e) => {
                c.success = false;
                c.steps = steps_pb(&[step("place", false, e.to_string())]);
            }
        },
        _ => {}
    }
    c
}

fn change(p: &Planned) -> pb::SyncChange {
    pb::SyncChange {
        service: p.name.clone(),
        action: p.action.name().to_owned(),
        diff: p.diff.clone(),
        node: p.old.as_ref().map(|o| o.node.clone()).unwrap_or_default(),
        success: true,
        steps: Vec::new(),
    }
}

async fn apply(m: &Master, c: &Caller, p: Planned) -> pb::SyncChange {
    let mut out = change(&p);
    let failed = |e: ApiError| {
        (
            false,
            steps_pb(&[step(p.action.name(), false, e.to_string())]),
        )
    };
    match (p.action, p.def) {
        (Action::Deploy | Action::Update, Some(def)) => {
            let r = pb::DeployRequest {
                spec: Some(def.to_proto()),
                dry_run: false,
            };
            (out.success, out.steps) = match deploy::deploy(m, c, r).await {
                Ok(d) => {
                    out.node = d.node;
                    (d.success, d.steps)
                }
                Err(e) => failed(e),
            };
        }
        (Action::Undeploy, _) => {
            let r = pb::UndeployRequest {
                service: p.name.clone(),
                purge: false,
            };
            (out.success, out.steps) = match deploy::undeploy(m, c, r).await {
                Ok(d) => (d.success, d.steps),
                Err(e) => failed(e),
            };
        }
        _ => {}
    }
    out
}

pub(crate) async fn sync(
    m: &Master,
    c: &Caller,
    r: pb::SyncRequest,
) -> Result<pb::SyncResponse, ApiError> {
    let planned = plan(m, r.specs)?;
    let mut changes = Vec::new();
    for p in planned {
        changes.push(if r.dry_run {
            preview(m, &p)
        } else {
            apply(m, c, p).await
        });
    }
    let success = changes.iter().all(|c| c.success);
    if !r.dry_run {
        tracing::info!(changes = changes.len(), success, by = %c.actor(), "sync");
    }
    Ok(pb::SyncResponse { success, changes })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(image: &str, extra: &str) -> ServiceDef {
        ServiceDef::from_toml(&format!(
            "name = \"web\"\n{extra}\n[[components]]\nname = \"app\"\nimage = \"{image}\"\n"
        ))
        .expect("def")
    }

    fn deployed(m: &Master, def: &ServiceDef) {
        let rec = store::DeployRecord {
            service: def.name.clone(),
            node: "a".into(),
            at: 1,
            by: String::new(),
            action: "deploy".into(),
            success: true,
            steps: Vec::new(),
        };
        let row = ServiceRow {
            def: def.clone(),
            node: "a".into(),
            deployed_at: 1,
        };
        store::finish(&m.store, &rec, store::Change::Put(&row)).expect("finish");
    }

    fn named(name: &str, image: &str) -> ServiceDef {
        let mut d = def(image, "");
        name.clone_into(&mut d.name);
        d
    }

    #[tokio::test]
    async fn the_plan_deploys_updates_and_undeploys_and_a_dry_run_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = crate::registry::tests::master(dir.path());
        deployed(&m, &named("web", "i:1"));
        deployed(&m, &named("db", "i:1"));
        deployed(&m, &named("old", "i:1"));
        let specs = vec![
            named("web", "i:2").to_proto(),
            named("db", "i:1").to_proto(),
            named("new", "i:1").to_proto(),
        ];
        let r = sync(
            &m,
            &Caller::default(),
            pb::SyncRequest {
                specs: specs.clone(),
                dry_run: true,
            },
        )
        .await
        .expect("planned");
        let got: Vec<(&str, &str)> = r
            .changes
            .iter()
            .map(|c| (c.action.as_str(), c.service.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("deploy", "new"),
                ("update", "web"),
                ("undeploy", "old"),
                ("unchanged", "db")
            ]
        );
        assert!(!r.success, "no node is registered: new cannot be placed");
        assert!(r.changes[0].steps[0].message.contains("no healthy node"));
        assert_eq!(r.changes[1].diff.len(), 2, "{:?}", r.changes[1].diff);
        assert_eq!(
            store::services(&m.store).expect("rows").len(),
            3,
            "nothing changed"
        );
        // Refusals name the entry; nothing changes.
        let mut twice = specs.clone();
        twice.push(named("web", "i:3").to_proto());
        let e = plan(&m, twice).err().expect("refused");
        assert!(
            matches!(e, ApiError::Invalid(ref i) if i.field == "specs[3].name"),
            "{e:?}"
        );
        let mut bad = specs;
        bad[1].components[0].image = "x:latest".into();
        let e = plan(&m, bad).err().expect("refused");
        assert!(
            matches!(e, ApiError::Invalid(ref i) if i.field == "specs[1].components[0].image"),
            "{e:?}"
        );
        let many = vec![named("web", "i:1").to_proto(); MAX_SPECS + 1];
        assert!(plan(&m, many).is_err());
    }

    #[test]
    fn the_diff_names_each_changed_field() {
        let a = def("i:1", "");
        assert!(diff(&a, &a).is_empty());
        let b = def("i:2", "node = \"n1\"");
        assert_eq!(
            diff(&a, &b),
            [
                "-components[0].image: \"i:1\"",
                "+components[0].image: \"i:2\"",
                "+node: \"n1\""
            ]
        );
    }
}
