//! The resource operations behind the handlers and `/Bulk`: create, read, replace, patch,
//! delete. Each validates with `scim/`, writes through `store/`, and returns the rendered
//! resource with its version.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::Value;
use time::OffsetDateTime;

use super::super::auth::ScimCtx;
use super::super::error::AppError;
use super::super::state::AppState;
use crate::scim::identifier;
use crate::scim::members::{member_refs, render_member, MemberOp, MemberRef};
use crate::scim::patch;
use crate::scim::resource::{self, Document, IfMatch};
use crate::scim::schema::{Attribute, ResourceKind, ResourceType, SchemaRegistry};
use crate::scim::ScimError;
use crate::search::{self, Scope};
use crate::store::audit::{ActorKind, WriteAudit};
use crate::store::{DeleteOutcome, ResourceKey, StoredResource, UpdateOutcome};

/// A rendered resource and its version.
#[derive(Debug)]
pub struct Rendered {
    /// The full resource (before attribute projection).
    pub doc: Document,
    /// Its version, for `ETag`.
    pub version: i64,
    /// Its URL.
    pub location: String,
}

/// Request-scoped context for the operations.
pub struct Ops<'a> {
    /// State.
    pub state: &'a AppState,
    /// The authenticated connector.
    pub ctx: &'a ScimCtx,
    /// PATCH work done so far by this request: `limits.max_patch_cost` bounds a request, so
    /// the PATCHes of one `/Bulk` share one budget (a Bulk of a thousand PATCHes may not do
    /// a thousand times the work of one).
    patch_spent: AtomicU64,
    /// Whether the operations are those of a `/Bulk` request (recorded in the audit trail).
    bulk: bool,
}

fn not_found(kind: ResourceKind, id: &str) -> AppError {
    let _ = id; // The id may be personal (some IdPs use e-mail-like ids); keep it out of the body.
    ScimError::not_found(format!("{} not found", kind.as_str())).into()
}

fn log_skipped(kind: ResourceKind, skipped: &[String]) {
    if !skipped.is_empty() {
        // Documented policy: member ids that name no resource of the connector are skipped
        // and reported, never a 4xx or 5xx (Entra counts those as escrow failures).
        tracing::warn!(
            scim.kind = kind.as_str(),
            members.skipped = skipped.len(),
            "group members naming no resource of this connector were skipped"
        );
    }
}

impl<'a> Ops<'a> {
    /// The operations of one request.
    pub fn new(state: &'a AppState, ctx: &'a ScimCtx) -> Self {
        Ops {
            state,
            ctx,
            patch_spent: AtomicU64::new(0),
            bulk: false,
        }
    }

    /// The operations of one `/Bulk` request: each is audited as `Bulk <METHOD>`.
    pub fn for_bulk(state: &'a AppState, ctx: &'a ScimCtx) -> Self {
        Ops {
            bulk: true,
            ..Ops::new(state, ctx)
        }
    }

    /// What the audit row of a write by this request says about who and how
    /// (docs/audit.md): the credential that authenticated it and the HTTP method.
    fn audit(&self, method: &str) -> WriteAudit {
        WriteAudit {
            actor_kind: ActorKind::Scim,
            actor: self.ctx.credential.clone(),
            operation: if self.bulk {
                format!("Bulk {method}")
            } else {
                method.to_owned()
            },
        }
    }

    /// A pull connector's users are written by its runs only (docs/pull.md): its SCIM
    /// endpoint answers reads and refuses writes, so an IdP pushing by mistake learns why.
    fn refuse_if_pulled(&self) -> Result<(), AppError> {
        match self.state.settings.connectors.get(&self.ctx.connector) {
            Some(c) if c.kind.is_pull() => Err(ScimError::new(
                403,
                None,
                format!(
                    "this connector is read-only: its users are pulled from the IdP \
                     (kind = \"{}\"), so SCIM writes are refused; change users in the IdP",
                    c.kind.as_str()
                ),
            )
            .into()),
            _ => Ok(()),
        }
    }

