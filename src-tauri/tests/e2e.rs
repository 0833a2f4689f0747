//! End-to-end: the real desktop app (this package's `parley-desktop` binary) in a private
//! Xvfb, driven through tauri-driver and WebKitWebDriver, against a real server, with its
//! sign-in in a throwaway gnome-keyring. `scripts/test.sh` runs it inside
//! `scripts/keychain.sh` with PARLEY_TEST_E2E=1; screenshots go to `docs/screenshots/`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use parley_server::clock::SystemClock;
use parley_server::config::Config;
use parley_server::Server;

/// A child process killed (SIGTERM first, so tauri-driver stops WebKitWebDriver) on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..50 {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn xvfb() -> (Proc, String) {
    let mut child = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-nolisten",
            "tcp",
            "-noreset",
            "-screen",
            "0",
            "1280x800x24",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("Xvfb (scripts/deps.sh installs it)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (Proc(child), format!(":{}", line.trim()))
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The app, driven: tauri-driver on `port` (it starts WebKitWebDriver on `port + 1`).
struct App {
    _driver: Proc,
    client: Client,
}

impl App {
    async fn start(display: &str, server: &str, config: &Path, port: u16) -> Self {
        let driver = Proc(
            Command::new(tauri_driver())
                .args([
                    "--port",
                    &port.to_string(),
                    "--native-port",
                    &(port + 1).to_string(),
                ])
                .env("DISPLAY", display)
                .env("PARLEY_SERVER", server)
                .env("PARLEY_DESKTOP_CONFIG", config)
                .env("PARLEY_KEYCHAIN_SERVICE", "parley-desktop-e2e")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("tauri-driver (scripts/deps.sh installs it)"),
        );
        let mut caps = serde_json::Map::new();
        caps.insert(
            "tauri:options".into(),
            serde_json::json!({ "application": env!("CARGO_BIN_EXE_parley-desktop") }),
        );
        caps.insert("browserName".into(), "wry".into());
        let url = format!("http://127.0.0.1:{port}");
        let mut last = None;
        for _ in 0..100 {
            match ClientBuilder::native()
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    return Self {
                        _driver: driver,
                        client,
                    }
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("tauri-driver did not answer: {last:?}");
    }

    /// Waits (10 s at most) for an element.
    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
    }

    /// Waits for visible text anywhere on the page.
    async fn text(&self, text: &str) {
        let xpath = format!("//*[contains(normalize-space(.), {text:?})]");
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("{text:?} never showed: {e}"));
    }

    async fn fill(&self, css: &str, value: &str) {
        let el = self.find(css).await;
        el.clear().await.unwrap();
        el.send_keys(value).await.unwrap();
    }

    async fn click_button(&self, label: &str) {
        let xpath = format!("//button[normalize-space(.)={label:?}]");
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("no button {label:?}: {e}"))
            .click()
            .await
            .unwrap();
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
    }

    async fn quit(self) {
        let _ = self.client.close().await;
    }
}

fn tauri_driver() -> PathBuf {
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cargo"));
    let p = home.join("bin/tauri-driver");
    if p.exists() {
        p
    } else {
        PathBuf::from("tauri-driver")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_then_come_back_signed_in_from_the_keychain() {
    if std::env::var("PARLEY_TEST_E2E").as_deref() != Ok("1") {
        eprintln!("E2E tests run from scripts/test.sh (Xvfb, keychain, tauri-driver)");
        return;
    }
    let (_x, display) = xvfb();
    let data = tempfile::tempdir().unwrap();
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data.path().join("server"),
        ..Config::default()
    };
    let server = Server::start(config, Arc::new(SystemClock)).await.unwrap();
    let base = format!("http://{}", server.addr);
    let settings = data.path().join("desktop.json");

    let app = App::start(&display, &base, &settings, 4444).await;
    app.text("Meetings that keep going").await;
    app.screenshot("sign-in").await;
    app.click_button("Create account").await;
    app.fill("#username", "erin").await;
    app.fill("#email", "erin@example.org").await;
    app.fill("#new-password", "erin-Str0ng-Passphrase").await;
    app.find("form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    app.text("Your meetings").await;
    app.text("No meetings yet.").await;

    // A meeting, created from the home screen, shows up in the list with its code.
    app.fill("#title", "Design review").await;
    app.click_button("Create meeting").await;
    app.text("Join now").await;
    let code = app.find(".created .code").await.text().await.unwrap();
    assert_eq!(code.len(), 14, "a meeting code: {code}");
    app.text("Design review").await;
    app.screenshot("home").await;
    app.quit().await;

    // Restart: signed in from the keychain, straight to the home screen.
    let app = App::start(&display, &base, &settings, 4444).await;
    app.text("Your meetings").await;
    app.text("Design review").await;
    app.text("erin").await;
    // Sign out: back to the sign-in screen, and a restart stays signed out.
    app.click_button("Sign out").await;
    app.text("Meetings that keep going").await;
    app.quit().await;
    let app = App::start(&display, &base, &settings, 4444).await;
    app.find("#login").await;
    app.quit().await;
    server.stop().await.unwrap();
}
