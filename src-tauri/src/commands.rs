//! The commands the front end calls (typed through `ui/src/bindings.ts`).

use parley_engine::media::aec::VoiceProcessor;
use parley_engine::media::{capture, devices};
use parley_shared::api::CreateMeetingRequest;
use parley_shared::MeetingCode;
use tauri::ipc::Channel;
use tauri::{AppHandle, Manager as _, State};

use crate::meeting::{self, VideoFormat, VideoPacket};
use crate::types::{
    AppError, AppInfo, ChatView, DeviceKind, DeviceView, DevicesView, HostActionArg, MeetingView,
    PreviewView, RoomView, ShareKind, ShareTarget, SignUpResult, UserView,
};
use crate::Shell;

fn code(c: &str) -> Result<MeetingCode, AppError> {
    MeetingCode::parse(c).map_err(|_| {
        AppError::new(
            "invalid_meeting_code",
            "That is not a meeting code (it looks like abcd-efgh-jkmn).",
        )
    })
}

async fn info(shell: &Shell) -> AppInfo {
    let user = shell.account.resume().await.map(UserView::from);
    AppInfo {
        server: shell.account.api().await.base().to_string(),
        user,
        keychain: shell
            .account
            .keychain_ok
            .load(std::sync::atomic::Ordering::Relaxed),
        version: env!("CARGO_PKG_VERSION").into(),
    }
}

/// Where the app stands; signs in silently from the keychain on the first call.
#[tauri::command]
#[specta::specta]
pub async fn app_info(shell: State<'_, Shell>) -> Result<AppInfo, AppError> {
    Ok(info(&shell).await)
}

/// Uses another server (e.g. `https://parley.example.org`).
#[tauri::command]
#[specta::specta]
pub async fn set_server(shell: State<'_, Shell>, url: String) -> Result<AppInfo, AppError> {
    let url = url.trim().trim_end_matches('/').to_string();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(AppError::new(
            "invalid",
            "The server address starts with http:// or https://.",
        ));
    }
    shell.account.set_server(&url).await;
    shell.settings.set_server(&url);
    Ok(info(&shell).await)
}

#[tauri::command]
#[specta::specta]
pub async fn sign_up(
    shell: State<'_, Shell>,
    username: String,
    email: String,
    password: String,
) -> Result<SignUpResult, AppError> {
    let (user, verification_required) = shell.account.sign_up(username, email, password).await?;
    Ok(SignUpResult {
        user: user.into(),
        verification_required,
    })
}

#[tauri::command]
#[specta::specta]
pub async fn sign_in(
    shell: State<'_, Shell>,
    login: String,
    password: String,
) -> Result<UserView, AppError> {
    Ok(shell.account.sign_in(login, password).await?.into())
}

#[tauri::command]
#[specta::specta]
pub async fn verify_email(
    shell: State<'_, Shell>,
    email: String,
    code: String,
) -> Result<(), AppError> {
    Ok(shell
        .account
        .api()
        .await
        .verify_email(&email, &code)
        .await?)
}

#[tauri::command]
#[specta::specta]
pub async fn resend_code(shell: State<'_, Shell>, email: String) -> Result<(), AppError> {
    Ok(shell
        .account
        .api()
        .await
        .resend_verification(&email)
        .await?)
}

#[tauri::command]
#[specta::specta]
pub async fn request_password_reset(
    shell: State<'_, Shell>,
    email: String,
) -> Result<(), AppError> {
    Ok(shell
        .account
        .api()
        .await
        .request_password_reset(&email)
        .await?)
}

#[tauri::command]
#[specta::specta]
pub async fn reset_password(
    shell: State<'_, Shell>,
    email: String,
    code: String,
    new_password: String,
) -> Result<(), AppError> {
    Ok(shell
        .account
        .api()
        .await
        .reset_password(&email, &code, &new_password)
        .await?)
}

/// Signs out: the session is revoked and the keychain entry deleted.
#[tauri::command]
#[specta::specta]
pub async fn sign_out(shell: State<'_, Shell>) -> Result<(), AppError> {
    shell.account.sign_out().await;
    Ok(())
}

