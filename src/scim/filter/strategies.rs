//! proptest strategies for filters and User documents, shared with the store's tests (the SQL
//! narrowing must never change what [`super::matches`] decides).
//!
//! [`arb_filter`] yields filters that pass [`super::check`] for the built-in User type and
//! draw their literals from the same small pools as [`arb_user_doc`], so generated filters
//! and documents often match and often do not. [`arb_any_filter`] yields any filter the parser
//! can produce (arbitrary names, literals and numbers), for syntax properties.

use proptest::prelude::*;
use serde_json::{Map, Number, Value};

use super::{CompValue, CompareOp, Filter};
use crate::scim::path::AttrPath;
use crate::scim::schema::{ENTERPRISE_URN, USER_URN};

/// All comparison operators.
pub(crate) const OPS: [CompareOp; 9] = [
    CompareOp::Eq,
    CompareOp::Ne,
    CompareOp::Co,
    CompareOp::Sw,
    CompareOp::Ew,
    CompareOp::Gt,
    CompareOp::Ge,
    CompareOp::Lt,
    CompareOp::Le,
];

const ORDERING_OPS: [CompareOp; 6] = [
    CompareOp::Eq,
    CompareOp::Ne,
    CompareOp::Gt,
    CompareOp::Ge,
    CompareOp::Lt,
    CompareOp::Le,
];

/// Strings shared by filters and documents, with case variants, accents, an empty string and
/// characters that need escaping.
const STRINGS: [&str; 16] = [
    "alice",
    "Alice",
    "ALICE@example.com",
    "alice@example.com",
    "bob@example.org",
    "Bob",
    "example",
    "@EXAMPLE.",
    "Émile",
    "émile",
    "x\"y\\z",
    "",
    "Sales",
    "sales",
    "2819c223",
    "a",
];

const TYPES: [&str; 4] = ["work", "Work", "home", "other"];

/// dateTimes: the first three are the same instant written three ways.
const DATES: [&str; 5] = [
    "2011-05-13T04:42:34Z",
    "2011-05-13T06:42:34+02:00",
    "2011-05-13T04:42:34.000Z",
    "2011-05-13T04:42:35Z",
    "2020-01-01T00:00:00Z",
];

fn path(urn: Option<&str>, name: &str, sub: Option<&str>) -> AttrPath {
    AttrPath {
        urn: urn.map(str::to_owned),
        name: name.to_owned(),
        sub: sub.map(str::to_owned),
    }
}

fn pool(values: &'static [&'static str]) -> BoxedStrategy<String> {
    prop::sample::select(values).prop_map(str::to_owned).boxed()
}

/// `path pr`, `path eq/ne null`, or `path op "string"` with any operator.
fn string_leaf(p: AttrPath, values: BoxedStrategy<String>) -> BoxedStrategy<Filter> {
    let (p1, p2) = (p.clone(), p.clone());
    prop_oneof![
        1 => Just(Filter::Present(p)),
        1 => prop::sample::select(vec![CompareOp::Eq, CompareOp::Ne])
            .prop_map(move |op| Filter::Compare(p1.clone(), op, CompValue::Null)),
        8 => (prop::sample::select(OPS.to_vec()), values)
            .prop_map(move |(op, s)| Filter::Compare(p2.clone(), op, CompValue::String(s))),
    ]
    .boxed()
}

fn bool_leaf(p: AttrPath) -> BoxedStrategy<Filter> {
    let literal = prop_oneof![
        any::<bool>().prop_map(CompValue::Bool),
        pool(&["True", "false"]).prop_map(CompValue::String),
    ];
    let p1 = p.clone();
    prop_oneof![
        1 => Just(Filter::Present(p)),
        4 => (prop::sample::select(vec![CompareOp::Eq, CompareOp::Ne]), literal)
            .prop_map(move |(op, v)| Filter::Compare(p1.clone(), op, v)),
    ]
    .boxed()
}

fn date_leaf(p: AttrPath) -> BoxedStrategy<Filter> {
    let (p1, p2) = (p.clone(), p.clone());
    prop_oneof![
        1 => Just(Filter::Present(p)),
        1 => pool(&["2011-05", "Z", "2011-05-13t"])
            .prop_map(move |s| Filter::Compare(p1.clone(), CompareOp::Sw, CompValue::String(s))),
        6 => (prop::sample::select(ORDERING_OPS.to_vec()), pool(&DATES))
            .prop_map(move |(op, s)| Filter::Compare(p2.clone(), op, CompValue::String(s))),
    ]
    .boxed()
}

