//! Filter narrowing: the indexed part of a SCIM filter, as SQL.
//!
//! The Rust evaluator ([`crate::scim::filter::matches`]) is the meaning of a filter. SQL only
//! fetches *candidates* through indexes (`userName`/`displayName` case-insensitively,
//! `externalId`, `id`, `active`, `emails.value`); every candidate is then evaluated. So a
//! narrowing must return a superset of the matches, never a subset: it may drop any term it
//! does not understand (treating it as "anything"), but it may not weaken an `or` (one opaque
//! side makes the whole `or` a full scan) or look inside a `not`.

use crate::scim::filter::{CompValue, CompareOp, Filter};
use crate::scim::path::AttrPath;
use crate::scim::schema::{ResourceKind, ResourceType};

use super::{Arg, Backend};

/// One indexed condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    /// `name_lower = ?` (userName of Users, displayName of Groups).
    NameLower(String),
    /// `id = ?`
    Id(String),
    /// `external_id = ?`
    ExternalId(String),
    /// `active = ?`
    Active(bool),
    /// an `emails.value` equal to this, lower-cased.
    Email(String),
}

/// A disjunction of conjunctions of conditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Narrowing {
    disjuncts: Vec<Vec<Cond>>,
}

/// Largest number of disjuncts an `and` of two `or`s may expand into.
const MAX_DISJUNCTS: usize = 16;

/// The narrowing of a filter, or `None` when only a full scan can answer it.
pub fn narrow(filter: &Filter, rt: &ResourceType) -> Option<Narrowing> {
    match filter {
        Filter::Compare(path, CompareOp::Eq, value) => cond(path, value, rt).map(|c| Narrowing {
            disjuncts: vec![vec![c]],
        }),
        Filter::ValuePath(path, inner)
            if is_core(path, rt) && path.name.eq_ignore_ascii_case("emails") =>
        {
            email_in(inner).map(|e| Narrowing {
                disjuncts: vec![vec![Cond::Email(e)]],
            })
        }
        Filter::And(a, b) => match (narrow(a, rt), narrow(b, rt)) {
            (None, None) => None,
            (Some(n), None) | (None, Some(n)) => Some(n),
            (Some(x), Some(y)) => {
                if x.disjuncts.len() * y.disjuncts.len() <= MAX_DISJUNCTS {
                    let mut disjuncts = Vec::new();
                    for dx in &x.disjuncts {
                        for dy in &y.disjuncts {
                            disjuncts.push(dx.iter().chain(dy).cloned().collect());
                        }
                    }
                    Some(Narrowing { disjuncts })
                } else if x.disjuncts.len() <= y.disjuncts.len() {
                    Some(x)
                } else {
                    Some(y)
                }
            }
        },
        Filter::Or(a, b) => {
            let (mut x, y) = (narrow(a, rt)?, narrow(b, rt)?);
            x.disjuncts.extend(y.disjuncts);
            Some(x)
        }
        _ => None,
    }
}

fn is_core(path: &AttrPath, rt: &ResourceType) -> bool {
    path.urn
        .as_deref()
        .is_none_or(|u| u.eq_ignore_ascii_case(&rt.core.id))
}

fn cond(path: &AttrPath, value: &CompValue, rt: &ResourceType) -> Option<Cond> {
    if !is_core(path, rt) {
        return None;
    }
    let name = path.name.to_ascii_lowercase();
    let sub = path.sub.as_deref().map(str::to_ascii_lowercase);
    let text = match value {
        CompValue::String(s) => Some(s.as_str()),
        _ => None,
    };
    match (rt.kind, name.as_str(), sub.as_deref()) {
        (ResourceKind::User, "username", None) | (ResourceKind::Group, "displayname", None) => {
            text.map(|s| Cond::NameLower(crate::scim::identifier::fold(s)))
        }
        (_, "id", None) => text.map(|s| Cond::Id(s.to_owned())),
        (_, "externalid", None) => text.map(|s| Cond::ExternalId(s.to_owned())),
        (ResourceKind::User, "active", None) => match value {
            CompValue::Bool(b) => Some(Cond::Active(*b)),
            CompValue::String(s) if s.eq_ignore_ascii_case("true") => Some(Cond::Active(true)),
            CompValue::String(s) if s.eq_ignore_ascii_case("false") => Some(Cond::Active(false)),
            _ => None,
        },
        (ResourceKind::User, "emails", None | Some("value")) => {
            text.map(|s| Cond::Email(crate::scim::identifier::fold(s)))
        }
        _ => None,
    }
}

/// `value eq "x"` somewhere in an `and` chain inside `emails[…]`.
fn email_in(f: &Filter) -> Option<String> {
    match f {
        Filter::Compare(p, CompareOp::Eq, CompValue::String(s))
            if p.urn.is_none() && p.sub.is_none() && p.name.eq_ignore_ascii_case("value") =>
        {
            Some(crate::scim::identifier::fold(s))
        }
        Filter::And(a, b) => email_in(a).or_else(|| email_in(b)),
        _ => None,
    }
}

impl Narrowing {
    /// Renders the condition on the table aliased `r`, pushing its parameters to `args`;
    /// placeholders are numbered after the `bound` parameters the query binds before these.
    ///
    /// Every condition is one an index answers by itself, so the planners can use one index
    /// per disjunct (a bitmap OR on PostgreSQL, a multi-index OR on SQLite). An e-mail is
    /// looked up first (`resource_emails_value`) and its resources by id; the subquery is
    /// not correlated with `r`, because a correlated one is run for every resource of the
    /// connector. PostgreSQL needs it as `= ANY(ARRAY(…))`: an `IN (subquery)` under an `OR`
    /// becomes a filter over the whole connector there.
    pub(crate) fn to_sql(
        &self,
        backend: Backend,
        connector: &str,
        bound: usize,
        args: &mut Vec<Arg>,
    ) -> String {
        let email = match backend {
            Backend::Postgres => {
                "r.id = ANY(ARRAY(SELECT e.resource_id FROM resource_emails e \
                 WHERE e.connector = ${} AND e.value_lower = ${}))"
            }
            Backend::Sqlite => {
                "r.id IN (SELECT e.resource_id FROM resource_emails e \
                 WHERE e.connector = ${} AND e.value_lower = ${})"
            }
        };
        let mut ors = Vec::with_capacity(self.disjuncts.len());
        for conj in &self.disjuncts {
            let mut ands = Vec::with_capacity(conj.len());
            for c in conj {
                let (sql, cond_args) = match c {
                    Cond::NameLower(s) => ("r.name_lower = ${}", vec![Arg::Text(s.clone())]),
                    Cond::Id(s) => ("r.id = ${}", vec![Arg::Text(s.clone())]),
                    Cond::ExternalId(s) => ("r.external_id = ${}", vec![Arg::Text(s.clone())]),
                    Cond::Active(b) => ("r.active = ${}", vec![Arg::Bool(*b)]),
                    Cond::Email(s) => (
                        email,
                        vec![Arg::Text(connector.to_owned()), Arg::Text(s.clone())],
                    ),
                };
                let mut sql = sql.to_owned();
                for arg in cond_args {
                    args.push(arg);
                    sql = sql.replacen("${}", &format!("${}", bound + args.len()), 1);
                }
                ands.push(sql);
            }
            ors.push(format!("({})", ands.join(" AND ")));
        }
        ors.join(" OR ")
    }

    /// The conditions, for tests and logs.
    pub fn disjuncts(&self) -> &[Vec<Cond>] {
        &self.disjuncts
    }
}