/// My meetings (hosted or joined), newest first.
#[tauri::command]
#[specta::specta]
pub async fn meetings(shell: State<'_, Shell>) -> Result<Vec<MeetingView>, AppError> {
    let list = crate::with_token!(shell.account, |api, t| api.meetings(&t, None).await)?;
    Ok(list.meetings.into_iter().map(MeetingView::from).collect())
}

#[tauri::command]
#[specta::specta]
pub async fn create_meeting(
    shell: State<'_, Shell>,
    title: String,
    passcode: Option<String>,
    waiting_room: bool,
    allow_guests: bool,
) -> Result<MeetingView, AppError> {
    let req = CreateMeetingRequest {
        title,
        passcode: passcode.filter(|p| !p.is_empty()),
        waiting_room,
        allow_guests,
    };
    let m = crate::with_token!(shell.account, |api, t| api.create_meeting(&t, &req).await)?;
    Ok(m.into())
}

/// A meeting's stored chat, oldest first.
#[tauri::command]
#[specta::specta]
pub async fn meeting_chat(
    shell: State<'_, Shell>,
    meeting: String,
) -> Result<Vec<ChatView>, AppError> {
    let code = code(&meeting)?;
    let mut all = Vec::new();
    let mut after = 0i64;
    loop {
        let page = crate::with_token!(shell.account, |api, t| api
            .history(&t, &code, after, 500)
            .await)?;
        let Some(last) = page.messages.last() else {
            break;
        };
        after = last.seq;
        let n = page.messages.len();
        all.extend(page.messages.into_iter().map(ChatView::from));
        if n < 500 {
            break;
        }
    }
    Ok(all)
}

// ---- Meetings in progress -------------------------------------------------------------

/// A meeting's details before joining (title, whether it asks for a passcode…).
#[tauri::command]
#[specta::specta]
pub async fn meeting_info(shell: State<'_, Shell>, code: String) -> Result<MeetingView, AppError> {
    let code = self::code(&code)?;
    match crate::with_token!(shell.account, |api, t| api.meeting(&t, &code).await) {
        Ok(m) => Ok(m.into()),
        // Someone else's meeting we have not been in: its details come with joining (the
        // join asks for the passcode if there is one).
        Err(e) if e.code == parley_shared::ErrorCode::NotParticipant.as_str() => Ok(MeetingView {
            code: code.to_string(),
            title: String::new(),
            host: String::new(),
            has_passcode: false,
            waiting_room: false,
            allow_guests: false,
            locked: false,
            created_at_ms: 0.0,
            started_at_ms: None,
            ended_at_ms: None,
            my_role: crate::types::RoleView::Participant,
        }),
        Err(e) => Err(e),
    }
}

/// Joins a meeting with the chosen devices; `camera` and `mic` say whether they start on.
#[tauri::command]
#[specta::specta]
pub async fn join_meeting(
    app: AppHandle,
    shell: State<'_, Shell>,
    code: String,
    passcode: Option<String>,
    camera: bool,
    mic: bool,
) -> Result<RoomView, AppError> {
    let code = self::code(&code)?;
    let user = shell
        .account
        .user()
        .await
        .ok_or_else(AppError::signed_out)?;
    let passcode = passcode.filter(|p| !p.is_empty());
    // The REST join checks what the live join will (ended, locked, passcode, removed) and
    // answers with a clear error code before any device is opened.
    let joined = crate::with_token!(shell.account, |api, t| api
        .join_meeting(&t, &code, passcode.clone())
        .await)?;
    let meeting = joined.meeting;
    shell
        .meetings
        .join(
            &app,
            meeting::JoinRequest {
                code,
                title: meeting.title,
                my_name: user.username,
                my_user: Some(user.id),
                passcode,
                camera_on: camera,
                mic_on: mic,
            },
        )
        .await
}

/// Leaves the meeting in progress (nothing happens when there is none).
#[tauri::command]
#[specta::specta]
pub async fn leave_meeting(shell: State<'_, Shell>) -> Result<(), AppError> {
    shell.meetings.leave().await;
    Ok(())
}

/// The meeting room as it stands (`status` is `idle` when not in a meeting).
#[tauri::command]
#[specta::specta]
pub async fn room(shell: State<'_, Shell>) -> Result<RoomView, AppError> {
    Ok(shell.meetings.room())
}

