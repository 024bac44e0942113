//! The classifier, case by case: what each kind of drift becomes, and what must never be
//! touched.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::{json, Value};

use super::*;
use crate::delivery::settings::OnDelete;

fn account(name: &str, active: Option<bool>) -> Account {
    Account {
        display_name: name.to_uppercase(),
        email: None,
        active,
    }
}

fn desired(name: &str, active: bool, groups: &[&str]) -> DesiredUser {
    DesiredUser {
        username: name.to_owned(),
        full_name: name.to_uppercase(),
        email: format!("{name}@example.org"),
        active,
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    }
}

fn link(id: &str, name: &str, status: &str, applied: Option<&DesiredUser>) -> LinkSnapshot {
    LinkSnapshot {
        scim_id: id.to_owned(),
        target_name: name.to_owned(),
        target_key: None,
        status: status.to_owned(),
        applied: applied.map(|a| serde_json::to_string(a).unwrap()),
    }
}

/// A user delivered as desired: its link's applied state is its desired state.
fn delivered(id: &str, d: DesiredUser) -> StoredUser {
    StoredUser {
        scim_id: id.to_owned(),
        link: Some(link(id, &d.username, "active", Some(&d))),
        desired: d,
    }
}

fn policy() -> Policy {
    Policy {
        connector: "idp".to_owned(),
        prov: Provisioning::default(),
        disable_unmanaged: false,
        managed_groups: ["confluence-users", "idp-editors"]
            .iter()
            .map(|g| (*g).to_owned())
            .collect(),
        owned_groups: BTreeSet::from(["idp-editors".to_owned()]),
        held_by_others: HashMap::new(),
        protect: ProtectList {
            names: vec!["svc-*".to_owned()],
            groups: vec!["confluence-administrators".to_owned()],
        },
    }
}

