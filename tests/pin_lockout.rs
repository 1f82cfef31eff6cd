//! PIN lockout as the university pages promise it, against the real SQLite store.
//!
//! Time is a virtual clock: unix seconds passed to every call. Most tests use a cheap verify
//! closure (the "hash" is `hash:<pin>`) so they stay fast; the argon2 tests use the real hasher.

use coda::apps::pin::{check_new_pin, hash_pin, verify_pin, Pin, PinPolicy, PinRejection};
use coda::store::{LoginOutcome, Mailbox, MailboxId, PinStatus, Store};
use std::path::PathBuf;
use std::sync::{Arc, Barrier};

const T0: i64 = 1_700_000_000;
const MIN: i64 = 60;

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let d = std::env::temp_dir().join(format!("coda-pin-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

fn mailbox(store: &Store) -> MailboxId {
    let id = MailboxId::parse("77513").unwrap();
    store
        .upsert_mailbox(&Mailbox::new(id.clone(), "owner@example.org", None))
        .unwrap();
    id
}

/// Cheap stand-in for a PHC string.
fn fake_hash(pin: &str) -> String {
    format!("hash:{pin}")
}

fn try_pin(store: &Store, id: &MailboxId, pin: &str, now: i64) -> LoginOutcome {
    let want = fake_hash(pin);
    store
        .check_pin(id, |phc| phc == want, now, PinPolicy::default())
        .unwrap()
}

fn events(store: &Store, id: &MailboxId) -> Vec<String> {
    store
        .audit_events(id)
        .unwrap()
        .into_iter()
        .map(|(_, e)| e)
        .collect()
}

fn count(store: &Store, id: &MailboxId, ev: &str) -> usize {
    events(store, id).iter().filter(|e| *e == ev).count()
}

/// A mailbox whose PIN "480219" is already active at T0.
fn setup(dir: &TempDir) -> (Store, MailboxId) {
    let store = Store::open(&dir.0).unwrap();
    let id = mailbox(&store);
    store
        .provision_pin(&id, &fake_hash("480219"), T0 - 3600, false)
        .unwrap();
    (store, id)
}

#[test]
fn seed_three_wrong_attempts_lock_for_30_minutes() {
    let dir = TempDir::new();
    let (store, id) = setup(&dir);
    assert_eq!(
        try_pin(&store, &id, "111111", T0),
        LoginOutcome::Wrong { attempts_left: 2 }
    );
    // Across calls: a later call continues the count.
    assert_eq!(
        try_pin(&store, &id, "222222", T0 + 40),
        LoginOutcome::Wrong { attempts_left: 1 }
    );
    assert_eq!(
        try_pin(&store, &id, "333333", T0 + 80),
        LoginOutcome::Wrong { attempts_left: 0 }
    );
    let until = T0 + 80 + 30 * MIN;
    assert_eq!(
        store.pin_status(&id, T0 + 81).unwrap().locked_until,
        Some(until)
    );
    // Locked for 30 minutes from the third attempt, even with the right PIN.
    assert_eq!(
        try_pin(&store, &id, "480219", T0 + 81),
        LoginOutcome::Locked { until }
    );
    assert_eq!(
        try_pin(&store, &id, "480219", until - 1),
        LoginOutcome::Locked { until }
    );
    // "wait for 30 minutes and try again".
    assert_eq!(
        try_pin(&store, &id, "480219", until),
        LoginOutcome::Ok { must_change: false }
    );
    assert_eq!(
        events(&store, &id),
        [
            "pin_changed",
            "login_failed",
            "login_failed",
            "login_failed",
            "locked",
            "login_ok"
        ]
    );
    // Audit rows carry mailbox and time only.
    let times: Vec<i64> = store
        .audit_events(&id)
        .unwrap()
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(times, [T0 - 3600, T0, T0 + 40, T0 + 80, T0 + 80, until]);
}

#[test]
fn seed_new_pin_not_valid_for_10_minutes_previous_keeps_working() {
    let dir = TempDir::new();
    let (store, id) = setup(&dir);
    let policy = PinPolicy::default();
    store
        .set_pin(&id, &fake_hash("902817"), T0, false, policy)
        .unwrap();
    assert_eq!(
        store.pin_status(&id, T0).unwrap().pin_active_at,
        Some(T0 + 10 * MIN)
    );
    // The new PIN is "not valid" and counts as a wrong attempt.
    assert_eq!(
        try_pin(&store, &id, "902817", T0 + 60),
        LoginOutcome::Wrong { attempts_left: 2 }
    );
    // The previous PIN still works (and resets the counter).
    assert_eq!(
        try_pin(&store, &id, "480219", T0 + 120),
        LoginOutcome::Ok { must_change: false }
    );
    assert_eq!(store.pin_status(&id, T0 + 120).unwrap().failures, 0);
    // Seed: using the new PIN too early three times locks the mailbox.
    for (i, left) in [(1, 2), (2, 1), (3, 0)] {
        assert_eq!(
            try_pin(&store, &id, "902817", T0 + 120 + i),
            LoginOutcome::Wrong {
                attempts_left: left
            }
        );
    }
    assert!(matches!(
        try_pin(&store, &id, "480219", T0 + 200),
        LoginOutcome::Locked { .. }
    ));
    // After the lock, and after activation, only the new PIN works.
    let later = T0 + 123 + 30 * MIN;
    assert_eq!(
        try_pin(&store, &id, "480219", later),
        LoginOutcome::Wrong { attempts_left: 2 }
    );
    assert_eq!(
        try_pin(&store, &id, "902817", later + 1),
        LoginOutcome::Ok { must_change: false }
    );
}

#[test]
fn new_pin_active_exactly_after_delay() {
    let dir = TempDir::new();
    let (store, id) = setup(&dir);
    store
        .set_pin(&id, &fake_hash("902817"), T0, false, PinPolicy::default())
        .unwrap();
    assert!(matches!(
        try_pin(&store, &id, "902817", T0 + 10 * MIN - 1),
        LoginOutcome::Wrong { .. }
    ));
    assert_eq!(
        try_pin(&store, &id, "902817", T0 + 10 * MIN),
        LoginOutcome::Ok { must_change: false }
    );
    // From then on the previous PIN is wrong.
    assert!(matches!(
        try_pin(&store, &id, "480219", T0 + 10 * MIN + 1),
        LoginOutcome::Wrong { .. }
    ));
}

#[test]
fn second_change_while_pending_keeps_the_working_pin() {
    let dir = TempDir::new();
    let (store, id) = setup(&dir);
    let p = PinPolicy::default();
    store
        .set_pin(&id, &fake_hash("902817"), T0, false, p)
        .unwrap();
    store
        .set_pin(&id, &fake_hash("135792"), T0 + 60, false, p)
        .unwrap();
    // 902817 never became active; 480219 is still the working PIN.
    assert_eq!(
        try_pin(&store, &id, "480219", T0 + 120),
        LoginOutcome::Ok { must_change: false }
    );
    assert!(matches!(
        try_pin(&store, &id, "902817", T0 + 11 * MIN),
        LoginOutcome::Wrong { .. }
    ));
    assert_eq!(
        try_pin(&store, &id, "135792", T0 + 11 * MIN + 1),
        LoginOutcome::Ok { must_change: false }
    );
}

#[test]
fn first_pin_has_no_previous_and_is_not_valid_before_delay() {
    let dir = TempDir::new();
    let store = Store::open(&dir.0).unwrap();
    let id = mailbox(&store);
    assert_eq!(try_pin(&store, &id, "480219", T0), LoginOutcome::NoPin);
    store
        .set_pin(&id, &fake_hash("480219"), T0, false, PinPolicy::default())
        .unwrap();
    assert_eq!(
        try_pin(&store, &id, "480219", T0 + 1),
        LoginOutcome::Wrong { attempts_left: 2 }
    );
    assert_eq!(
        try_pin(&store, &id, "480219", T0 + 10 * MIN),
        LoginOutcome::Ok { must_change: false }
    );
}

#[test]
fn set_pin_on_unknown_mailbox_is_refused() {
    let dir = TempDir::new();
    let store = Store::open(&dir.0).unwrap();
    let id = MailboxId::parse("15902").unwrap();
    assert!(store
        .set_pin(&id, &fake_hash("480219"), T0, false, PinPolicy::default())
        .is_err());
    assert_eq!(try_pin(&store, &id, "480219", T0), LoginOutcome::NoPin);
}

#[test]
fn locked_mailbox_refuses_right_pin_without_extending_lock() {
    let dir = TempDir::new();
    let (store, id) = setup(&dir);
    for i in 0..3 {
        try_pin(&store, &id, "111111", T0 + i);
    }
    let until = T0 + 2 + 30 * MIN;
    let verified = std::cell::Cell::new(false);
    for t in [T0 + 3, T0 + 10 * MIN, T0 + 29 * MIN] {
        // The verifier is never even called while locked.
        let out = store
            .check_pin(
                &id,
                |_| {
                    verified.set(true);
                    true
                },
                t,
                PinPolicy::default(),
            )
            .unwrap();
        assert_eq!(out, LoginOutcome::Locked { until });
    }
    assert!(!verified.get());
    let st = store.pin_status(&id, T0 + 29 * MIN).unwrap();
    assert_eq!(st.locked_until, Some(until));
    assert_eq!(st.failures, 3);
    assert_eq!(count(&store, &id, "login_failed"), 3);
    assert_eq!(count(&store, &id, "locked"), 1);
    assert_eq!(
        try_pin(&store, &id, "480219", until),
        LoginOutcome::Ok { must_change: false }
    );
}

#[test]
fn lock_survives_restart() {
    let dir = TempDir::new();
    let (store, id) = setup(&dir);
    for i in 0..3 {
        try_pin(&store, &id, "111111", T0 + i);
    }
    drop(store);
    let store = Store::open(&dir.0).unwrap();
    let until = T0 + 2 + 30 * MIN;
    assert_eq!(
        try_pin(&store, &id, "480219", T0 + 5 * MIN),
        LoginOutcome::Locked { until }
    );
    // The counter survives a restart too.
    drop(store);
    let store = Store::open(&dir.0).unwrap();
    assert_eq!(
        try_pin(&store, &id, "480219", until),
        LoginOutcome::Ok { must_change: false }
    );
    try_pin(&store, &id, "111111", until + 1);
    drop(store);
    let store = Store::open(&dir.0).unwrap();
    assert_eq!(
        try_pin(&store, &id, "111111", until + 2),
        LoginOutcome::Wrong { attempts_left: 1 }
    );
}

#[test]
fn success_resets_counter() {
    let dir = TempDir::new();
    let (store, id) = setup(&dir);
    try_pin(&store, &id, "111111", T0);
    try_pin(&store, &id, "111111", T0 + 1);
    assert_eq!(store.pin_status(&id, T0 + 1).unwrap().failures, 2);
    assert_eq!(
        try_pin(&store, &id, "480219", T0 + 2),
        LoginOutcome::Ok { must_change: false }
    );
    assert_eq!(store.pin_status(&id, T0 + 2).unwrap().failures, 0);
    // Two more wrong attempts do not lock: the count is consecutive.
    assert_eq!(
        try_pin(&store, &id, "111111", T0 + 3),
        LoginOutcome::Wrong { attempts_left: 2 }
    );
    assert_eq!(
        try_pin(&store, &id, "111111", T0 + 4),
        LoginOutcome::Wrong { attempts_left: 1 }
    );
    assert_eq!(
        try_pin(&store, &id, "480219", T0 + 5),
        LoginOutcome::Ok { must_change: false }
    );
}

#[test]
fn counter_restarts_after_lock_expires() {
    let dir = TempDir::new();
    let (store, id) = setup(&dir);
    for i in 0..3 {
        try_pin(&store, &id, "111111", T0 + i);
    }
    let until = T0 + 2 + 30 * MIN;
    assert_eq!(
        store.pin_status(&id, until).unwrap(),
        PinStatus {
            locked_until: None,
            failures: 0,
            pin_active_at: Some(T0 - 3600),
            must_change: false
        }
    );
    // A fresh three attempts, not one.
    assert_eq!(
        try_pin(&store, &id, "111111", until),
        LoginOutcome::Wrong { attempts_left: 2 }
    );
    assert_eq!(
        try_pin(&store, &id, "111111", until + 1),
        LoginOutcome::Wrong { attempts_left: 1 }
    );
    assert_eq!(
        try_pin(&store, &id, "111111", until + 2),
        LoginOutcome::Wrong { attempts_left: 0 }
    );
    assert_eq!(
        try_pin(&store, &id, "480219", until + 3),
        LoginOutcome::Locked {
            until: until + 2 + 30 * MIN
        }
    );
}

#[test]
fn coordinator_unlock() {
    let dir = TempDir::new();
    let (store, id) = setup(&dir);
    for i in 0..3 {
        try_pin(&store, &id, "111111", T0 + i);
    }
    assert!(store.unlock(&id, T0 + 60).unwrap());
    assert_eq!(store.pin_status(&id, T0 + 60).unwrap().locked_until, None);
    assert_eq!(
        try_pin(&store, &id, "111111", T0 + 61),
        LoginOutcome::Wrong { attempts_left: 2 }
    );
    assert_eq!(
        try_pin(&store, &id, "480219", T0 + 62),
        LoginOutcome::Ok { must_change: false }
    );
    assert!(!store.unlock(&id, T0 + 63).unwrap());
    assert_eq!(count(&store, &id, "unlocked"), 2);
}

#[test]
fn default_pin_must_be_changed_at_first_login() {
    let dir = TempDir::new();
    let store = Store::open(&dir.0).unwrap();
    let id = mailbox(&store);
    store
        .provision_pin(&id, &fake_hash("480219"), T0, true)
        .unwrap();
    assert_eq!(
        try_pin(&store, &id, "480219", T0),
        LoginOutcome::Ok { must_change: true }
    );
    store
        .set_pin(
            &id,
            &fake_hash("902817"),
            T0 + 5,
            false,
            PinPolicy::default(),
        )
        .unwrap();
    assert!(!store.pin_status(&id, T0 + 5).unwrap().must_change);
    // The default PIN keeps working for the 10 minutes, without forcing a change again.
    assert_eq!(
        try_pin(&store, &id, "480219", T0 + 6),
        LoginOutcome::Ok { must_change: false }
    );
}

#[test]
fn configurable_numbers_are_honoured() {
    let dir = TempDir::new();
    let (store, id) = setup(&dir);
    let policy = PinPolicy {
        length: 6,
        activation_delay: std::time::Duration::from_secs(5),
        max_attempts: 5,
        lockout: std::time::Duration::from_secs(90),
    };
    let want = fake_hash("480219");
    let check = |now| {
        store
            .check_pin(&id, |phc| phc == "nothing", now, policy)
            .unwrap()
    };
    for i in 0..4 {
        assert_eq!(
            check(T0 + i),
            LoginOutcome::Wrong {
                attempts_left: 4 - i as u32
            }
        );
    }
    assert_eq!(check(T0 + 4), LoginOutcome::Wrong { attempts_left: 0 });
    assert_eq!(check(T0 + 5), LoginOutcome::Locked { until: T0 + 94 });
    assert_eq!(
        store
            .check_pin(&id, |phc| phc == want, T0 + 94, policy)
            .unwrap(),
        LoginOutcome::Ok { must_change: false }
    );
}

#[test]
fn twenty_concurrent_guessers_get_three_attempts() {
    let dir = TempDir::new();
    let (store, id) = setup(&dir);
    drop(store);
    let n = 20;
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let path = dir.0.clone();
            let id = id.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                // Each guesser has its own connection, like a separate process or node.
                let store = Store::open(&path).unwrap();
                barrier.wait();
                let guess = fake_hash(&format!("{:06}", 100_000 + i));
                store
                    .check_pin(
                        &id,
                        |phc| {
                            // Make the check take a moment, like argon2 would.
                            std::thread::sleep(std::time::Duration::from_millis(5));
                            phc == guess
                        },
                        T0,
                        PinPolicy::default(),
                    )
                    .unwrap()
            })
        })
        .collect();
    let outcomes: Vec<LoginOutcome> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let wrong: Vec<u32> = outcomes
        .iter()
        .filter_map(|o| match o {
            LoginOutcome::Wrong { attempts_left } => Some(*attempts_left),
            _ => None,
        })
        .collect();
    let locked = outcomes
        .iter()
        .filter(|o| {
            **o == LoginOutcome::Locked {
                until: T0 + 30 * MIN,
            }
        })
        .count();
    let mut left = wrong.clone();
    left.sort_unstable();
    assert_eq!(left, [0, 1, 2], "{outcomes:?}");
    assert_eq!(locked, 17, "{outcomes:?}");
    let store = Store::open(&dir.0).unwrap();
    assert_eq!(count(&store, &id, "login_failed"), 3);
    assert_eq!(count(&store, &id, "locked"), 1);
    assert_eq!(store.pin_status(&id, T0).unwrap().failures, 3);
}

