//! Replays every fuzz target's corpus (`fuzz/corpus/<target>/`) and its crash
//! regressions (`fuzz/regressions/<target>/`, when there are any) through the
//! same checks the cargo-fuzz targets run, on stable Rust. A corpus with fewer
//! than 10 inputs fails: a replay that checks almost nothing is not a test.

use std::path::{Path, PathBuf};

/// The fewest inputs a target's corpus may hold.
const MIN_CORPUS: usize = 10;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files in `dir`, sorted by name (none when it does not exist).
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("read a corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `check` on every input, naming the file of any that panics.
fn replay(target: &str, check: utcp_wire_fuzz::Check, files: &[PathBuf]) {
    for file in files {
        let data = std::fs::read(file).expect("read a corpus input");
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            panic!(
                "{target}: {} fails its check (reproduce: cargo +nightly fuzz run {target} {})",
                file.display(),
                file.display()
            );
        }
    }
}

#[test]
fn every_target_has_a_corpus_of_at_least_ten_inputs_and_each_input_passes_its_check() {
    let mut total = 0;
    for &(target, check) in utcp_wire_fuzz::TARGETS {
        let dir = fuzz_dir().join("corpus").join(target);
        let files = inputs(&dir);
        assert!(
            files.len() >= MIN_CORPUS,
            "{target}: {} holds {} inputs, fewer than {MIN_CORPUS} (run `cargo +nightly fuzz run {target}` and `cargo fuzz cmin {target}` in fuzz/)",
            dir.display(),
            files.len()
        );
        replay(target, check, &files);
        let regressions = inputs(&fuzz_dir().join("regressions").join(target));
        replay(target, check, &regressions);
        total += files.len() + regressions.len();
    }
    eprintln!("replayed {total} corpus inputs");
}

#[test]
fn every_target_directory_is_a_known_target() {
    let known: Vec<&str> = utcp_wire_fuzz::TARGETS.iter().map(|t| t.0).collect();
    let targets = std::fs::read_dir(fuzz_dir().join("fuzz_targets")).expect("fuzz/fuzz_targets");
    let mut n = 0;
    for entry in targets {
        let path = entry.expect("read fuzz_targets").path();
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("a target name");
        assert!(known.contains(&name), "fuzz target {name} is not replayed");
        n += 1;
    }
    assert_eq!(n, known.len(), "every replayed target has a fuzz target");
}
