//! Property-based fuzzing of the space-file reader: every example space file, mutated (bytes
//! flipped, cut, TOML fragments inserted, numbers replaced by extreme values) and read for every
//! backend, never panics; a refusal names the file; whatever is accepted has a valid catalogue
//! with positive finite prices. Seeded and bounded, so `cargo test` runs the same cases every
//! time.

use std::path::{Path, PathBuf};

use launch::spacefile::{parse, BackendKind, LoadOptions};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunConfig, RngAlgorithm, TestRng, TestRunner};

fn runner(seed: u8, cases: u32) -> TestRunner {
    let config = RunConfig {
        cases,
        failure_persistence: None,
        ..RunConfig::default()
    };
    TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]),
    )
}

/// The space files users start from: every file in examples/.
fn examples() -> Vec<(PathBuf, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut files: Vec<(PathBuf, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect();
    files.sort();
    assert!(files.len() >= 4, "examples/ holds a space file per backend");
    files
}

/// TOML fragments that stress the reader: numbers at the edges of their types, wrong types,
/// structure, duplicate keys and tables, and unusual characters.
const TOKENS: &[&str] = &[
    "1e20",
    "-1",
    "0",
    "9007199254740993",
    "nan",
    "inf",
    "1.5",
    "\"\"",
    "[]",
    "{}",
    "[[catalogue.machine]]\n",
    "[catalogue]\n",
    "\ncount = \"workers\"\n",
    "\nmax_runtime_s = 1e300\n",
    "\nworkers = [1, 1]\n",
    "=",
    "\"",
    "'''",
    "\n",
    "\u{feff}",
    "\u{0}",
    "\\u0000",
];

/// Applies edits to `base`: (kind, position, byte, token index). Positions are moved to the
/// nearest character boundary, so the text stays UTF-8 as a file read from disk must.
fn mutate(base: &str, edits: &[(u8, usize, u8, usize)]) -> String {
    let mut out = base.to_string();
    for &(kind, pos, byte, token) in edits {
        let mut at = pos % (out.len() + 1);
        while !out.is_char_boundary(at) {
            at -= 1;
        }
        let end = {
            let mut e = (at + 1 + usize::from(byte % 24)).min(out.len());
            while !out.is_char_boundary(e) {
                e -= 1;
            }
            e
        };
        match kind % 4 {
            0 => out.truncate(at),
            1 => out.insert_str(at, TOKENS[token % TOKENS.len()]),
            2 => out.replace_range(at..end, ""),
            _ => {
                // Replace the number starting at or after `at` with an extreme value.
                if let Some(i) = out[at..].find(|c: char| c.is_ascii_digit()) {
                    let s = at + i;
                    let e = out[s..]
                        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                        .map_or(out.len(), |j| s + j);
                    out.replace_range(s..e, TOKENS[token % 7]);
                }
            }
        }
    }
    out
}

fn check(path: &Path, text: &str) -> Result<(), TestCaseError> {
    for backend in BackendKind::ALL {
        let options = LoadOptions {
            backend,
            prices: None,
        };
        match parse(text, path, &options) {
            Ok(spec) => {
                prop_assert!(!spec.space.is_empty());
                for id in 0..spec.space.len() {
                    let p = spec.space.config(id).price_per_hour;
                    prop_assert!(p.is_finite() && p > 0.0, "price {p}");
                }
                if let Some(t) = spec.max_runtime_s {
                    prop_assert!(t.is_finite() && t > 0.0);
                }
            }
            Err(e) => {
                let message = e.to_string();
                prop_assert!(message.contains(&path.display().to_string()), "{message}");
            }
        }
    }
    Ok(())
}

#[test]
fn mutated_space_files_never_panic_the_reader() {
    let files = examples();
    let edits = proptest::collection::vec(
        (any::<u8>(), any::<usize>(), any::<u8>(), any::<usize>()),
        1..4,
    );
    runner(7, 400)
        .run(&(0..files.len(), edits), |(f, edits)| {
            let (path, text) = &files[f];
            check(path, &mutate(text, &edits))
        })
        .unwrap();
}

#[test]
fn arbitrary_text_never_panics_the_reader() {
    let path = Path::new("/tmp/arbitrary.toml");
    runner(8, 300)
        .run(&"(?s).{0,400}", |text| check(path, &text))
        .unwrap();
}
