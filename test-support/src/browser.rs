//! Real browsers under remote control: Debian's Chromium through Debian's chromedriver (W3C
//! WebDriver) or Firefox ESR over WebDriver BiDi (puppeteer-core), by `browser/driver.mjs`,
//! headless (or on a private Xvfb, to have a screen to share) with their fake camera and
//! microphone. Browsers leave loopback out of ICE, so the tests run inside a network
//! namespace: `scripts/browsers.sh` makes it, installs the browsers and puppeteer-core, and
//! sets `PARLEY_TEST_BROWSERS`.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

use crate::xvfb::Xvfb;

/// Whether this test run has browsers (inside scripts/browsers.sh); says why not otherwise.
pub fn enabled() -> bool {
    let on = std::env::var_os("PARLEY_TEST_BROWSERS").is_some();
    if !on {
        eprintln!("browser tests need a network namespace: scripts/test.sh runs them through scripts/browsers.sh");
    }
    on
}

/// A browser under remote control (driver.mjs): one JSON command, one JSON answer.
pub struct Browser {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    pub name: &'static str,
    /// The private display a browser with a window runs on (dropped after the browser).
    screen: Option<Xvfb>,
}

impl Browser {
    /// Starts `name` (`chromium` or `firefox`) headless; Chromium's microphone plays `wav`
    /// if given.
    pub async fn start(name: &'static str, wav: Option<&Path>) -> Self {
        Self::launch(name, wav, None).await
    }

    /// Starts `name` with its window on a private 1280×800 Xvfb, so that it has a screen to
    /// share: Firefox's screen capture takes the whole display (headless, it has none).
    pub async fn start_with_screen(name: &'static str, wav: Option<&Path>) -> Self {
        Self::launch(name, wav, Some(Xvfb::start(1280, 800))).await
    }

    async fn launch(name: &'static str, wav: Option<&Path>, screen: Option<Xvfb>) -> Self {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/browser");
        let mut cmd = tokio::process::Command::new("node");
        cmd.arg(format!("{dir}/driver.mjs")).arg(name);
        if let Some(wav) = wav {
            cmd.arg("--wav").arg(wav);
        }
        if let Some(x) = &screen {
            cmd.arg("--display").arg(&x.display);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // Not killed on drop: a failed test closes the driver's stdin, and the driver
            // then closes its browser (a killed node would leave the browser running).
            .spawn()
            .expect("node runs the browser driver");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut b = Self {
            child,
            stdin,
            stdout,
            name,
            screen,
        };
        b.answer(Duration::from_secs(60))
            .await
            .expect("the browser starts");
        b
    }

    async fn answer(&mut self, within: Duration) -> Result<Value, String> {
        let line = tokio::time::timeout(within, self.stdout.next_line())
            .await
            .map_err(|_| format!("{}: no answer in {within:?}", self.name))?
            .unwrap()
            .ok_or_else(|| format!("{}: the driver exited", self.name))?;
        let v: Value = serde_json::from_str(&line).unwrap();
        if v["ok"] == true {
            Ok(v["value"].clone())
        } else {
            Err(format!(
                "{}: {} (page log: {})",
                self.name, v["error"], v["logs"]
            ))
        }
    }

    pub async fn try_run(&mut self, cmd: Value) -> Result<Value, String> {
        self.stdin
            .write_all(format!("{cmd}\n").as_bytes())
            .await
            .unwrap();
        self.stdin.flush().await.unwrap();
        self.answer(Duration::from_secs(90)).await
    }

    pub async fn run(&mut self, cmd: Value) -> Value {
        let what = cmd.to_string();
        match self.try_run(cmd).await {
            Ok(v) => v,
            Err(e) => {
                // What the page showed, for whoever reads the failure.
                let shot = std::env::temp_dir().join(format!("parley-{}-failed.png", self.name));
                let _ = self
                    .try_run(json!({"op": "screenshot", "path": shot}))
                    .await;
                let text = self
                    .try_run(json!({"op": "eval", "js": "return document.body.innerText;"}))
                    .await
                    .unwrap_or_default();
                panic!(
                    "{what}: {e}\npage text: {text}\nscreenshot: {}",
                    shot.display()
                )
            }
        }
    }

    pub async fn eval(&mut self, js: &str) -> Value {
        self.run(json!({"op": "eval", "js": js})).await
    }

    pub async fn wait_text(&mut self, text: &str) {
        self.run(json!({"op": "wait_text", "text": text, "timeout_ms": 30000}))
            .await;
    }

    pub async fn click(&mut self, text: &str) {
        self.run(json!({"op": "click", "text": text})).await;
    }

    /// Frames the page has drawn of `name`'s tile (`screen`: their shared screen's).
    pub async fn frames_of(&mut self, name: &str, screen: bool) -> u64 {
        let track = if screen { "1" } else { "0" };
        let js = format!(
            "const v = [...document.querySelectorAll('figure.tile')].find(f => f.dataset.name === {name:?} && f.dataset.track.endsWith('/{track}'))?.querySelector('video');
             return v ? Number(v.dataset.frames ?? 0) : 0;"
        );
        self.eval(&js).await.as_u64().unwrap_or(0)
    }

    /// Waits until `name`'s tile has drawn frames and keeps drawing (moving video).
    pub async fn sees_moving_video(&mut self, name: &str) {
        let mut first = 0;
        for _ in 0..60 {
            first = self.frames_of(name, false).await;
            if first >= 10 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert!(first >= 10, "{}: {first} frames of {name}", self.name);
        // Keeps drawing: ten more frames within ten seconds. A 2-core machine running the
        // app, a CLI and a browser at once can fall to a few frames a second for a moment
        // (seen in CI: 3 frames in 2 s); a stalled track draws none.
        let mut later = first;
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            later = self.frames_of(name, false).await;
            if later >= first + 10 {
                return;
            }
        }
        panic!(
            "{}: {name}'s video stalled at {first} → {later} frames in 10 s",
            self.name
        );
    }

    /// The loudest frequency of what the page plays of the others (Web Audio on the remote
    /// stream its <audio> element plays).
    pub async fn heard_peak_hz(&mut self) -> f64 {
        let js = "
            const el = document.querySelector('audio[data-peer]');
            if (!el || !el.srcObject) return 0;
            const ctx = new AudioContext();
            await Promise.race([ctx.resume(), new Promise(r => setTimeout(r, 1000))]);
            if (ctx.state !== 'running') return -1;
            const a = ctx.createAnalyser();
            a.fftSize = 8192;
            ctx.createMediaStreamSource(el.srcObject).connect(a);
            await new Promise(r => setTimeout(r, 1500));
            const bins = new Float32Array(a.frequencyBinCount);
            a.getFloatFrequencyData(bins);
            let best = 0;
            for (let i = 1; i < bins.length; i++) if (bins[i] > bins[best]) best = i;
            const hz = best * ctx.sampleRate / a.fftSize;
            await ctx.close();
            return bins[best] > -80 ? hz : 0;";
        self.eval(js).await.as_f64().unwrap_or(0.0)
    }

    /// Saves the page as `name`.png in `PARLEY_SCREENSHOTS` (the docs' pictures), if set.
    pub async fn picture(&mut self, name: &str) {
        if let Some(dir) = std::env::var_os("PARLEY_SCREENSHOTS") {
            let path = Path::new(&dir).join(format!("{name}.png"));
            self.run(json!({"op": "screenshot", "path": path})).await;
        }
    }

    pub async fn close(mut self) {
        let _ = self.stdin.write_all(b"{\"op\":\"close\"}\n").await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        drop(self.screen.take());
    }
}
