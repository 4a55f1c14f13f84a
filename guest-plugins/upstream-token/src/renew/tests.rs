use super::*;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// A store in memory (records "sealed" as plain JSON), a provider that
/// counts its refreshes, and a clock that sleeping advances.
#[derive(Default)]
struct Fake {
    store: RefCell<HashMap<String, Vec<u8>>>,
    refreshes: Cell<u32>,
    refresh_answer: RefCell<Option<Result<Map<String, Value>, RefreshError>>>,
    store_down: Cell<bool>,
    clock_ms: Cell<u64>,
    /// Run on each sleep (another replica acting meanwhile).
    on_sleep: RefCell<Option<Box<dyn Fn(&Fake)>>>,
}

impl Backend for &Fake {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        if self.store_down.get() {
            return Err("unavailable".into());
        }
        Ok(self.store.borrow().get(key).cloned())
    }

    fn put_new(&self, key: &str, value: &[u8], _ttl: u32) -> Result<bool, String> {
        if self.store_down.get() {
            return Err("unavailable".into());
        }
        let mut store = self.store.borrow_mut();
        if store.contains_key(key) {
            return Ok(false);
        }
        store.insert(key.to_owned(), value.to_vec());
        Ok(true)
    }

    fn delete(&self, key: &str) -> Result<(), String> {
        self.store.borrow_mut().remove(key);
        Ok(())
    }

    fn open(&self, sealed: &[u8]) -> Option<Rc<StoredTokens>> {
        serde_json::from_slice(sealed).ok().map(Rc::new)
    }

    fn replace(&self, previous: &[u8], next: &StoredTokens, _now: u64) -> Result<bool, String> {
        if self.store_down.get() {
            return Err("unavailable".into());
        }
        let mut store = self.store.borrow_mut();
        if store.get(RECORD).map(Vec::as_slice) != Some(previous) {
            return Ok(false);
        }
        store.insert(RECORD.into(), serde_json::to_vec(next).unwrap());
        Ok(true)
    }

    fn refresh(&self, _renewal: &tokens::Renewal, refresh_token: &str) -> Result<Map<String, Value>, RefreshError> {
        self.refreshes.set(self.refreshes.get() + 1);
        if let Some(answer) = self.refresh_answer.borrow().clone() {
            return answer;
        }
        let n = self.refreshes.get();
        Ok(serde_json::json!({"access_token": format!("at-{n}"), "refresh_token": format!("{refresh_token}+"), "expires_in": 60}).as_object().unwrap().clone())
    }

    fn now_ms(&self) -> u64 {
        self.clock_ms.get()
    }

    fn sleep(&self, duration: Duration) {
        self.clock_ms.set(self.clock_ms.get() + duration.as_millis() as u64);
        if let Some(act) = self.on_sleep.borrow().as_ref() {
            act(self);
        }
    }
}

const RECORD: &str = "session:sid:corp";
const LEASE: &str = "renewing:sid:corp";

fn tokens(access: &str) -> StoredTokens {
    let mut tokens =
        StoredTokens::from_response(serde_json::json!({"access_token": access, "refresh_token": "rt", "expires_in": 10}).as_object().unwrap().clone(), 1000);
    tokens.renewal = Some(tokens::Renewal { token_endpoint: "https://idp/token".into(), client_id: "gw".into(), client_secret_secret: None });
    tokens.session_expires_at = 100_000;
    tokens
}

fn stored(fake: &Fake, tokens: &StoredTokens) -> Vec<u8> {
    let sealed = serde_json::to_vec(tokens).unwrap();
    fake.store.borrow_mut().insert(RECORD.into(), sealed.clone());
    sealed
}

fn renewer(fake: &Fake) -> Renewer<'static, &Fake> {
    Renewer::with(fake, "sid", "corp", 3000)
}

#[test]
fn one_refresh_replaces_the_record_and_releases_the_lease() {
    let fake = Fake::default();
    let old = tokens("at-0");
    let sealed = stored(&fake, &old);
    let Outcome::Renewed(next) = renewer(&fake).renew(&sealed, &old) else { panic!("renewed") };
    assert_eq!((next.access_token.as_str(), next.refresh_token.as_deref()), ("at-1", Some("rt+")));
    assert_eq!(next.renewal, old.renewal, "how to renew is kept");
    assert_eq!(next.session_expires_at, old.session_expires_at, "the session's end is kept");
    assert_eq!(fake.refreshes.get(), 1);
    assert_eq!(renewer(&fake).load().unwrap().unwrap().1, next, "the record is the new one");
    assert!(!fake.store.borrow().contains_key(LEASE), "the lease is released");
}

#[test]
fn a_request_that_finds_the_lease_taken_waits_for_the_other_renewal() {
    let fake = Fake::default();
    let old = tokens("at-0");
    let sealed = stored(&fake, &old);
    fake.store.borrow_mut().insert(LEASE.into(), b"1".to_vec());
    // The holder (another replica) finishes after the third look.
    let looks = Cell::new(0);
    *fake.on_sleep.borrow_mut() = Some(Box::new(move |fake: &Fake| {
        looks.set(looks.get() + 1);
        if looks.get() == 3 {
            stored(fake, &tokens("at-elsewhere"));
            fake.store.borrow_mut().remove(LEASE);
        }
    }));
    let Outcome::Renewed(next) = renewer(&fake).renew(&sealed, &old) else { panic!("renewed") };
    assert_eq!(next.access_token, "at-elsewhere");
    assert_eq!(fake.refreshes.get(), 0, "no second refresh reached the provider");
}

