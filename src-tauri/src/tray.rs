//! The tray icon: show/hide the window, quick join by code, an instant meeting, recent
//! meetings, and while in a call mute/unmute and leave; quit (which leaves the meeting
//! cleanly first). Choices that need the UI (the code prompt, starting a meeting) show the
//! window and tell the front end through the typed `TrayAction` event.

use std::sync::atomic::{AtomicBool, Ordering};

use tauri::menu::{Menu, MenuItem, PredefinedMenuItem, Submenu};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager as _, Wry};
use tauri_specta::Event as _;

use crate::types::{CloseAsked, TrayAction};
use crate::Shell;

static QUITTING: AtomicBool = AtomicBool::new(false);
const TRAY_ID: &str = "parley";

/// True once the user chose Quit (the window may then really close).
pub fn quitting() -> bool {
    QUITTING.load(Ordering::SeqCst)
}

/// Leaves the meeting cleanly (the others see us go at once), then quits.
pub fn quit(app: &AppHandle) {
    QUITTING.store(true, Ordering::SeqCst);
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let shell = app.state::<Shell>();
        shell.meetings.leave().await;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        app.exit(0);
    });
}

/// Whether the desktop shows tray icons at all. Windows and macOS always do; on Linux a
/// StatusNotifier host (KDE, GNOME with the AppIndicator extension, most panels) or an XEmbed
/// system tray (older panels, trayer) must be running, else the icon is nowhere to be seen
/// and a window closed "to the tray" would leave Parley running with no way back.
/// `PARLEY_ASSUME_TRAY=0|1` overrides (a desktop this misjudges).
pub fn present() -> bool {
    match std::env::var("PARLEY_ASSUME_TRAY").as_deref() {
        Ok("1") => return true,
        Ok("0") => return false,
        _ => {}
    }
    #[cfg(target_os = "linux")]
    {
        status_notifier_host() || xembed_tray()
    }
    #[cfg(not(target_os = "linux"))]
    true
}

/// A StatusNotifierWatcher on the session bus (where appindicator icons go).
#[cfg(target_os = "linux")]
fn status_notifier_host() -> bool {
    let Ok(conn) = dbus::blocking::Connection::new_session() else {
        return false;
    };
    let bus = conn.with_proxy(
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        std::time::Duration::from_millis(500),
    );
    [
        "org.kde.StatusNotifierWatcher",
        "org.freedesktop.StatusNotifierWatcher",
    ]
    .iter()
    .any(|name| {
        let owned: Result<(bool,), _> =
            bus.method_call("org.freedesktop.DBus", "NameHasOwner", (*name,));
        owned.is_ok_and(|(b,)| b)
    })
}

/// An XEmbed system tray: the owner of the `_NET_SYSTEM_TRAY_S<screen>` selection.
#[cfg(target_os = "linux")]
fn xembed_tray() -> bool {
    use xcb::Xid as _;
    let Ok((conn, screen)) = xcb::Connection::connect(None) else {
        return false;
    };
    let name = format!("_NET_SYSTEM_TRAY_S{screen}");
    let atom = conn.send_request(&xcb::x::InternAtom {
        only_if_exists: true,
        name: name.as_bytes(),
    });
    let Ok(atom) = conn.wait_for_reply(atom).map(|r| r.atom()) else {
        return false;
    };
    if atom == xcb::x::ATOM_NONE {
        return false;
    }
    let owner = conn.send_request(&xcb::x::GetSelectionOwner { selection: atom });
    conn.wait_for_reply(owner)
        .is_ok_and(|r| !r.owner().is_none())
}

/// The window was closed: with a tray, Parley goes on there (said once, the first time);
/// without one, quitting is the only way out that leaves something to come back to, so in a
/// meeting the window asks first ([`CloseAsked`]) and otherwise Parley quits.
pub fn on_close(app: &AppHandle, window: &tauri::Window) {
    let tray = present();
    tracing::info!(
        tray,
        in_call = app.state::<Shell>().meetings.in_call(),
        "window closed"
    );
    if tray {
        let _ = window.hide();
        let shell = app.state::<Shell>();
        if !shell.settings.get().told_tray {
            shell.settings.update(|s| s.told_tray = true);
            crate::notify(
                app,
                "Parley is still running",
                "It stays in the system tray so meetings are a click away. Quit from the tray icon's menu.",
            );
        }
    } else if app.state::<Shell>().meetings.in_call() {
        crate::show_main(app);
        let _ = CloseAsked.emit(app);
    } else {
        quit(app);
    }
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
                "quit" => quit(app),
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