/// A filter inside `emails[...]`.
fn email_filter() -> BoxedStrategy<Filter> {
    let leaf = prop_oneof![
        string_leaf(path(None, "type", None), pool(&TYPES)),
        string_leaf(path(None, "value", None), pool(&STRINGS)),
        string_leaf(path(None, "Display", None), pool(&STRINGS)),
        bool_leaf(path(None, "primary", None)),
    ];
    leaf.prop_recursive(2, 6, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(l, r)| Filter::And(l.into(), r.into())),
            (inner.clone(), inner.clone()).prop_map(|(l, r)| Filter::Or(l.into(), r.into())),
            inner.prop_map(|f| Filter::Not(f.into())),
        ]
    })
    .boxed()
}

/// One comparison, presence test or value filter over User attributes, valid for `check`.
fn user_leaf() -> BoxedStrategy<Filter> {
    let strings = || pool(&STRINGS);
    prop_oneof![
        string_leaf(path(None, "userName", None), strings()),
        string_leaf(path(None, "USERNAME", None), strings()),
        string_leaf(path(Some(USER_URN), "userName", None), strings()),
        string_leaf(path(None, "displayName", None), strings()),
        string_leaf(path(None, "title", None), strings()),
        string_leaf(path(None, "externalId", None), strings()),
        string_leaf(path(None, "id", None), strings()),
        string_leaf(path(None, "emails", Some("value")), strings()),
        string_leaf(path(None, "emails", None), strings()),
        string_leaf(path(None, "name", Some("givenName")), strings()),
        string_leaf(path(None, "department", None), strings()),
        string_leaf(path(Some(ENTERPRISE_URN), "department", None), strings()),
        string_leaf(path(None, "manager", None), strings()),
        string_leaf(
            path(Some(ENTERPRISE_URN), "manager", Some("value")),
            strings()
        ),
        bool_leaf(path(None, "active", None)),
        date_leaf(path(None, "meta", Some("lastModified"))),
        email_filter().prop_map(|f| Filter::ValuePath(path(None, "emails", None), f.into())),
    ]
    .boxed()
}

/// Random filters over User attributes that pass `check` (see the module documentation).
pub(crate) fn arb_filter() -> BoxedStrategy<Filter> {
    user_leaf()
        .prop_recursive(4, 24, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(l, r)| Filter::And(l.into(), r.into())),
                (inner.clone(), inner.clone()).prop_map(|(l, r)| Filter::Or(l.into(), r.into())),
                inner.prop_map(|f| Filter::Not(f.into())),
            ]
        })
        .boxed()
}

/// A string value of a document: usually from the pool, sometimes anything.
fn doc_string() -> BoxedStrategy<Value> {
    prop_oneof![
        8 => pool(&STRINGS).prop_map(Value::String),
        1 => any::<String>().prop_map(Value::String),
    ]
    .boxed()
}

/// `Some(v)`, `Some(null)` or `None` (absent).
fn maybe(s: BoxedStrategy<Value>) -> BoxedStrategy<Option<Value>> {
    prop_oneof![1 => Just(None), 1 => Just(Some(Value::Null)), 5 => s.prop_map(Some)].boxed()
}

