//! Where Parley keeps its files on each system: one place for the server's data (the SQLite
//! database, generated secrets), the CLI's fallback credentials and the desktop app's
//! settings, so the three agree.
//!
//! The user's base folders come from the system (the `directories` crate: XDG on Linux, the
//! Known Folders on Windows, `~/Library` on macOS); which of them Parley uses, and under what
//! name, is decided here, by a function of the system and those folders that the tests run
//! for all three systems on any one of them.
//!
//! | | configuration | data |
//! |---|---|---|
//! | Linux (and other Unix) | `$XDG_CONFIG_HOME/parley` (`~/.config/parley`) | `$XDG_DATA_HOME/parley` (`~/.local/share/parley`) |
//! | macOS | `~/Library/Application Support/org.parley.desktop` | the same |
//! | Windows | `%APPDATA%\Parley` (roams with the user) | `%LOCALAPPDATA%\Parley` (stays on the machine: the database) |
//!
//! macOS's folder is named by the app's bundle identifier (`src-tauri/tauri.conf.json`), as
//! the system expects and as Tauri names the app's own folder there.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The systems Parley runs on, as far as their folders go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Os {
    /// Linux and the other Unix systems: the XDG base directories.
    Linux,
    MacOs,
    Windows,
}

impl Os {
    /// The system this build is for.
    pub const fn current() -> Self {
        if cfg!(target_os = "macos") {
            Self::MacOs
        } else if cfg!(windows) {
            Self::Windows
        } else {
            Self::Linux
        }
    }

    fn separator(self) -> char {
        match self {
            Self::Windows => '\\',
            Self::Linux | Self::MacOs => '/',
        }
    }

    /// The folder name Parley's files go under.
    fn app_name(self) -> &'static str {
        match self {
            Self::Linux => "parley",
            Self::MacOs => "org.parley.desktop",
            Self::Windows => "Parley",
        }
    }
}

/// The user's base folders, as the system names them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseFolders {
    /// Linux: `$XDG_CONFIG_HOME`; macOS: `~/Library/Application Support`; Windows: the roaming
    /// AppData folder.
    pub config: PathBuf,
    /// Linux: `$XDG_DATA_HOME`; macOS: `~/Library/Application Support`; Windows: the local
    /// AppData folder.
    pub local_data: PathBuf,
}

/// Parley's own folders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppDirs {
    /// Settings and the CLI's fallback credentials file.
    pub config: PathBuf,
    /// The server's database and generated secrets.
    pub data: PathBuf,
}

impl AppDirs {
    /// Parley's folders on `os` for a user whose base folders are `base`.
    pub fn under(os: Os, base: &BaseFolders) -> Self {
        Self {
            config: join(os, &base.config, os.app_name()),
            data: join(os, &base.local_data, os.app_name()),
        }
    }

    /// Parley's folders for the user running this program; None when the system names no home
    /// folder (a service account without one).
    pub fn current() -> Option<Self> {
        let base = directories::BaseDirs::new()?;
        Some(Self::under(
            Os::current(),
            &BaseFolders {
                config: base.config_dir().to_path_buf(),
                local_data: base.data_local_dir().to_path_buf(),
            },
        ))
    }
}

/// `base` + the OS's separator + `name` (Path::join, but with `os`'s separator wherever this
/// runs, so the Windows layout is the same when a test computes it on Linux).
fn join(os: Os, base: &Path, name: &str) -> PathBuf {
    let mut path = OsString::from(base.as_os_str());
    let sep = os.separator();
    if !base.to_string_lossy().ends_with(sep) {
        path.push(sep.to_string());
    }
    path.push(name);
    PathBuf::from(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs(os: Os, config: &str, local_data: &str) -> (String, String) {
        let d = AppDirs::under(
            os,
            &BaseFolders {
                config: config.into(),
                local_data: local_data.into(),
            },
        );
        (
            d.config.to_string_lossy().into_owned(),
            d.data.to_string_lossy().into_owned(),
        )
    }

    #[test]
    fn linux_keeps_the_xdg_folders_parley_always_used() {
        assert_eq!(
            dirs(Os::Linux, "/home/ann/.config", "/home/ann/.local/share"),
            (
                "/home/ann/.config/parley".into(),
                "/home/ann/.local/share/parley".into()
            )
        );
        // XDG_CONFIG_HOME given with a trailing slash: no doubled separator.
        assert_eq!(
            dirs(Os::Linux, "/srv/cfg/", "/srv/data/").0,
            "/srv/cfg/parley"
        );
    }

    #[test]
    fn macos_keeps_everything_under_the_bundle_identifier() {
        let support = "/Users/ann/Library/Application Support";
        let (config, data) = dirs(Os::MacOs, support, support);
        assert_eq!(
            config,
            "/Users/ann/Library/Application Support/org.parley.desktop"
        );
        assert_eq!(data, config);
    }

    #[test]
    fn windows_roams_the_settings_and_keeps_the_database_local() {
        let (config, data) = dirs(
            Os::Windows,
            r"C:\Users\Ann Lee\AppData\Roaming",
            r"C:\Users\Ann Lee\AppData\Local",
        );
        assert_eq!(config, r"C:\Users\Ann Lee\AppData\Roaming\Parley");
        assert_eq!(data, r"C:\Users\Ann Lee\AppData\Local\Parley");
        // A profile on a share, and a folder given with its trailing backslash.
        assert_eq!(
            dirs(Os::Windows, r"\\files\profiles\ann\", r"D:\").1,
            r"D:\Parley"
        );
    }

    #[test]
    fn the_bundle_identifier_is_the_apps() {
        let conf = include_str!("../../src-tauri/tauri.conf.json");
        let id = format!("\"identifier\": \"{}\"", Os::MacOs.app_name());
        assert!(
            conf.contains(&id),
            "tauri.conf.json's identifier is not {id}"
        );
    }

    #[test]
    fn this_system_has_folders() {
        let here = AppDirs::current().expect("a home folder");
        assert!(here.config.is_absolute() && here.data.is_absolute());
        assert!(here.config.ends_with(Os::current().app_name()));
    }
}
