//! Parley's desktop shell (Tauri 2): the window and its front end (`ui/`), commands and
//! events typed through generated bindings, the tray, the keychain sign-in. It drives
//! `parley-engine`; nothing here talks to the network itself.

mod account;
pub mod bindings;
mod commands;
mod settings;
mod tray;
pub mod types;

use tauri::Manager as _;

pub use account::{Account, Keychain};
pub use settings::Settings;

/// Everything the commands share.
pub struct Shell {
    pub account: Account,
    pub settings: Settings,
}

/// Starts the app (blocks until it quits).
pub fn run() {
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
    };
    let builder = bindings::builder();
    let result = tauri::Builder::default()
        .manage(shell)
        .invoke_handler(builder.invoke_handler())
        .setup(move |app| {
            builder.mount_events(app);
            tray::install(app.handle())?;
            Ok(())
        })
        .on_window_event(|window, event| {
            // Closing the window keeps Parley (and any call) running in the tray.
            if let tauri::WindowEvent::CloseRequested { api, .. } = event {
                if window.label() == "main" && !tray::quitting() {
                    api.prevent_close();
                    let _ = window.hide();
                }
            }
        })
        .run(tauri::generate_context!());
    if let Err(e) = result {
        eprintln!("parley: {e}");
        std::process::exit(1);
    }
}

/// Shows and focuses the main window.
pub fn show_main(app: &tauri::AppHandle) {
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.show();
        let _ = w.unminimize();
        let _ = w.set_focus();
    }
}
