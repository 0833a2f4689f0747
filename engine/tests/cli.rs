//! `parley-cli` as a user or a script runs it: separate processes, each with its own home
//! directory, against a real server on port 0. Two `join` processes chat with each other.
// Linux: each participant's files are kept apart through HOME and XDG_CONFIG_HOME, the
// microphone and speaker tests need PulseAudio, the keychain test the Secret Service.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::cli::{mode, user, world, world_with, World};
use tokio::process::Command;

#[tokio::test]
async fn two_cli_processes_meet_and_chat() {
    let mut w = world().await;
    let ann = user(&w.base);
    let bob = user(&w.base);
    let out = ann.register("ann").await;
    bob.register("bob").await;
    // No keychain on this bus: the tokens went to a private file, and the user is told.
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
        let file = ann.config_dir().join("parley/credentials.json");
        assert!(
            out.stderr.contains("no OS keychain reachable")
                && out.stderr.contains(file.to_str().unwrap()),
            "{}",
            out.stderr
        );
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(file.parent().unwrap()), 0o700);
    }
    assert!(
        ann.ok(&["whoami"], "")
            .await
            .starts_with("ann (ann@example.org)"),
        "whoami"
    );

    let code = ann.ok(&["meetings", "create", "Standup"], "").await;
    let code = code.trim().to_string();
    assert_eq!(code.len(), 14, "a meeting code: {code:?}");
    assert!(ann.ok(&["meetings", "list"], "").await.contains(&code));
    let show = ann.ok(&["meetings", "show", &code], "").await;
    assert!(show.contains("title:        Standup") && show.contains("your role:    host"));

    let mut a = ann.join(&code).await;
    let mut b = bob.join(&code).await;
    a.expect_line(|l| l == "* bob joined").await;
    a.type_line("hello bob").await;
    b.expect_line(|l| l == "ann: hello bob").await;
    b.type_line("hi ann, all good").await;
    a.expect_line(|l| l == "bob: hi ann, all good").await;
    b.type_line("/hand").await;
    a.expect_line(|l| l == "* bob raised a hand").await;
    assert_eq!(b.finish().await, 0, "end of input leaves cleanly");
    a.expect_line(|l| l == "* bob left").await;
    assert_eq!(a.finish().await, 0);

    // The history, in order, for both participants.
    let want = "#1 ann: hello bob\n#2 bob: hi ann, all good\n";
    assert_eq!(ann.ok(&["history", &code], "").await, want);
    assert_eq!(bob.ok(&["history", &code], "").await, want);
    let json = bob.ok(&["--json", "history", &code], "").await;
    let first: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(
        (first["seq"].as_i64(), first["text"].as_str()),
        (Some(1), Some("hello bob"))
    );

    // The host ends it from the meeting; a latecomer is told it is over (exit 6).
    let mut a = ann.join(&code).await;
    a.type_line("/end").await;
    a.expect_line(|l| l == "* the meeting has ended").await;
    assert_eq!(a.finish().await, 0, "ending it yourself is a normal exit");
    let late = bob.run(&["join", &code], "").await;
    assert_eq!(late.code, 6, "{}", late.stderr);
    assert!(
        late.stderr.contains("parley-cli: meeting_ended:"),
        "{}",
        late.stderr
    );
    w.stop().await;
}

