//! The call's events to the UI: through the engine's room model, then as room snapshots,
//! chat, reactions, notices, audio levels and video frames.

use std::collections::HashMap;
use std::time::Duration;

use parley_engine::call::CallEvent;
use parley_engine::room::{Change, Status};
use parley_engine::rtc::MediaKind;
use parley_engine::signaling::Event;
use parley_shared::{MeetingCode, PeerId};
use tauri::{AppHandle, Manager as _};
use tauri_specta::Event as _;
use tokio::sync::mpsc;

use super::video::{KIND_CAMERA, KIND_SCREEN, KIND_SELF};
use super::{ended_message, plain, status, Meetings};
use crate::types::{AppError, ChatEvent, ChatView, LevelsEvent, NoticeLevel, ReactionEvent};
use crate::Shell;

/// Turns the call's events into room updates and UI events until the call ends.
pub(super) async fn pump(app: AppHandle, generation: u64, mut events: mpsc::Receiver<CallEvent>) {
    let mut levels: HashMap<PeerId, f32> = HashMap::new();
    let mut mic_level = -100.0f32;
    let mut active: Option<PeerId> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let ev = tokio::select! {
            ev = events.recv() => match ev {
                Some(ev) => ev,
                None => break,
            },
            _ = tick.tick() => {
                let m = &app.state::<Shell>().meetings;
                let live = {
                    let s = m.lock();
                    s.generation == generation && status(&s) == Some(Status::In)
                };
                if live {
                    let _ = LevelsEvent {
                        peers: levels.iter().map(|(p, d)| (p.to_string(), *d)).collect(),
                        mic: mic_level,
                        active_speaker: active.as_ref().map(|p| p.to_string()),
                    }
                    .emit(&app);
                }
                continue;
            }
        };
        let shell = app.state::<Shell>();
        let m = &shell.meetings;
        match &ev {
            CallEvent::Video { peer, kind, frame } => {
                let k = match kind {
                    MediaKind::Screen => KIND_SCREEN,
                    _ => KIND_CAMERA,
                };
                m.frames.send(k, peer.as_str(), frame);
                continue;
            }
            CallEvent::LocalVideo { frame } => {
                m.frames.send(KIND_SELF, "self", frame);
                continue;
            }
            CallEvent::AudioLevel { peer, dbfs } => {
                levels.insert(peer.clone(), *dbfs);
                continue;
            }
            CallEvent::MicLevel { dbfs } => {
                mic_level = *dbfs;
                continue;
            }
            CallEvent::ActiveSpeaker { peer } => {
                active = peer.clone();
                continue;
            }
            // The self view shows what the camera captures; the smaller picture sent to fit
            // the CPU is for the peers (logged by the engine).
            CallEvent::Audio { .. } | CallEvent::Ice { .. } | CallEvent::CameraAdapted { .. } => {
                continue
            }
            _ => {}
        }
        let Some(changes) = m.update(&app, generation, |s| match s.room.as_mut() {
            Some(room) => room.on_call(&ev),
            None => Vec::new(),
        }) else {
            break; // another call has begun
        };
        for change in changes {
            on_change(&app, m, generation, change).await;
        }
        if let CallEvent::Signal(Event::Closed(_)) = ev {
            break;
        }
    }
}

async fn on_change(app: &AppHandle, m: &Meetings, generation: u64, change: Change) {
    let notice = |level, text: String| Meetings::notice(app, level, text);
    match change {
        Change::Entered { again: false } => {
            tokio::spawn(load_history(app.clone(), generation));
        }
        Change::WaitingPeer(w) => {
            notice(NoticeLevel::Info, format!("{} is waiting to join.", w.name))
        }
        Change::Reaction { peer, name, emoji } => {
            let _ = ReactionEvent {
                peer_id: peer.to_string(),
                name,
                emoji,
            }
            .emit(app);
        }
        Change::MutedByHost => notice(NoticeLevel::Info, "A host muted your microphone.".into()),
        Change::Chat(message) => {
            let view = ChatView::from(message);
            notify_chat(app, &view);
            let _ = ChatEvent {
                read: m.chat_read(app, view.seq),
                message: view,
                mine: false,
                pending: false,
                client_msg_id: None,
            }
            .emit(app);
        }
        Change::ChatAck {
            client_msg_id,
            message,
        } => {
            let _ = ChatEvent {
                message: ChatView::from(message),
                mine: true,
                pending: false,
                client_msg_id: Some(client_msg_id),
                read: true,
            }
            .emit(app);
        }
        Change::Error { code, message } => {
            notice(NoticeLevel::Error, format!("{message} ({})", code.as_str()));
        }
        Change::ServerRestarting => notice(
            NoticeLevel::Warning,
            "The server is restarting; reconnecting…".into(),
        ),
        Change::DeviceLost {
            device,
            error,
            fallback,
        } => {
            tracing::info!(?device, %error, "a device stopped");
            // Audio falls back to the system default; video waits for a choice.
            let mut replaced = false;
            if let (true, Ok(call)) = (fallback, m.call()) {
                match call.fall_back(device) {
                    Some(Err(e)) => {
                        tracing::info!(?device, error = %e, "no default to fall back to")
                    }
                    Some(Ok(_)) => replaced = true,
                    None => {}
                }
            }
            Meetings::device_notice(app, plain::device_lost(device, replaced));
            m.changed(app);
        }
        Change::Ended(c) => {
            let (code, text) = ended_message(&c);
            m.update(app, generation, |s| {
                s.live = None;
                s.local.ended = Some(s.local.ended.clone().unwrap_or(code));
                s.local.ended_message = Some(text);
            });
        }
        _ => {}
    }
}

/// A desktop notification for chat while the window is hidden or unfocused.
fn notify_chat(app: &AppHandle, view: &ChatView) {
    let visible = app
        .get_webview_window("main")
        .map(|w| w.is_visible().unwrap_or(true) && w.is_focused().unwrap_or(true))
        .unwrap_or(true);
    if !visible {
        crate::notify(app, &view.sender, &view.text);
    }
}

/// The meeting's earlier chat, from the server's history.
async fn load_history(app: AppHandle, generation: u64) {
    let shell = app.state::<Shell>();
    let m = &shell.meetings;
    let Ok(code) = MeetingCode::parse(&m.room().code) else {
        return;
    };
    let me = shell.account.user().await.map(|u| u.id.to_string());
    let mut after = 0i64;
    loop {
        let page: Result<_, AppError> = async {
            crate::with_token!(shell.account, |api, t| api
                .history(&t, &code, after, 500)
                .await)
        }
        .await;
        let page = match page {
            Ok(p) => p,
            Err(e) => {
                tracing::info!(error = %e, "chat history not loaded");
                return;
            }
        };
        let n = page.messages.len();
        for entry in page.messages {
            after = entry.seq;
            let message = parley_shared::signal::ChatMessage {
                id: entry.id,
                seq: entry.seq,
                sender: entry.sender,
                sender_name: entry.sender_name,
                guest: entry.guest,
                text: entry.text,
                at_ms: entry.at_ms,
            };
            let added = {
                let mut s = m.lock();
                if s.generation != generation {
                    return;
                }
                s.room.as_mut().is_some_and(|r| r.add_chat(message.clone()))
            };
            if added {
                let view = ChatView::from(message);
                let _ = ChatEvent {
                    mine: me.as_deref() == Some(view.sender_id.as_str()),
                    read: m.chat_read(&app, view.seq),
                    message: view,
                    pending: false,
                    client_msg_id: None,
                }
                .emit(&app);
            }
        }
        if n < 500 {
            return;
        }
    }
}