    /// The key of a resource of this request's connector.
    fn key(&self, kind: ResourceKind, id: &str) -> ResourceKey {
        ResourceKey::new(self.ctx.connector.as_str(), kind, id)
    }

    fn rt(&self, kind: ResourceKind) -> &'a ResourceType {
        self.state.schemas.resource_type(kind)
    }

    fn scope(&self, kind: ResourceKind) -> Scope<'a> {
        Scope {
            store: &self.state.store,
            rt: self.rt(kind),
            connector: &self.ctx.connector,
            base: &self.ctx.base,
        }
    }

    /// Renders a stored resource: Groups with their members (unless not wanted), Users with
    /// their read-only `groups`.
    pub async fn render(
        &self,
        r: &StoredResource,
        with_members: bool,
        with_groups: bool,
    ) -> Result<Rendered, AppError> {
        let scope = self.scope(r.kind);
        let mut doc = match r.kind {
            ResourceKind::Group if with_members => {
                let mut m = search::members_of(
                    &self.state.store,
                    &self.ctx.connector,
                    std::slice::from_ref(&r.id),
                )
                .await?;
                search::render(
                    scope,
                    r,
                    Some(m.remove(&r.id).unwrap_or_default().as_slice()),
                )
            }
            _ => search::render(scope, r, None),
        };
        if r.kind == ResourceKind::User && with_groups {
            let groups = self
                .state
                .store
                .groups_of(&self.ctx.connector, std::slice::from_ref(&r.id))
                .await?;
            if let Some(gs) = groups.get(&r.id) {
                let items: Vec<Value> = gs
                    .iter()
                    .map(|(gid, name)| {
                        let mut v = render_member(gid, "Group", Some(name), &self.ctx.base);
                        if let Some(o) = v.as_object_mut() {
                            o.insert("type".into(), "direct".into());
                        }
                        v
                    })
                    .collect();
                insert_before_meta(&mut doc, "groups", Value::Array(items));
            }
        }
        Ok(Rendered {
            location: format!("{}/{}/{}", self.ctx.base, r.kind.endpoint(), r.id),
            version: r.version,
            doc,
        })
    }

    async fn load(&self, kind: ResourceKind, id: &str) -> Result<StoredResource, AppError> {
        self.state
            .store
            .get_resource(&self.key(kind, id))
            .await?
            .ok_or_else(|| not_found(kind, id))
    }

    /// `GET /{type}/{id}`.
    pub async fn get(
        &self,
        kind: ResourceKind,
        id: &str,
        with_members: bool,
    ) -> Result<Rendered, AppError> {
        let r = self.load(kind, id).await?;
        self.render(&r, with_members, true).await
    }

    /// `POST /{type}` (RFC 7644 §3.3).
    pub async fn create(&self, kind: ResourceKind, body: &Value) -> Result<Rendered, AppError> {
        self.refuse_if_pulled()?;
        self.state.admit_write()?;
        let rt = self.rt(kind);
        let mut doc = resource::from_body(&self.state.schemas, rt, body)?;
        resource::check_required(rt, &doc)?;
        identifier::check_name(kind, &doc, None)?;
        let members = take_members(rt, &mut doc)?;
        resource::check_value_counts(rt, &doc, self.max_values())?;
        // A version 7 UUID: a millisecond timestamp, then 74 random bits (RFC 9562 §5.7).
        // Ids are opaque to the IdP (RFC 7643 §3.1) and still unguessable, but consecutive
        // creates get neighbouring ids, so the indexes keyed by id (the resource, its
        // sync-queue mark, its audit rows) append to one B-tree page instead of touching a
        // random page each: with random (v4) ids a batch of 8 creates dirtied about 90
        // SQLite pages, and the WAL checkpoint after every ~11 batches took a sixth of the
        // single writer's time (README.md "Benchmark"). The timestamp in the id tells no more
        // than `meta.created`.
        let id = uuid::Uuid::now_v7().to_string();
        let inserted = self
            .state
            .store
            .insert_resource_audited(
                &self.key(kind, &id),
                &doc,
                &members,
                OffsetDateTime::now_utc(),
                &self.audit("POST"),
            )
            .await?;
        log_skipped(kind, &inserted.skipped_members);
        tracing::info!(scim.kind = kind.as_str(), scim.id = %id, "resource created");
        // A user just created belongs to no group yet: no need to look its groups up.
        self.render(&inserted.resource, true, false).await
    }

    /// `PUT /{type}/{id}` (RFC 7644 §3.5.1).
    pub async fn replace(
        &self,
        kind: ResourceKind,
        id: &str,
        body: &Value,
        if_match: Option<IfMatch>,
    ) -> Result<Rendered, AppError> {
        self.refuse_if_pulled()?;
        self.state.admit_write()?;
        let rt = self.rt(kind);
        if let Some(body_id) = body.get("id").and_then(Value::as_str) {
            if body_id != id {
                return Err(ScimError::invalid_value(
                    "\"id\" in the body differs from the id in the URL; a resource's id never changes",
                )
                .into());
            }
        }
        let mut new = resource::from_body(&self.state.schemas, rt, body)?;
        resource::check_required(rt, &new)?;
        let members = take_members(rt, &mut new)?;
        resource::check_value_counts(rt, &new, self.max_values())?;
        let member_ops = match kind {
            ResourceKind::Group => vec![MemberOp::Replace(members)],
            ResourceKind::User => Vec::new(),
        };
        let schemas = self.state.schemas.clone();
        let compute: Compute = Arc::new(move |current: &StoredResource| {
            let rt = schemas.resource_type(kind);
            let mut doc = new.clone();
            // Deviation from RFC 7644 §3.5.1, on purpose: a PUT without `active` keeps the
            // current value instead of clearing it (docs/reference/idp-behaviour.md O3). An absent
            // `active` means "unknown" to several IdPs, and clearing it would enable or disable by
            // accident.
            if kind == ResourceKind::User && !doc.contains_key("active") {
                if let Some(active) = current.doc.get("active") {
                    doc.insert("active".into(), active.clone());
                }
            }
            resource::check_immutable(rt, &current.doc, &doc)?;
            identifier::check_name(kind, &doc, Some(&current.doc))?;
            Ok((doc, member_ops.clone(), 0))
        });
        self.write_from_current(kind, id, if_match, compute, |_| false, "PUT")
            .await
    }

    /// `PATCH /{type}/{id}` (RFC 7644 §3.5.2).
    ///
    /// The new state is computed *outside* the write transaction, from the resource read
    /// just before, and written only if the resource is still at that version
    /// ([`Store::modify_resource_if`](crate::store::Store::modify_resource_if)); a PATCH that
    /// lost a race to another write of the same resource is computed again. The single
    /// SQLite writer, shared by every connector, thus never waits for a PATCH to be worked
    /// out (not even under contention, which would otherwise let concurrent PATCHes of one
    /// resource force their work into it), and the work itself is bounded by
    /// `limits.max_patch_cost`. Each round of a race has a winner, so a PATCH waits at most
    /// as many rounds as there are concurrent writers of its resource; the request's time
    /// limit bounds the rest.
    pub async fn patch(
        &self,
        kind: ResourceKind,
        id: &str,
        body: &Value,
        if_match: Option<IfMatch>,
    ) -> Result<Rendered, AppError> {
        self.refuse_if_pulled()?;
        self.state.admit_write()?;
        let req = Arc::new(patch::parse(body)?);
        let max = self.state.settings.limits.max_patch_cost;
        let limits = PatchLimits {
            max_cost: max.saturating_sub(self.patch_spent.load(Ordering::Relaxed)),
            max_values: self.state.settings.limits.max_values_per_attribute,
        };
        let schemas = self.state.schemas.clone();
        let work = req.clone();
        let compute: Compute = Arc::new(move |current: &StoredResource| {
            patch_state(&schemas, kind, current, &work, limits)
        });
        self.write_from_current(
            kind,
            id,
            if_match,
            compute,
            move |current| is_heavy(&req, current),
            "PATCH",
        )
        .await
    }

    /// Writes the state `compute` derives from the current resource: computed outside the
    /// write transaction (on the blocking pool, under `heavy_work`, when `heavy` says so) and
    /// written only if the resource is still at the version it was computed from, else
    /// computed again ([`Store::modify_resource_if`](crate::store::Store::modify_resource_if)).
    /// The cost `compute` reports is charged to the request's PATCH budget once it counted.
    async fn write_from_current(
        &self,
        kind: ResourceKind,
        id: &str,
        if_match: Option<IfMatch>,
        compute: Compute,
        heavy: impl Fn(&StoredResource) -> bool,
        method: &str,
    ) -> Result<Rendered, AppError> {
        let audit = self.audit(method);
        loop {
            let current = self.load(kind, id).await?;
            check_if_match(if_match.as_ref(), current.version)?;
            let from = current.version;
            let on_pool = heavy(&current);
            let work = compute.clone();
            let run = move || work(&current);
            // Large PATCHes are worked out on the blocking pool, off the async threads, and
            // only as many at once as `heavy_work` allows.
            let (doc, members, cost) = if on_pool {
                let _permit =
                    self.state.heavy_work.acquire().await.map_err(|_| {
                        AppError::Internal("the heavy-work permits are closed".into())
                    })?;
                tokio::task::spawn_blocking(run)
                    .await
                    .map_err(|e| AppError::Internal(format!("PATCH computation failed: {e}")))??
            } else {
                run()?
            };
            let outcome = self
                .state
                .store
                .modify_resource_if_audited(
                    &self.key(kind, id),
                    self.members_attr(kind),
                    OffsetDateTime::now_utc(),
                    from,
                    doc,
                    members,
                    &audit,
                )
                .await?;
            if !matches!(outcome, UpdateOutcome::Moved) {
                // A lost race is not the client's fault: only the work that counted is charged.
                self.patch_spent.fetch_add(cost, Ordering::Relaxed);
                return self.finish(kind, id, outcome).await;
            }
            tracing::debug!(scim.kind = kind.as_str(), scim.id = %id, "write lost a race; computing it again");
            tokio::task::yield_now().await;
        }
    }

    fn max_values(&self) -> usize {
        self.state.settings.limits.max_values_per_attribute
    }

    fn members_attr(&self, kind: ResourceKind) -> Option<&'a Attribute> {
        self.rt(kind)
            .core
            .attribute("members")
            .filter(|_| kind == ResourceKind::Group)
    }

    /// The answer to a write's outcome.
    async fn finish(
        &self,
        kind: ResourceKind,
        id: &str,
        outcome: UpdateOutcome,
    ) -> Result<Rendered, AppError> {
        match outcome {
            UpdateOutcome::Updated {
                resource,
                skipped_members,
            } => {
                log_skipped(kind, &skipped_members);
                tracing::info!(scim.kind = kind.as_str(), scim.id = %id, "resource updated");
                self.render(&resource, true, true).await
            }
            UpdateOutcome::Unchanged(resource) => {
                tracing::debug!(scim.kind = kind.as_str(), scim.id = %id, "update changed nothing");
                self.render(&resource, true, true).await
            }
            UpdateOutcome::NotFound => Err(not_found(kind, id)),
            UpdateOutcome::Rejected(e) => Err(e.into()),
            UpdateOutcome::Moved => Err(AppError::Internal(
                "a conditional write reported a move outside the optimistic PATCH".to_owned(),
            )),
        }
    }

    /// `DELETE /{type}/{id}` (RFC 7644 §3.6).
    pub async fn delete(
        &self,
        kind: ResourceKind,
        id: &str,
        if_match: Option<IfMatch>,
    ) -> Result<(), AppError> {
        self.refuse_if_pulled()?;
        match self
            .state
            .store
            .delete_resource_audited(
                &self.key(kind, id),
                if_match,
                OffsetDateTime::now_utc(),
                &self.audit("DELETE"),
            )
            .await?
        {
            DeleteOutcome::Deleted => {
                tracing::info!(scim.kind = kind.as_str(), scim.id = %id, "resource deleted");
                Ok(())
            }
            DeleteOutcome::NotFound => Err(not_found(kind, id)),
            DeleteOutcome::Stale => Err(ScimError::precondition_failed(
                "the resource changed since the version given in If-Match",
            )
            .into()),
        }
    }
}

