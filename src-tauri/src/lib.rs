//! Parley's desktop shell (Tauri 2): the window and its front end (`ui/`), commands and
//! events typed through generated bindings, the meeting room's back end, the tray, the
//! keychain sign-in. It drives `parley-engine`; nothing here talks to the network itself.

mod account;
pub mod bindings;
mod commands;
pub mod meeting;
mod settings;
mod tray;
pub mod types;

use tauri::{AppHandle, Manager as _};
use tauri_plugin_global_shortcut::{GlobalShortcutExt as _, ShortcutState};
use tauri_plugin_notification::NotificationExt as _;
use tauri_specta::Event as _;

pub use account::{Account, Keychain};
pub use meeting::Meetings;
pub use settings::Settings;

/// The global mute shortcut (works while another app has the focus).
pub const MUTE_SHORTCUT: &str = "CommandOrControl+Shift+M";

/// Everything the commands share.
pub struct Shell {
    pub account: Account,
    pub settings: Settings,
    pub meetings: Meetings,
}

/// Starts the app (blocks until it quits).
pub fn run() {
    // Before any thread starts (setting the environment is not thread-safe).
    #[cfg(target_os = "linux")]
    if meeting::video::software_gl()
        && std::env::var_os("WEBKIT_DISABLE_COMPOSITING_MODE").is_none()
    {
        // Without a GPU, WebKitGTK's accelerated compositing runs on Mesa's software GL and
        // costs ~4× the frame rate of video tiles (docs/decisions.md, "Desktop meeting room": the
        // table of pixel formats and compositing).
        std::env::set_var("WEBKIT_DISABLE_COMPOSITING_MODE", "1");
    }
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let settings = Settings::load();
    let shell = Shell {
        account: Account::new(&settings.server(), Keychain::default()),
        settings,
        meetings: Meetings::default(),
    };
    let builder = bindings::builder();
    let result = tauri::Builder::default()
        // First: a second start hands its arguments (a parley:// link) to this one and exits.
        .plugin(tauri_plugin_single_instance::init(|app, argv, _cwd| {
            show_main(app);
            for arg in argv {
                open_link(app, &arg);
            }
        }))
        .plugin(tauri_plugin_deep_link::init())
        .plugin(tauri_plugin_notification::init())
        .plugin(
            tauri_plugin_global_shortcut::Builder::new()
                .with_handler(|app, _shortcut, event| {
                    if event.state() == ShortcutState::Pressed {
                        toggle_mute(app);
                    }
                })
                .build(),
        )
        .manage(shell)
        .invoke_handler(builder.invoke_handler())
        .setup(move |app| {
            builder.mount_events(app);
            tray::install(app.handle())?;
            if let Err(e) = app.global_shortcut().register(MUTE_SHORTCUT) {
                tracing::warn!(error = %e, "no global mute shortcut");
            }
            links_on_start(app.handle());
            Ok(())
        })
        .on_window_event(|window, event| {
            // Closing the window keeps Parley (and any call) running in the tray, where
            // there is one (tray::on_close).
            if let tauri::WindowEvent::CloseRequested { api, .. } = event {
                if window.label() == "main" && !tray::quitting() {
                    api.prevent_close();
                    tray::on_close(window.app_handle(), window);
                }
            }
        })
        .build(tauri::generate_context!());
    match result {
        Ok(app) => app.run(on_run_event),
        Err(e) => {
            eprintln!("parley: {e}");
            std::process::exit(1);
        }
    }
}

/// Deep links: registers `parley://` where that is done at run time (Linux, Windows) and
/// handles a link the app was started with or is sent later.
fn links_on_start(app: &AppHandle) {
    use tauri_plugin_deep_link::DeepLinkExt as _;
    #[cfg(any(target_os = "linux", windows))]
    if std::env::var_os("PARLEY_NO_LINK_REGISTRATION").is_none() {
        if let Err(e) = app.deep_link().register_all() {
            tracing::info!(error = %e, "parley:// links not registered");
        }
    }
    let handle = app.clone();
    app.deep_link().on_open_url(move |event| {
        for url in event.urls() {
            open_link(&handle, url.as_str());
        }
    });
    for arg in std::env::args().skip(1) {
        open_link(app, &arg);
    }
}

/// `parley://join/CODE` → the window shows the join screen for CODE.
fn open_link(app: &AppHandle, link: &str) {
    let Some(rest) = link.strip_prefix("parley://join/") else {
        return;
    };
    let code = rest.trim_end_matches('/');
    if parley_shared::MeetingCode::parse(code).is_ok() {
        show_main(app);
        let _ = types::TrayAction::Join {
            code: code.to_string(),
        }
        .emit(app);
    }
}

/// Mutes or unmutes the microphone of the call in progress.
pub fn toggle_mute(app: &AppHandle) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let shell = app.state::<Shell>();
        if shell.meetings.in_call() {
            let on = !shell.meetings.room().mic;
            let _ = shell.meetings.set_mic(&app, on).await;
        }
    });
}

/// A desktop notification (chat while the window is hidden).
pub fn notify(app: &AppHandle, title: &str, body: &str) {
    let body: String = body.chars().take(200).collect();
    if let Err(e) = app.notification().builder().title(title).body(body).show() {
        tracing::info!(error = %e, "notification not shown");
    }
}

/// App-wide events. On macOS, clicking the Dock icon while the window is closed to the tray
/// brings the window back (`Reopen`); elsewhere the tray does that.
fn on_run_event(app: &AppHandle, event: tauri::RunEvent) {
    #[cfg(target_os = "macos")]
    if let tauri::RunEvent::Reopen {
        has_visible_windows: false,
        ..
    } = event
    {
        show_main(app);
    }
    #[cfg(not(target_os = "macos"))]
    let _ = (app, event);
}

/// Shows and focuses the main window.
pub fn show_main(app: &AppHandle) {
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.show();
        let _ = w.unminimize();
        let _ = w.set_focus();
    }
}
