//! The servers under test, each its own process: memory and CPU come from /proc/PID.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context as _};
use tokio::io::AsyncBufReadExt as _;
use tokio::process::{Child, Command};

/// What /proc says of the server process at one moment.
pub struct Process {
    pub rss_kib: u64,
    /// Of the RSS: anonymous memory (the heap, stacks) and mapped files (code, libraries).
    pub rss_anon_kib: u64,
    pub rss_file_kib: u64,
    pub fds: u64,
    pub threads: u64,
}

impl Process {
    /// Resident memory, open file descriptors and threads of process `pid` (Linux: /proc).
    pub fn of(pid: u32) -> anyhow::Result<Self> {
        let status = read_proc(pid, "status")?;
        let field = |name: &str| -> anyhow::Result<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .with_context(|| format!("no {name} in /proc status"))
        };
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))?.count() as u64;
        Ok(Self {
            rss_kib: field("VmRSS:")?,
            rss_anon_kib: field("RssAnon:")?,
            rss_file_kib: field("RssFile:")?,
            threads: field("Threads:")?,
            fds,
        })
    }
}

pub struct Server {
    child: Child,
    pid: u32,
    /// `http://127.0.0.1:PORT`
    pub base_url: String,
    _data: Option<tempfile::TempDir>,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Server {
    /// `parley-server` on its embedded SQLite in a fresh directory. The chat limit is lifted
    /// (the benchmark steps the chat rate up past the per-connection default of 5/s).
    /// The data directory is made under `data_under` (default: the system's temp dir).
    pub async fn parley(bin: &Path, data_under: Option<&Path>) -> anyhow::Result<Self> {
        Self::parley_lifted(bin, data_under, &[]).await
    }

    /// As [`Server::parley`], with `extra` settings besides.
    pub async fn parley_lifted(
        bin: &Path,
        data_under: Option<&Path>,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        // The load generator is one process on one address with a few accounts: the
        // per-connection, per-user and per-address abuse limits are lifted.
        let mut env = vec![
            ("PARLEY_LIMITS__CHAT_PER_SEC", "100000"),
            ("PARLEY_LIMITS__WS_MESSAGES_PER_SEC", "100000"),
            ("PARLEY_LIMITS__WS_MESSAGE_BURST", "100000"),
            ("PARLEY_LIMITS__WS_PER_IP", "100000"),
            ("PARLEY_LIMITS__WS_PER_USER", "100000"),
            ("PARLEY_LIMITS__TCP_PER_IP", "100000"),
        ];
        env.extend_from_slice(extra);
        Self::parley_with(bin, data_under, &env).await
    }

    /// `parley-server` with its default limits except `env` (sign-ups per address are
    /// always lifted: creating the benchmark's accounts is set-up, not load).
    pub async fn parley_with(
        bin: &Path,
        data_under: Option<&Path>,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let data = match data_under {
            Some(dir) => tempfile::tempdir_in(dir)?,
            None => tempfile::tempdir()?,
        };
        let port = free_port()?;
        let mut cmd = Command::new(bin);
        // Only this benchmark's settings: the server refuses unknown PARLEY_* variables (a
        // test run exports PARLEY_TEST_POSTGRES_URL).
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("PARLEY_") {
                cmd.env_remove(k);
            }
        }
        let child = cmd
            .env("PARLEY_LISTEN", format!("127.0.0.1:{port}"))
            .env("PARLEY_DATA_DIR", data.path())
            .envs(env.iter().copied())
            .env("PARLEY_LIMITS__REGISTER_PER_IP", "100000")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let base_url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..200 {
            if let Ok(r) = http.get(format!("{base_url}/api/health")).send().await {
                if r.status().is_success() {
                    let pid = child.id().context("parley-server exited")?;
                    return Ok(Self {
                        child,
                        pid,
                        base_url,
                        _data: Some(data),
                    });
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("parley-server did not answer on {base_url}")
    }

    /// The Socket.IO 4 server in `dir` (`npm install` done), on Node.
    pub async fn socketio(dir: &Path) -> anyhow::Result<Self> {
        let port = free_port()?;
        let mut child = Command::new("node")
            .arg("server.js")
            .current_dir(dir)
            .env("PORT", port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting node (the benchmark needs Node.js)")?;
        let out = child.stdout.take().context("node's output")?;
        let mut lines = tokio::io::BufReader::new(out).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .context("the Socket.IO server did not start in 20 s")??
            .unwrap_or_default();
        if !line.starts_with("listening") {
            bail!("the Socket.IO server said {line:?}");
        }
        let pid = child.id().context("node exited")?;
        Ok(Self {
            child,
            pid,
            base_url: format!("http://127.0.0.1:{port}"),
            _data: None,
        })
    }

    /// Resident memory, KiB.
    /// The server's embedded SQLite database file (while it runs on the default).
    pub fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        self._data.as_ref().map(|d| d.path().join("parley.db"))
    }

    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        rss_of(self.pid)
    }

    /// A reader of the server's resident memory (KiB) that can move to another task.
    pub fn rss_probe(&self) -> impl Fn() -> anyhow::Result<u64> + Send + 'static {
        let pid = self.pid;
        move || rss_of(pid)
    }

    /// Resident memory, open file descriptors and threads (Linux: /proc).
    pub fn process(&self) -> anyhow::Result<Process> {
        Process::of(self.pid)
    }

    /// User + system CPU time so far, seconds (Linux: /proc).
    pub fn cpu_secs(&self) -> anyhow::Result<f64> {
        let stat = read_proc(self.pid, "stat")?;
        // Fields after the command name (which may hold spaces): state is field 3.
        let rest = stat.rsplit_once(')').context("odd /proc stat")?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = f[11].parse::<f64>()? + f[12].parse::<f64>()?;
        Ok(ticks / clock_ticks())
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks() -> f64 {
    static TCK: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TCK.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// `/proc/PID/WHAT`: the benchmarks' CPU and memory figures are Linux's.
fn read_proc(pid: u32, what: &str) -> anyhow::Result<String> {
    if cfg!(target_os = "linux") {
        Ok(std::fs::read_to_string(format!("/proc/{pid}/{what}"))?)
    } else {
        anyhow::bail!("the benchmarks read CPU and memory figures from Linux's /proc")
    }
}

fn rss_of(pid: u32) -> anyhow::Result<u64> {
    Ok(Process::of(pid)?.rss_kib)
}

/// Registers `name` (password `bench-Str0ng-Passphrase`) and returns its access token.
pub async fn register(http: &reqwest::Client, base: &str, name: &str) -> anyhow::Result<String> {
    let r: serde_json::Value = http
        .post(format!("{base}/api/auth/register"))
        .json(&serde_json::json!({
            "username": name,
            "email": format!("{name}@example.org"),
            "password": "bench-Str0ng-Passphrase",
        }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(r["tokens"]["access_token"]
        .as_str()
        .context("register gave no access token")?
        .to_string())
}
