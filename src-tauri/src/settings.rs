//! The app's own settings (server address, chosen devices, recent meetings), in a small JSON
//! file in the user's config directory. Secrets never go here: the sign-in is in the keychain.

use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// How many recent meetings the tray lists.
const RECENT: usize = 5;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Stored {
    pub server: Option<String>,
    /// Camera id (None: the first one).
    #[serde(default)]
    pub camera: Option<String>,
    /// Microphone and speaker names (None: the system default).
    #[serde(default)]
    pub mic: Option<String>,
    #[serde(default)]
    pub speaker: Option<String>,
    /// Noise suppression: `webrtc` (default) or `rnnoise`.
    #[serde(default)]
    pub noise: Option<String>,
    /// Meetings joined lately, newest first: (code, title).
    #[serde(default)]
    pub recent: Vec<(String, String)>,
}

pub struct Settings {
    path: Option<PathBuf>,
    stored: Mutex<Stored>,
}

impl Settings {
    /// `PARLEY_DESKTOP_CONFIG` overrides the file (tests); `PARLEY_SERVER` the server.
    pub fn load() -> Self {
        let path = std::env::var_os("PARLEY_DESKTOP_CONFIG")
            .map(PathBuf::from)
            .or_else(|| {
                parley_shared::paths::AppDirs::current().map(|d| d.config.join("desktop.json"))
            });
        let stored = path
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Self {
            path,
            stored: Mutex::new(stored),
        }
    }

    pub fn server(&self) -> String {
        std::env::var("PARLEY_SERVER").ok().unwrap_or_else(|| {
            self.stored
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .server
                .clone()
                .unwrap_or_else(|| DEFAULT_SERVER.into())
        })
    }

    pub fn set_server(&self, url: &str) {
        self.update(|s| s.server = Some(url.to_string()));
    }

    /// A copy of what is stored.
    pub fn get(&self) -> Stored {
        self.stored
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Notes a meeting as joined (the tray lists the latest few).
    pub fn add_recent(&self, code: &str, title: &str) {
        self.update(|s| {
            s.recent.retain(|(c, _)| c != code);
            s.recent.insert(0, (code.to_string(), title.to_string()));
            s.recent.truncate(RECENT);
        });
    }

    /// Changes the settings and saves them.
    pub fn update(&self, change: impl FnOnce(&mut Stored)) {
        let mut s = self.stored.lock().unwrap_or_else(|p| p.into_inner());
        change(&mut s);
        if let Some(p) = &self.path {
            if let Some(dir) = p.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            if let Ok(json) = serde_json::to_vec_pretty(&*s) {
                if let Err(e) = std::fs::write(p, json) {
                    tracing::warn!(error = %e, "settings not saved");
                }
            }
        }
    }
}