/// How a write derives a resource's new state (document, membership changes, PATCH cost)
/// from its current one; called again when the resource changed meanwhile.
type Compute =
    Arc<dyn Fn(&StoredResource) -> Result<(Document, Vec<MemberOp>, u64), ScimError> + Send + Sync>;

/// The limits a PATCH is computed under.
#[derive(Debug, Clone, Copy)]
struct PatchLimits {
    max_cost: u64,
    max_values: usize,
}

/// `If-Match` against the stored version (RFC 7644 §3.14).
fn check_if_match(if_match: Option<&IfMatch>, version: i64) -> Result<(), ScimError> {
    match if_match {
        Some(m) if !m.admits(version) => Err(ScimError::precondition_failed(
            "the resource changed since the version given in If-Match",
        )),
        _ => Ok(()),
    }
}

/// The state a PATCH leads to from `current`, checked, and the cost it spent: pure work,
/// run wherever the caller likes (outside the write transaction, on the blocking pool for
/// large ones).
fn patch_state(
    schemas: &SchemaRegistry,
    kind: ResourceKind,
    current: &StoredResource,
    req: &patch::PatchRequest,
    limits: PatchLimits,
) -> Result<(Document, Vec<MemberOp>, u64), ScimError> {
    let rt = schemas.resource_type(kind);
    let patched = patch::apply(schemas, rt, &current.doc, req, limits.max_cost)?;
    resource::check_required(rt, &patched.doc)?;
    resource::check_immutable(rt, &current.doc, &patched.doc)?;
    identifier::check_name(kind, &patched.doc, Some(&current.doc))?;
    resource::check_value_counts(rt, &patched.doc, limits.max_values)?;
    Ok((patched.doc, patched.members, patched.cost))
}