#[test]
fn real_argon2_login_and_lockout() {
    let dir = TempDir::new();
    let store = Store::open(&dir.0).unwrap();
    let id = mailbox(&store);
    let policy = PinPolicy::default();
    let chosen = "480219";
    check_new_pin(chosen, id.as_str(), &policy).unwrap();
    let pin = Pin::parse(chosen).unwrap();
    let phc = hash_pin(&pin).unwrap();
    store.set_pin(&id, &phc, T0, false, policy).unwrap();
    let attempt = |digits: &str, now: i64| {
        let entered = Pin::parse(digits).unwrap();
        store
            .check_pin(&id, |phc| verify_pin(&entered, phc), now, policy)
            .unwrap()
    };
    // Not valid for 10 minutes, then accepted.
    assert_eq!(
        attempt(chosen, T0 + 1),
        LoginOutcome::Wrong { attempts_left: 2 }
    );
    assert_eq!(
        attempt(chosen, T0 + 10 * MIN),
        LoginOutcome::Ok { must_change: false }
    );
    assert_eq!(
        attempt("480218", T0 + 11 * MIN),
        LoginOutcome::Wrong { attempts_left: 2 }
    );
    assert_eq!(
        attempt("480218", T0 + 11 * MIN),
        LoginOutcome::Wrong { attempts_left: 1 }
    );
    assert_eq!(
        attempt("480218", T0 + 11 * MIN),
        LoginOutcome::Wrong { attempts_left: 0 }
    );
    assert_eq!(
        attempt(chosen, T0 + 12 * MIN),
        LoginOutcome::Locked {
            until: T0 + 41 * MIN
        }
    );
    // Only the PHC string is stored: the database file never contains the digits.
    drop(store);
    let db = std::fs::read(dir.0.join("coda.db")).unwrap();
    let wal = std::fs::read(dir.0.join("coda.db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        assert!(!bytes.windows(6).any(|w| w == chosen.as_bytes()));
    }
}

#[test]
fn pins_never_in_debug_output() {
    let pin = Pin::parse("480219").unwrap();
    let shown = format!("{pin:?} {pin} {:?}", (pin.clone(), Some(&pin)));
    assert!(!shown.contains("480219"), "{shown}");
    assert!(!shown.chars().any(|c| c.is_ascii_digit()), "{shown}");
    let rej = check_new_pin("775130", "77513", &PinPolicy::default()).unwrap_err();
    assert_eq!(rej, PinRejection::ContainsExtension);
    let shown = format!("{rej} {rej:?}");
    assert!(
        !shown.contains("775130") && !shown.contains("77513"),
        "{shown}"
    );
    let outcome = LoginOutcome::Wrong { attempts_left: 2 };
    assert!(!format!("{outcome:?}").contains("480219"));
}
