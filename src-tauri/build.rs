fn main() {
    // The built front end is embedded at compile time: rebuild when it changes.
    println!("cargo:rerun-if-changed=../ui/dist");
    tauri_build::build();
}