fn object(fields: Vec<(&'static str, Option<Value>)>) -> Value {
    let map: Map<String, Value> = fields
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
        .collect();
    Value::Object(map)
}

fn email() -> BoxedStrategy<Value> {
    (
        maybe(doc_string()),
        maybe(pool(&TYPES).prop_map(Value::String).boxed()),
        maybe(any::<bool>().prop_map(Value::Bool).boxed()),
        maybe(doc_string()),
    )
        .prop_map(|(value, kind, primary, display)| {
            object(vec![
                ("value", value),
                ("type", kind),
                ("primary", primary),
                ("display", display),
            ])
        })
        .boxed()
}

/// Random User documents shaped as the store keeps them, with the attributes [`arb_filter`]
/// names, each sometimes absent or null.
pub(crate) fn arb_user_doc() -> BoxedStrategy<Value> {
    let active = prop_oneof![
        3 => any::<bool>().prop_map(Value::Bool),
        1 => pool(&["TRUE", "false"]).prop_map(Value::String),
    ]
    .boxed();
    let manager = (maybe(doc_string()), maybe(doc_string()))
        .prop_map(|(value, display)| object(vec![("value", value), ("displayName", display)]));
    let enterprise = (maybe(doc_string()), maybe(manager.boxed()))
        .prop_map(|(dept, mgr)| object(vec![("department", dept), ("manager", mgr)]));
    let strings = (
        maybe(doc_string()),
        maybe(doc_string()),
        maybe(doc_string()),
        maybe(doc_string()),
        maybe(doc_string()),
        maybe(doc_string()),
    );
    let meta = maybe(pool(&DATES).prop_map(Value::String).boxed())
        .prop_map(|modified| object(vec![("lastModified", modified)]));
    (
        strings,
        maybe(active),
        maybe(
            prop::collection::vec(email(), 0..4)
                .prop_map(Value::Array)
                .boxed(),
        ),
        meta,
        maybe(enterprise.boxed()),
    )
        .prop_map(
            |((user, display, title, external, id, given), active, emails, meta, ext)| {
                object(vec![
                    ("userName", user),
                    ("displayName", display),
                    ("title", title),
                    ("externalId", external),
                    ("id", id),
                    ("name", Some(object(vec![("givenName", given)]))),
                    ("active", active),
                    ("emails", emails),
                    ("meta", Some(meta)),
                    (ENTERPRISE_URN, ext),
                ])
            },
        )
        .boxed()
}

/// A valid ATTRNAME, including `$ref`-style names and keyword-like names (`and`, `not`, `pr`).
fn arb_name() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "[a-zA-Z][a-zA-Z0-9_-]{0,7}",
        1 => pool(&["$ref", "not", "and", "or", "pr", "eq", "true", "null", "value"]),
    ]
    .boxed()
}

fn arb_path(relative: bool) -> BoxedStrategy<AttrPath> {
    if relative {
        return arb_name().prop_map(|n| path(None, &n, None)).boxed();
    }
    let urn = prop::option::of(pool(&[
        USER_URN,
        ENTERPRISE_URN,
        "urn:example:x-y:1.0:Thing",
    ]));
    (urn, arb_name(), prop::option::of(arb_name()))
        .prop_map(|(urn, name, sub)| AttrPath { urn, name, sub })
        .boxed()
}

fn arb_literal() -> BoxedStrategy<CompValue> {
    prop_oneof![
        Just(CompValue::Null),
        any::<bool>().prop_map(CompValue::Bool),
        any::<i64>().prop_map(|i| CompValue::Number(i.into())),
        any::<u64>().prop_map(|u| CompValue::Number(u.into())),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(CompValue::Number)),
        any::<String>().prop_map(CompValue::String),
        pool(&STRINGS).prop_map(CompValue::String),
    ]
    .boxed()
}

fn arb_any_leaf(relative: bool) -> BoxedStrategy<Filter> {
    prop_oneof![
        arb_path(relative).prop_map(Filter::Present),
        (
            arb_path(relative),
            prop::sample::select(OPS.to_vec()),
            arb_literal()
        )
            .prop_map(|(p, op, v)| Filter::Compare(p, op, v)),
    ]
    .boxed()
}

fn combine(leaf: BoxedStrategy<Filter>, depth: u32) -> BoxedStrategy<Filter> {
    leaf.prop_recursive(depth, 16, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(l, r)| Filter::And(l.into(), r.into())),
            (inner.clone(), inner.clone()).prop_map(|(l, r)| Filter::Or(l.into(), r.into())),
            inner.prop_map(|f| Filter::Not(f.into())),
        ]
    })
    .boxed()
}

/// Any filter the parser can produce: arbitrary names, URNs and literals; value filters over
/// relative names.
pub(crate) fn arb_any_filter() -> BoxedStrategy<Filter> {
    let value_path = (
        arb_name(),
        prop::option::of(pool(&[USER_URN])),
        combine(arb_any_leaf(true), 2),
    )
        .prop_map(|(name, urn, inner)| {
            Filter::ValuePath(
                AttrPath {
                    urn,
                    name,
                    sub: None,
                },
                inner.into(),
            )
        });
    combine(
        prop_oneof![3 => arb_any_leaf(false), 1 => value_path].boxed(),
        3,
    )
}

