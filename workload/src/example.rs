//! `tf.train.Example` protobuf encoding and decoding, written by hand (three nested messages and
//! a map; a protobuf dependency would be larger than this file).
//!
//! Example { Features features = 1 }; Features { map<string, Feature> feature = 1 };
//! Feature { oneof { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3 } };
//! each list is `repeated T value = 1` (int64 and float packed in proto3, unpacked also accepted).

use std::collections::BTreeMap;

/// Malformed protobuf bytes.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("malformed tf.train.Example at byte {offset}: {what}")]
pub struct ProtoError {
    pub offset: usize,
    pub what: &'static str,
}

/// One feature's values (owned).
#[derive(Debug, Clone, PartialEq)]
pub enum Feature {
    Bytes(Vec<Vec<u8>>),
    Float(Vec<f32>),
    Int64(Vec<i64>),
}

/// A `tf.train.Example`, features keyed by name (sorted, so encoding is deterministic).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Example {
    pub features: BTreeMap<String, Feature>,
}

/// One feature's values borrowed from the encoded bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureRef<'a> {
    Bytes(Vec<&'a [u8]>),
    Float(Vec<f32>),
    Int64(Vec<i64>),
}

/// A decoded `tf.train.Example` borrowing its byte strings from the input.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExampleRef<'a> {
    pub features: Vec<(&'a str, FeatureRef<'a>)>,
}

impl<'a> ExampleRef<'a> {
    pub fn get(&self, name: &str) -> Option<&FeatureRef<'a>> {
        self.features
            .iter()
            .rev()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    /// The single byte string of feature `name`, if it is a one-element bytes list.
    pub fn bytes(&self, name: &str) -> Option<&'a [u8]> {
        match self.get(name) {
            Some(FeatureRef::Bytes(v)) if v.len() == 1 => Some(v[0]),
            _ => None,
        }
    }

    /// The single integer of feature `name`, if it is a one-element int64 list.
    pub fn int64(&self, name: &str) -> Option<i64> {
        match self.get(name) {
            Some(FeatureRef::Int64(v)) if v.len() == 1 => Some(v[0]),
            _ => None,
        }
    }

    pub fn to_owned(&self) -> Example {
        let mut features = BTreeMap::new();
        for (k, v) in &self.features {
            let f = match v {
                FeatureRef::Bytes(b) => Feature::Bytes(b.iter().map(|s| s.to_vec()).collect()),
                FeatureRef::Float(f) => Feature::Float(f.clone()),
                FeatureRef::Int64(i) => Feature::Int64(i.clone()),
            };
            features.insert(k.to_string(), f);
        }
        Example { features }
    }
}

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn put_tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(out, ((field as u64) << 3) | wire as u64);
}

fn put_len_prefixed(out: &mut Vec<u8>, field: u32, len: usize) {
    put_tag(out, field, LEN);
    put_varint(out, len as u64);
}

fn feature_body_len(f: &Feature) -> usize {
    // Feature { list (field 1/2/3) { value ... } }
    let list_len = match f {
        Feature::Bytes(v) => v
            .iter()
            .map(|b| 1 + varint_len(b.len() as u64) + b.len())
            .sum(),
        Feature::Float(v) if v.is_empty() => 0,
        Feature::Float(v) => 1 + varint_len(4 * v.len() as u64) + 4 * v.len(),
        Feature::Int64(v) if v.is_empty() => 0,
        Feature::Int64(v) => {
            let p: usize = v.iter().map(|&x| varint_len(x as u64)).sum();
            1 + varint_len(p as u64) + p
        }
    };
    1 + varint_len(list_len as u64) + list_len
}

