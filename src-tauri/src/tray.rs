//! The tray icon: show/hide the window, quick join by code, an instant meeting, quit. Menu
//! actions that need the UI (the code prompt, starting a meeting) show the window and tell
//! the front end through the `tray-action` event.

use std::sync::atomic::{AtomicBool, Ordering};

use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Emitter as _, Manager as _};

static QUITTING: AtomicBool = AtomicBool::new(false);

/// True once the user chose Quit (the window may then really close).
pub fn quitting() -> bool {
    QUITTING.load(Ordering::SeqCst)
}

pub fn install(app: &AppHandle) -> tauri::Result<()> {
    let show = MenuItem::with_id(app, "show", "Show Parley", true, None::<&str>)?;
    let join = MenuItem::with_id(app, "quick_join", "Join a meeting…", true, None::<&str>)?;
    let instant = MenuItem::with_id(
        app,
        "instant",
        "Start an instant meeting",
        true,
        None::<&str>,
    )?;
    let hide = MenuItem::with_id(app, "hide", "Hide window", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit Parley", true, None::<&str>)?;
    let sep = PredefinedMenuItem::separator(app)?;
    let menu = Menu::with_items(app, &[&show, &join, &instant, &hide, &sep, &quit])?;
    let mut tray = TrayIconBuilder::with_id("parley")
        .tooltip("Parley")
        .menu(&menu)
        .on_menu_event(|app, event| match event.id.as_ref() {
            "show" => crate::show_main(app),
            "hide" => {
                if let Some(w) = app.get_webview_window("main") {
                    let _ = w.hide();
                }
            }
            "quick_join" | "instant" => {
                crate::show_main(app);
                let _ = app.emit("tray-action", event.id.as_ref());
            }
            "quit" => {
                QUITTING.store(true, Ordering::SeqCst);
                app.exit(0);
            }
            _ => {}
        });
    if let Some(icon) = app.default_window_icon() {
        tray = tray.icon(icon.clone());
    }
    tray.build(app)?;
    Ok(())
}
