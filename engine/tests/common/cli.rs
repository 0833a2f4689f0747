//! `parley-cli` as a user or a script runs it: separate processes, each with its own home
//! directory, against a real server on port 0.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use parley_server::clock::SystemClock;
use parley_server::config::Config;
use parley_server::Server;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

pub struct World {
    pub server: Server,
    pub base: String,
    pub _data: tempfile::TempDir,
}

pub async fn world() -> World {
    world_with(|_| {}).await
}

pub async fn world_with(tweak: impl FnOnce(&mut Config)) -> World {
    let data = tempfile::tempdir().unwrap();
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data.path().to_path_buf(),
        ..Config::default()
    };
    tweak(&mut config);
    config.limits.register_per_ip = 100;
    let server = Server::start(config, Arc::new(SystemClock)).await.unwrap();
    World {
        base: format!("http://{}", server.addr),
        server,
        _data: data,
    }
}

/// One person at one machine: a home directory of their own, no keychain on the session bus
/// unless the environment provides one.
pub struct User {
    pub home: tempfile::TempDir,
    pub server: String,
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl User {
    pub fn new(server: &str) -> Self {
        Self {
            home: tempfile::tempdir().unwrap(),
            server: server.to_string(),
        }
    }

    pub fn config_dir(&self) -> PathBuf {
        self.home.path().join(".config")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_parley-cli"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.config_dir())
            .env("PARLEY_SERVER", &self.server)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // The session's keychain and sound server, when the environment provides them.
        for var in [
            "DBUS_SESSION_BUS_ADDRESS",
            "XDG_RUNTIME_DIR",
            "PULSE_SERVER",
        ] {
            if let Some(v) = std::env::var_os(var) {
                cmd.env(var, v);
            }
        }
        cmd
    }

    /// Runs `parley-cli args…` to completion with `input` on stdin.
    pub async fn run(&self, args: &[&str], input: &str) -> Output {
        let mut child = self.command(args).spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).await.unwrap();
        drop(stdin);
        let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
            .await
            .expect("parley-cli finishes within 30 s")
            .unwrap();
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub async fn ok(&self, args: &[&str], input: &str) -> String {
        let out = self.run(args, input).await;
        assert_eq!(out.code, 0, "{args:?} failed: {}", out.stderr);
        out.stdout
    }

    pub async fn register(&self, name: &str) -> Output {
        let email = format!("{name}@example.org");
        let out = self
            .run(
                &["register", "--username", name, "--email", &email],
                &format!("{name}-Str0ng-Passphrase\n"),
            )
            .await;
        assert_eq!(out.code, 0, "register {name}: {}", out.stderr);
        out
    }

    /// Starts `parley-cli join code` and waits until it is in the meeting.
    pub async fn join(&self, code: &str) -> Joined {
        self.join_with(code, &[]).await
    }

    pub async fn join_with(&self, code: &str, extra: &[&str]) -> Joined {
        self.join_env(code, extra, &[]).await
    }

    pub async fn join_env(&self, code: &str, extra: &[&str], env: &[(&str, &str)]) -> Joined {
        let mut args = vec!["join", code];
        args.extend_from_slice(extra);
        let mut cmd = self.command(&args);
        cmd.envs(env.iter().copied());
        let mut child = cmd.spawn().unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut j = Joined {
            child,
            stdin,
            stdout,
        };
        j.expect_line(|l| l.starts_with("* joined ")).await;
        j
    }
}

pub struct Joined {
    pub child: Child,
    pub stdin: ChildStdin,
    pub stdout: Lines<BufReader<ChildStdout>>,
}

impl Joined {
    pub async fn type_line(&mut self, line: &str) {
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// Reads stdout until a line satisfies `want` (10 s at most); returns it.
    pub async fn expect_line(&mut self, want: impl Fn(&str) -> bool) -> String {
        let mut seen = Vec::new();
        let found = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(line) = self.stdout.next_line().await.unwrap() {
                if want(&line) {
                    return Some(line);
                }
                seen.push(line);
            }
            None
        })
        .await;
        match found {
            Ok(Some(line)) => line,
            _ => panic!("expected line not printed; got {seen:?}"),
        }
    }

    /// Closes stdin, waits for the exit and returns the code and everything on stderr.
    pub async fn finish_with_stderr(mut self) -> (i32, String) {
        use tokio::io::AsyncReadExt as _;
        let mut stderr = self.child.stderr.take().unwrap();
        let code = self.finish().await;
        let mut text = String::new();
        stderr.read_to_string(&mut text).await.unwrap();
        (code, text)
    }

    /// Closes stdin (end of input = leave) and returns the exit code.
    pub async fn finish(mut self) -> i32 {
        drop(self.stdin);
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("join exits within 10 s of end of input")
            .unwrap();
        status.code().unwrap_or(-1)
    }
}

pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}
