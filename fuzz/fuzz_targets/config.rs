//! The server's configuration: the TOML file and `PARLEY_*` environment variables, layered
//! over the defaults and checked as `parley-server` does at start (server/src/config.rs).
//! The input is a TOML text, then optionally a line `---` and `KEY=VALUE` lines set as
//! `PARLEY_KEY` for the load. What must hold: no panic; a configuration that loads, written
//! out as TOML and loaded again (with no environment), is the same configuration.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parley_server::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (toml_text, env_text) = text.split_once("\n---\n").unwrap_or((text, ""));
    let mut set = Vec::new();
    for line in env_text.lines().take(16) {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        // What a process environment can hold: no NUL, no '=' in the name.
        if k.is_empty()
            || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            || v.contains('\0')
        {
            continue;
        }
        let key = format!("PARLEY_{k}");
        std::env::set_var(&key, v);
        set.push(key);
    }
    let loaded = Config::from_toml_str(toml_text);
    for key in &set {
        std::env::remove_var(key);
    }
    let Ok(config) = loaded else {
        return;
    };
    let _ = config.database_url();
    let written = toml::to_string(&config).expect("a loaded configuration is writable as TOML");
    let again = Config::from_toml_str(&written)
        .unwrap_or_else(|e| panic!("written configuration refused: {e}\n{written}"));
    assert_eq!(
        serde_json::to_value(&again).expect("writable"),
        serde_json::to_value(&config).expect("writable"),
        "round trip through\n{written}"
    );
});