#[tokio::test]
async fn a_host_hands_out_personal_links_and_sees_who_used_them() {
    let mut w = world().await;
    let ann = user(&w.base);
    ann.register("ann").await;
    let code = ann.ok(&["meetings", "create", "Interviews"], "").await;
    let code = code.trim().to_string();
    let link = ann
        .ok(&["meetings", "link", &code, "Dana", "--single-use"], "")
        .await;
    // The secret is in the fragment, which a browser never sends.
    let prefix = format!("{}/j/{code}#g=", w.base);
    let token = link
        .trim()
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{link:?} is not a {prefix}… link"));
    let http = reqwest::Client::new();
    let enter = || {
        http.post(format!("{}/api/guests", w.base))
            .json(&serde_json::json!({"code": code, "display_name": "Dana", "link_token": token}))
            .send()
    };
    assert_eq!(enter().await.unwrap().status().as_u16(), 201);
    let again = enter().await.unwrap();
    assert_eq!(again.status().as_u16(), 403);
    assert!(again.text().await.unwrap().contains("guest_link_used"));
    let links = ann.ok(&["meetings", "links", &code], "").await;
    let line = links
        .lines()
        .find(|l| l.ends_with("Dana"))
        .unwrap_or_default();
    assert!(
        line.contains("used") && line.contains("single-use") && line.contains("entered   1"),
        "{links}"
    );
    assert_eq!(
        ann.ok(&["meetings", "guests", &code, "on"], "")
            .await
            .trim(),
        format!("guests allowed for {code}")
    );
    w.stop().await;
}

#[tokio::test]
async fn a_meeting_outlives_its_access_tokens() {
    // The server ends a socket when its access token expires unless the client
    // re-authenticates on it; the engine does so when asked, without reconnecting.
    let mut w = world_with(|c| c.access_token_ttl_secs = 3).await;
    let ann = user(&w.base);
    let bob = user(&w.base);
    ann.register("ann").await;
    bob.register("bob").await;
    let code = ann.ok(&["meetings", "create", "Long one"], "").await;
    let code = code.trim().to_string();
    let mut a = ann.join(&code).await;
    let mut b = bob.join(&code).await;
    a.expect_line(|l| l == "* bob joined").await;
    // Three token lifetimes.
    tokio::time::sleep(Duration::from_secs(9)).await;
    a.type_line("still with me?").await;
    b.expect_line(|l| l == "ann: still with me?").await;
    let (code_b, err_b) = b.finish_with_stderr().await;
    let (code_a, err_a) = a.finish_with_stderr().await;
    assert_eq!((code_a, code_b), (0, 0), "{err_a}\n{err_b}");
    for err in [err_a, err_b] {
        assert!(!err.contains("reconnecting"), "the socket was lost: {err}");
    }
    w.stop().await;
}

