//! Generates the Tauri context from the top-level `tauri.conf.json` and declares the app's
//! own commands (the one list, `coachdesk_protocol::COMMANDS`), so capabilities can grant
//! exactly these and nothing else.

fn main() {
    let attributes = tauri_build::Attributes::new()
        .config_path("../tauri.conf.json")
        .app_manifest(tauri_build::AppManifest::new().commands(coachdesk_protocol::COMMANDS));
    if let Err(error) = tauri_build::try_build(attributes) {
        // build scripts report through panics; this message names the file to fix.
        panic!("tauri build step failed (check ../tauri.conf.json and capabilities/): {error:#}");
    }
}
