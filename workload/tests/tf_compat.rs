//! TensorFlow compatibility, TensorFlow -> us: a fixture written by TensorFlow's own
//! `tf.io.TFRecordWriter` and `tf.train.Example` (workload/scripts/make_tf_fixture.py) read by
//! our TFRecord reader and Example decoder, every field checked against the sidecar JSON the
//! script wrote from TensorFlow's side. The other direction (our shards read by tf.data) is
//! `.ci/check-tfrecord.sh` and workload/scripts/check_with_tensorflow.py.

use std::path::PathBuf;

use workload::example;
use workload::tfrecord::{Reader, SliceReader};
use workload::transform::decode_jpeg;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn reads_a_tensorflow_written_tfrecord() {
    let bytes = std::fs::read(fixture("tf_written.tfrecord")).expect("fixture present");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("tf_written.json")).unwrap())
            .unwrap();
    let expected = meta["records"].as_array().unwrap();
    assert_eq!(expected.len(), 4);

    // Both readers (streaming and in-memory) check both CRCs and agree.
    let streamed: Vec<Vec<u8>> = Reader::new(std::io::Cursor::new(&bytes), "tf_written.tfrecord")
        .collect::<Result<_, _>>()
        .unwrap();
    let sliced: Vec<&[u8]> = SliceReader::new(&bytes, "tf_written.tfrecord")
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(streamed.len(), expected.len());
    assert_eq!(sliced.len(), expected.len());

    for (i, (rec, want)) in sliced.iter().zip(expected).enumerate() {
        assert_eq!(streamed[i].as_slice(), *rec);
        let ex = example::decode(rec).unwrap_or_else(|e| panic!("record {i}: {e}"));
        assert_eq!(ex.features.len(), 3, "record {i}: {:?}", ex.features);
        assert_eq!(ex.int64("class"), want["class"].as_i64(), "record {i}");
        assert_eq!(
            ex.bytes("label"),
            Some(want["label"].as_str().unwrap().as_bytes()),
            "record {i}"
        );
        let jpeg = ex.bytes("image").expect("image bytes");
        assert_eq!(jpeg.len() as u64, want["jpeg_len"].as_u64().unwrap());
        let head: String = jpeg[..16].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(head, want["jpeg_head"].as_str().unwrap(), "record {i}");

        let img = decode_jpeg(jpeg).unwrap_or_else(|e| panic!("record {i}: {e}"));
        assert_eq!(
            (img.width as u64, img.height as u64),
            (
                want["width"].as_u64().unwrap(),
                want["height"].as_u64().unwrap()
            ),
            "record {i}"
        );
        // Same libjpeg-turbo decode (accurate integer IDCT, fancy upsampling) on both sides.
        let sum: u64 = img.pixels.iter().map(|&p| p as u64).sum();
        assert_eq!(sum, want["decoded_sum"].as_u64().unwrap(), "record {i}");

        // Our encoder writes the same Example back byte for byte only if field order matches;
        // what must hold is that our own decode of our re-encoding gives the same fields.
        let again = ex.to_owned().encode();
        let back = example::decode(&again).unwrap();
        assert_eq!(back.to_owned(), ex.to_owned(), "record {i}");
    }
}

#[test]
fn a_damaged_tensorflow_record_names_file_and_offset() {
    let mut bytes = std::fs::read(fixture("tf_written.tfrecord")).unwrap();
    // Flip a byte inside the second record's payload.
    let first_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let second = 12 + first_len + 4;
    bytes[second + 12 + 5] ^= 0x40;
    let err = SliceReader::new(&bytes, "tf_written.tfrecord")
        .collect::<Result<Vec<_>, _>>()
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("tf_written.tfrecord"), "{msg}");
    assert!(msg.contains(&format!("offset {second}")), "{msg}");
    assert!(msg.contains("payload CRC"), "{msg}");
}