#[tokio::test]
async fn exit_codes_and_errors_a_script_can_rely_on() {
    let mut w = world().await;
    let ann = user(&w.base);
    let carol = user(&w.base);

    // 3: not signed in; wrong password.
    let out = carol.run(&["whoami"], "").await;
    assert_eq!(out.code, 3);
    assert!(
        out.stderr.starts_with("parley-cli: not_signed_in:"),
        "{}",
        out.stderr
    );
    ann.register("ann").await;
    let out = carol.run(&["login", "ann"], "not-the-password\n").await;
    assert_eq!(out.code, 3);
    assert!(
        out.stderr.starts_with("parley-cli: invalid_credentials:"),
        "{}",
        out.stderr
    );
    // 0: the right one, then carol is ann on her machine too.
    carol
        .ok(&["login", "ann@example.org"], "ann-Str0ng-Passphrase\n")
        .await;
    assert!(carol.ok(&["whoami"], "").await.starts_with("ann "));
    carol.ok(&["logout"], "").await;
    assert_eq!(carol.run(&["whoami"], "").await.code, 3, "logout forgets");
    carol.register("carol").await;

    // 4: refused by the server, with its code: weak password, someone else's meeting.
    let out = user(&w.base)
        .run(
            &[
                "register",
                "--username",
                "dave",
                "--email",
                "dave@example.org",
            ],
            "password\n",
        )
        .await;
    assert_eq!(out.code, 4);
    assert!(
        out.stderr.starts_with("parley-cli: password_"),
        "{}",
        out.stderr
    );
    let code = ann.ok(&["meetings", "create", "Private"], "").await;
    let code = code.trim();
    let out = carol.run(&["history", code], "").await;
    assert_eq!(out.code, 4);
    assert!(
        out.stderr.starts_with("parley-cli: not_participant:"),
        "{}",
        out.stderr
    );
    let out = carol.run(&["meetings", "end", code], "").await;
    assert_eq!(out.code, 4, "{}", out.stderr);
    let out = carol.run(&["meetings", "show", "bcdf-ghjk-mnpq"], "").await;
    assert_eq!(out.code, 4);
    assert!(
        out.stderr.starts_with("parley-cli: meeting_not_found:"),
        "{}",
        out.stderr
    );

    // 2: usage.
    assert_eq!(carol.run(&["join", "not a code"], "").await.code, 2);
    assert_eq!(carol.run(&["frobnicate"], "").await.code, 2);

    // 4 for a refused join (passcode), 6 once the meeting is over.
    let locked = ann
        .ok(
            &[
                "meetings",
                "create",
                "Guarded",
                "--passcode",
                "4321-guarded",
            ],
            "",
        )
        .await;
    let out = carol.run(&["join", locked.trim()], "").await;
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(out.stderr.contains("passcode"), "{}", out.stderr);
    ann.ok(&["meetings", "end", code], "").await;
    let out = ann.run(&["join", code], "").await;
    assert_eq!(out.code, 6, "{}", out.stderr);

    // 5: nobody listening.
    let nowhere = user("http://127.0.0.1:9");
    let out = nowhere.run(&["login", "ann"], "x\n").await;
    assert_eq!(out.code, 5);
    assert!(
        out.stderr.starts_with("parley-cli: unreachable:"),
        "{}",
        out.stderr
    );

    // The stored tokens never reach the output.
    let file = std::fs::read_to_string(ann.config_dir().join("parley/credentials.json"))
        .unwrap_or_default();
    if let Some(at) = file.find("\"access_token\": \"") {
        let token = &file[at + 17..at + 40];
        let all = ann.run(&["meetings", "list"], "").await;
        assert!(!all.stdout.contains(token) && !all.stderr.contains(token));
    }
    w.stop().await;
}

/// Run by `scripts/test.sh` inside `dbus-run-session` with a throwaway, unlocked
/// gnome-keyring (`PARLEY_TEST_KEYCHAIN=1`): the tokens go to the Secret Service, not a file.
#[tokio::test]
async fn tokens_live_in_the_keychain_when_one_answers() {
    if std::env::var("PARLEY_TEST_KEYCHAIN").as_deref() != Ok("1") {
        eprintln!("no throwaway keychain in this environment; scripts/test.sh runs this test");
        return;
    }
    assert!(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "PARLEY_TEST_KEYCHAIN=1 needs a session bus"
    );
    let mut w = world().await;
    let erin = user(&w.base);
    let out = erin.register("erin").await;
    assert!(
        out.stderr.contains("tokens kept in the OS keychain"),
        "{}",
        out.stderr
    );
    assert!(
        !erin.config_dir().join("parley/credentials.json").exists(),
        "nothing on disk"
    );
    // A new process finds the sign-in in the keychain.
    assert!(erin.ok(&["whoami"], "").await.starts_with("erin "));
    erin.ok(&["logout"], "").await;
    assert_eq!(erin.run(&["whoami"], "").await.code, 3, "logout removes it");
    w.stop().await;
}