/// Any JSON, with keys that are often attribute names, so evaluation meets odd shapes where
/// it looks.
pub(crate) fn arb_json() -> BoxedStrategy<Value> {
    let key = prop_oneof![
        3 => pool(&[
            "userName", "USERNAME", "emails", "value", "type", "primary", "active", "meta",
            "lastModified", "name", "givenName", "manager", "department", "id", "externalId",
            ENTERPRISE_URN,
        ]),
        1 => any::<String>(),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        doc_string(),
        pool(&DATES).prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 5, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::super::{check, matches, parse};
    use super::*;
    use crate::scim::schema::{ResourceKind, SchemaRegistry};

    fn not(f: Filter) -> Filter {
        Filter::Not(f.into())
    }

    #[test]
    fn generated_filters_match_a_fair_share_of_generated_users() {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::TestRunner;
        let reg = SchemaRegistry::builtin();
        let user = reg.resource_type(ResourceKind::User);
        let mut runner = TestRunner::deterministic();
        let (mut hits, total) = (0, 2000);
        for _ in 0..total {
            let f = arb_filter().new_tree(&mut runner).unwrap().current();
            let doc = arb_user_doc().new_tree(&mut runner).unwrap().current();
            hits += usize::from(matches(&f, user, &doc));
        }
        // Useless for narrowing tests if nearly everything or nothing matches.
        assert!(
            (total / 10..total * 9 / 10).contains(&hits),
            "{hits} of {total}"
        );
    }

    proptest! {
        #[test]
        fn every_filter_prints_as_text_that_parses_back_to_it(f in arb_any_filter()) {
            let text = f.to_string();
            prop_assert_eq!(parse(&text), Ok(f), "{}", text);
        }

        #[test]
        fn generated_user_filters_round_trip_and_pass_check(f in arb_filter()) {
            let reg = SchemaRegistry::builtin();
            let text = f.to_string();
            let parsed = parse(&text);
            prop_assert_eq!(parsed.as_ref(), Ok(&f), "{}", text);
            prop_assert_eq!(check(&f, reg.resource_type(ResourceKind::User)), Ok(()), "{}", text);
        }

        #[test]
        fn matching_never_panics_on_any_document(
            f in prop_oneof![arb_filter(), arb_any_filter()],
            doc in prop_oneof![arb_json(), arb_user_doc()],
        ) {
            let reg = SchemaRegistry::builtin();
            for kind in [ResourceKind::User, ResourceKind::Group] {
                let _ = matches(&f, reg.resource_type(kind), &doc);
            }
        }

        #[test]
        fn double_negation_and_de_morgan_hold_on_generated_users(
            f in arb_filter(),
            g in arb_filter(),
            docs in prop::collection::vec(arb_user_doc(), 8),
        ) {
            let reg = SchemaRegistry::builtin();
            let user = reg.resource_type(ResourceKind::User);
            let and = Filter::And(f.clone().into(), g.clone().into());
            let or = Filter::Or(f.clone().into(), g.clone().into());
            for doc in &docs {
                let m = |x: &Filter| matches(x, user, doc);
                prop_assert_eq!(m(&not(not(f.clone()))), m(&f));
                prop_assert_eq!(m(&not(and.clone())), m(&Filter::Or(not(f.clone()).into(), not(g.clone()).into())));
                prop_assert_eq!(m(&not(or.clone())), m(&Filter::And(not(f.clone()).into(), not(g.clone()).into())));
            }
        }

        #[test]
        fn ne_is_the_negation_of_eq_on_generated_users(
            f in arb_filter(),
            docs in prop::collection::vec(arb_user_doc(), 8),
        ) {
            let reg = SchemaRegistry::builtin();
            let user = reg.resource_type(ResourceKind::User);
            let mut leaves = vec![&f];
            while let Some(leaf) = leaves.pop() {
                match leaf {
                    Filter::And(l, r) | Filter::Or(l, r) => leaves.extend([&**l, &**r]),
                    Filter::Not(inner) => leaves.push(inner),
                    Filter::Compare(p, CompareOp::Eq, v) => {
                        let ne = Filter::Compare(p.clone(), CompareOp::Ne, v.clone());
                        for doc in &docs {
                            prop_assert_eq!(matches(&ne, user, doc), !matches(leaf, user, doc));
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}
