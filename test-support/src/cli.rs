//! `parley-cli` as a user or a script runs it: separate processes, each with its own home
//! directory.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// One person at one machine: a home directory of their own, no keychain on the session bus
/// unless the environment provides one.
pub struct User {
    pub home: tempfile::TempDir,
    pub server: String,
    /// The `parley-cli` to run.
    pub bin: PathBuf,
    /// Whether the session's keychain (D-Bus) is handed on; without it the tokens go to a
    /// file in this user's home. Several users sharing one keychain would overwrite each
    /// other's sign-in (the entry is per server).
    pub keychain: bool,
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl User {
    pub fn new(server: &str, bin: impl Into<PathBuf>) -> Self {
        Self {
            home: tempfile::tempdir().unwrap(),
            server: server.to_string(),
            bin: bin.into(),
            keychain: true,
        }
    }

    /// A user whose tokens stay in a file in their home, whatever the environment offers.
    pub fn without_keychain(server: &str, bin: impl Into<PathBuf>) -> Self {
        Self {
            keychain: false,
            ..Self::new(server, bin)
        }
    }

    /// Where `--record-dir` recordings of this user go, by convention.
    pub fn record_dir(&self) -> PathBuf {
        self.home.path().join("rec")
    }

    pub fn config_dir(&self) -> PathBuf {
        self.home.path().join(".config")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
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
        let keychain: &[&str] = if self.keychain {
            &["DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR"]
        } else {
            cmd.env("PARLEY_KEYCHAIN", "off");
            &[]
        };
        for var in keychain.iter().chain(&["PULSE_SERVER"]) {
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
        let mut j = self.start_join_env(code, extra, env);
        j.expect_line(|l| l.starts_with("* joined ")).await;
        j
    }

    /// Starts `parley-cli join code extra…` without waiting (a waiting room may come first).
    pub fn start_join(&self, code: &str, extra: &[&str]) -> Joined {
        self.start_join_env(code, extra, &[])
    }

    fn start_join_env(&self, code: &str, extra: &[&str], env: &[(&str, &str)]) -> Joined {
        let mut args = vec!["join", code];
        args.extend_from_slice(extra);
        let mut cmd = self.command(&args);
        cmd.envs(env.iter().copied());
        let mut child = cmd.spawn().unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Joined {
            child,
            stdin,
            stdout,
            seen: Vec::new(),
        }
    }
}

pub struct Joined {
    pub child: Child,
    pub stdin: ChildStdin,
    pub stdout: Lines<BufReader<ChildStdout>>,
    /// Every line read so far.
    pub seen: Vec<String>,
}

impl Joined {
    pub async fn type_line(&mut self, line: &str) {
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// Reads stdout until a new line satisfies `want` (15 s at most); returns it.
    pub async fn expect_line(&mut self, want: impl Fn(&str) -> bool) -> String {
        let from = self.seen.len();
        let found = tokio::time::timeout(Duration::from_secs(15), async {
            while let Ok(Some(line)) = self.stdout.next_line().await {
                self.seen.push(line.clone());
                if want(&line) {
                    return Some(line);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(line)) => line,
            _ => panic!("expected line not printed; got {:?}", &self.seen[from..]),
        }
    }

    /// Like [`Joined::expect_line`], but a line printed earlier counts too.
    pub async fn expect_seen(&mut self, want: impl Fn(&str) -> bool) -> String {
        if let Some(l) = self.seen.iter().find(|l| want(l)) {
            return l.clone();
        }
        self.expect_line(want).await
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

/// A file's Unix permission bits (there are none on Windows, where the user's profile's ACL
/// guards their files).
#[cfg(unix)]
pub fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}
