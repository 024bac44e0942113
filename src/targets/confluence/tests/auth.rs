//! PAT and Basic auth, the anonymous fallback, permission and websudo refusals (docs/emulator.md
//! test scenario 4), and secrets staying out of errors and debug output.

use base64::Engine;

use super::{class_of, Harness, ADMIN_PASSWORD, ADMIN_PAT, ALICE_PAT};
use crate::emulator::{AuthScheme, InvalidCredentials};
use crate::targets::confluence::{ConfluenceAuth, Secret};
use crate::targets::ErrorClass;

#[tokio::test]
async fn a_pat_and_basic_auth_both_read_and_write() {
    let h = Harness::start().await;
    for (client, scheme, username) in [
        (h.admin(), AuthScheme::Bearer, "pat-user"),
        (h.admin_basic(), AuthScheme::Basic, "basic-user"),
    ] {
        h.emu.clear_calls();
        let me = client.current_user().await.expect("current user");
        assert_eq!(me.username, "admin");
        assert_eq!(me.user_key.as_str().len(), 32);
        client
            .create_user(username, "Some One", "some.one@example.org")
            .await
            .expect("created");
        client.disable_user(username).await.expect("disabled");
        assert!(h
            .calls()
            .iter()
            .all(|c| c.auth == scheme && c.user.as_deref() == Some("admin")));
    }
}

#[tokio::test]
async fn a_bad_pat_served_as_anonymous_is_unauthorized_and_says_the_token_was_ignored() {
    let h = Harness::start().await;
    h.knobs(|k| k.invalid_bearer = InvalidCredentials::Anonymous);
    let bad = h.client(ConfluenceAuth::Pat(Secret::new("not-a-real-token")));
    let (class, e) = class_of(bad.current_user().await);
    assert_eq!(class, ErrorClass::Unauthorized, "{e}");
    assert_eq!(
        e.status(),
        Some(200),
        "Confluence answered 200 as anonymous"
    );
    assert!(e.to_string().contains("credentials were ignored"), "{e}");
    // With anonymous access on, reads would succeed as anonymous: still refused.
    h.knobs(|k| k.anonymous_access = true);
    let (class, e) = class_of(bad.get_user("alice").await);
    assert_eq!(class, ErrorClass::Unauthorized, "{e}");
    let (class, _) = class_of(bad.detect_version().await);
    assert_eq!(class, ErrorClass::Unauthorized);
    // Admin writes answer 401 as anonymous: the message still names the cause.
    let (class, e) = class_of(bad.disable_user("alice").await);
    assert_eq!(class, ErrorClass::Unauthorized);
    assert!(e.to_string().contains("anonymous"), "{e}");
    assert!(h.emu.user("alice").is_some_and(|u| u.active));
}

#[tokio::test]
async fn a_bad_pat_refused_with_401_is_unauthorized() {
    let h = Harness::start().await;
    h.knobs(|k| k.invalid_bearer = InvalidCredentials::Unauthorized);
    let bad = h.client(ConfluenceAuth::Pat(Secret::new("not-a-real-token")));
    let (class, e) = class_of(bad.current_user().await);
    assert_eq!(class, ErrorClass::Unauthorized, "{e}");
    assert_eq!(e.status(), Some(401));
}

#[tokio::test]
async fn a_wrong_password_is_unauthorized() {
    let h = Harness::start().await;
    let bad = h.client(ConfluenceAuth::Basic {
        username: "admin".to_owned(),
        password: Secret::new("wrong-password"),
    });
    let (class, e) = class_of(bad.current_user().await);
    assert_eq!(class, ErrorClass::Unauthorized, "{e}");
}

#[tokio::test]
async fn a_licensed_non_admin_is_refused_admin_calls_with_a_permissions_message() {
    let h = Harness::start().await;
    let alice = h.client(ConfluenceAuth::Pat(Secret::new(ALICE_PAT)));
    assert_eq!(alice.current_user().await.expect("alice").username, "alice");
    let (class, e) = class_of(alice.create_user("jdoe", "Jane", "j@example.org").await);
    assert_eq!(class, ErrorClass::Unauthorized, "{e}");
    assert_eq!(e.status(), Some(403));
    assert!(e.to_string().contains("administrator"), "{e}");
    let (class, _) = class_of(alice.add_member("alice", "engineering").await);
    assert_eq!(class, ErrorClass::Unauthorized);
}

#[tokio::test]
async fn websudo_refusals_of_basic_admin_calls_mention_websudo() {
    let h = Harness::start().await;
    h.knobs(|k| k.websudo = true);
    let (class, e) = class_of(h.admin_basic().disable_user("alice").await);
    assert_eq!(class, ErrorClass::Unauthorized, "{e}");
    assert_eq!(e.status(), Some(401));
    assert!(e.to_string().contains("websudo"), "{e}");
    // The PAT is not affected.
    h.admin().disable_user("alice").await.expect("disabled");
}

#[tokio::test]
async fn errors_and_debug_output_never_contain_credentials() {
    let h = Harness::start().await;
    h.knobs(|k| k.websudo = true);
    let basic = h.admin_basic();
    let pat = h.admin();
    let mut texts = vec![format!("{basic:?}"), format!("{pat:?}")];
    for e in [
        basic.disable_user("alice").await.err(),
        basic.create_user("x", "X", "x@example.org").await.err(),
        pat.create_user("alice", "A", "a@example.org").await.err(),
        pat.delete_group("nope").await.err(),
    ]
    .into_iter()
    .flatten()
    {
        texts.push(e.to_string());
        texts.push(format!("{e:?}"));
    }
    assert!(texts.len() >= 8, "{texts:?}");
    let basic_header =
        base64::engine::general_purpose::STANDARD.encode(format!("admin:{ADMIN_PASSWORD}"));
    for text in texts {
        assert!(!text.contains(ADMIN_PAT), "{text}");
        assert!(!text.contains(ADMIN_PASSWORD), "{text}");
        assert!(!text.contains(&basic_header), "{text}");
    }
}
