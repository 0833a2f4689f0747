//! The tray icon: show/hide the window, quick join by code, an instant meeting, recent
//! meetings, and while in a call mute/unmute and leave; quit (which leaves the meeting
//! cleanly first). Choices that need the UI (the code prompt, starting a meeting) show the
//! window and tell the front end through the typed `TrayAction` event.

use std::sync::atomic::{AtomicBool, Ordering};

use tauri::menu::{Menu, MenuItem, PredefinedMenuItem, Submenu};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager as _, Wry};
use tauri_specta::Event as _;

use crate::types::TrayAction;
use crate::Shell;

static QUITTING: AtomicBool = AtomicBool::new(false);
const TRAY_ID: &str = "parley";

/// True once the user chose Quit (the window may then really close).
pub fn quitting() -> bool {
    QUITTING.load(Ordering::SeqCst)
}

/// The menu for the app's current state.
fn menu(app: &AppHandle) -> tauri::Result<Menu<Wry>> {
    let shell = app.state::<Shell>();
    let room = shell.meetings.room();
    let in_call = shell.meetings.in_call();
    let item = |id: &str, text: &str| MenuItem::with_id(app, id, text, true, None::<&str>);
    let menu = Menu::new(app)?;
    menu.append(&item("show", "Show Parley")?)?;
    if in_call {
        let title = if room.title.is_empty() {
            room.code.clone()
        } else {
            room.title.clone()
        };
        menu.append(&MenuItem::with_id(
            app,
            "current",
            format!("In: {title}"),
            false,
            None::<&str>,
        )?)?;
        menu.append(&item(
            "mute",
            if room.mic {
                "Mute microphone"
            } else {
                "Unmute microphone"
            },
        )?)?;
        if room.screen {
            menu.append(&item("stop_share", "Stop sharing")?)?;
        }
        menu.append(&item("leave", "Leave meeting")?)?;
    } else {
        menu.append(&item("quick_join", "Join a meeting…")?)?;
        menu.append(&item("instant", "Start an instant meeting")?)?;
        let recent = shell.settings.get().recent;
        if !recent.is_empty() {
            let sub = Submenu::with_id(app, "recent", "Recent meetings", true)?;
            for (code, title) in recent {
                sub.append(&item(
                    &format!("join:{code}"),
                    &format!("{title} ({code})"),
                )?)?;
            }
            menu.append(&sub)?;
        }
    }
    menu.append(&item("hide", "Hide window")?)?;
    menu.append(&PredefinedMenuItem::separator(app)?)?;
    menu.append(&item("quit", "Quit Parley")?)?;
    Ok(menu)
}

/// Rebuilds the menu (the call started or ended, the microphone changed…).
pub fn refresh(app: &AppHandle) {
    let app2 = app.clone();
    let _ = app.run_on_main_thread(move || {
        if let (Some(tray), Ok(menu)) = (app2.tray_by_id(TRAY_ID), menu(&app2)) {
            let _ = tray.set_menu(Some(menu));
        }
    });
}

pub fn install(app: &AppHandle) -> tauri::Result<()> {
    let mut tray = TrayIconBuilder::with_id(TRAY_ID)
        .tooltip("Parley")
        .menu(&menu(app)?)
        .on_menu_event(|app, event| {
            let id = event.id.as_ref();
            match id {
                "show" => crate::show_main(app),
                "hide" => {
                    if let Some(w) = app.get_webview_window("main") {
                        let _ = w.hide();
                    }
                }
                "mute" => crate::toggle_mute(app),
                "leave" | "stop_share" => {
                    let (app, id) = (app.clone(), id.to_string());
                    tauri::async_runtime::spawn(async move {
                        let shell = app.state::<Shell>();
                        if id == "leave" {
                            shell.meetings.leave().await;
                        } else {
                            let _ = shell.meetings.stop_share(&app).await;
                        }
                    });
                }
                "quit" => {
                    QUITTING.store(true, Ordering::SeqCst);
                    let app = app.clone();
                    tauri::async_runtime::spawn(async move {
                        // Leave cleanly (the others see us go at once), then quit.
                        let shell = app.state::<Shell>();
                        shell.meetings.leave().await;
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                        app.exit(0);
                    });
                }
                other => {
                    let action = match other {
                        "quick_join" => TrayAction::QuickJoin,
                        "instant" => TrayAction::Instant,
                        recent => match recent.strip_prefix("join:") {
                            Some(code) => TrayAction::Join { code: code.into() },
                            None => return,
                        },
                    };
                    crate::show_main(app);
                    let _ = action.emit(app);
                }
            }
        });
    // The menu bar wants a template image (black and transparent, tinted by the system for
    // light, dark and highlighted); elsewhere the app's colour icon.
    #[cfg(target_os = "macos")]
    {
        tray = tray
            .icon(tauri::include_image!("../icons/tray-template.png"))
            .icon_as_template(true);
    }
    #[cfg(not(target_os = "macos"))]
    if let Some(icon) = app.default_window_icon() {
        tray = tray.icon(icon.clone());
    }
    tray.build(app)?;
    Ok(())
}
