//! End-to-end: the real desktop app (this package's `parley-desktop` binary) in a private
//! Xvfb, driven through tauri-driver and WebKitWebDriver, against a real server, with its
//! sign-in in a throwaway gnome-keyring. `scripts/test.sh` runs it inside
//! `scripts/keychain.sh` with PARLEY_TEST_E2E=1; screenshots go to `docs/screenshots/`.
#![cfg(target_os = "linux")] // Xvfb, WebKitWebDriver, /proc
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use parley_test_support::cli::Joined;
use parley_test_support::server::TestServer;
use parley_test_support::xvfb::Xvfb;

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

/// What every E2E test stands on: its own X display, a real server in-process, and a settings
/// file for the app in a temp directory.
struct World {
    _x: Xvfb,
    display: String,
    _data: tempfile::TempDir,
    server: TestServer,
    base: String,
    settings: PathBuf,
}

impl World {
    async fn start() -> Self {
        let x = Xvfb::start(1280, 800);
        let display = x.display.clone();
        let data = tempfile::tempdir().unwrap();
        let server = TestServer::start().await;
        let base = server.base.clone();
        let settings = data.path().join("desktop.json");
        Self {
            _x: x,
            display,
            _data: data,
            server,
            base,
            settings,
        }
    }
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
    display: String,
}

impl App {
    async fn start(display: &str, server: &str, config: &Path, port: u16) -> Self {
        Self::start_env(display, server, config, port, &[]).await
    }

    async fn start_env(
        display: &str,
        server: &str,
        config: &Path,
        port: u16,
        env: &[(&str, &str)],
    ) -> Self {
        let driver = Proc(
            Command::new(tauri_driver())
                .envs(env.iter().copied())
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
                // Not in the tester's own desktop settings: no parley:// handler registration.
                .env("PARLEY_NO_LINK_REGISTRATION", "1")
                .stdout(Stdio::null())
                // PARLEY_E2E_LOG=FILE: the app's log (RUST_LOG) there, to see why a step failed.
                .stderr(match std::env::var_os("PARLEY_E2E_LOG") {
                    Some(f) => Stdio::from(std::fs::File::create(f).unwrap()),
                    None => Stdio::null(),
                })
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
                        display: display.to_string(),
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
        if let Err(e) = self
            .client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::XPath(&xpath))
            .await
        {
            self.failed().await;
            panic!("{text:?} never showed: {e}");
        }
    }