/// Whether a PATCH may take long enough to be worth moving off the async threads: many
/// operations, or a resource with a long multi-valued attribute.
fn is_heavy(req: &patch::PatchRequest, current: &StoredResource) -> bool {
    const LIGHT_OPS: usize = 16;
    const LIGHT_VALUES: usize = 64;
    req.operations.len() > LIGHT_OPS
        || current.doc.values().any(|v| match v {
            Value::Array(items) => items.len() > LIGHT_VALUES,
            Value::Object(ext) => ext
                .values()
                .any(|e| e.as_array().is_some_and(|a| a.len() > LIGHT_VALUES)),
            _ => false,
        })
}

/// Moves `members` out of a Group document (membership is stored as rows).
fn take_members(rt: &ResourceType, doc: &mut Document) -> Result<Vec<MemberRef>, ScimError> {
    if rt.kind != ResourceKind::Group {
        return Ok(Vec::new());
    }
    match (doc.remove("members"), rt.core.attribute("members")) {
        (Some(v), Some(attr)) => member_refs(attr, &v),
        _ => Ok(Vec::new()),
    }
}

/// Inserts a key just before `meta`, so rendered resources keep `meta` last.
fn insert_before_meta(doc: &mut Document, key: &str, value: Value) {
    let meta = doc.remove("meta");
    doc.insert(key.to_owned(), value);
    if let Some(m) = meta {
        doc.insert("meta".into(), m);
    }
}