fn put_feature(out: &mut Vec<u8>, f: &Feature) {
    match f {
        Feature::Bytes(v) => {
            let len: usize = v
                .iter()
                .map(|b| 1 + varint_len(b.len() as u64) + b.len())
                .sum();
            put_len_prefixed(out, 1, len);
            for b in v {
                put_len_prefixed(out, 1, b.len());
                out.extend_from_slice(b);
            }
        }
        Feature::Float(v) => {
            let len = if v.is_empty() {
                0
            } else {
                1 + varint_len(4 * v.len() as u64) + 4 * v.len()
            };
            put_len_prefixed(out, 2, len);
            if !v.is_empty() {
                put_len_prefixed(out, 1, 4 * v.len());
                for x in v {
                    out.extend_from_slice(&x.to_le_bytes());
                }
            }
        }
        Feature::Int64(v) => {
            let p: usize = v.iter().map(|&x| varint_len(x as u64)).sum();
            let len = if v.is_empty() {
                0
            } else {
                1 + varint_len(p as u64) + p
            };
            put_len_prefixed(out, 3, len);
            if !v.is_empty() {
                put_len_prefixed(out, 1, p);
                for &x in v {
                    put_varint(out, x as u64);
                }
            }
        }
    }
}

impl Example {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, name: &str, f: Feature) -> Self {
        self.features.insert(name.to_string(), f);
        self
    }

    /// Serialises into `out` (appending).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let entries: Vec<(usize, usize)> = self
            .features
            .iter()
            .map(|(k, f)| {
                let fl = feature_body_len(f);
                let entry =
                    1 + varint_len(k.len() as u64) + k.len() + 1 + varint_len(fl as u64) + fl;
                (fl, entry)
            })
            .collect();
        let features_len: usize = entries
            .iter()
            .map(|&(_, e)| 1 + varint_len(e as u64) + e)
            .sum();
        put_len_prefixed(out, 1, features_len);
        for ((k, f), &(fl, entry)) in self.features.iter().zip(&entries) {
            put_len_prefixed(out, 1, entry); // map entry
            put_len_prefixed(out, 1, k.len()); // key
            out.extend_from_slice(k.as_bytes());
            put_len_prefixed(out, 2, fl); // value: Feature
            put_feature(out, f);
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    pub fn decode(data: &[u8]) -> Result<Example, ProtoError> {
        Ok(decode(data)?.to_owned())
    }
}

/// Encodes the flowers record {image: bytes, class: int64, label: bytes} without building an
/// [`Example`] (the preprocessing hot path); same bytes as the general encoder.
pub fn encode_flower(image: &[u8], class: i64, label: &str, out: &mut Vec<u8>) {
    // Keys in sorted order, as Example::encode writes them: class, image, label.
    fn entry(out: &mut Vec<u8>, key: &str, f: &FeatureTmp) {
        let fl = f.body_len();
        let e = 1 + varint_len(key.len() as u64) + key.len() + 1 + varint_len(fl as u64) + fl;
        put_len_prefixed(out, 1, e);
        put_len_prefixed(out, 1, key.len());
        out.extend_from_slice(key.as_bytes());
        put_len_prefixed(out, 2, fl);
        f.put(out);
    }
    enum FeatureTmp<'a> {
        B(&'a [u8]),
        I(i64),
    }
    impl FeatureTmp<'_> {
        fn list_len(&self) -> usize {
            match self {
                FeatureTmp::B(b) => 1 + varint_len(b.len() as u64) + b.len(),
                FeatureTmp::I(i) => {
                    let p = varint_len(*i as u64);
                    1 + varint_len(p as u64) + p
                }
            }
        }
        fn body_len(&self) -> usize {
            let l = self.list_len();
            1 + varint_len(l as u64) + l
        }
        fn put(&self, out: &mut Vec<u8>) {
            match self {
                FeatureTmp::B(b) => {
                    put_len_prefixed(out, 1, self.list_len());
                    put_len_prefixed(out, 1, b.len());
                    out.extend_from_slice(b);
                }
                FeatureTmp::I(i) => {
                    put_len_prefixed(out, 3, self.list_len());
                    put_len_prefixed(out, 1, varint_len(*i as u64));
                    put_varint(out, *i as u64);
                }
            }
        }
        fn entry_total(&self, key: &str) -> usize {
            let fl = self.body_len();
            let e = 1 + varint_len(key.len() as u64) + key.len() + 1 + varint_len(fl as u64) + fl;
            1 + varint_len(e as u64) + e
        }
    }
    let c = FeatureTmp::I(class);
    let i = FeatureTmp::B(image);
    let l = FeatureTmp::B(label.as_bytes());
    let total = c.entry_total("class") + i.entry_total("image") + l.entry_total("label");
    out.reserve(total + 8);
    put_len_prefixed(out, 1, total);
    entry(out, "class", &c);
    entry(out, "image", &i);
    entry(out, "label", &l);
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Cursor<'a> {
    fn new(data: &'a [u8], base: usize) -> Self {
        Cursor { data, pos: 0, base }
    }
    fn err(&self, what: &'static str) -> ProtoError {
        ProtoError {
            offset: self.base + self.pos,
            what,
        }
    }
    fn done(&self) -> bool {
        self.pos >= self.data.len()
    }
    fn varint(&mut self) -> Result<u64, ProtoError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.data.get(self.pos) else {
                return Err(self.err("truncated varint"));
            };
            self.pos += 1;
            v |= ((b & 0x7f) as u64) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(self.err("varint longer than 10 bytes"))
    }
    fn take(&mut self, n: usize) -> Result<(&'a [u8], usize), ProtoError> {
        if self.data.len() - self.pos < n {
            return Err(self.err("length runs past the end"));
        }
        let s = &self.data[self.pos..self.pos + n];
        let at = self.base + self.pos;
        self.pos += n;
        Ok((s, at))
    }
    fn tag(&mut self) -> Result<(u64, u8), ProtoError> {
        let t = self.varint()?;
        Ok((t >> 3, (t & 7) as u8))
    }
    fn len_delimited(&mut self) -> Result<(&'a [u8], usize), ProtoError> {
        let n = self.varint()?;
        let n = usize::try_from(n).map_err(|_| self.err("length too large"))?;
        self.take(n)
    }
    fn skip(&mut self, wire: u8) -> Result<(), ProtoError> {
        match wire {
            VARINT => self.varint().map(|_| ()),
            FIXED64 => self.take(8).map(|_| ()),
            LEN => self.len_delimited().map(|_| ()),
            FIXED32 => self.take(4).map(|_| ()),
            _ => Err(self.err("unsupported wire type")),
        }
    }
}