    /// Keeps what the window showed when a step failed (in the system's temp directory).
    async fn failed(&self) {
        let path = std::env::temp_dir().join("parley-e2e-failure.png");
        if self.capture(&path) {
            eprintln!("screenshot of the failure: {}", path.display());
        }
        if let Ok(v) = self
            .client
            .execute("return window.parleyVideo ? [window.parleyVideo.counters(), window.parleyVideo.stats()] : null", vec![])
            .await
        {
            eprintln!("video: {v}");
        }
        if let Ok(body) = self.client.source().await {
            let text: String = body.chars().take(4000).collect();
            eprintln!("page: {text}");
        }
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

    /// Signs in through the form (test accounts use `NAME-Str0ng-Passphrase`).
    async fn sign_in(&self, name: &str) {
        self.fill("#login", name).await;
        self.fill("#password", &format!("{name}-Str0ng-Passphrase"))
            .await;
        self.click("form button[type=submit]").await;
    }

    /// Clicks the first element matching `css`.
    async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    /// Runs JavaScript in the page and returns its value.
    async fn js(&self, script: &str) -> serde_json::Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    /// Waits (`secs` at most) until `script` returns true.
    async fn until(&self, secs: u64, what: &str, script: &str) {
        for _ in 0..secs * 5 {
            if self.js(script).await == serde_json::Value::Bool(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.failed().await;
        panic!("{what}: not within {secs} s");
    }

    async fn screenshot(&self, name: &str) {
        // Let the window repaint what the last step changed (a busy machine lags).
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert!(
            self.capture(&screenshots().join(format!("{name}.png"))),
            "screenshot {name}"
        );
    }

    /// Writes the window, as the X server shows it, to `path` (WebDriver's screenshot hangs
    /// in WebKitGTK's non-composited mode, which Parley uses on machines without a GPU).
    fn capture(&self, path: &Path) -> bool {
        let window = xdotool(
            &self.display,
            &["search", "--onlyvisible", "--name", "^Parley$"],
        );
        let Some(window) = window.lines().next() else {
            return false;
        };
        Command::new("import")
            .args(["-window", window])
            .arg(path)
            .env("DISPLAY", &self.display)
            .status()
            .expect("ImageMagick's import (scripts/deps.sh installs it)")
            .success()
    }

    /// Ends the session and the app. Closing the window only hides Parley (it keeps running
    /// in the tray), and a second Parley defers to a running one (single instance), so the
    /// app process is stopped here, or the next start in the same display would hand over to
    /// this one and exit.
    async fn quit(self) {
        let driver = self._driver.0.id();
        let apps: Vec<u32> = process_tree(driver)
            .into_iter()
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.trim() == "parley-desktop")
            })
            .collect();
        let _ = self.client.close().await;
        for pid in apps {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            for _ in 0..50 {
                if !alive(pid) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
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
    let mut w = World::start().await;
    let (display, base, settings) = (&w.display, &w.base, &w.settings);

    let app = App::start(display, base, settings, 4444).await;
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
    let app = App::start(display, base, settings, 4444).await;
    app.text("Your meetings").await;
    app.text("Design review").await;
    app.text("erin").await;
    // Sign out: back to the sign-in screen, and a restart stays signed out.
    app.click_button("Sign out").await;
    app.text("Meetings that keep going").await;
    app.quit().await;
    let app = App::start(display, base, settings, 4444).await;
    app.find("#login").await;
    app.quit().await;
    w.server.stop().await;
}

/// `parley-cli`, built beside this test (`scripts/test.sh` builds it first).
fn cli_path() -> PathBuf {
    if let Some(p) = std::env::var_os("PARLEY_CLI") {
        return p.into();
    }
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap(); // target/debug/deps → target/debug
    let p = dir.join("parley-cli");
    assert!(
        p.exists(),
        "{} missing: cargo build -p parley-engine --bin parley-cli",
        p.display()
    );
    p
}

/// A headless participant: `parley-cli` with synthetic video and a tone, recording what it
/// receives; its own HOME (tokens in a file there, never the test keychain).
struct Cli(parley_test_support::cli::User);

impl Cli {
    async fn register(server: &str, name: &str) -> Self {
        let user = parley_test_support::cli::User::without_keychain(server, cli_path());
        user.register(name).await;
        Self(user)
    }

    fn record_dir(&self) -> PathBuf {
        self.0.record_dir()
    }

    async fn join(&self, code: &str, tone: &str) -> Joined {
        let rec = self.record_dir();
        let args = ["--mic", tone, "--record-dir", rec.to_str().unwrap()];
        self.join_with(code, &args).await
    }

    /// Joins with synthetic video, on loopback, with more options.
    async fn join_with(&self, code: &str, extra: &[&str]) -> Joined {
        let mut j = self.start_join(code, extra);
        j.expect_seen(|l| l.starts_with("* joined ")).await;
        j
    }

    /// Starts joining (the waiting room may come first).
    fn start_join(&self, code: &str, extra: &[&str]) -> Joined {
        let mut args = vec!["--camera", "synthetic", "--loopback-only"];
        args.extend_from_slice(extra);
        self.0.start_join(code, &args)
    }
}

/// A hash of a tile's canvas pixels (drawn into a small 2D canvas), or null without a picture.
const TILE_PIXELS: &str = r#"
const c = document.querySelector(arguments[0] + ' canvas');
if (!c) return null;
if (!c.width || c.classList.contains('hidden')) return { hidden: true, frames: 0};
const t = document.createElement('canvas'); t.width = 64; t.height = 48;
const g = t.getContext('2d'); g.drawImage(c, 0, 0, 64, 48);
const d = g.getImageData(0, 0, 64, 48).data;
let h = 0, sum = 0;
for (let i = 0; i < d.length; i += 4) { h = (h * 31 + d[i] + d[i+1] * 7 + d[i+2] * 13) >>> 0; sum += d[i] + d[i+1] + d[i+2]; }
return { hash: h, mean: sum / (d.length / 4 * 3), frames: Number(c.dataset.frames || 0), renderer: c.dataset.renderer};
"#;

/// A script returning [`TILE_PIXELS`] for `name`'s tile.
fn tile_script(name: &str) -> String {
    format!(
        "return ((sel) => {{{}}})('figure[data-name=\"{name}\"]');",
        TILE_PIXELS.replace("arguments[0]", "sel")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_meeting_with_a_cli_participant() {
    if std::env::var("PARLEY_TEST_E2E").as_deref() != Ok("1") {
        eprintln!("E2E tests run from scripts/test.sh (Xvfb, keychain, tauri-driver)");
        return;
    }
    let mut w = World::start().await;
    let (display, base, settings) = (&w.display, &w.base, &w.settings);
    // The account exists already: this run signs in through the form.
    let frank = Cli::register(base, "frank").await;
    drop(frank);
    let bob = Cli::register(base, "bob").await;

    let env = [("PARLEY_FAKE_MEDIA", "1"), ("PARLEY_LOOPBACK_ONLY", "1")];
    let app = App::start_env(display, base, settings, 4444, &env).await;
    app.sign_in("frank").await;
    app.text("Your meetings").await;

    // Create a meeting and join it: the pre-join dialog, then the room with our own preview.
    app.fill("#title", "Weekly sync").await;
    app.click_button("Create meeting").await;
    app.click_button("Join now").await;
    app.click_button("Join meeting").await;
    app.text("You are the only one here").await;
    let code = app
        .js("return document.querySelector('.bar .mono').textContent")
        .await;
    let code = code.as_str().unwrap().to_string();
    let own = tile_script("frank").replacen("return ", "const r = ", 1);
    app.until(
        10,
        "own preview drawn",
        &format!("{own} return r !== null && r.frames > 3;"),
    )
    .await;

    // Bob joins from the CLI with synthetic video: his tile shows moving pictures.
    let mut b = bob.join(&code, "tone:700").await;
    app.text("bob").await;
    let bob_tile = tile_script("bob");
    let mut first = serde_json::Value::Null;
    for _ in 0..100 {
        first = app.js(&bob_tile).await;
        if first["frames"].as_u64().unwrap_or(0) > 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if first["frames"].as_u64().unwrap_or(0) <= 10 {
        app.failed().await;
        panic!("bob's video not drawn: {first}");
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let second = app.js(&bob_tile).await;
    assert_ne!(
        first["hash"], second["hash"],
        "bob's picture moves: {first} {second}"
    );
    assert!(second["frames"].as_u64().unwrap() > first["frames"].as_u64().unwrap());
    assert!(
        second["mean"].as_f64().unwrap() > 10.0,
        "not a black tile: {second}"
    );
    eprintln!("bob's tile: {second}");
    app.screenshot("meeting-2").await;

    // Chat both ways; an unread count while the panel is closed.
    b.type_line("hello from the terminal").await;
    app.until(
        10,
        "unread badge",
        "return document.querySelector('.badge')?.textContent === '1'",
    )
    .await;
    app.click("button[title^='Chat']").await;
    app.text("hello from the terminal").await;
    app.fill("#chat-input", "hi bob, I see you").await;
    app.click_button("Send").await;
    b.expect_seen(|l| l == "frank: hi bob, I see you").await;
    app.until(10, "our message acknowledged", "return [...document.querySelectorAll('[data-testid=chat-message]')].some(m => m.textContent.includes('hi bob') && !m.classList.contains('pending'))").await;
    app.screenshot("meeting-chat").await;
    app.click("button[aria-label='Close chat']").await;

    // Mic and camera off: the CLI is told; back on.
    app.click("button[aria-keyshortcuts='Alt+A']").await;
    b.expect_seen(|l| l == "* frank: mic off, camera on, screen off")
        .await;
    app.click("button[aria-keyshortcuts='Alt+V']").await;
    b.expect_seen(|l| l == "* frank: mic off, camera off, screen off")
        .await;
    app.click("button[aria-keyshortcuts='Alt+A']").await;
    app.click("button[aria-keyshortcuts='Alt+V']").await;
    b.expect_seen(|l| l == "* frank: mic on, camera on, screen off")
        .await;

    // Share the (Xvfb) screen from the picker: the CLI receives screen frames.
    app.click("button[aria-keyshortcuts='Alt+S']").await;
    app.find(".choice img").await; // a thumbnail of the monitor
    app.screenshot("screen-picker").await;
    app.click("[role=dialog] .btn.primary").await;
    b.expect_seen(|l| l == "* frank: mic on, camera on, screen on")
        .await;
    app.text("Sharing your screen").await;
    let frames_csv = bob.record_dir().join("frames.csv");
    let mut screen_frames = 0;
    for _ in 0..75 {
        let csv = std::fs::read_to_string(&frames_csv).unwrap_or_default();
        screen_frames = csv
            .lines()
            .filter(|l| l.starts_with("frank,screen,"))
            .count();
        if screen_frames >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        screen_frames >= 5,
        "the CLI received {screen_frames} screen frames"
    );
    app.click("button[aria-keyshortcuts='Alt+S']").await; // stop
    b.expect_seen(|l| l == "* frank: mic on, camera on, screen off")
        .await;

    // Device settings: the preview tile and the meter.
    app.click("button[title='Devices and settings']").await;
    app.find("select#camera").await;
    app.screenshot("settings").await;
    app.click_button("Done").await;

    // Two more join: a grid of four.
    let cat = Cli::register(base, "cat").await;
    let dan = Cli::register(base, "dan").await;
    let c = cat.join(&code, "tone:900").await;
    let d = dan.join(&code, "tone:1100").await;
    for name in ["cat", "dan"] {
        app.until(
            20,
            &format!("{name}'s video"),
            &format!("const c = document.querySelector('figure[data-name=\"{name}\"] canvas'); return !!c && Number(c.dataset.frames || 0) > 5;"),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    app.screenshot("meeting-4").await;

    // Leave: the others see us go.
    app.click("button.leave").await;
    app.click_button("Leave meeting").await; // the host's menu
    app.text("You left the meeting").await;
    b.expect_seen(|l| l == "* frank left").await;
    app.click_button("Back to home").await;
    app.text("Your meetings").await;
    app.quit().await;
    for j in [b, c, d] {
        j.finish().await;
    }
    w.server.stop().await;
}

/// Whether a process runs (a zombie waiting for its parent does not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| Some(s.rsplit_once(')')?.1.split_whitespace().next()? != "Z"))
        .unwrap_or(false)
}

/// The pids of `root` and everything it started.
fn process_tree(root: u32) -> Vec<u32> {
    let mut parent = std::collections::HashMap::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        if let Some(ppid) = rest
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok())
        {
            parent.insert(pid, ppid);
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(parent.iter().filter(|(_, pp)| **pp == p).map(|(c, _)| *c));
        i += 1;
    }
    out
}

fn pid_of(name: &str) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid = e.file_name().to_string_lossy().parse::<u32>().ok()?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        (comm.trim() == name).then_some(pid)
    })
}

/// Resident memory of a process (kB), from /proc.
fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Rendering figures (not a pass/fail test; `scripts/bench-render.sh` runs it on a release
/// build): four `parley-cli` participants send 640×360 at 30 fps; the app draws their four
/// tiles. Prints frames per second drawn per tile (over 10 s, after 10 s of warm-up) and the
/// memory of the app and its WebKit processes.
/// Host actions from the people panel: waiting room (admit, deny), hands and reactions both
/// ways, mute, lock, remove, end for all — each seen by the CLI participants they act on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosting_from_the_people_panel() {
    if std::env::var("PARLEY_TEST_E2E").as_deref() != Ok("1") {
        eprintln!("E2E tests run from scripts/test.sh (Xvfb, keychain, tauri-driver)");
        return;
    }
    let mut w = World::start().await;
    let (display, base, settings) = (&w.display, &w.base, &w.settings);
    drop(Cli::register(base, "hope").await);
    let (ann, bob, cat) = (
        Cli::register(base, "ann").await,
        Cli::register(base, "bob").await,
        Cli::register(base, "cat").await,
    );
    let env = [("PARLEY_FAKE_MEDIA", "1"), ("PARLEY_LOOPBACK_ONLY", "1")];
    let app = App::start_env(display, base, settings, 4444, &env).await;
    app.sign_in("hope").await;
    app.text("Your meetings").await;
    app.fill("#title", "Office hours").await;
    app.click("label.check input[type=checkbox]").await; // waiting room
    app.click_button("Create meeting").await;
    app.text("waiting room").await; // the meeting list says so
    app.click_button("Join now").await;
    app.click_button("Join meeting").await;
    app.text("You are the only one here").await;
    let code = app
        .js("return document.querySelector('.bar .mono').textContent")
        .await;
    let code = code.as_str().unwrap().to_string();
    let light = ["--video", "160x120@10", "--mic", "tone:500"];

    // Ann knocks: a badge on People, her name under "Waiting to join"; admitted, she is in.
    let mut a = ann.start_join(&code, &light);
    a.expect_seen(|l| l == "* waiting for the host to let you in")
        .await;
    app.find("button[aria-keyshortcuts='Alt+U'] .badge[aria-label='1 waiting']")
        .await;
    app.click("button[aria-keyshortcuts='Alt+U']").await;
    app.text("Waiting to join (1)").await;
    app.find("[data-testid=waiting-person]").await;
    app.screenshot("people-waiting").await;
    app.click("[data-testid=waiting-person] button.primary")
        .await;
    a.expect_seen(|l| l.starts_with("* joined ")).await;
    app.until(
        10,
        "ann in the meeting",
        "return [...document.querySelectorAll('[data-testid=person] .name')].some(e => e.textContent === 'ann')",
    )
    .await;

    // Bob knocks and is turned away.
    let mut b = bob.start_join(&code, &light);
    b.expect_seen(|l| l == "* waiting for the host to let you in")
        .await;
    app.text("Waiting to join (1)").await;
    app.click_button("Deny").await;
    b.expect_seen(|l| l == "* the host did not let you in")
        .await;
    app.until(
        10,
        "the waiting list empties",
        "return !document.querySelector('[data-testid=waiting-person]')",
    )
    .await;

    // Hands and reactions, both ways.
    a.type_line("/hand").await;
    app.find("[data-testid=person] [aria-label='hand raised']")
        .await;
    app.find("figure[data-name='ann'][aria-label*='hand raised']")
        .await;
    a.type_line("/react 🎉").await;
    app.until(
        10,
        "ann's reaction",
        "return [...document.querySelectorAll('.reaction')].some(e => e.textContent.includes('🎉') && e.textContent.includes('ann'))",
    )
    .await;
    app.click("button[aria-keyshortcuts='Alt+Y']").await;
    a.expect_seen(|l| l == "* hope raised a hand").await;
    app.click("button[title=Reactions]").await;
    app.click("button[aria-label='React 👏']").await;
    a.expect_seen(|l| l == "* hope reacted 👏").await;

    // Mute her: she hears about it and shows muted.
    app.click("summary[aria-label='Actions for ann']").await;
    app.click_button("Mute").await;
    a.expect_seen(|l| l == "* the host muted you").await;
    app.find("[data-testid=person] [aria-label='muted']").await;

    // Lock: she sees it, and a newcomer is refused.
    app.click_button("Lock meeting").await;
    a.expect_seen(|l| l == "* meeting locked").await;
    app.click_button("Unlock meeting").await;
    a.expect_seen(|l| l == "* meeting unlocked").await;

    // Remove her.
    app.click("summary[aria-label='Actions for ann']").await;
    app.click_button("Remove").await;
    a.expect_seen(|l| l == "* you were removed from the meeting")
        .await;
    app.until(
        10,
        "ann's tile gone",
        "return !document.querySelector(\"figure[data-name='ann']\")",
    )
    .await;

    // Cat comes in (admitted); end for all ends it for her too.
    let mut c = cat.start_join(&code, &light);
    c.expect_seen(|l| l == "* waiting for the host to let you in")
        .await;
    app.click("[data-testid=waiting-person] button.primary")
        .await;
    c.expect_seen(|l| l.starts_with("* joined ")).await;
    app.click_button("End for all").await;
    c.expect_seen(|l| l == "* the meeting has ended").await;
    app.text("The meeting has ended").await;

    app.quit().await;
    for j in [a, b, c] {
        j.finish().await;
    }
    w.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn render_four_remote_tiles() {
    if std::env::var("PARLEY_BENCH_RENDER").as_deref() != Ok("1") {
        eprintln!("a benchmark: scripts/bench-render.sh");
        return;
    }
    let mut w = World::start().await;
    let (display, base, settings) = (&w.display, &w.base, &w.settings);
    let host = Cli::register(base, "host").await;
    // PARLEY_RENDER_ENV="NAME=VALUE …" passes more variables to the app (e.g.
    // PARLEY_VIDEO_FORMAT=i420, or WebKit's WEBKIT_DISABLE_COMPOSITING_MODE=1).
    let extra = std::env::var("PARLEY_RENDER_ENV").unwrap_or_default();
    let mut env = vec![("PARLEY_FAKE_MEDIA", "1"), ("PARLEY_LOOPBACK_ONLY", "1")];
    env.extend(extra.split_whitespace().filter_map(|kv| kv.split_once('=')));
    let app = App::start_env(display, base, settings, 4444, &env).await;
    app.sign_in("host").await;
    app.fill("#title", "Rendering").await;
    app.click_button("Create meeting").await;
    app.click_button("Join now").await;
    // Our own camera off: the figures are about drawing what arrives.
    app.click("[role=dialog] input[type=checkbox]").await;
    app.click_button("Join meeting").await;
    app.text("You are the only one here").await;
    let code = app
        .js("return document.querySelector('.bar .mono').textContent")
        .await;
    let code = code.as_str().unwrap().to_string();
    let mut people = Vec::new();
    let mut joined = Vec::new();
    for name in ["ann", "bob", "cat", "dan"] {
        let p = Cli::register(base, name).await;
        joined.push(
            // Full size always: the figures are about drawing 640×360 tiles, and four senders
            // on this machine would otherwise step their pictures down.
            p.join_with(
                &code,
                &[
                    "--video",
                    "640x360@30",
                    "--mic",
                    "none",
                    "--no-cpu-adaptation",
                ],
            )
            .await,
        );
        people.push(p);
    }
    for name in ["ann", "bob", "cat", "dan"] {
        app.until(
            30,
            &format!("{name}'s video"),
            &format!("const c = document.querySelector('figure[data-name=\"{name}\"] canvas'); return !!c && Number(c.dataset.frames || 0) > 5;"),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    let drawn = "return Object.fromEntries(Object.entries(window.parleyVideo.stats()).map(([k, v]) => [k, [v.drawn, v.width, v.height]]))";
    let counters = "return window.parleyVideo.counters()";
    let before = app.js(drawn).await;
    let c0 = app.js(counters).await;
    let t0 = std::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let after = app.js(drawn).await;
    let c1 = app.js(counters).await;
    let secs = t0.elapsed().as_secs_f64();
    let rate = |k: &str| (c1[k].as_f64().unwrap_or(0.0) - c0[k].as_f64().unwrap_or(0.0)) / secs;
    eprintln!(
        "frames arriving {:.1}/s ({}), animation frames {:.1}/s, drawing {:.1} ms per animation frame",
        rate("received"),
        c1["format"],
        rate("rafs"),
        rate("drawMs") / rate("rafs").max(0.001)
    );
    let mut fps = Vec::new();
    for (k, v) in after.as_object().unwrap() {
        let n = v[0].as_f64().unwrap() - before[k][0].as_f64().unwrap_or(0.0);
        fps.push(n / secs);
        eprintln!("tile {k}: {:.1} fps drawn ({}x{})", n / secs, v[1], v[2]);
    }
    let app_pid = pid_of("parley-desktop").expect("the app's process");
    let tree = process_tree(app_pid);
    let total: u64 = tree.iter().map(|p| rss_kb(*p)).sum();
    for p in &tree {
        let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
        eprintln!("  {p} {}: {} MiB", comm.trim(), rss_kb(*p) / 1024);
    }
    fps.sort_by(f64::total_cmp);
    println!(
        "RENDER tiles={} fps_min={:.1} fps_median={:.1} memory_mib={}",
        fps.len(),
        fps[0],
        fps[fps.len() / 2],
        total / 1024
    );
    app.quit().await;
    for j in joined {
        j.finish().await;
    }
    drop(host);
    w.server.stop().await;
}

/// Runs `xdotool args…` on `display`; its output.
fn xdotool(display: &str, args: &[&str]) -> String {
    let out = Command::new("xdotool")
        .args(args)
        .env("DISPLAY", display)
        .output()
        .expect("xdotool (scripts/deps.sh installs it)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// (x, y, width, height) of an X window.
fn geometry(display: &str, window: &str) -> Option<(i32, i32, i32, i32)> {
    let out = xdotool(display, &["getwindowgeometry", "--shell", window]);
    let get = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .and_then(|v| v.trim().parse::<i32>().ok())
    };
    Some((get("X")?, get("Y")?, get("WIDTH")?, get("HEIGHT")?))
}

/// The tray: `trayer` hosts Parley's icon (the XEmbed fallback, as on desktops without a
/// StatusNotifier host); xdotool clicks it and picks "Join a meeting…" from its menu with the
/// keyboard; the code typed in the window's prompt joins a meeting a parley-cli host is in.
/// In the call, the global mute shortcut; after it, a `parley://join/CODE` link opened by a
/// second start is handed to the running app (single instance), which joins again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tray_quick_join_shortcut_and_link_handover() {
    if std::env::var("PARLEY_TEST_E2E").as_deref() != Ok("1") {
        eprintln!("E2E tests run from scripts/test.sh (Xvfb, keychain, tauri-driver)");
        return;
    }
    let mut w = World::start().await;
    let (display, base, settings) = (&w.display, &w.base, &w.settings);
    let _trayer = Proc(
        Command::new("trayer")
            .args([
                "--edge",
                "bottom",
                "--align",
                "right",
                "--widthtype",
                "pixel",
                "--width",
                "120",
                "--heighttype",
                "pixel",
                "--height",
                "32",
                "--SetDockType",
                "true",
                "--transparent",
                "false",
            ])
            .env("DISPLAY", display)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("trayer (scripts/deps.sh installs it)"),
    );
    let host = Cli::register(base, "hank").await;
    let code = host.0.ok(&["meetings", "create", "Tray test"], "").await;
    let code = code.trim().to_string();
    assert_eq!(code.len(), 14, "a meeting code: {code:?}");
    let mut h = host.join_with(&code, &["--mic", "tone:600"]).await;
    drop(Cli::register(base, "tina").await);

    let env = [("PARLEY_FAKE_MEDIA", "1"), ("PARLEY_LOOPBACK_ONLY", "1")];
    let app = App::start_env(display, base, settings, 4444, &env).await;
    app.sign_in("tina").await;
    app.text("Your meetings").await;

    // Find the icon: the trayer panel's rightmost 32 px (icons are packed to the right).
    let mut icon = None;
    for _ in 0..50 {
        let panels = xdotool(display, &["search", "--class", "trayer"]);
        icon = panels
            .lines()
            .filter_map(|w| geometry(display, w))
            .find(|g| g.2 >= 100)
            .map(|(x, y, w, h)| (x + w - h / 2, y + h / 2));
        if icon.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (x, y) = icon.expect("the trayer panel");
    tokio::time::sleep(Duration::from_secs(1)).await; // the icon docks
    xdotool(
        display,
        &["mousemove", &x.to_string(), &y.to_string(), "click", "1"],
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    // The menu: Show Parley, Join a meeting…, …
    xdotool(display, &["key", "Down"]);
    xdotool(display, &["key", "Down"]);
    xdotool(display, &["key", "Return"]);
    let prompt = app
        .client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("#quick-code"))
        .await;
    if prompt.is_err() {
        app.failed().await;
        panic!("the tray's quick join did not open the code prompt");
    }
    app.fill("#quick-code", &code).await;
    app.click_button("Continue").await;
    app.click_button("Join meeting").await;
    app.text("Tray test").await; // the room's title, known once joined
    h.expect_seen(|l| l == "* tina joined").await;
    app.until(
        20,
        "hank's video",
        "const c = document.querySelector('figure[data-name=\"hank\"] canvas'); return !!c && Number(c.dataset.frames || 0) > 3;",
    )
    .await;
    // The global shortcut (Ctrl+Shift+M, grabbed from the X server, whatever has focus).
    h.expect_seen(|l| l.starts_with("* tina: mic on")).await;
    xdotool(display, &["key", "ctrl+shift+m"]);
    h.expect_seen(|l| l.starts_with("* tina: mic off")).await;
    app.find("button[aria-keyshortcuts='Alt+A'][aria-pressed='false']")
        .await;
    xdotool(display, &["key", "ctrl+shift+m"]);
    h.seen.clear();
    h.expect_seen(|l| l.starts_with("* tina: mic on")).await;
    app.click("button.leave").await;
    h.expect_seen(|l| l == "* tina left").await;

    // A parley:// link opened while Parley runs: the second start hands it over and exits;
    // the running app offers to join that meeting.
    let second = Command::new(env!("CARGO_BIN_EXE_parley-desktop"))
        .arg(format!("parley://join/{code}"))
        .env("DISPLAY", display)
        .env("PARLEY_SERVER", base)
        .env("PARLEY_DESKTOP_CONFIG", settings)
        .env("PARLEY_KEYCHAIN_SERVICE", "parley-desktop-e2e")
        .env("PARLEY_NO_LINK_REGISTRATION", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("a second Parley");
    let mut second = Proc(second);
    let mut handed_over = false;
    for _ in 0..100 {
        if let Ok(Some(status)) = second.0.try_wait() {
            handed_over = status.success();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(handed_over, "the second start did not hand over and exit");
    h.seen.clear();
    app.click_button("Join meeting").await;
    h.expect_seen(|l| l == "* tina joined").await;
    app.text("Tray test").await;
    app.click("button.leave").await;
    h.expect_seen(|l| l == "* tina left").await;

    // With a tray, closing the window keeps Parley running there, and says so the first time.
    let pid = pid_of("parley-desktop").expect("the app's process");
    let mut hidden = false;
    'closing: for _ in 0..5 {
        assert!(close_like_a_window_manager(display) >= 1, "Parley's window");
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if xdotool(display, &["search", "--onlyvisible", "--name", "^Parley$"])
                .trim()
                .is_empty()
            {
                hidden = true;
                break 'closing;
            }
        }
    }
    assert!(hidden && alive(pid), "closed to the tray, still running");
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(settings).unwrap()).unwrap();
    assert_eq!(
        stored["told_tray"], true,
        "told once that it went to the tray"
    );
    app.quit().await;
    h.finish().await;
    w.server.stop().await;
}

/// Mixed: the desktop app hosts, `parley-cli` and a Chromium guest join, and each receives
/// the two others' video. Everything inside the network namespace of scripts/browsers.sh
/// (browsers leave loopback out of ICE), so the app and the CLI gather there too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_meeting_of_the_app_a_cli_and_a_browser_guest() {
    if std::env::var("PARLEY_TEST_E2E").as_deref() != Ok("1")
        || !parley_test_support::browser::enabled()
    {
        eprintln!("runs from scripts/test.sh: the app's E2E inside scripts/browsers.sh");
        return;
    }
    let mut w = World::start().await;
    let (display, base, settings) = (&w.display, &w.base, &w.settings);
    drop(Cli::register(base, "frank").await);
    let bob = Cli::register(base, "bob").await;

    let app = App::start_env(display, base, settings, 4444, &[("PARLEY_FAKE_MEDIA", "1")]).await;
    app.sign_in("frank").await;
    app.text("Your meetings").await;
    app.fill("#title", "Mixed meeting").await;
    app.click("#allow-guests").await;
    app.click_button("Create meeting").await;
    app.text("guests").await; // the new meeting's line says guests may join
    app.click_button("Join now").await;
    app.click_button("Join meeting").await;
    app.text("You are the only one here").await;
    let code = app
        .js("return document.querySelector('.bar .mono').textContent")
        .await
        .as_str()
        .unwrap()
        .to_string();

    // parley-cli on the namespace's addresses (not loopback), recording what it receives.
    let rec = bob.record_dir();
    let rec_arg = rec.to_str().unwrap().to_string();
    let mut b = bob.0.start_join(
        &code,
        &[
            "--camera",
            "synthetic",
            "--mic",
            "tone:700",
            "--record-dir",
            &rec_arg,
        ],
    );
    b.expect_seen(|l| l.starts_with("* joined ")).await;

    // The guest, from the invite link.
    let mut g = parley_test_support::browser::Browser::start("chromium", None).await;
    g.run(serde_json::json!({"op": "goto", "url": format!("{base}/j/{code}")}))
        .await;
    g.click("Join in this browser").await;
    g.run(serde_json::json!({"op": "type", "selector": "#name", "text": "Gia"}))
        .await;
    g.click("Join").await;
    b.expect_seen(|l| l == "* Gia (guest) joined").await;

    // The browser receives the app and the CLI.
    g.sees_moving_video("frank").await;
    g.sees_moving_video("bob").await;
    // The app receives the CLI and the browser.
    for name in ["bob", "Gia"] {
        app.until(
            30,
            &format!("{name}'s video in the app"),
            &format!("const c = document.querySelector('figure[data-name=\"{name}\"] canvas'); return !!c && Number(c.dataset.frames || 0) > 10;"),
        )
        .await;
    }
    // Her tile says she is a guest.
    app.until(
        10,
        "Gia's tile marked as a guest",
        "return document.querySelector('figure[data-name=\"Gia\"]')?.getAttribute('aria-label')?.includes('guest') === true;",
    )
    .await;
    // She chats: the app shows her message with a "Guest" tag, the CLI marks it too.
    g.click("Chat").await;
    g.run(serde_json::json!({"op": "type", "selector": "#chat-input", "text": "hello from a guest\n"}))
        .await;
    b.expect_seen(|l| l == "Gia (guest): hello from a guest")
        .await;
    app.click("button[title^='Chat']").await;
    app.until(
        10,
        "the guest's chat tagged in the app",
        "return [...document.querySelectorAll('[data-testid=chat-message]')].some(m => m.textContent.includes('hello from a guest') && m.querySelector('.tag.guest')?.textContent === 'Guest');",
    )
    .await;
    app.screenshot("meeting-chat-guest").await;
    app.click("button[aria-label='Close chat']").await;
    // The CLI receives the app and the browser.
    let frames_csv = rec.join("frames.csv");
    let count = |who: &str| {
        std::fs::read_to_string(&frames_csv)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with(&format!("{who},camera,")))
            .count()
    };
    for _ in 0..100 {
        if count("frank") >= 20 && count("Gia") >= 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        count("frank") >= 20 && count("Gia") >= 20,
        "the CLI received {} frames of the app and {} of the browser",
        count("frank"),
        count("Gia")
    );
    g.click("Leave").await;
    g.wait_text("You left the meeting").await;
    b.expect_seen(|l| l == "* Gia left").await;
    g.close().await;
    app.quit().await;
    b.finish().await;
    w.server.stop().await;
}

/// Sends WM_DELETE_WINDOW to Parley's visible top-level window, as a window manager does when
/// its close button is clicked (Xvfb runs none). Returns how many windows it went to.
fn close_like_a_window_manager(display: &str) -> usize {
    use xcb::{x, Xid as _};
    let (conn, screen) = xcb::Connection::connect(Some(display)).expect("the X display");
    let root = conn
        .get_setup()
        .roots()
        .nth(screen as usize)
        .expect("a screen")
        .root();
    let atom = |name: &str| {
        let cookie = conn.send_request(&x::InternAtom {
            only_if_exists: false,
            name: name.as_bytes(),
        });
        conn.wait_for_reply(cookie).unwrap().atom()
    };
    let (protocols, delete) = (atom("WM_PROTOCOLS"), atom("WM_DELETE_WINDOW"));
    let tree = conn
        .wait_for_reply(conn.send_request(&x::QueryTree { window: root }))
        .unwrap();
    let mut sent = 0;
    for &w in tree.children() {
        let attrs = conn.wait_for_reply(conn.send_request(&x::GetWindowAttributes { window: w }));
        if !attrs.is_ok_and(|a| a.map_state() == x::MapState::Viewable) {
            continue;
        }
        let name = conn.wait_for_reply(conn.send_request(&x::GetProperty {
            delete: false,
            window: w,
            property: x::ATOM_WM_NAME,
            r#type: x::ATOM_ANY,
            long_offset: 0,
            long_length: 64,
        }));
        if !name.is_ok_and(|n| n.value::<u8>() == b"Parley") {
            continue;
        }
        let event = x::ClientMessageEvent::new(
            w,
            protocols,
            x::ClientMessageData::Data32([delete.resource_id(), x::CURRENT_TIME, 0, 0, 0]),
        );
        conn.send_request(&x::SendEvent {
            propagate: false,
            destination: x::SendEventDest::Window(w),
            event_mask: x::EventMask::NO_EVENT,
            event: &event,
        });
        sent += 1;
    }
    conn.flush().unwrap();
    sent
}

/// Closes Parley's window as a window manager would until `done` (a script) returns true: GTK
/// drops a close request that comes while a pointer grab from the last click is still held,
/// as a person clicking the close button a second time would see; five tries, two seconds
/// each.
async fn close_until(app: &App, done: &str) {
    for _ in 0..5 {
        assert!(
            close_like_a_window_manager(&app.display) >= 1,
            "Parley's window"
        );
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if app.js(done).await == serde_json::Value::Bool(true) {
                return;
            }
        }
    }
    app.failed().await;
    panic!("five close requests went unanswered");
}

/// The pre-join screen with the test devices: the preview's frames move, the chosen
/// microphone's meter moves, the speaker can be chosen; joining muted and with the camera off
/// is what the others see. In the meeting, the chat panel follows the dark theme, and a read
/// chat line does not count as unread when the app comes back after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pre_join_screen_previews_and_joins_muted() {
    if std::env::var("PARLEY_TEST_E2E").as_deref() != Ok("1") {
        eprintln!("E2E tests run from scripts/test.sh (Xvfb, keychain, tauri-driver)");
        return;
    }
    let mut w = World::start().await;
    let (display, base, settings) = (&w.display, &w.base, &w.settings);
    let host = Cli::register(base, "hana").await;
    let code = host.0.ok(&["meetings", "create", "Pre-join"], "").await;
    let code = code.trim().to_string();
    let mut h = host.join_with(&code, &["--mic", "tone:600"]).await;
    drop(Cli::register(base, "pia").await);

    let env = [("PARLEY_FAKE_MEDIA", "1"), ("PARLEY_LOOPBACK_ONLY", "1")];
    let app = App::start_env(display, base, settings, 4444, &env).await;
    app.sign_in("pia").await;
    app.text("Your meetings").await;
    app.fill("#join-code", &code).await;
    app.click_button("Join").await;

    // The preview: moving pictures from the chosen camera (the test pattern).
    let preview = "[data-testid=prejoin-preview] figure";
    let pixels = format!(
        "return ((sel) => {{{}}})('{preview}');",
        TILE_PIXELS.replace("arguments[0]", "sel")
    );
    app.until(
        20,
        "the preview draws frames",
        &format!("const c = document.querySelector('{preview} canvas'); return !!c && Number(c.dataset.frames || 0) > 5;"),
    )
    .await;
    let first = app.js(&pixels).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let later = app.js(&pixels).await;
    assert!(
        first["frames"].as_f64() < later["frames"].as_f64() && first["hash"] != later["hash"],
        "the preview moves: {first} then {later}"
    );
    // The microphone, chosen here: the test tone moves the meter.
    app.js("const s = document.querySelector('#join-mic'); s.value = 'tone:440'; s.dispatchEvent(new Event('change')); return true;").await;
    app.until(
        10,
        "the chosen microphone's meter moves",
        "return Number(document.querySelector('[role=meter]').getAttribute('aria-valuenow')) > 20;",
    )
    .await;
    let cameras = app
        .js("return [...document.querySelectorAll('#join-camera option')].map(o => o.textContent);")
        .await;
    assert!(cameras.to_string().contains("Test pattern"), "{cameras}");
    app.find("#join-speaker").await;
    assert_eq!(
        app.js("return document.querySelectorAll('[data-testid=device-problem]').length;")
            .await,
        0,
        "no device problem with working devices"
    );
    app.screenshot("prejoin").await;

    // Join muted, camera off: that is what the others see.
    app.click("button[aria-label^='Mute']").await;
    app.click("button[aria-label='Join with the camera off']")
        .await;
    app.until(
        5,
        "a muted meter",
        "return Number(document.querySelector('[role=meter]').getAttribute('aria-valuenow')) === 0;",
    )
    .await;
    app.click_button("Join meeting").await;
    h.expect_seen(|l| l == "* pia joined").await;
    h.expect_seen(|l| l.starts_with("* pia: mic off, camera off"))
        .await;
    app.text("Pre-join").await;

    // Chat: read in the open panel, dark like the rest of the meeting.
    h.type_line("welcome, pia").await;
    app.until(
        10,
        "an unread badge",
        "return !!document.querySelector('.badge');",
    )
    .await;
    app.click("button[aria-keyshortcuts='Alt+H']").await;
    app.text("welcome, pia").await;
    let panel_bg = app
        .js("return getComputedStyle(document.querySelector('.side .panel')).backgroundColor;")
        .await;
    let rgb: Vec<u32> = panel_bg
        .as_str()
        .unwrap_or_default()
        .trim_start_matches("rgb(")
        .trim_end_matches(')')
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    assert!(
        rgb.len() == 3 && rgb.iter().all(|&c| c < 80),
        "the chat panel is dark: {panel_bg}"
    );
    app.screenshot("meeting-chat-dark").await;
    app.click("button.leave").await;
    h.expect_seen(|l| l == "* pia left").await;
    app.quit().await;

    // A restart: the line read before is not unread; a new one is.
    h.type_line("and a new line").await;
    let app = App::start_env(display, base, settings, 4444, &env).await;
    app.text("Your meetings").await;
    app.fill("#join-code", &code).await;
    app.click_button("Join").await;
    app.click_button("Join meeting").await;
    h.seen.clear();
    h.expect_seen(|l| l == "* pia joined").await;
    h.type_line("one more").await;
    app.until(
        10,
        "the badge counts the unread lines",
        "const b = document.querySelector('.badge'); return !!b && b.textContent.trim() === '2';",
    )
    .await;
    app.click("button.leave").await;
    app.quit().await;
    h.finish().await;
    w.server.stop().await;
}

/// No camera, microphone or speaker (the app without test devices in a display with no sound
/// server): the pre-join screen says so in plain words, and joining shows one notice, in
/// words, with the way to the settings, instead of one technical error per device.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_without_devices_shows_one_plain_notice() {
    if std::env::var("PARLEY_TEST_E2E").as_deref() != Ok("1") {
        eprintln!("E2E tests run from scripts/test.sh (Xvfb, keychain, tauri-driver)");
        return;
    }
    let mut w = World::start().await;
    let (display, base, settings) = (&w.display, &w.base, &w.settings);
    let host = Cli::register(base, "hal").await;
    let code = host.0.ok(&["meetings", "create", "No devices"], "").await;
    let code = code.trim().to_string();
    let mut h = host.join_with(&code, &[]).await;
    drop(Cli::register(base, "nora").await);

    // No PARLEY_FAKE_MEDIA and no PULSE_SERVER: the machine's own (absent) devices.
    let env = [("PARLEY_LOOPBACK_ONLY", "1")];
    let app = App::start_env(display, base, settings, 4444, &env).await;
    app.sign_in("nora").await;
    app.text("Your meetings").await;
    app.fill("#join-code", &code).await;
    app.click_button("Join").await;
    app.text("No camera").await;
    let said = app
        .js("return [...document.querySelectorAll('[data-testid=device-problem]')].map(p => p.textContent);")
        .await;
    let said: Vec<String> = serde_json::from_value(said).unwrap();
    assert!(!said.is_empty(), "the pre-join screen says what is missing");
    for line in &said {
        assert!(
            line.contains(" — ") && !line.contains("audio:") && !line.contains("requested"),
            "plain words, not an error: {line:?}"
        );
    }
    app.screenshot("prejoin-no-devices").await;
    app.click_button("Join meeting").await;
    h.expect_seen(|l| l == "* nora joined").await;
    app.text("No devices").await;
    app.until(
        10,
        "a notice",
        "return document.querySelectorAll('.toast').length > 0;",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await; // any later notice too
    let toasts = app
        .js("return [...document.querySelectorAll('.toast')].map(t => t.textContent);")
        .await;
    let toasts: Vec<String> = serde_json::from_value(toasts).unwrap();
    assert_eq!(
        toasts.len(),
        1,
        "one notice, not one per device: {toasts:?}"
    );
    let notice = &toasts[0];
    assert!(
        notice.starts_with("No ")
            && notice.contains("found — you can still")
            && notice.contains("Audio and video settings")
            && !notice.contains("Joined without it")
            && !notice.contains("audio:"),
        "{notice:?}"
    );
    app.screenshot("joined-without-devices").await;
    // Its button opens the device settings.
    app.click_button("Audio and video settings").await;
    app.text("Noise suppression").await;
    app.quit().await;
    h.finish().await;
    w.server.stop().await;
}

/// A desktop without a tray (no StatusNotifier host, no XEmbed tray): closing the window in a
/// meeting asks whether to leave and quit, and doing so leaves the meeting and ends Parley,
/// instead of leaving it running with no way back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_without_a_tray_asks_then_leaves_and_quits() {
    if std::env::var("PARLEY_TEST_E2E").as_deref() != Ok("1") {
        eprintln!("E2E tests run from scripts/test.sh (Xvfb, keychain, tauri-driver)");
        return;
    }
    let mut w = World::start().await;
    let (display, base, settings) = (&w.display, &w.base, &w.settings);
    let host = Cli::register(base, "hugo").await;
    let code = host.0.ok(&["meetings", "create", "No tray"], "").await;
    let code = code.trim().to_string();
    let mut h = host.join_with(&code, &[]).await;
    drop(Cli::register(base, "quinn").await);

    let env = [("PARLEY_FAKE_MEDIA", "1"), ("PARLEY_LOOPBACK_ONLY", "1")];
    let app = App::start_env(display, base, settings, 4444, &env).await;
    app.sign_in("quinn").await;
    app.text("Your meetings").await;
    app.fill("#join-code", &code).await;
    app.click_button("Join").await;
    app.click_button("Join meeting").await;
    h.expect_seen(|l| l == "* quinn joined").await;
    let pid = pid_of("parley-desktop").expect("the app's process");

    // The close button, as a window manager reports it.
    let asked = "return !!document.querySelector('[role=alertdialog]');";
    close_until(&app, asked).await;
    app.text("Leave the meeting and quit Parley?").await;
    app.screenshot("quit-without-tray").await;
    // "Stay" keeps everything as it was.
    app.click_button("Stay in the meeting").await;
    app.until(
        5,
        "the question gone",
        "return !document.querySelector('[role=alertdialog]');",
    )
    .await;
    assert!(alive(pid), "staying keeps Parley running");
    close_until(&app, asked).await;
    app.click_button("Leave and quit").await;
    h.expect_seen(|l| l == "* quinn left").await;
    for _ in 0..100 {
        if !alive(pid) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!alive(pid), "Parley quit");
    app.quit().await;
    h.finish().await;
    w.server.stop().await;
}