/// `parley-cli.exe`, built for Windows (x86_64-pc-windows-gnu) and run under Wine by
/// `scripts/wine-tests.sh` (`PARLEY_TEST_WINE_CLI` names a launcher for it), against this
/// Linux server and a Linux `parley-cli`: it registers (its tokens in Windows' Credential
/// Manager), creates a meeting and chats both ways, each run a Windows process.
#[tokio::test]
async fn a_windows_cli_under_wine_registers_creates_and_chats() {
    let Some(exe) = std::env::var_os("PARLEY_TEST_WINE_CLI") else {
        eprintln!("no Windows parley-cli here; scripts/wine-tests.sh runs this test");
        return;
    };
    let mut w = world().await;
    let win = common::cli::User::new(&w.base, exe);
    let bob = user(&w.base);
    let out = win.register("winnie").await;
    assert!(
        out.stderr.contains("tokens kept in the OS keychain"),
        "Windows' Credential Manager holds the tokens: {}",
        out.stderr
    );
    bob.register("bob").await;
    // A new Windows process finds the sign-in where the last one left it.
    assert!(
        win.ok(&["whoami"], "")
            .await
            .starts_with("winnie (winnie@example.org)"),
        "whoami"
    );
    let code = win.ok(&["meetings", "create", "From Windows"], "").await;
    let code = code.trim().to_string();
    assert_eq!(code.len(), 14, "a meeting code: {code:?}");
    let show = win.ok(&["meetings", "show", &code], "").await;
    assert!(
        show.contains("title:        From Windows") && show.contains("your role:    host"),
        "{show}"
    );

    let mut a = win.join(&code).await;
    let mut b = bob.join(&code).await;
    a.expect_line(|l| l == "* bob joined").await;
    a.type_line("hello from windows").await;
    b.expect_line(|l| l == "winnie: hello from windows").await;
    b.type_line("hello from linux").await;
    a.expect_line(|l| l == "bob: hello from linux").await;
    assert_eq!(b.finish().await, 0, "end of input leaves cleanly");
    a.expect_line(|l| l == "* bob left").await;
    assert_eq!(a.finish().await, 0);
    assert_eq!(
        win.ok(&["history", &code], "").await,
        "#1 winnie: hello from windows\n#2 bob: hello from linux\n"
    );
    win.ok(&["logout"], "").await;
    assert_eq!(win.run(&["whoami"], "").await.code, 3, "logout removes it");
    w.stop().await;
}

/// The server restarts under two `join` processes: both come back by themselves, and a chat
/// line typed while the server was down is delivered once, and stored once.
#[tokio::test]
async fn join_rides_out_a_server_restart() {
    let mut w = world().await;
    let ann = user(&w.base);
    let bob = user(&w.base);
    ann.register("ann").await;
    bob.register("bob").await;
    let code = ann.ok(&["meetings", "create", "Bumpy"], "").await;
    let code = code.trim().to_string();
    let mut a = ann.join(&code).await;
    let mut b = bob.join(&code).await;
    a.expect_line(|l| l == "* bob joined").await;

    w.stop().await;
    a.expect_line(|l| l == "* the server is restarting").await;
    b.expect_line(|l| l == "* the server is restarting").await;
    a.type_line("typed while the server was down").await;
    w.restart().await;

    a.expect_line(|l| l == format!("* back in {code}")).await;
    b.expect_line(|l| l == format!("* back in {code}")).await;
    b.expect_line(|l| l == "ann: typed while the server was down")
        .await;
    b.type_line("welcome back").await;
    a.expect_line(|l| l == "bob: welcome back").await;
    assert_eq!(b.finish().await, 0);
    assert_eq!(a.finish().await, 0);
    assert_eq!(
        bob.ok(&["history", &code], "").await,
        "#1 ann: typed while the server was down\n#2 bob: welcome back\n"
    );
    w.stop().await;
}

