//! Property-based fuzzing of the journal reader: arbitrary bytes and mutated valid journals never
//! panic; whatever is accepted satisfies the reader's guarantees (records numbered 0.. in order,
//! naming configurations of the header's space, with finite non-negative times and costs), and
//! an accepted journal can be appended to and read back. Seeded and bounded, so `cargo test`
//! runs the same cases every time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use optimizer::journal::{rfc3339, Header, Journal, JournalWriter, ProbeRecord};
use optimizer::{Config, Dimension, Kind, Outcome, Space, Value};
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

fn space() -> Space {
    let dims = vec![Dimension {
        name: "workers".into(),
        kind: Kind::Numeric { log: false },
    }];
    let configs = (1..=3)
        .map(|w| Config {
            name: format!("w{w}"),
            values: vec![Value::Num(w as f64)],
            price_per_hour: 0.5 * w as f64,
        })
        .collect();
    Space::new(dims, configs).unwrap()
}

fn record(index: usize, outcome: Outcome) -> ProbeRecord {
    ProbeRecord {
        index,
        config: format!("w{}", index % 3 + 1),
        outcome,
        started: rfc3339(SystemTime::UNIX_EPOCH),
        finished: rfc3339(SystemTime::UNIX_EPOCH),
        expected_improvement: Some(0.1),
        log: None,
        launch: (index % 2 == 1).then_some(index),
        billed_usd: None,
    }
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cp-fuzz-journal-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A valid journal with one probe of each status.
fn valid_journal(path: &Path) -> Vec<u8> {
    let _ = std::fs::remove_file(path);
    let h = Header::new(
        &space(),
        "grid",
        3,
        serde_json::json!({"budget": 5, "honour_stop": true}),
    );
    let mut w = JournalWriter::create(path, &h).unwrap();
    let mut metrics = BTreeMap::new();
    metrics.insert("spend_usd".to_string(), 0.02);
    w.append(&record(
        0,
        Outcome::Completed {
            runtime_s: 12.5,
            cost_usd: 0.01,
            metrics,
        },
    ))
    .unwrap();
    w.append(&record(
        1,
        Outcome::Failed {
            reason: "exit 1".into(),
            elapsed_s: 3.0,
            cost_usd: 0.002,
        },
    ))
    .unwrap();
    w.append(&record(
        2,
        Outcome::TimedOut {
            elapsed_s: 60.0,
            cost_usd: 0.05,
        },
    ))
    .unwrap();
    drop(w);
    std::fs::read(path).unwrap()
}

/// Fragments that matter to a JSON Lines reader: numbers out of range or negative, other types,
/// structure, line breaks, another record's index.
const TOKENS: &[&str] = &[
    "-1",
    "-0.0",
    "1e999",
    "NaN",
    "null",
    "true",
    "\"\"",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\n",
    "\r\n",
    "\"index\":0,",
    "\"index\":7,",
    "\"config\":\"zz\",",
    "\"status\":\"failed\",",
    "\"event\":\"other\",",
    "\u{feff}",
    "\u{0}",
    "\"version\":{\"major\":2,\"minor\":0},",
];

/// Applies edits to `base`: (kind, position, byte, token index).
fn mutate(base: &[u8], edits: &[(u8, usize, u8, usize)]) -> Vec<u8> {
    let mut out = base.to_vec();
    for &(kind, pos, byte, token) in edits {
        let at = if out.is_empty() {
            0
        } else {
            pos % (out.len() + 1)
        };
        match kind % 6 {
            0 if at < out.len() => out[at] ^= byte | 1,
            1 => out.truncate(at),
            2 => {
                let t = TOKENS[token % TOKENS.len()].as_bytes();
                out.splice(at..at, t.iter().copied());
            }
            3 => {
                let end = (at + usize::from(byte % 16)).min(out.len());
                out.drain(at..end);
            }
            4 => {
                // Duplicate the line holding `at` (a record written twice).
                let start = out[..at]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                let end = out[at..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(out.len(), |i| at + i + 1);
                let line = out[start..end].to_vec();
                out.splice(end..end, line);
            }
            _ => {
                // Replace the number starting at or after `at` with a token.
                if let Some(i) = out[at..].iter().position(u8::is_ascii_digit) {
                    let s = at + i;
                    let e = out[s..]
                        .iter()
                        .position(|b| !(b.is_ascii_digit() || *b == b'.'))
                        .map_or(out.len(), |j| s + j);
                    let t = TOKENS[token % 3].as_bytes();
                    out.splice(s..e, t.iter().copied());
                }
            }
        }
    }
    out
}

/// Reads `bytes` as a journal at `path`; checks what the reader promises about anything it accepts.
fn check(path: &Path, bytes: &[u8]) -> Result<(), TestCaseError> {
    std::fs::write(path, bytes).unwrap();
    let Ok(j) = Journal::read(path) else {
        // Refused: the file must be as it was.
        prop_assert_eq!(std::fs::read(path).unwrap(), bytes);
        return Ok(());
    };
    for (i, r) in j.records.iter().enumerate() {
        prop_assert_eq!(r.index, i);
        let (t, c) = (r.outcome.elapsed_s(), r.outcome.cost_paid());
        prop_assert!(t.is_finite() && t >= 0.0 && c.is_finite() && c >= 0.0);
        prop_assert!(r.outcome.spend_usd().is_finite());
    }
    prop_assert!(j.valid_len <= bytes.len() as u64);
    if let Ok(space) = j.header.space.to_space() {
        let outcomes = j.outcomes(&space);
        prop_assert!(outcomes.is_ok(), "{:?}", outcomes.err());
        // An accepted journal takes one more record and reads back with it.
        let n = j.records.len();
        let config = space.config(0).name.clone();
        let mut w =
            JournalWriter::append_to(path, &j).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut r = record(
            n,
            Outcome::TimedOut {
                elapsed_s: 1.0,
                cost_usd: 0.0,
            },
        );
        r.config = config;
        w.append(&r).unwrap();
        drop(w);
        let again = Journal::read(path).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(again.records.len(), n + 1);
    }
    Ok(())
}

#[test]
fn arbitrary_bytes_never_panic_the_journal_reader() {
    let d = dir("bytes");
    let path = d.join("bytes.jsonl");
    runner(1, 300)
        .run(&proptest::collection::vec(any::<u8>(), 0..600), |bytes| {
            check(&path, &bytes)
        })
        .unwrap();
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn mutated_journals_never_panic_the_reader() {
    let d = dir("mutated");
    let base = valid_journal(&d.join("base.jsonl"));
    let path = d.join("mutated.jsonl");
    let edits = proptest::collection::vec(
        (any::<u8>(), any::<usize>(), any::<u8>(), any::<usize>()),
        1..6,
    );
    runner(2, 400)
        .run(&edits, |edits| check(&path, &mutate(&base, &edits)))
        .unwrap();
    // The unmutated journal itself is accepted whole.
    let j = {
        std::fs::write(&path, &base).unwrap();
        Journal::read(&path).unwrap()
    };
    assert_eq!(j.records.len(), 3);
    let _ = std::fs::remove_dir_all(d);
}
