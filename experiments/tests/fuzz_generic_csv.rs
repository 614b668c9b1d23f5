//! Property-based fuzzing of the generic CSV v1 reader: arbitrary bytes and mutated valid files
//! never panic; a file that is accepted gives workloads whose recorded runs have finite,
//! non-negative runtimes and costs, and that a replay can be scaled on. Seeded and bounded.

use std::path::{Path, PathBuf};

use experiments::generic::load;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

fn runner(seed: u8, cases: u32) -> TestRunner {
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]),
    )
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cp-fuzz-csv-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

const VALID: &str =
    "workload,config,runtime_s,cost_usd,completed,nodes,price_per_node_hour,family\n\
                     w,a,100,0.5,true,2,0.5,c\n\
                     w,a,120,,true,2,0.5,c\n\
                     w,b,,,false,4,0.5,m\n\
                     w,\"c,1\",80,0.25,true,1,1.0,\"m \"\"x\"\"\"\n\
                     v,a,50,,true,1,1.0,c\n";

const TOKENS: &[&str] = &[
    "-1",
    "-0",
    "0",
    "1e999",
    "NaN",
    "inf",
    "",
    ",",
    "\"",
    "\n",
    "\r\n",
    "true",
    "false",
    "maybe",
    "\u{feff}",
    "\u{0}",
    "workload",
    "config",
    "runtime_s",
    "cost_usd",
    "completed",
];

fn mutate(base: &[u8], edits: &[(u8, usize, u8, usize)]) -> Vec<u8> {
    let mut out = base.to_vec();
    for &(kind, pos, byte, token) in edits {
        let at = if out.is_empty() {
            0
        } else {
            pos % (out.len() + 1)
        };
        match kind % 5 {
            0 if at < out.len() => out[at] ^= byte | 1,
            1 => out.truncate(at),
            2 => {
                let t = TOKENS[token % TOKENS.len()].as_bytes();
                out.splice(at..at, t.iter().copied());
            }
            3 => {
                let end = (at + usize::from(byte % 12)).min(out.len());
                out.drain(at..end);
            }
            _ => {
                // Replace the field holding `at` (up to the next separator) with a token.
                let end = out[at..]
                    .iter()
                    .position(|&b| b == b',' || b == b'\n')
                    .map_or(out.len(), |i| at + i);
                let start = out[..at]
                    .iter()
                    .rposition(|&b| b == b',' || b == b'\n')
                    .map_or(0, |i| i + 1);
                let t = TOKENS[token % TOKENS.len()].as_bytes();
                out.splice(start..end, t.iter().copied());
            }
        }
    }
    out
}

fn check(path: &Path, bytes: &[u8]) -> Result<(), TestCaseError> {
    std::fs::write(path, bytes).unwrap();
    let Ok(dataset) = load(path, None) else {
        return Ok(());
    };
    for w in &dataset.workloads {
        prop_assert!(!w.space.is_empty());
        for runs in &w.runs {
            for o in runs {
                let (t, c) = (o.elapsed_s(), o.cost_paid());
                prop_assert!(t.is_finite() && t >= 0.0, "runtime {t}");
                prop_assert!(c.is_finite() && c >= 0.0, "cost {c}");
            }
        }
        // Scaling never panics (it may find nothing feasible).
        let _ = w.scale(None);
    }
    Ok(())
}

#[test]
fn arbitrary_bytes_never_panic_the_csv_reader() {
    let d = dir("bytes");
    let path = d.join("runs.csv");
    runner(3, 300)
        .run(&proptest::collection::vec(any::<u8>(), 0..400), |bytes| {
            check(&path, &bytes)
        })
        .unwrap();
    // Bytes after a valid header: the rows are what is arbitrary.
    let header = b"workload,config,runtime_s,cost_usd,x\n";
    runner(4, 300)
        .run(&proptest::collection::vec(any::<u8>(), 0..300), |tail| {
            check(&path, &[&header[..], &tail].concat())
        })
        .unwrap();
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn mutated_csv_files_never_panic_the_reader() {
    let d = dir("mutated");
    let path = d.join("runs.csv");
    check(&path, VALID.as_bytes()).unwrap();
    assert!(load(&path, None).is_ok(), "the unmutated file is valid");
    let edits = proptest::collection::vec(
        (any::<u8>(), any::<usize>(), any::<u8>(), any::<usize>()),
        1..6,
    );
    runner(5, 500)
        .run(&edits, |edits| {
            check(&path, &mutate(VALID.as_bytes(), &edits))
        })
        .unwrap();
    let _ = std::fs::remove_dir_all(d);
}