/// Two CLI participants send synthetic video and tones to each other over WebRTC and record
/// what they receive: the recordings hold the other's stamped frames and the other's tone.
#[tokio::test]
async fn cli_participants_exchange_and_record_media() {
    let mut w = world().await;
    let ann = user(&w.base);
    let bob = user(&w.base);
    ann.register("ann").await;
    bob.register("bob").await;
    let code = ann.ok(&["meetings", "create", "Media"], "").await;
    let code = code.trim().to_string();
    let (ann_rec, bob_rec) = (ann.home.path().join("rec"), bob.home.path().join("rec"));
    let media = |tone: &'static str, dir: &Path| {
        vec![
            "--camera".to_string(),
            "synthetic".into(),
            "--mic".into(),
            tone.into(),
            "--record-dir".into(),
            dir.to_str().unwrap().into(),
            "--loopback-only".into(),
        ]
    };
    let a_args = media("tone:500", &ann_rec);
    let b_args = media("tone:1300", &bob_rec);
    let a_refs: Vec<&str> = a_args.iter().map(String::as_str).collect();
    let b_refs: Vec<&str> = b_args.iter().map(String::as_str).collect();
    let mut a = ann.join_with(&code, &a_refs).await;
    let b = bob.join_with(&code, &b_refs).await;
    a.expect_line(|l| l == "* bob joined").await;
    // Debug builds of two 640×480 participants share two cores with the other tests here.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(b.finish().await, 0);
    assert_eq!(a.finish().await, 0);

    for (dir, from, tone, other_tone) in [
        (&ann_rec, "bob", 1300.0, 500.0),
        (&bob_rec, "ann", 500.0, 1300.0),
    ] {
        let csv = std::fs::read_to_string(dir.join("frames.csv")).unwrap();
        let frames: Vec<u32> = csv
            .lines()
            .skip(1)
            .filter(|l| l.starts_with(&format!("{from},camera,")))
            .filter_map(|l| l.split(',').nth(2)?.parse().ok())
            .collect();
        assert!(frames.len() >= 60, "{} frames from {from}", frames.len());
        assert!(frames.windows(2).all(|w| w[1] > w[0]), "in order");
        assert!(std::fs::read_dir(dir).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".pgm")));
        let samples: Vec<f32> = hound::WavReader::open(dir.join(format!("{from}.wav")))
            .unwrap()
            .into_samples::<i16>()
            .map(|s| f32::from(s.unwrap()) / 32768.0)
            .collect();
        assert!(samples.len() >= 48_000 * 2, "{} samples", samples.len());
        let strength = parley_engine::media::audio::tone_strength;
        assert!(
            strength(&samples, tone, 20.0) > 0.5,
            "{from}'s tone recorded"
        );
        assert!(
            strength(&samples, other_tone, 20.0) < 0.05,
            "no echo of our own"
        );
    }
    w.stop().await;
}