/// The meeting's chat so far, oldest first.
#[tauri::command]
#[specta::specta]
pub async fn room_chat(shell: State<'_, Shell>) -> Result<Vec<ChatView>, AppError> {
    Ok(shell.meetings.chat())
}

#[tauri::command]
#[specta::specta]
pub async fn set_mic(
    app: AppHandle,
    shell: State<'_, Shell>,
    on: bool,
) -> Result<RoomView, AppError> {
    shell.meetings.set_mic(&app, on).await
}

#[tauri::command]
#[specta::specta]
pub async fn set_camera(
    app: AppHandle,
    shell: State<'_, Shell>,
    on: bool,
) -> Result<RoomView, AppError> {
    shell.meetings.set_camera(&app, on).await
}

#[tauri::command]
#[specta::specta]
pub async fn raise_hand(
    app: AppHandle,
    shell: State<'_, Shell>,
    raised: bool,
) -> Result<(), AppError> {
    shell.meetings.set_hand(&app, raised).await
}

#[tauri::command]
#[specta::specta]
pub async fn react(app: AppHandle, shell: State<'_, Shell>, emoji: String) -> Result<(), AppError> {
    if emoji.is_empty() || emoji.len() > parley_shared::signal::MAX_REACTION_BYTES {
        return Err(AppError::new("invalid", "A reaction is one emoji."));
    }
    shell.meetings.react(&app, emoji).await
}

#[tauri::command]
#[specta::specta]
pub async fn send_chat(
    app: AppHandle,
    shell: State<'_, Shell>,
    text: String,
) -> Result<(), AppError> {
    shell.meetings.send_chat(&app, text).await
}

/// Host and co-host controls; admit, deny, mute, remove and promote name a `peer`.
#[tauri::command]
#[specta::specta]
pub async fn host_action(
    shell: State<'_, Shell>,
    action: HostActionArg,
    peer: Option<String>,
) -> Result<(), AppError> {
    shell.meetings.host(action, peer).await
}

/// Monitors and windows that can be shared, with small pictures where the OS allows.
#[tauri::command]
#[specta::specta]
pub async fn share_targets() -> Result<Vec<ShareTarget>, AppError> {
    tokio::task::spawn_blocking(|| {
        use base64::Engine as _;
        let list = capture::screens().map_err(|e| AppError::new("media_device", e.to_string()))?;
        Ok(list
            .into_iter()
            .map(|s| {
                let thumbnail = capture::thumbnail(&s.target, 320).ok().map(|png| {
                    format!(
                        "data:image/png;base64,{}",
                        base64::engine::general_purpose::STANDARD.encode(png)
                    )
                });
                let id = s.target.to_string();
                ShareTarget {
                    kind: match s.target {
                        capture::ScreenTarget::Window(_) => ShareKind::Window,
                        capture::ScreenTarget::Monitor(_) => ShareKind::Monitor,
                    },
                    id,
                    name: s.name,
                    width: s.width,
                    height: s.height,
                    thumbnail,
                }
            })
            .collect())
    })
    .await
    .map_err(|e| AppError::new("media_device", e.to_string()))?
}

#[tauri::command]
#[specta::specta]
pub async fn start_share(
    app: AppHandle,
    shell: State<'_, Shell>,
    target: String,
    name: String,
) -> Result<RoomView, AppError> {
    shell.meetings.start_share(&app, &target, name).await
}

#[tauri::command]
#[specta::specta]
pub async fn stop_share(app: AppHandle, shell: State<'_, Shell>) -> Result<RoomView, AppError> {
    shell.meetings.stop_share(&app).await
}