struct World {
    accounts: Vec<(&'static str, Option<bool>)>,
    groups: Vec<(&'static str, Vec<&'static str>)>,
}

impl World {
    fn observed(&self) -> Observed {
        Observed {
            accounts: self
                .accounts
                .iter()
                .map(|(n, a)| ((*n).to_owned(), account(n, *a)))
                .collect(),
            groups: self
                .groups
                .iter()
                .map(|(g, m)| {
                    (
                        (*g).to_owned(),
                        Members::Of(m.iter().map(|x| (*x).to_owned()).collect::<HashSet<_>>()),
                    )
                })
                .collect(),
            service_account: "admin".to_owned(),
        }
    }
}

fn base() -> World {
    World {
        accounts: vec![
            ("admin", Some(true)),
            ("ada", Some(true)),
            ("bob", Some(true)),
        ],
        groups: vec![
            ("confluence-users", vec!["ada", "bob"]),
            ("idp-editors", vec!["ada"]),
            ("confluence-administrators", vec!["admin"]),
        ],
    }
}

fn run(world: &World, policy: Policy, users: Vec<StoredUser>) -> Plan {
    let observed = world.observed();
    let mut c = Classifier::new(&observed, policy);
    for u in users {
        c.user(u);
    }
    c.finish()
}

fn classes(plan: &Plan) -> Vec<(DriftClass, &str, Action)> {
    plan.items
        .iter()
        .map(|i| (i.class, i.username.as_str(), i.action))
        .collect()
}

fn applied_of(plan: &Plan, id: &str) -> Value {
    let c = plan
        .corrections
        .iter()
        .find(|c| c.scim_id == id)
        .expect("a correction");
    c.link
        .as_ref()
        .and_then(|l| l.applied.clone())
        .unwrap_or(Value::Null)
}

fn users() -> Vec<StoredUser> {
    vec![
        delivered(
            "1",
            desired("ada", true, &["confluence-users", "idp-editors"]),
        ),
        delivered("2", desired("bob", true, &["confluence-users"])),
    ]
}

#[test]
fn nothing_differs_when_confluence_matches_and_admins_and_unmanaged_groups_are_ignored() {
    let mut w = base();
    w.groups.push(("hand-made", vec!["ada", "admin"]));
    let plan = run(&w, policy(), users());
    assert!(plan.items.is_empty(), "{:?}", plan.items);
    assert!(plan.corrections.is_empty() && plan.direct.is_empty());
    assert_eq!(plan.users, 2);
}

#[test]
fn a_user_disabled_by_hand_is_enabled_again_through_delivery() {
    let mut w = base();
    w.accounts[1].1 = Some(false);
    let plan = run(&w, policy(), users());
    assert_eq!(
        classes(&plan),
        [(DriftClass::Active, "ada", Action::Converge)]
    );
    assert!(!plan.items[0].disables);
    let c = &plan.corrections[0];
    assert_eq!(c.mark, Some(Priority::Normal));
    let l = c.link.as_ref().unwrap();
    assert_eq!(l.expected_status, "active");
    assert!(
        l.expected_applied.is_some(),
        "only the link as it was read is corrected"
    );
    assert_eq!(
        applied_of(&plan, "1")["active"],
        json!(false),
        "what Confluence holds"
    );
    assert_eq!(plan.disables(), 0);
}

#[test]
fn a_leaver_enabled_by_hand_is_disabled_again_first_in_the_queue() {
    let w = base();
    let mut u = users();
    // The IdP deactivated bob and delivery disabled him; an admin enabled him again.
    let mut gone = desired("bob", false, &["confluence-users"]);
    u[1] = delivered("2", gone.clone());
    gone.active = true;
    let plan = run(&w, policy(), u);
    assert_eq!(
        classes(&plan),
        [(DriftClass::Active, "bob", Action::Converge)]
    );
    assert!(plan.items[0].disables);
    assert_eq!(plan.corrections[0].mark, Some(Priority::Deprovision));
    assert_eq!(applied_of(&plan, "2")["active"], json!(true));
    assert_eq!(plan.disables(), 1);
}

#[test]
fn memberships_differ_only_in_managed_groups_and_the_applied_groups_become_what_was_seen() {
    let mut w = base();
    // bob added by hand to a managed group, ada removed from one, both to an unmanaged one.
    w.groups[1].1 = vec!["bob"];
    w.groups.push(("hand-made", vec!["ada", "bob"]));
    let plan = run(&w, policy(), users());
    assert_eq!(
        classes(&plan),
        [
            (DriftClass::Membership, "ada", Action::Converge),
            (DriftClass::Membership, "bob", Action::Converge),
        ]
    );
    assert!(plan.items[0].detail.contains("not in idp-editors"));
    assert!(plan.items[1]
        .detail
        .contains("in idp-editors (should not be)"));
    assert_eq!(
        applied_of(&plan, "1")["groups"],
        json!(["confluence-users"])
    );
    assert_eq!(
        applied_of(&plan, "2")["groups"],
        json!(["confluence-users", "idp-editors"])
    );
    assert!(
        plan.direct.is_empty(),
        "a linked user's membership goes through delivery, not a direct removal"
    );
}

#[test]
fn a_name_changed_by_hand_is_profile_drift_and_an_email_is_compared_only_where_readable() {
    let w = base();
    let mut observed = w.observed();
    observed.accounts.get_mut("ada").unwrap().display_name = "Ada by hand".to_owned();
    observed.accounts.get_mut("bob").unwrap().email = Some("other@example.org".to_owned());
    let mut c = Classifier::new(&observed, policy());
    for u in users() {
        c.user(u);
    }
    let plan = c.finish();
    assert_eq!(
        classes(&plan),
        [
            (DriftClass::Profile, "ada", Action::Converge),
            (DriftClass::Profile, "bob", Action::Converge),
        ]
    );
    assert_eq!(applied_of(&plan, "1")["full_name"], json!("Ada by hand"));
    assert_eq!(applied_of(&plan, "2")["email"], json!("other@example.org"));
    assert!(plan.items[1].detail.starts_with("e-mail differs"));
}

#[test]
fn a_missing_account_is_created_again_and_a_gone_leaver_is_only_recorded() {
    let mut w = base();
    w.accounts.retain(|(n, _)| *n != "ada" && *n != "bob");
    let mut u = users();
    u[1] = delivered("2", desired("bob", false, &[]));
    u.push(StoredUser {
        scim_id: "3".into(),
        desired: desired("new", true, &["confluence-users"]),
        link: None,
    });
    u.push(StoredUser {
        scim_id: "4".into(),
        desired: desired("never", false, &[]),
        link: None,
    });
    let plan = run(&w, policy(), u);
    assert_eq!(
        classes(&plan),
        [
            (DriftClass::Missing, "ada", Action::Converge),
            (DriftClass::Missing, "bob", Action::Forget),
            (DriftClass::Missing, "new", Action::Converge),
        ],
        "an inactive user never delivered needs no account"
    );
    let ada = &plan.corrections[0];
    assert_eq!(
        ada.link.as_ref().unwrap().applied,
        None,
        "delivery looks it up and creates it"
    );
    assert_eq!(ada.mark, Some(Priority::Normal));
    let bob = &plan.corrections[1];
    assert_eq!(bob.link.as_ref().unwrap().status, "removed");
    assert_eq!(bob.mark, None);
    assert_eq!(plan.corrections[2].link, None);
}

#[test]
fn orphans_are_reported_by_default_and_disabled_only_when_allowed_and_never_when_protected() {
    let mut w = base();
    w.accounts.extend([
        ("stray", Some(true)),
        ("svc-backup", Some(true)),
        ("old-admin", Some(true)),
        ("off", Some(false)),
        ("unknown", None),
        ("held", Some(true)),
        ("gone-user", Some(true)),
    ]);
    w.groups[2].1.push("old-admin");
    let orphan_link = || {
        link(
            "9",
            "gone-user",
            "active",
            Some(&desired("gone-user", true, &["confluence-users"])),
        )
    };
    let with = |p: Policy| {
        let observed = w.observed();
        let mut c = Classifier::new(&observed, p);
        c.claim("held");
        for u in users() {
            c.user(u);
        }
        c.orphaned_link(orphan_link());
        c.finish()
    };

    let reported = with(policy());
    assert_eq!(
        classes(&reported),
        [
            (DriftClass::OrphanDeleted, "gone-user", Action::Report),
            (DriftClass::OrphanUnmanaged, "stray", Action::Report),
        ],
        "disabled, status-unknown and claimed accounts are no orphans; protected ones are left out"
    );
    assert_eq!(
        reported.protected, 3,
        "admin (service account), old-admin (protect_groups), svc-backup (protect)"
    );
    assert_eq!(reported.disables(), 0);
    assert!(reported.direct.is_empty() && reported.corrections.is_empty());

    // orphans = "disable" on this connector, but not every connector agrees.
    let mut p = policy();
    p.prov.orphans = Orphans::Disable;
    let half = with(p.clone());
    assert_eq!(
        half.items[0].action,
        Action::Converge,
        "usersync's own account"
    );
    assert_eq!(half.items[1].action, Action::Report);
    assert!(half.items[1].detail.contains("not every connector"));
    assert_eq!(half.disables(), 1);

    p.disable_unmanaged = true;
    p.prov.on_delete = OnDelete::Delete;
    let all = with(p);
    assert_eq!(
        classes(&all),
        [
            (DriftClass::OrphanDeleted, "gone-user", Action::Converge),
            (DriftClass::OrphanUnmanaged, "stray", Action::Disable),
        ]
    );
    assert!(all.items[0].detail.contains("on_delete = \"delete\""));
    assert_eq!(
        all.direct,
        [(
            Direct::Disable {
                username: "stray".into()
            },
            1
        )],
        "disabled, never deleted; protected accounts never"
    );
    let gone = &all.corrections[0];
    assert_eq!(gone.mark, Some(Priority::Deprovision));
    assert_eq!(
        gone.link.as_ref().unwrap().applied.as_ref().unwrap()["active"],
        json!(true)
    );
    assert_eq!(all.disables(), 2);
}

#[test]
fn strays_in_an_owned_group_are_removed_directly_unless_protected() {
    let mut w = base();
    w.accounts.push(("local", Some(true)));
    w.groups[1].1 = vec!["ada", "local", "admin"];
    let plan = run(&w, policy(), users());
    let strays: Vec<_> = classes(&plan)
        .into_iter()
        .filter(|(c, _, _)| *c == DriftClass::Membership)
        .collect();
    assert_eq!(
        strays,
        [(DriftClass::Membership, "local", Action::RemoveMember)],
        "the service account is protected"
    );
    assert_eq!(
        plan.protected, 2,
        "admin, as a stray and as an account nothing accounts for"
    );
    assert_eq!(
        plan.direct[0].0,
        Direct::RemoveMember {
            username: "local".into(),
            group: "idp-editors".into()
        }
    );
    // A member of a managed group the connector does not own (a default group) stays.
    let mut w = base();
    w.accounts.push(("local", Some(true)));
    w.groups[0].1.push("local");
    let plan = run(&w, policy(), users());
    assert!(plan.direct.is_empty());
}

#[test]
fn conflicts_are_reported_and_adoption_goes_through_delivery() {
    let mut w = base();
    w.accounts.push(("taken", Some(true)));
    w.accounts.push(("refused", Some(true)));
    let mut p = policy();
    p.held_by_others
        .insert("taken".to_owned(), "okta".to_owned());
    let extra = || {
        let mut all = users();
        all.extend([
            StoredUser {
                scim_id: "5".into(),
                desired: desired("taken", true, &["confluence-users"]),
                link: None,
            },
            StoredUser {
                scim_id: "6".into(),
                desired: desired("refused", true, &["confluence-users"]),
                link: Some(link("6", "refused", "conflict", None)),
            },
        ]);
        all
    };
    let plan = run(&w, p.clone(), extra());
    assert_eq!(
        classes(&plan),
        [
            (DriftClass::Conflict, "taken", Action::Report),
            (DriftClass::Conflict, "refused", Action::Report),
        ]
    );
    assert!(plan.items[0].detail.contains("connector okta"));
    p.prov.on_conflict = OnConflict::Adopt;
    let plan = run(&w, p, extra());
    assert_eq!(
        plan.items[1].action,
        Action::Converge,
        "adopted by delivery"
    );
    assert_eq!(plan.corrections.len(), 1);
    assert_eq!(plan.corrections[0].scim_id, "6");
}

#[test]
fn an_unknown_status_is_never_acted_on() {
    let mut w = base();
    w.accounts[1].1 = None;
    let mut u = users();
    u[0] = delivered("1", desired("ada", false, &[]));
    w.groups[0].1.retain(|m| *m != "ada");
    w.groups[1].1.clear();
    let plan = run(&w, policy(), u);
    assert!(plan.items.is_empty(), "{:?}", plan.items);
}
