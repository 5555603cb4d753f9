//! Replays the saved fuzzing corpus (`fuzz/corpus/<target>/`) through every fuzz target
//! on the stable toolchain, so the suite catches a regression on any input the fuzzer
//! once found interesting. The fuzzing itself runs with cargo-fuzz (see fuzz/README.md).

use std::path::PathBuf;

#[test]
fn every_saved_input_passes_its_target() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    for (name, target) in coachdesk_relay::fuzzing::TARGETS {
        let dir = root.join(name);
        let entries =
            std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()));
        let mut replayed = 0;
        for entry in entries {
            let path = entry.expect("dir entry").path();
            let data = std::fs::read(&path).expect("read input");
            let run = std::panic::catch_unwind(|| target(&data));
            assert!(run.is_ok(), "{name} panics on {}", path.display());
            replayed += 1;
        }
        assert!(replayed > 0, "no saved inputs for {name}");
    }
}
