//! The commands the front end calls (typed through `ui/src/bindings.ts`).

use parley_shared::api::CreateMeetingRequest;
use parley_shared::MeetingCode;
use tauri::State;

use crate::types::{AppError, AppInfo, ChatView, MeetingView, SignUpResult, UserView};
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
) -> Result<MeetingView, AppError> {
    let req = CreateMeetingRequest {
        title,
        passcode: passcode.filter(|p| !p.is_empty()),
        waiting_room,
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
