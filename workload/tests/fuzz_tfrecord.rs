//! Property-based fuzzing of the TFRecord reader (both the streaming `Reader` and the in-memory
//! `SliceReader`) and of the `tf.train.Example` parser behind it: arbitrary bytes and mutated
//! valid shards never panic, both readers agree record for record, and every record they return
//! passed both CRCs. Seeded and bounded, so `cargo test` runs the same cases every time.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use workload::example;
use workload::tfrecord::{append_record, masked_crc, Reader, SliceReader};

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

/// A valid shard of three flower records.
fn valid_shard() -> Vec<u8> {
    let mut out = Vec::new();
    for (i, label) in ["daisy", "roses", "tulips"].iter().enumerate() {
        let mut payload = Vec::new();
        example::encode_flower(
            &[0xff, 0xd8, 0xff, i as u8, 0xd9],
            i as i64,
            label,
            &mut payload,
        );
        append_record(&mut out, &payload);
    }
    out
}

/// Reads `bytes` with both readers (a bounded number of records, stopping at the first error)
/// and checks they agree and that every record returned carries valid CRCs.
fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    let limit = bytes.len() / 16 + 2;
    let from_slice: Vec<Result<Vec<u8>, String>> = SliceReader::new(bytes, "fuzz.tfrec")
        .take(limit)
        .scan(false, |failed, r| {
            if *failed {
                return None;
            }
            *failed = r.is_err();
            Some(r.map(<[u8]>::to_vec).map_err(|e| e.to_string()))
        })
        .collect();
    let from_stream: Vec<Result<Vec<u8>, String>> = Reader::new(bytes, "fuzz.tfrec")
        .take(limit)
        .scan(false, |failed, r| {
            if *failed {
                return None;
            }
            *failed = r.is_err();
            Some(r.map_err(|e| e.to_string()))
        })
        .collect();
    prop_assert_eq!(
        from_slice.iter().filter(|r| r.is_ok()).count(),
        from_stream.iter().filter(|r| r.is_ok()).count()
    );
    let mut offset = 0usize;
    for r in &from_slice {
        match r {
            Ok(payload) => {
                // Framing: length, its masked CRC, payload, its masked CRC.
                let len = u64::from_le_bytes(bytes[offset..offset + 8].try_into().unwrap());
                prop_assert_eq!(len as usize, payload.len());
                let stored = u32::from_le_bytes(
                    bytes[offset + 12 + payload.len()..offset + 16 + payload.len()]
                        .try_into()
                        .unwrap(),
                );
                prop_assert_eq!(stored, masked_crc(payload));
                offset += 16 + payload.len();
                // The Example parser must not panic on whatever payload passed the CRCs.
                let _ = example::decode(payload);
            }
            Err(message) => prop_assert!(message.contains("fuzz.tfrec"), "{}", message),
        }
    }
    Ok(())
}

fn mutate(base: &[u8], edits: &[(u8, usize, u8)]) -> Vec<u8> {
    let mut out = base.to_vec();
    for &(kind, pos, byte) in edits {
        let at = if out.is_empty() {
            0
        } else {
            pos % (out.len() + 1)
        };
        match kind % 5 {
            0 if at < out.len() => out[at] ^= byte | 1,
            1 => out.truncate(at),
            2 => out.insert(at, byte),
            3 => {
                let end = (at + usize::from(byte % 16)).min(out.len());
                out.drain(at..end);
            }
            _ => {
                // A huge or zero length at a record boundary-ish position.
                let end = (at + 8).min(out.len());
                let len = if byte % 2 == 0 {
                    u64::MAX - u64::from(byte)
                } else {
                    0
                };
                out.splice(at..end, len.to_le_bytes());
            }
        }
    }
    out
}

#[test]
fn arbitrary_bytes_never_panic_the_tfrecord_readers() {
    runner(6, 400)
        .run(&proptest::collection::vec(any::<u8>(), 0..300), |bytes| {
            check(&bytes)
        })
        .unwrap();
    // Arbitrary payloads framed correctly reach the Example parser.
    runner(7, 400)
        .run(&proptest::collection::vec(any::<u8>(), 0..200), |payload| {
            let mut framed = Vec::new();
            append_record(&mut framed, &payload);
            let got: Vec<_> = SliceReader::new(&framed, "fuzz.tfrec").collect();
            prop_assert_eq!(got.len(), 1);
            prop_assert_eq!(got[0].as_ref().ok().copied(), Some(&payload[..]));
            check(&framed)
        })
        .unwrap();
}

#[test]
fn mutated_shards_never_panic_the_tfrecord_readers() {
    let base = valid_shard();
    let all: Vec<_> = SliceReader::new(&base, "fuzz.tfrec").collect();
    assert_eq!(all.len(), 3);
    assert!(all.iter().all(|r| r.is_ok()));
    let edits = proptest::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..5);
    runner(8, 600)
        .run(&edits, |edits| check(&mutate(&base, &edits)))
        .unwrap();
}
