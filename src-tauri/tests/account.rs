//! The desktop sign-in against a real server and a real Secret Service (run by
//! `scripts/test.sh` inside `scripts/keychain.sh`: a private D-Bus with a throwaway
//! gnome-keyring): the refresh token is kept in the keychain and nowhere else, a new app
//! instance signs in silently with it, and signing out revokes it and deletes the entry.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use parley_desktop::{Account, Keychain};
use parley_test_support::server::TestServer;

#[tokio::test]
async fn the_keychain_keeps_the_sign_in_across_restarts_until_sign_out() {
    if std::env::var("PARLEY_TEST_KEYCHAIN").as_deref() != Ok("1") {
        eprintln!("no throwaway keychain here; scripts/test.sh runs this in scripts/keychain.sh");
        return;
    }
    let mut server = TestServer::start().await;
    let base = server.base.clone();
    let service = format!("parley-desktop-test-{}", std::process::id());
    let keychain = Keychain::with_service(&service);

    let first = Account::new(&base, keychain.clone());
    assert!(first.resume().await.is_none(), "nothing stored yet");
    let (user, verification) = first
        .sign_up(
            "dora".into(),
            "dora@example.org".into(),
            "dora-Str0ng-Passphrase".into(),
        )
        .await
        .unwrap();
    assert!(!verification);
    let stored = keychain
        .load(&base)
        .unwrap()
        .expect("refresh token in the keychain");
    assert!(first.keychain_ok.load(std::sync::atomic::Ordering::Relaxed));

    // "Restart": a new Account with nothing in memory signs in from the keychain, and the
    // token it stored was rotated (the old one is spent).
    let second = Account::new(&base, keychain.clone());
    let again = second.resume().await.expect("signed in silently");
    assert_eq!(again.id, user.id);
    let rotated = keychain.load(&base).unwrap().unwrap();
    assert_ne!(rotated, stored, "the refresh token rotates on use");
    assert!(second.token(false).await.is_ok());

    // Sign out: the entry is gone and the session revoked on the server.
    second.sign_out().await;
    assert_eq!(keychain.load(&base).unwrap(), None);
    let third = Account::new(&base, keychain.clone());
    assert!(
        third.resume().await.is_none(),
        "signed out stays signed out"
    );
    let api = parley_engine::rest::Api::new(&base);
    let refused = api.refresh(&rotated).await.unwrap_err();
    assert!(
        refused.is_auth(),
        "the server refuses the signed-out token: {refused}"
    );
    server.stop().await;
}