/// Decodes a serialised `tf.train.Example`, borrowing byte strings from `data`.
pub fn decode(data: &[u8]) -> Result<ExampleRef<'_>, ProtoError> {
    let mut ex = ExampleRef::default();
    let mut c = Cursor::new(data, 0);
    while !c.done() {
        let (field, wire) = c.tag()?;
        if field == 1 && wire == LEN {
            let (feats, at) = c.len_delimited()?;
            decode_features(feats, at, &mut ex)?;
        } else {
            c.skip(wire)?;
        }
    }
    Ok(ex)
}

fn decode_features<'a>(
    data: &'a [u8],
    base: usize,
    ex: &mut ExampleRef<'a>,
) -> Result<(), ProtoError> {
    let mut c = Cursor::new(data, base);
    while !c.done() {
        let (field, wire) = c.tag()?;
        if field != 1 || wire != LEN {
            c.skip(wire)?;
            continue;
        }
        let (entry, at) = c.len_delimited()?;
        let mut e = Cursor::new(entry, at);
        let mut key: &str = "";
        let mut value = None;
        while !e.done() {
            let (f, w) = e.tag()?;
            match (f, w) {
                (1, LEN) => {
                    let (k, _) = e.len_delimited()?;
                    key = std::str::from_utf8(k).map_err(|_| e.err("feature name is not UTF-8"))?;
                }
                (2, LEN) => {
                    let (v, at) = e.len_delimited()?;
                    value = Some(decode_feature(v, at)?);
                }
                _ => e.skip(w)?,
            }
        }
        // A map entry without a value holds the default (an empty Feature, whose kind is unset).
        ex.features
            .push((key, value.unwrap_or(FeatureRef::Bytes(Vec::new()))));
    }
    Ok(())
}

