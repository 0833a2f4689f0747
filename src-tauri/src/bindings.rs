//! The typed bridge to the front end: `builder()` lists every command and event, and
//! `ui/src/bindings.ts` is generated from it (`cargo test -p parley-desktop` fails when the
//! file is stale; `PARLEY_WRITE_BINDINGS=1` rewrites it).

use crate::commands;
use crate::types::{
    ChatEvent, CloseAsked, LevelsEvent, NoticeEvent, ReactionEvent, RoomEvent, TrayAction,
};

pub fn builder() -> tauri_specta::Builder<tauri::Wry> {
    tauri_specta::Builder::<tauri::Wry>::new()
        .events(tauri_specta::collect_events![
            RoomEvent,
            ChatEvent,
            LevelsEvent,
            ReactionEvent,
            NoticeEvent,
            CloseAsked,
            TrayAction,
        ])
        .commands(tauri_specta::collect_commands![
            commands::app_info,
            commands::set_server,
            commands::sign_up,
            commands::sign_in,
            commands::verify_email,
            commands::resend_code,
            commands::request_password_reset,
            commands::reset_password,
            commands::sign_out,
            commands::meetings,
            commands::create_meeting,
            commands::meeting_chat,
            commands::meeting_info,
            commands::join_meeting,
            commands::leave_meeting,
            commands::room,
            commands::room_chat,
            commands::set_mic,
            commands::set_camera,
            commands::raise_hand,
            commands::react,
            commands::send_chat,
            commands::host_action,
            commands::share_targets,
            commands::start_share,
            commands::stop_share,
            commands::devices,
            commands::select_device,
            commands::mark_chat_read,
            commands::quit,
            commands::watch_video,
            commands::frames_drawn,
            commands::device_preview,
        ])
}

/// The TypeScript bindings as text.
pub fn typescript() -> Result<String, String> {
    let dir = std::env::temp_dir().join(format!("parley-bindings-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let file = dir.join("bindings.ts");
    builder()
        .export(
            specta_typescript::Typescript::default()
                .header("// Generated from src-tauri (bindings.rs); do not edit.\n// @ts-nocheck: the generator emits helpers this app does not use.\n"),
            &file,
        )
        .map_err(|e| e.to_string())?;
    let text = std::fs::read_to_string(&file).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(text)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_front_end_bindings_are_current() {
        let want = super::typescript().expect("bindings export");
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/src/bindings.ts");
        if std::env::var_os("PARLEY_WRITE_BINDINGS").is_some() {
            std::fs::write(&path, &want).expect("write bindings");
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "ui/src/bindings.ts is stale: run PARLEY_WRITE_BINDINGS=1 cargo test -p parley-desktop bindings"
        );
    }
}
