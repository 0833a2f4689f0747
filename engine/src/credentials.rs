//! Where a signed-in client keeps its tokens: the OS keychain (macOS Keychain, Windows
//! Credential Manager, the Secret Service on Linux) under service `parley` and the server's
//! URL as the account; when no keychain is reachable, a JSON file readable only by the user
//! (0600 in a 0700 directory). Callers are told which one was used, so they can say so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The keychain service name.
pub const SERVICE: &str = "parley";
/// Set to `off` to never use the keychain (the file is used instead).
pub const KEYCHAIN_ENV: &str = "PARLEY_KEYCHAIN";

/// A signed-in account on one server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub server: String,
    pub user_id: String,
    pub username: String,
    pub email: String,
    pub access_token: String,
    pub refresh_token: String,
}

/// Where credentials ended up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    Keychain,
    /// The file, and why the keychain was not used.
    File {
        path: PathBuf,
        why: String,
    },
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Keychain => f.write_str("the OS keychain"),
            Location::File { path, .. } => write!(f, "{} (mode 0600)", path.display()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a credentials file: {source}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// The credential store of one user of this machine.
#[derive(Clone, Debug)]
pub struct Store {
    file: PathBuf,
    keychain: bool,
}

impl Store {
    /// The default store: the keychain unless `PARLEY_KEYCHAIN=off`, and the fallback file
    /// `credentials.json` in the user's config directory (`~/.config/parley` on Linux, `%APPDATA%\Parley` on Windows, `~/Library/Application Support/org.parley.desktop` on macOS: parley_shared::paths).
    pub fn open_default() -> Self {
        let dir = parley_shared::paths::AppDirs::current()
            .map(|d| d.config)
            .unwrap_or_else(|| PathBuf::from(".parley"));
        let keychain = !std::env::var(KEYCHAIN_ENV).is_ok_and(|v| v.eq_ignore_ascii_case("off"));
        Self::new(dir.join("credentials.json"), keychain)
    }

    pub fn new(file: PathBuf, keychain: bool) -> Self {
        Self { file, keychain }
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    fn entry(server: &str) -> keyring::Result<keyring::Entry> {
        keyring::Entry::new(SERVICE, server)
    }

    /// The credentials for `server`, from the keychain or else the file.
    pub fn load(&self, server: &str) -> Result<Option<Credentials>, StoreError> {
        if self.keychain {
            if let Ok(secret) = Self::entry(server).and_then(|e| e.get_password()) {
                if let Ok(c) = serde_json::from_str::<Credentials>(&secret) {
                    return Ok(Some(c));
                }
            }
        }
        Ok(self.read_file()?.remove(server))
    }

    /// Saves `creds`: in the keychain when it answers (and then removed from the file),
    /// otherwise in the file.
    pub fn save(&self, creds: &Credentials) -> Result<Location, StoreError> {
        let why = if self.keychain {
            let secret = serde_json::to_string(creds).unwrap_or_default();
            match Self::entry(&creds.server).and_then(|e| e.set_password(&secret)) {
                Ok(()) => {
                    self.remove_from_file(&creds.server)?;
                    return Ok(Location::Keychain);
                }
                Err(e) => format!("no OS keychain reachable ({e})"),
            }
        } else {
            format!("{KEYCHAIN_ENV}=off")
        };
        let mut all = self.read_file()?;
        all.insert(creds.server.clone(), creds.clone());
        self.write_file(&all)?;
        Ok(Location::File {
            path: self.file.clone(),
            why,
        })
    }

    /// Forgets `server`'s credentials everywhere.
    pub fn delete(&self, server: &str) -> Result<(), StoreError> {
        if self.keychain {
            if let Ok(e) = Self::entry(server) {
                let _ = e.delete_credential();
            }
        }
        self.remove_from_file(server)
    }

    fn remove_from_file(&self, server: &str) -> Result<(), StoreError> {
        let mut all = self.read_file()?;
        if all.remove(server).is_some() {
            self.write_file(&all)?;
        }
        Ok(())
    }

    fn read_file(&self) -> Result<BTreeMap<String, Credentials>, StoreError> {
        match std::fs::read(&self.file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| StoreError::Corrupt {
                path: self.file.clone(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(source) => Err(StoreError::Io {
                path: self.file.clone(),
                source,
            }),
        }
    }

    /// Writes the whole file atomically (temp file + rename), created 0600 in a 0700 dir.
    fn write_file(&self, all: &BTreeMap<String, Credentials>) -> Result<(), StoreError> {
        let io = |source| StoreError::Io {
            path: self.file.clone(),
            source,
        };
        let dir = self.file.parent().unwrap_or(Path::new("."));
        create_private_dir(dir).map_err(io)?;
        let tmp = self.file.with_extension("json.tmp");
        let body = serde_json::to_vec_pretty(all).unwrap_or_default();
        write_private(&tmp, &body).map_err(io)?;
        std::fs::rename(&tmp, &self.file).map_err(io)
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn write_private(path: &Path, body: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(body)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, body: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, body)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn creds(server: &str, user: &str) -> Credentials {
        Credentials {
            server: server.into(),
            user_id: format!("id-{user}"),
            username: user.into(),
            email: format!("{user}@example.org"),
            access_token: format!("access-{user}"),
            refresh_token: format!("refresh-{user}"),
        }
    }

    #[test]
    fn file_fallback_is_private_and_keyed_by_server() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("cfg/credentials.json"), false);
        assert_eq!(store.load("http://a").unwrap(), None);
        let loc = store.save(&creds("http://a", "ann")).unwrap();
        assert!(matches!(loc, Location::File { .. }));
        store.save(&creds("http://b", "bob")).unwrap();
        assert_eq!(store.load("http://a").unwrap().unwrap().username, "ann");
        assert_eq!(store.load("http://b").unwrap().unwrap().username, "bob");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(store.file()), 0o600);
            assert_eq!(mode(&dir.path().join("cfg")), 0o700);
        }
        store.delete("http://a").unwrap();
        assert_eq!(store.load("http://a").unwrap(), None);
        assert!(store.load("http://b").unwrap().is_some());
    }

    #[test]
    fn a_corrupt_file_is_an_error_not_a_silent_sign_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.json");
        std::fs::write(&path, b"{not json").unwrap();
        let store = Store::new(path, false);
        assert!(matches!(
            store.load("http://a"),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
