//! TFRecord framing: writer and reader, both checking the masked CRC32C of the length and payload.
//!
//! Layout of one record: `u64` LE length, `u32` LE masked CRC32C of those 8 bytes, the payload,
//! `u32` LE masked CRC32C of the payload; mask = `((crc >> 15) | (crc << 17)) + 0xa282ead8`.

use std::io::{self, Read, Write};

/// Bytes of framing around each payload (length + its CRC before, payload CRC after).
pub const OVERHEAD: usize = 16;

/// TensorFlow's CRC mask: a raw CRC of data that itself holds CRCs is weak, so it is rotated
/// and offset.
pub fn mask_crc(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Masked CRC32C of `data`.
pub fn masked_crc(data: &[u8]) -> u32 {
    mask_crc(crc32c::crc32c(data))
}

/// What is wrong with a record.
#[derive(Debug, thiserror::Error)]
pub enum RecordErrorKind {
    #[error("length CRC mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    LengthCrc { stored: u32, computed: u32 },
    #[error("payload CRC mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    PayloadCrc { stored: u32, computed: u32 },
    #[error("truncated record: needs {needed} bytes, only {available} left")]
    Truncated { needed: u64, available: u64 },
    #[error("record length {0} is implausibly large")]
    TooLong(u64),
    #[error("I/O error: {0}")]
    Io(io::Error),
}

// Not `#[from]`, which would also make the error a `source`: the message already says it, and
// `{:#}` would print it twice.
impl From<io::Error> for RecordErrorKind {
    fn from(e: io::Error) -> Self {
        RecordErrorKind::Io(e)
    }
}

/// A damaged or unreadable record, naming the file and the byte offset where the record starts.
#[derive(Debug, thiserror::Error)]
#[error("{file}: record at byte offset {offset}: {kind}")]
pub struct RecordError {
    pub file: String,
    pub offset: u64,
    // Not a `source`: the message already says it (`{:#}` printed it twice).
    pub kind: RecordErrorKind,
}

/// Records longer than this are treated as corruption rather than allocated (1 GiB).
pub const MAX_RECORD_LEN: u64 = 1 << 30;

/// Writes framed records to any `Write`.
pub struct Writer<W: Write> {
    inner: W,
    bytes: u64,
    records: u64,
}

impl<W: Write> Writer<W> {
    pub fn new(inner: W) -> Self {
        Writer {
            inner,
            bytes: 0,
            records: 0,
        }
    }

    /// Appends one record.
    pub fn write_record(&mut self, payload: &[u8]) -> io::Result<()> {
        let mut head = [0u8; 12];
        head[..8].copy_from_slice(&(payload.len() as u64).to_le_bytes());
        let len_crc = masked_crc(&head[..8]);
        head[8..].copy_from_slice(&len_crc.to_le_bytes());
        self.inner.write_all(&head)?;
        self.inner.write_all(payload)?;
        self.inner.write_all(&masked_crc(payload).to_le_bytes())?;
        self.bytes += (payload.len() + OVERHEAD) as u64;
        self.records += 1;
        Ok(())
    }

    /// Bytes written so far, framing included.
    pub fn bytes_written(&self) -> u64 {
        self.bytes
    }

    pub fn records_written(&self) -> u64 {
        self.records
    }

    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    pub fn into_inner(self) -> W {
        self.inner
    }
}

/// Appends one framed record to a byte buffer (the in-memory fast path of [`Writer`]).
pub fn append_record(out: &mut Vec<u8>, payload: &[u8]) {
    let len = (payload.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&masked_crc(payload).to_le_bytes());
}

/// Streaming reader over any `Read`; `name` is used in error messages.
pub struct Reader<R: Read> {
    inner: R,
    name: String,
    offset: u64,
}

impl<R: Read> Reader<R> {
    pub fn new(inner: R, name: impl Into<String>) -> Self {
        Reader {
            inner,
            name: name.into(),
            offset: 0,
        }
    }

    fn err(&self, offset: u64, kind: RecordErrorKind) -> RecordError {
        RecordError {
            file: self.name.clone(),
            offset,
            kind,
        }
    }

    /// Reads the next record into `buf` (replacing its contents). `Ok(false)` at a clean end of
    /// input; a partial record at the end is an error.
    pub fn read_into(&mut self, buf: &mut Vec<u8>) -> Result<bool, RecordError> {
        let start = self.offset;
        let mut head = [0u8; 12];
        let got = read_full(&mut self.inner, &mut head).map_err(|e| self.err(start, e.into()))?;
        if got == 0 {
            return Ok(false);
        }
        if got < head.len() {
            return Err(self.err(
                start,
                RecordErrorKind::Truncated {
                    needed: 12,
                    available: got as u64,
                },
            ));
        }
        let len = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
        let stored = u32::from_le_bytes(head[8..].try_into().expect("4 bytes"));
        let computed = masked_crc(&head[..8]);
        if stored != computed {
            return Err(self.err(start, RecordErrorKind::LengthCrc { stored, computed }));
        }
        if len > MAX_RECORD_LEN {
            return Err(self.err(start, RecordErrorKind::TooLong(len)));
        }
        buf.clear();
        buf.resize(len as usize + 4, 0);
        let got = read_full(&mut self.inner, buf).map_err(|e| self.err(start, e.into()))?;
        if got < buf.len() {
            return Err(self.err(
                start,
                RecordErrorKind::Truncated {
                    needed: len + 4,
                    available: got as u64,
                },
            ));
        }
        let stored = u32::from_le_bytes(buf[len as usize..].try_into().expect("4 bytes"));
        buf.truncate(len as usize);
        let computed = masked_crc(buf);
        if stored != computed {
            return Err(self.err(start, RecordErrorKind::PayloadCrc { stored, computed }));
        }
        self.offset += 12 + len + 4;
        Ok(true)
    }

    /// Byte offset of the next record.
    pub fn offset(&self) -> u64 {
        self.offset
    }
}

impl<R: Read> Iterator for Reader<R> {
    type Item = Result<Vec<u8>, RecordError>;
    fn next(&mut self) -> Option<Self::Item> {
        let mut buf = Vec::new();
        match self.read_into(&mut buf) {
            Ok(true) => Some(Ok(buf)),
            Ok(false) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Zero-copy iterator over the records of a whole file held in memory (the fast read path).
pub struct SliceReader<'a> {
    data: &'a [u8],
    name: &'a str,
    offset: usize,
}

impl<'a> SliceReader<'a> {
    pub fn new(data: &'a [u8], name: &'a str) -> Self {
        SliceReader {
            data,
            name,
            offset: 0,
        }
    }

    fn err(&self, kind: RecordErrorKind) -> RecordError {
        RecordError {
            file: self.name.to_string(),
            offset: self.offset as u64,
            kind,
        }
    }

    fn next_record(&mut self) -> Result<Option<&'a [u8]>, RecordError> {
        let rest = &self.data[self.offset..];
        if rest.is_empty() {
            return Ok(None);
        }
        if rest.len() < 12 {
            return Err(self.err(RecordErrorKind::Truncated {
                needed: 12,
                available: rest.len() as u64,
            }));
        }
        let len = u64::from_le_bytes(rest[..8].try_into().expect("8 bytes"));
        let stored = u32::from_le_bytes(rest[8..12].try_into().expect("4 bytes"));
        let computed = masked_crc(&rest[..8]);
        if stored != computed {
            return Err(self.err(RecordErrorKind::LengthCrc { stored, computed }));
        }
        let available = (rest.len() - 12) as u64;
        if len.saturating_add(4) > available {
            return Err(self.err(RecordErrorKind::Truncated {
                needed: len + 4,
                available,
            }));
        }
        let len = len as usize;
        let payload = &rest[12..12 + len];
        let stored = u32::from_le_bytes(rest[12 + len..16 + len].try_into().expect("4 bytes"));
        let computed = masked_crc(payload);
        if stored != computed {
            return Err(self.err(RecordErrorKind::PayloadCrc { stored, computed }));
        }
        self.offset += 16 + len;
        Ok(Some(payload))
    }
}

impl<'a> Iterator for SliceReader<'a> {
    type Item = Result<&'a [u8], RecordError>;
    fn next(&mut self) -> Option<Self::Item> {
        match self.next_record() {
            Ok(Some(p)) => Some(Ok(p)),
            Ok(None) => None,
            Err(e) => {
                // Stop after the first error: the framing after a damaged record cannot be trusted.
                self.offset = self.data.len();
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut w = Writer::new(Vec::new());
        w.write_record(b"hello").unwrap();
        w.write_record(b"").unwrap();
        w.write_record(&[7u8; 1000]).unwrap();
        w.into_inner()
    }

    #[test]
    fn known_crc_values() {
        // CRC32C check value from RFC 3720 (iSCSI): 32 bytes of zeros.
        assert_eq!(crc32c::crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(mask_crc(0), 0xa282_ead8);
    }

    #[test]
    fn round_trip_stream_and_slice() {
        let data = sample();
        assert_eq!(data.len(), 3 * OVERHEAD + 5 + 1000);
        let recs: Vec<Vec<u8>> = Reader::new(&data[..], "mem").map(|r| r.unwrap()).collect();
        assert_eq!(recs, vec![b"hello".to_vec(), vec![], vec![7u8; 1000]]);
        let recs2: Vec<&[u8]> = SliceReader::new(&data, "mem").map(|r| r.unwrap()).collect();
        assert_eq!(recs2.len(), 3);
        assert_eq!(recs2[2], &[7u8; 1000][..]);
        let mut buf = Vec::new();
        append_record(&mut buf, b"hello");
        assert_eq!(&buf[..], &data[..OVERHEAD + 5]);
    }

    #[test]
    fn damaged_payload_names_offset() {
        let mut data = sample();
        // Second record starts at 21; third at 37; flip a payload byte of the third.
        data[37 + 12 + 3] ^= 1;
        let err = Reader::new(&data[..], "shard.tfrec")
            .nth(2)
            .unwrap()
            .unwrap_err();
        assert_eq!(err.offset, 37);
        assert!(matches!(err.kind, RecordErrorKind::PayloadCrc { .. }));
        let msg = err.to_string();
        assert!(
            msg.contains("shard.tfrec") && msg.contains("offset 37"),
            "{msg}"
        );
        let err = SliceReader::new(&data, "s").nth(2).unwrap().unwrap_err();
        assert_eq!(err.offset, 37);
    }

    #[test]
    fn damaged_length_and_truncation() {
        let mut data = sample();
        data[21] ^= 0x10;
        let err = Reader::new(&data[..], "f").nth(1).unwrap().unwrap_err();
        assert!(matches!(err.kind, RecordErrorKind::LengthCrc { .. }));
        assert_eq!(err.offset, 21);

        let data = sample();
        let cut = &data[..data.len() - 3];
        let err = Reader::new(cut, "f").nth(2).unwrap().unwrap_err();
        assert!(
            matches!(err.kind, RecordErrorKind::Truncated { .. }),
            "{err}"
        );
        let err = SliceReader::new(cut, "f").nth(2).unwrap().unwrap_err();
        assert!(
            matches!(err.kind, RecordErrorKind::Truncated { .. }),
            "{err}"
        );
        // A cut inside the 12-byte header is also reported, not taken as a clean end.
        let err = Reader::new(&data[..5], "f").next().unwrap().unwrap_err();
        assert!(matches!(
            err.kind,
            RecordErrorKind::Truncated {
                needed: 12,
                available: 5
            }
        ));
    }
}
