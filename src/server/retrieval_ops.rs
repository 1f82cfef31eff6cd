//! Carries out what the retrieval flow asks of the store, on the blocking pool, and maps the
//! answers back. The logged-in mailbox lives here (`session`), set only by a successful PIN
//! check: the flow cannot reach another mailbox's messages by naming their ids.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::{info, warn};

use crate::apps::pin::{hash_pin, verify_pin, PinPolicy};
use crate::apps::retrieval::{
    Event, LoginResult, MessageInfo, Retrieval, RetrievalConfig, RetrievalSetup,
};
use crate::store::{read_wav, Folder, GreetingKind, LoginOutcome, MailboxId, MessageId};

use super::call::Reply;
use super::Shared;

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The configured PIN policy.
pub fn pin_policy(shared: &Shared) -> PinPolicy {
    PinPolicy::from(&shared.cfg.voicemail)
}

/// A retrieval flow; `mailbox` is the mailbox to log in to, when the caller is known.
pub fn new_flow(shared: &Arc<Shared>, mailbox: Option<String>) -> super::call::Flow {
    let cfg = &shared.cfg;
    let rcfg = RetrievalConfig {
        pin_policy: pin_policy(shared),
        plan: cfg.numbering.clone(),
        tz: cfg
            .mail
            .timezone
            .parse()
            .unwrap_or(chrono_tz::Europe::London),
        ..RetrievalConfig::default()
    };
    let setup = RetrievalSetup {
        mailbox,
        wall_clock_unix: unix_now(),
    };
    let prompts: Arc<dyn crate::apps::PromptSource + Send + Sync> = shared.prompts.clone();
    super::call::Flow::Retrieval(Box::new(Retrieval::new(
        std::time::Instant::now(),
        rcfg,
        setup,
        prompts,
    )))
}

/// Runs one request of the flow; `None` for requests that need no answer.
pub async fn run(
    shared: &Arc<Shared>,
    ev: Event,
    session: &Arc<Mutex<Option<MailboxId>>>,
) -> Option<Reply> {
    let logged_in = || session.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let sh = shared.clone();
    match ev {
        Event::CheckPin { mailbox, pin } => {
            let policy = pin_policy(shared);
            let session = session.clone();
            let result = tokio::task::spawn_blocking(move || {
                let Ok(id) = MailboxId::parse(&mailbox) else {
                    return LoginResult::NoPin;
                };
                if !matches!(sh.store.mailbox(&id), Ok(Some(_))) {
                    return LoginResult::NoPin;
                }
                let now = unix_now();
                // An over-long entry completed with '#' still counts as a wrong attempt.
                let verify = |phc: &str| pin.as_ref().is_some_and(|p| verify_pin(p, phc));
                match sh.store.check_pin(&id, verify, now, policy) {
                    Ok(LoginOutcome::Ok { must_change }) => {
                        let needs_name =
                            !matches!(sh.store.greeting(&id, GreetingKind::Name), Ok(Some(_)));
                        *session.lock().unwrap_or_else(|e| e.into_inner()) = Some(id);
                        LoginResult::Ok {
                            must_change,
                            needs_name,
                        }
                    }
                    Ok(LoginOutcome::Wrong { attempts_left }) => {
                        LoginResult::Wrong { attempts_left }
                    }
                    Ok(LoginOutcome::Locked { until }) => LoginResult::Locked {
                        retry_in_minutes: Some(((until - now).max(0) as u32).div_ceil(60)),
                    },
                    Ok(LoginOutcome::NoPin) => LoginResult::NoPin,
                    Err(e) => {
                        warn!(error = %e, "PIN check failed");
                        LoginResult::Unavailable
                    }
                }
            })
            .await
            .unwrap_or(LoginResult::Unavailable);
            match &result {
                LoginResult::Ok { .. } => info!("mailbox login"),
                LoginResult::Wrong { attempts_left: 0 } | LoginResult::Locked { .. } => {
                    info!("mailbox login refused: locked")
                }
                LoginResult::Wrong { .. } => info!("mailbox login refused: wrong PIN"),
                _ => {}
            }
            Some(Reply::Login(result))
        }
        Event::LoadMailbox { .. } => {
            let id = logged_in()?;
            let list = tokio::task::spawn_blocking(move || sh.store.messages(&id))
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default()
                .into_iter()
                .map(|m| MessageInfo {
                    id: m.id.0,
                    caller: m.caller,
                    received_unix: m.received_unix,
                    duration_ms: m.duration_ms,
                    new: m.folder == Folder::New,
                })
                .collect();
            Some(Reply::Mailbox(list))
        }
        Event::LoadMessage(msg) => {
            let id = logged_in()?;
            let audio = tokio::task::spawn_blocking(move || {
                let m = sh
                    .store
                    .messages(&id)
                    .ok()?
                    .into_iter()
                    .find(|m| m.id.0 == msg)?;
                read_wav(&m.audio_path).ok()
            })
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
            Some(Reply::Audio(msg, audio.into()))
        }
        Event::ChangePin { new_pin } => {
            let id = logged_in()?;
            let policy = pin_policy(shared);
            let ok = tokio::task::spawn_blocking(move || {
                let phc = hash_pin(&new_pin).ok()?;
                sh.store.set_pin(&id, &phc, unix_now(), false, policy).ok()
            })
            .await
            .ok()
            .flatten()
            .is_some();
            Some(Reply::PinChanged(ok))
        }
        Event::StoreGreeting { kind, audio } => {
            let id = logged_in()?;
            let _ =
                tokio::task::spawn_blocking(move || sh.store.set_greeting(&id, kind, &audio)).await;
            None
        }
        Event::DeleteGreeting { kind } => {
            let id = logged_in()?;
            let _ = tokio::task::spawn_blocking(move || sh.store.delete_greeting(&id, kind)).await;
            None
        }
        Event::Commit { deleted, saved } => {
            let id = logged_in()?;
            let mb = id.clone();
            let _ = tokio::task::spawn_blocking(move || {
                for m in deleted {
                    if sh.store.message_in(&id, MessageId(m)) {
                        let _ = sh.store.delete_message(MessageId(m));
                    }
                }
                let ids: Vec<MessageId> = saved.into_iter().map(MessageId).collect();
                let _ = sh.store.mark_saved(&id, &ids);
            })
            .await;
            let _ = shared.mailbox_changed.send(mb);
            None
        }
        Event::Hangup => None,
    }
}