#[test]
fn a_record_renewed_between_the_read_and_the_lease_is_not_renewed_again() {
    let fake = Fake::default();
    let old = tokens("at-0");
    let sealed = stored(&fake, &old);
    stored(&fake, &tokens("at-elsewhere"));
    let Outcome::Renewed(next) = renewer(&fake).renew(&sealed, &old) else { panic!("renewed") };
    assert_eq!((next.access_token.as_str(), fake.refreshes.get()), ("at-elsewhere", 0));
    assert!(!fake.store.borrow().contains_key(LEASE));
}

#[test]
fn a_stuck_holder_is_waited_for_only_so_long() {
    let fake = Fake::default();
    let old = tokens("at-0");
    let sealed = stored(&fake, &old);
    fake.store.borrow_mut().insert(LEASE.into(), b"1".to_vec());
    let Outcome::Failed(RefreshError::Failed(why)) = renewer(&fake).renew(&sealed, &old) else { panic!("failed") };
    assert!(why.contains("did not finish within 3000 ms"), "{why}");
    assert!(fake.clock_ms.get() >= 3000 && fake.clock_ms.get() < 3100);
    assert_eq!(fake.refreshes.get(), 0);
}

#[test]
fn a_failed_refresh_keeps_the_old_tokens() {
    for answer in [
        Err(RefreshError::Refused("answered 400 invalid_grant".into())),
        Err(RefreshError::Failed("answered HTTP 500".into())),
        Err(RefreshError::Failed("answered without a usable `access_token`".into())),
    ] {
        let fake = Fake::default();
        let old = tokens("at-0");
        let sealed = stored(&fake, &old);
        *fake.refresh_answer.borrow_mut() = Some(answer.clone());
        let Outcome::Failed(why) = renewer(&fake).renew(&sealed, &old) else { panic!("failed") };
        assert_eq!(Err::<(), _>(why), answer.map(drop));
        assert_eq!(fake.store.borrow().get(RECORD), Some(&sealed), "the old record stays");
        assert!(!fake.store.borrow().contains_key(LEASE), "the lease is released");
    }
}

#[test]
fn the_store_down_fails_closed_and_touches_nothing() {
    let fake = Fake::default();
    let old = tokens("at-0");
    let sealed = stored(&fake, &old);
    fake.store_down.set(true);
    let Outcome::Failed(RefreshError::Failed(why)) = renewer(&fake).renew(&sealed, &old) else { panic!("failed") };
    assert!(why.contains("lease"), "{why}");
    assert_eq!(fake.refreshes.get(), 0);
    fake.store_down.set(false);
    assert_eq!(fake.store.borrow().get(RECORD), Some(&sealed));
}

#[test]
fn forgetting_ends_the_session_only_for_its_login_provider() {
    for (providers, session_ends) in [(r#"["corp"]"#, true), (r#"["idp","corp"]"#, false)] {
        let fake = Fake::default();
        stored(&fake, &tokens("at-0"));
        fake.store.borrow_mut().insert("session-info:sid".into(), format!(r#"{{"sub":"alice","providers":{providers}}}"#).into_bytes());
        renewer(&fake).forget();
        assert!(!fake.store.borrow().contains_key(RECORD), "{providers}");
        assert_eq!(!fake.store.borrow().contains_key("session-info:sid"), session_ends, "{providers}");
    }
}

#[test]
fn a_missing_record_is_told_apart_by_the_session_s_providers() {
    let fake = Fake::default();
    assert_eq!(renewer(&fake).logged_in_there(), Ok(None), "no info: the session ended");
    for (providers, there) in [(r#"["corp"]"#, true), (r#"["idp","corp"]"#, true), (r#"["idp"]"#, false), (r#"["idp","corporate"]"#, false)] {
        fake.store.borrow_mut().insert("session-info:sid".into(), format!(r#"{{"sub":"alice","providers":{providers}}}"#).into_bytes());
        assert_eq!(renewer(&fake).logged_in_there(), Ok(Some(there)), "{providers}");
    }
    fake.store_down.set(true);
    assert!(renewer(&fake).logged_in_there().is_err());
}

#[test]
fn a_record_without_a_refresh_token_cannot_be_renewed() {
    let fake = Fake::default();
    let mut old = tokens("at-0");
    old.refresh_token = None;
    let sealed = stored(&fake, &old);
    assert!(matches!(renewer(&fake).renew(&sealed, &old), Outcome::Cannot(_)));
    old.refresh_token = Some("rt".into());
    old.renewal = None;
    assert!(matches!(renewer(&fake).renew(&sealed, &old), Outcome::Cannot(_)));
    assert_eq!(fake.refreshes.get(), 0);
}