fn decode_feature(data: &[u8], base: usize) -> Result<FeatureRef<'_>, ProtoError> {
    let mut c = Cursor::new(data, base);
    let mut out = FeatureRef::Bytes(Vec::new());
    while !c.done() {
        let (field, wire) = c.tag()?;
        if wire != LEN || !(1..=3).contains(&field) {
            c.skip(wire)?;
            continue;
        }
        let (list, at) = c.len_delimited()?;
        let mut l = Cursor::new(list, at);
        out = match field {
            1 => {
                let mut v = Vec::new();
                while !l.done() {
                    match l.tag()? {
                        (1, LEN) => v.push(l.len_delimited()?.0),
                        (_, w) => l.skip(w)?,
                    }
                }
                FeatureRef::Bytes(v)
            }
            2 => {
                let mut v = Vec::new();
                while !l.done() {
                    match l.tag()? {
                        (1, LEN) => {
                            let (packed, _) = l.len_delimited()?;
                            if packed.len() % 4 != 0 {
                                return Err(l.err("packed float list length not a multiple of 4"));
                            }
                            v.extend(
                                packed
                                    .chunks_exact(4)
                                    .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))),
                            );
                        }
                        (1, FIXED32) => {
                            let (b, _) = l.take(4)?;
                            v.push(f32::from_le_bytes(b.try_into().expect("4 bytes")));
                        }
                        (_, w) => l.skip(w)?,
                    }
                }
                FeatureRef::Float(v)
            }
            _ => {
                let mut v = Vec::new();
                while !l.done() {
                    match l.tag()? {
                        (1, LEN) => {
                            let (packed, at) = l.len_delimited()?;
                            let mut p = Cursor::new(packed, at);
                            while !p.done() {
                                v.push(p.varint()? as i64);
                            }
                        }
                        (1, VARINT) => v.push(l.varint()? as i64),
                        (_, w) => l.skip(w)?,
                    }
                }
                FeatureRef::Int64(v)
            }
        };
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_all_kinds() {
        let ex = Example::new()
            .with("b", Feature::Bytes(vec![b"x".to_vec(), vec![0u8; 300]]))
            .with("f", Feature::Float(vec![1.5, -2.0]))
            .with("i", Feature::Int64(vec![0, 1, -1, i64::MAX, 300]))
            .with("empty", Feature::Int64(vec![]));
        let bytes = ex.encode();
        let back = Example::decode(&bytes).unwrap();
        // An empty list decodes as an empty list of the same kind.
        assert_eq!(back, ex);
    }

    #[test]
    fn flower_fast_path_matches_general_encoder() {
        let img = vec![0xABu8; 200];
        let mut fast = Vec::new();
        encode_flower(&img, 3, "sunflowers", &mut fast);
        let general = Example::new()
            .with("image", Feature::Bytes(vec![img.clone()]))
            .with("class", Feature::Int64(vec![3]))
            .with("label", Feature::Bytes(vec![b"sunflowers".to_vec()]))
            .encode();
        assert_eq!(fast, general);
        let d = decode(&fast).unwrap();
        assert_eq!(d.bytes("image"), Some(&img[..]));
        assert_eq!(d.int64("class"), Some(3));
        assert_eq!(d.bytes("label"), Some(&b"sunflowers"[..]));
    }

    #[test]
    fn known_bytes_from_protobuf_spec() {
        // Example{features{feature{key:"a" value{int64_list{value:[1]}}}}}, as protobuf encodes it.
        let bytes = [
            0x0a, 0x0c, 0x0a, 0x0a, 0x0a, 0x01, b'a', 0x12, 0x05, 0x1a, 0x03, 0x0a, 0x01, 0x01,
        ];
        let d = decode(&bytes).unwrap();
        assert_eq!(d.int64("a"), Some(1));
        let ex = Example::new().with("a", Feature::Int64(vec![1]));
        assert_eq!(ex.encode(), bytes);
        // Unpacked int64 (field 1, wire type 0) is accepted too.
        let unpacked = [
            0x0a, 0x0b, 0x0a, 0x09, 0x0a, 0x01, b'a', 0x12, 0x04, 0x1a, 0x02, 0x08, 0x07,
        ];
        assert_eq!(decode(&unpacked).unwrap().int64("a"), Some(7));
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let good = Example::new()
            .with("a", Feature::Bytes(vec![b"hello".to_vec()]))
            .encode();
        for cut in 1..good.len() {
            assert!(decode(&good[..cut]).is_err(), "cut at {cut} decoded");
        }
        let err = decode(&[0x0a, 0xff]).unwrap_err();
        assert_eq!(err.offset, 2);
        assert!(decode(&[0x0b]).is_err()); // wire type 3 (group) is not supported
    }
}
