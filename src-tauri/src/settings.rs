//! The app's own settings (server address, chosen devices, recent meetings), in a small JSON
//! file in the user's config directory. Secrets never go here: the sign-in is in the keychain.

use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// How many recent meetings the tray lists.
const RECENT: usize = 5;
/// How many meetings' read marks are kept (the oldest go first).
const READ_MARKS: usize = 200;

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
    /// Per meeting, the last chat message read (its sequence number), latest first: what
    /// counts as unread survives a restart.
    #[serde(default)]
    pub chat_read: Vec<(String, i64)>,
    /// The user was told once that closing the window leaves Parley in the tray.
    #[serde(default)]
    pub told_tray: bool,
}

impl Stored {
    /// The last chat message read in `code` (0: none).
    pub fn chat_read(&self, code: &str) -> i64 {
        self.chat_read
            .iter()
            .find(|(c, _)| c == code)
            .map_or(0, |(_, seq)| *seq)
    }

    /// Marks `code`'s chat read up to `seq` (never backwards).
    pub fn mark_chat_read(&mut self, code: &str, seq: i64) {
        let seq = seq.max(self.chat_read(code));
        self.chat_read.retain(|(c, _)| c != code);
        self.chat_read.insert(0, (code.to_string(), seq));
        self.chat_read.truncate(READ_MARKS);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_marks_survive_a_reload_and_never_go_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("desktop.json");
        let settings = Settings {
            path: Some(path.clone()),
            stored: Mutex::new(Stored::default()),
        };
        settings.update(|s| s.mark_chat_read("abcd-efgh-jkmn", 7));
        settings.update(|s| s.mark_chat_read("abcd-efgh-jkmn", 3));
        settings.update(|s| s.mark_chat_read("bcdf-ghjk-mnpq", 2));
        let again: Stored = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(again.chat_read("abcd-efgh-jkmn"), 7);
        assert_eq!(again.chat_read("bcdf-ghjk-mnpq"), 2);
        assert_eq!(again.chat_read("zzzz-zzzz-zzzz"), 0);
        let mut many = again;
        for i in 0..(READ_MARKS as i64 + 10) {
            many.mark_chat_read(&format!("m{i}"), i);
        }
        assert_eq!(many.chat_read.len(), READ_MARKS);
    }
}
