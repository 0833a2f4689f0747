//! Embeds the browser client (`ui/dist-web`, built by `scripts/ui.sh`) in the server binary:
//! one binary serves the API, the invite pages and the web app. Without a built client the
//! table is empty and `/web/` says how to build it.

use std::path::{Path, PathBuf};

fn files(dir: &Path, root: &Path, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            files(&path, root, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            let rel = rel.to_string_lossy().replace('\\', "/");
            out.push((rel, path));
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let dist = manifest.join("../ui/dist-web");
    println!("cargo:rerun-if-changed={}", dist.display());
    let mut found = Vec::new();
    files(&dist, &dist, &mut found);
    found.sort();
    let mut code = String::from("pub static FILES: &[(&str, &[u8])] = &[\n");
    for (rel, path) in &found {
        code.push_str(&format!(
            "    ({rel:?}, include_bytes!({:?})),\n",
            path.canonicalize()
                .unwrap_or(path.clone())
                .display()
                .to_string()
        ));
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("web_files.rs");
    std::fs::write(out, code)?;
    Ok(())
}