/// A participant's process is killed mid-call (SIGKILL, no goodbye): the other two keep
/// their call going and, once the grace period is over, see it leave.
#[tokio::test]
async fn a_killed_participant_leaves_the_others_talking() {
    let mut w = world_with(|c| c.reconnect_grace_secs = 2).await;
    let names = ["ann", "bob", "cat"];
    let users: Vec<common::cli::User> = names.iter().map(|_| user(&w.base)).collect();
    for (u, n) in users.iter().zip(names) {
        u.register(n).await;
    }
    let code = users[0].ok(&["meetings", "create", "Survivors"], "").await;
    let code = code.trim().to_string();
    let rec = |i: usize| users[i].home.path().join("rec");
    let mut procs = Vec::new();
    for (i, tone) in ["tone:500", "tone:800", "tone:1200"].iter().enumerate() {
        let dir = rec(i);
        let args = [
            "--camera",
            "synthetic",
            "--mic",
            tone,
            "--record-dir",
            dir.to_str().unwrap(),
            "--loopback-only",
        ];
        procs.push(users[i].join_with(&code, &args).await);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut cat = procs.pop().unwrap();
    cat.child.start_kill().unwrap();
    let killed_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    cat.child.wait().await.unwrap();
    for p in procs.iter_mut() {
        p.expect_line(|l| l == "* cat left").await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut bob = procs.pop().unwrap();
    let ann = procs.pop().unwrap();
    bob.type_line("still here").await;
    assert_eq!(ann.finish().await, 0);
    assert_eq!(bob.finish().await, 0);

    // Frames from each survivor kept arriving at the other well after the kill; cat's stopped.
    for (i, other) in [(0, "bob"), (1, "ann")] {
        let csv = std::fs::read_to_string(rec(i).join("frames.csv")).unwrap();
        let captured_after = |from: &str| {
            csv.lines()
                .skip(1)
                .filter(|l| l.starts_with(&format!("{from},camera,")))
                .filter_map(|l| l.split(',').nth(3)?.parse::<u64>().ok())
                .filter(|t| *t > killed_at + 1000)
                .count()
        };
        assert!(
            captured_after(other) >= 30,
            "{} frames from {other} after the kill",
            captured_after(other)
        );
        assert_eq!(captured_after("cat"), 0, "nothing from the dead peer");
    }
    w.stop().await;
}

/// Records `seconds` of a PulseAudio source as 48 kHz mono samples.
async fn record_pulse(source: &str, seconds: f32) -> Vec<f32> {
    let mut child = Command::new("parec")
        .args([
            "-d",
            source,
            "--rate=48000",
            "--channels=1",
            "--format=s16le",
            "--latency-msec=20",
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("parec (pulseaudio-utils)");
    let mut out = child.stdout.take().unwrap();
    let want = (48_000.0 * seconds) as usize * 2;
    let mut bytes = vec![0u8; want];
    use tokio::io::AsyncReadExt as _;
    tokio::time::timeout(
        Duration::from_secs_f32(seconds + 5.0),
        out.read_exact(&mut bytes),
    )
    .await
    .expect("recording in time")
    .unwrap();
    child.start_kill().ok();
    bytes
        .chunks_exact(2)
        .map(|c| f32::from(i16::from_le_bytes([c[0], c[1]])) / 32768.0)
        .collect()
}

/// The real audio path, run by `scripts/test.sh` inside `scripts/pulse.sh` (a private
/// PulseAudio with null sinks for speakers and virtual mics): a 660 Hz tone played into Ann's
/// virtual microphone is captured by cpal, sent, decoded by Bob and played on Bob's virtual
/// speaker, where it is recorded and found.
#[tokio::test]
async fn a_tone_into_one_microphone_comes_out_of_the_other_speaker() {
    if std::env::var("PARLEY_TEST_PULSE").as_deref() != Ok("1") {
        eprintln!("no private PulseAudio here; scripts/test.sh runs this test in scripts/pulse.sh");
        return;
    }
    let mut w = world().await;
    let (ann, bob) = (user(&w.base), user(&w.base));
    ann.register("ann").await;
    bob.register("bob").await;
    let code = ann.ok(&["meetings", "create", "Sound check"], "").await;
    let code = code.trim().to_string();
    let sine = std::process::Command::new("pactl")
        .args([
            "load-module",
            "module-sine",
            "sink=micfeed_a",
            "frequency=660",
        ])
        .output()
        .expect("pactl");
    assert!(
        sine.status.success(),
        "{}",
        String::from_utf8_lossy(&sine.stderr)
    );

    let mut a = ann
        .join_env(
            &code,
            &["--mic", "default", "--loopback-only"],
            &[("PULSE_SOURCE", "virtmic_a"), ("PULSE_SINK", "spk_a")],
        )
        .await;
    let b = bob
        .join_env(
            &code,
            &["--speaker", "default", "--loopback-only"],
            &[("PULSE_SOURCE", "virtmic_b"), ("PULSE_SINK", "spk_b")],
        )
        .await;
    a.expect_line(|l| l == "* bob joined").await;
    // Connect, and let cpal's first input callback arrive (it can take about a second).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let at_bob = record_pulse("spk_b.monitor", 3.0).await;
    let at_ann = record_pulse("spk_a.monitor", 1.0).await;
    // Hot-swap mid-call: Ann reopens her microphone and Bob his speaker (the device a user
    // picks from `devices`; here the only route there is), and the tone keeps coming.
    let mut b = b;
    let streams = || {
        let list = |what: &str| -> Vec<String> {
            let out = std::process::Command::new("pactl")
                .args(["list", "short", what])
                .output()
                .expect("pactl");
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
                .collect()
        };
        (list("source-outputs"), list("sink-inputs"))
    };
    let before = streams();
    a.type_line("/mic default").await;
    b.type_line("/speaker default").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = streams();
    let replaced = |old: &[String], new: &[String]| {
        old.iter().any(|id| !new.contains(id)) && new.iter().any(|id| !old.contains(id))
    };
    assert!(
        replaced(&before.0, &after.0),
        "Ann's microphone stream was reopened: {before:?} {after:?}"
    );
    assert!(
        replaced(&before.1, &after.1),
        "Bob's speaker stream was reopened: {before:?} {after:?}"
    );
    let after_swap = record_pulse("spk_b.monitor", 2.0).await;
    assert_eq!(b.finish().await, 0);
    assert_eq!(a.finish().await, 0);

    let strength = parley_engine::media::audio::tone_strength;
    let rms = parley_engine::media::audio::rms;
    eprintln!(
        "pulse path: 660 Hz at Bob's speaker strength {:.2}, rms {:.3}; Ann's speaker rms {:.4}",
        strength(&at_bob, 660.0, 15.0),
        rms(&at_bob),
        rms(&at_ann)
    );
    assert!(rms(&at_bob) > 0.01, "Bob's speaker plays something");
    assert!(strength(&at_bob, 660.0, 15.0) > 0.5, "and it is Ann's tone");
    assert!(rms(&at_ann) < 0.001, "Ann's own speaker stays silent");
    let swapped = strength(&after_swap, 660.0, 15.0);
    eprintln!("after switching devices mid-call: strength {swapped:.2}");
    assert!(swapped > 0.5, "the tone survives switching mic and speaker");
    w.stop().await;
}

/// One echo measurement: Ann's tone plays on Bob's speaker, a PulseAudio loopback carries
/// Bob's speaker into Bob's microphone (the room), and Ann records what comes back from Bob.
/// Returns, over one second of the second half of Bob's stream at Ann, the level of Ann's
/// 660 Hz (the echo) and of Bob's 300 Hz voice.
async fn echo_back_to_ann(w: &World, bob_args: &[&str]) -> (f32, f32) {
    let (ann, bob) = (user(&w.base), user(&w.base));
    let suffix = ulid::Ulid::new().to_string().to_lowercase();
    let (an, bn) = (
        format!("ann{}", &suffix[20..]),
        format!("bob{}", &suffix[20..]),
    );
    ann.register(&an).await;
    bob.register(&bn).await;
    let code = ann.ok(&["meetings", "create", "Echo"], "").await;
    let code = code.trim().to_string();
    let rec = ann.home.path().join("rec");
    let mut a = ann
        .join_env(
            &code,
            &[
                "--mic",
                "default",
                "--raw-mic",
                "--record-dir",
                rec.to_str().unwrap(),
                "--loopback-only",
            ],
            &[("PULSE_SOURCE", "virtmic_a"), ("PULSE_SINK", "spk_a")],
        )
        .await;
    // Bob talks: 300 Hz in 240 ms bursts (speech-like; a steady tone is noise to the
    // suppressor), played into his microphone feed.
    let voice = bob.home.path().join("voice.wav");
    {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 48_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut wav = hound::WavWriter::create(&voice, spec).unwrap();
        let mut tone = parley_engine::media::audio::Tone::new(300.0, 0.3);
        // 30 s: longer than the call however slowly Bob starts (at 14 s a slow start in CI
        // let the voice end inside the measured half: -14.7 dB "lost").
        for i in 0..(30 * 50) {
            let frame = tone.next_frame();
            let on = (i / 12) % 2 == 0;
            for s in frame {
                wav.write_sample(if on { (s * 32767.0) as i16 } else { 0 })
                    .unwrap();
            }
        }
        wav.finalize().unwrap();
    }
    let mut talking = Command::new("paplay")
        .args(["-d", "micfeed_b", voice.to_str().unwrap()])
        .kill_on_drop(true)
        .spawn()
        .expect("paplay");
    let mut args = vec![
        "--mic",
        "default",
        "--speaker",
        "default",
        "--loopback-only",
    ];
    args.extend_from_slice(bob_args);
    let b = bob
        .join_env(
            &code,
            &args,
            &[("PULSE_SOURCE", "virtmic_b"), ("PULSE_SINK", "spk_b")],
        )
        .await;
    a.expect_line(|l| l == format!("* {bn} joined")).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(b.finish().await, 0);
    assert_eq!(a.finish().await, 0);
    talking.start_kill().ok();
    let samples: Vec<f32> = hound::WavReader::open(rec.join(format!("{bn}.wav")))
        .unwrap()
        .into_samples::<i16>()
        .map(|s| f32::from(s.unwrap()) / 32768.0)
        .collect();
    assert!(
        samples.len() > 48_000 * 4,
        "{} samples from Bob",
        samples.len()
    );
    // Each second of the second half (after the canceller has converged): the loudest echo
    // (the worst a listener hears; PulseAudio's loopback can take a while to carry it) and
    // the median voice.
    let level = |hz: f32| -> Vec<f32> {
        samples[samples.len() / 2..]
            .chunks_exact(48_000)
            .map(|s| parley_engine::media::audio::tone_level(s, hz, 3.0))
            .collect()
    };
    let echo = level(660.0).into_iter().fold(0.0f32, f32::max);
    let mut voice = level(300.0);
    voice.sort_by(f32::total_cmp);
    (echo, voice.get(voice.len() / 2).copied().unwrap_or(0.0))
}

/// The echo half of the real audio path (run inside scripts/pulse.sh): with Bob's echo
/// cancellation off, Ann hears her own tone come back; with it on, far less.
#[tokio::test]
async fn echo_cancellation_keeps_the_speaker_out_of_the_microphone() {
    if std::env::var("PARLEY_TEST_PULSE").as_deref() != Ok("1") {
        eprintln!("no private PulseAudio here; scripts/test.sh runs this test in scripts/pulse.sh");
        return;
    }
    let mut w = world().await;
    let pactl = |args: &[&str]| {
        let out = std::process::Command::new("pactl")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    pactl(&[
        "load-module",
        "module-sine",
        "sink=micfeed_a",
        "frequency=660",
    ]);
    // The room: Bob's speaker leaks into Bob's microphone.
    pactl(&[
        "load-module",
        "module-loopback",
        "source=spk_b.monitor",
        "sink=micfeed_b",
        "latency_msec=40",
    ]);
    let (echo_raw, voice_raw) = echo_back_to_ann(&w, &["--raw-mic"]).await;
    let (echo_aec, voice_aec) = echo_back_to_ann(&w, &[]).await;
    let db = |x: f32, y: f32| 20.0 * (x.max(1e-6) / y.max(1e-6)).log10();
    eprintln!(
        "echo at Ann: 660 Hz echo {echo_raw:.4} without processing, {echo_aec:.5} with echo \
         cancellation (+ noise suppression, gain control) = {:.1} dB less; Bob's 300 Hz voice \
         {voice_raw:.4} / {voice_aec:.4} ({:+.1} dB)",
        db(echo_raw, echo_aec),
        db(voice_aec, voice_raw)
    );
    // The echo's raw level depends on how soon PulseAudio's loopback carries it (0.028 in a
    // loaded CI run on 2026-12-06, more when quiet); a level ten times the noise floor (about
    // 1e-4 here) is an echo, and the cancellation is judged by the ratio below.
    assert!(
        echo_raw > 0.01,
        "without cancellation the echo really comes back ({echo_raw})"
    );
    assert!(voice_raw > 0.02, "Bob's voice reaches Ann ({voice_raw})");
    assert!(
        db(echo_raw, echo_aec) >= 20.0,
        "echo cancellation removes at least 20 dB"
    );
    assert!(db(voice_aec, voice_raw) >= -10.0, "and keeps Bob's voice");
    w.stop().await;
}