fn devices_view(shell: &Shell) -> DevicesView {
    let stored = shell.settings.get();
    let mut cameras: Vec<DeviceView> = capture::cameras()
        .unwrap_or_default()
        .into_iter()
        .map(|c| DeviceView {
            id: c.id,
            name: c.name,
        })
        .collect();
    let named = |n: String| DeviceView {
        id: n.clone(),
        name: n,
    };
    let mut mics: Vec<DeviceView> = devices::audio_inputs().into_iter().map(named).collect();
    let speakers = devices::audio_outputs().into_iter().map(named).collect();
    if meeting::fake_media() {
        cameras.insert(
            0,
            DeviceView {
                id: meeting::SYNTHETIC_CAMERA.into(),
                name: "Test pattern".into(),
            },
        );
        mics.insert(
            0,
            DeviceView {
                id: meeting::TONE_MIC.into(),
                name: "Test tone (440 Hz)".into(),
            },
        );
    }
    DevicesView {
        cameras,
        mics,
        speakers,
        camera: stored.camera,
        mic: stored.mic,
        speaker: stored.speaker,
        noise: if VoiceProcessor::echo_cancellation() {
            stored.noise.unwrap_or_else(|| "webrtc".into())
        } else {
            "rnnoise".into()
        },
        echo_cancellation: VoiceProcessor::echo_cancellation(),
    }
}

/// Cameras, microphones and speakers, and which are chosen.
#[tauri::command]
#[specta::specta]
pub async fn devices(app: AppHandle) -> Result<DevicesView, AppError> {
    tokio::task::spawn_blocking(move || devices_view(&app.state::<Shell>()))
        .await
        .map_err(|e| AppError::new("media_device", e.to_string()))
}

/// Chooses a device (`camera`, `mic` or `speaker`; None: the default) or the noise
/// suppressor (`noise`: `webrtc` or `rnnoise`); applied at once in a call, remembered.
#[tauri::command]
#[specta::specta]
pub async fn select_device(
    app: AppHandle,
    shell: State<'_, Shell>,
    kind: DeviceKind,
    id: Option<String>,
) -> Result<DevicesView, AppError> {
    let id = id.filter(|i| !i.is_empty());
    if kind == DeviceKind::Noise && !matches!(id.as_deref(), Some("webrtc" | "rnnoise")) {
        return Err(AppError::new(
            "invalid",
            "The noise suppressor is webrtc or rnnoise.",
        ));
    }
    shell.meetings.apply_device(kind, id.as_deref()).await?;
    shell.settings.update(|s| match kind {
        DeviceKind::Camera => s.camera = id,
        DeviceKind::Mic => s.mic = id,
        DeviceKind::Speaker => s.speaker = id,
        DeviceKind::Noise => s.noise = id,
    });
    devices(app).await
}

/// The chat of the meeting we are in is read up to message `seq`: it does not count as
/// unread again, even after a restart.
#[tauri::command]
#[specta::specta]
pub async fn mark_chat_read(
    app: AppHandle,
    shell: State<'_, Shell>,
    seq: f64,
) -> Result<(), AppError> {
    shell.meetings.mark_chat_read(&app, seq);
    Ok(())
}

/// Leaves the meeting (if in one) and quits Parley.
#[tauri::command]
#[specta::specta]
pub async fn quit(app: AppHandle) -> Result<(), AppError> {
    crate::tray::quit(&app);
    Ok(())
}

/// Where video frames go: binary packets (see `meeting::video::packet`) on this channel, with pixels
/// in the format asked for, or RGBA on a machine without a GPU; returns the format sent.
#[tauri::command]
#[specta::specta]
pub async fn watch_video(
    shell: State<'_, Shell>,
    channel: Channel<VideoPacket>,
    format: VideoFormat,
) -> Result<VideoFormat, AppError> {
    let format = VideoFormat::for_this_machine(format);
    shell.meetings.frames.set_channel(channel, format);
    Ok(format)
}

/// The UI is done (drew or skipped) with one frame of each track named (`peer/kind`, once per
/// frame); lets more of those tracks through.
#[tauri::command]
#[specta::specta]
pub async fn frames_drawn(shell: State<'_, Shell>, tracks: Vec<String>) -> Result<(), AppError> {
    shell.meetings.frames.done(&tracks);
    Ok(())
}

/// Starts or stops the device preview (the pre-join screen and the settings dialog outside a
/// call): the camera as the self view and the microphone's level; says, plainly, which
/// device would not open. `camera`: false leaves the camera closed (its light off).
#[tauri::command]
#[specta::specta]
pub async fn device_preview(
    app: AppHandle,
    shell: State<'_, Shell>,
    on: bool,
    camera: bool,
) -> Result<PreviewView, AppError> {
    Ok(shell.meetings.preview(&app, on, camera).await)
}
