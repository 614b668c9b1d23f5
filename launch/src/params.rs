//! The workload's parameters of one configuration, read the same way by every backend that runs
//! the workload (local, spark, dataproc): `[workload.params]` overridden by a dimension of the
//! same name, each checked with a message naming the configuration and the parameter.
//!
//! Whole numbers count (>= 1); `quality` is 1..=100; a flag is `true`/`false` or `1`/`0`; a list is
//! whole numbers separated by commas (`"8,16"`) or one whole number.

use std::collections::BTreeMap;

use optimizer::{ConfigId, Value};

use crate::spacefile::{ParamValue, SearchSpec};

/// A parameter of a configuration with a value it cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration {config}: `{name}` {why}, got `{got}`")]
pub struct ParamError {
    /// The configuration's name.
    pub config: String,
    /// The parameter's name.
    pub name: String,
    /// What the value must be.
    pub why: &'static str,
    /// The value as written.
    pub got: String,
}

/// The first fixed `[workload] params` entry that is not in `known`, the names a backend
/// reads: a fixed parameter is no catalogue feature, so one the backend never reads is a typo
/// that would silently run the default.
pub fn unknown_fixed<'a>(spec: &'a SearchSpec, known: &[&str]) -> Option<&'a str> {
    spec.workload
        .as_ref()?
        .params
        .keys()
        .map(String::as_str)
        .find(|k| !known.contains(k))
}

/// One configuration's parameters.
#[derive(Debug, Clone)]
pub struct Params {
    values: BTreeMap<String, ParamValue>,
    config: String,
}

impl Params {
    /// The parameters of configuration `id` (fixed ones when the file has no `[workload]`).
    pub fn of(spec: &SearchSpec, id: ConfigId) -> Params {
        let mut values: BTreeMap<String, ParamValue> = spec
            .workload
            .as_ref()
            .map(|w| w.params.clone())
            .unwrap_or_default();
        for (k, v) in &spec.configs[id].params {
            let pv = match v {
                Value::Num(x) if x.fract() == 0.0 && x.abs() < 9.0e15 => ParamValue::Int(*x as i64),
                Value::Num(x) => ParamValue::Float(*x),
                Value::Cat(s) => ParamValue::Text(s.clone()),
            };
            values.insert(k.clone(), pv);
        }
        Params {
            values,
            config: spec.space.config(id).name.clone(),
        }
    }

    fn bad(&self, name: &str, why: &'static str) -> ParamError {
        ParamError {
            config: self.config.clone(),
            name: name.to_string(),
            why,
            got: self.text(name).unwrap_or_default(),
        }
    }

    /// A whole number >= 1 under the first of `names` present.
    pub fn count(&self, names: &[&str]) -> Result<Option<usize>, ParamError> {
        for n in names {
            if let Some(v) = self.values.get(*n) {
                return match v {
                    ParamValue::Int(i) if *i >= 1 => Ok(Some(*i as usize)),
                    _ => Err(self.bad(n, "must be a whole number >= 1")),
                };
            }
        }
        Ok(None)
    }

    /// A seed: any whole number >= 0.
    pub fn seed(&self) -> Result<Option<u64>, ParamError> {
        match self.values.get("seed") {
            None => Ok(None),
            Some(ParamValue::Int(i)) if *i >= 0 => Ok(Some(*i as u64)),
            Some(_) => Err(self.bad("seed", "must be a whole number >= 0")),
        }
    }

    /// JPEG quality, 1..=100.
    pub fn quality(&self) -> Result<Option<u8>, ParamError> {
        match self.values.get("quality") {
            None => Ok(None),
            Some(ParamValue::Int(q)) if (1..=100).contains(q) => Ok(Some(*q as u8)),
            Some(_) => Err(self.bad("quality", "must be a whole number 1..=100")),
        }
    }

    /// Output size in pixels (1 up to [`workload::transform::MAX_SIZE`]).
    pub fn size(&self) -> Result<Option<u32>, ParamError> {
        const MAX: u32 = workload::transform::MAX_SIZE;
        match self.count(&["size"])? {
            None => Ok(None),
            Some(s) => match u32::try_from(s) {
                Ok(s) if (1..=MAX).contains(&s) => Ok(Some(s)),
                // Literal: the message is static; MAX_SIZE is 4096 (checked by a test).
                _ => Err(self.bad("size", "must be 1..=4096 pixels")),
            },
        }
    }

    /// The value as text, whatever its type.
    pub fn text(&self, name: &str) -> Option<String> {
        self.values.get(name).map(|v| match v {
            ParamValue::Text(s) => s.clone(),
            ParamValue::Int(i) => i.to_string(),
            ParamValue::Float(f) => f.to_string(),
            ParamValue::Bool(b) => b.to_string(),
        })
    }

    /// `true`/`false` or `1`/`0`.
    pub fn flag(&self, name: &str) -> Result<Option<bool>, ParamError> {
        match self.values.get(name) {
            None => Ok(None),
            Some(ParamValue::Bool(b)) => Ok(Some(*b)),
            Some(ParamValue::Int(0)) => Ok(Some(false)),
            Some(ParamValue::Int(1)) => Ok(Some(true)),
            Some(ParamValue::Text(s)) if s == "true" || s == "false" => Ok(Some(s == "true")),
            Some(_) => Err(self.bad(name, "must be true/false or 1/0")),
        }
    }

    /// Whole numbers >= 1 separated by commas, or one whole number.
    pub fn list(&self, name: &str) -> Result<Option<Vec<u32>>, ParamError> {
        let Some(text) = self.text(name) else {
            return Ok(None);
        };
        let parsed: Option<Vec<u32>> = text
            .split(',')
            .map(|x| x.trim().parse::<u32>().ok().filter(|&n| n > 0))
            .collect();
        match parsed {
            Some(v) if !v.is_empty() => Ok(Some(v)),
            _ => Err(self.bad(
                name,
                "must be whole numbers >= 1 separated by commas (for example \"8,16\")",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spacefile::{parse, BackendKind, LoadOptions};
    use std::path::Path;

    fn spec(dims: &str, params: &str) -> SearchSpec {
        let text = format!(
            "[catalogue]\nmachine_types = [\"e2-standard-2\"]\n[catalogue.dimensions]\n{dims}\n\
             [workload]\ndataset = \"flowers\"\ntasks = [\"preprocess\"]\n[workload.params]\n{params}\n"
        );
        parse(
            &text,
            Path::new("/tmp/space.toml"),
            &LoadOptions {
                backend: BackendKind::Local,
                prices: None,
            },
        )
        .unwrap()
    }

    #[test]
    fn dimensions_override_fixed_parameters() {
        let s = spec("quality = [80, 90]", "quality = 95\nsize = 128");
        let p = Params::of(&s, 1);
        assert_eq!(p.quality().unwrap(), Some(90));
        assert_eq!(p.size().unwrap(), Some(128));
        assert_eq!(p.count(&["threads", "workers"]).unwrap(), None);
    }

    #[test]
    fn quality_zero_and_typos_are_errors_naming_the_configuration() {
        let s = spec("quality = [0]", "");
        let err = Params::of(&s, 0).quality().unwrap_err();
        assert_eq!(
            err,
            ParamError {
                config: "quality=0".into(),
                name: "quality".into(),
                why: "must be a whole number 1..=100",
                got: "0".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "configuration quality=0: `quality` must be a whole number 1..=100, got `0`"
        );
        // A size the transform refuses is refused here, before any probe; the message's bound
        // is the transform's.
        assert_eq!(workload::transform::MAX_SIZE, 4096);
        let s = spec("quality = [90]", "size = 0");
        assert!(Params::of(&s, 0).size().is_err());
        for size in ["4097", "100000"] {
            let s = spec("quality = [90]", &format!("size = {size}"));
            let err = Params::of(&s, 0).size().unwrap_err().to_string();
            assert!(err.contains("`size` must be 1..=4096 pixels"), "{err}");
        }
        let s = spec("quality = [90]", "size = 4096");
        assert_eq!(Params::of(&s, 0).size().unwrap(), Some(4096));
        let s = spec("threads = [1]", "decode = \"yes\"");
        let err = Params::of(&s, 0).flag("decode").unwrap_err();
        assert_eq!((err.name.as_str(), err.got.as_str()), ("decode", "yes"));
        let err = err.to_string();
        assert!(err.contains("`decode`") && err.contains("yes"), "{err}");
    }

    #[test]
    fn flags_read_one_and_zero_as_true_and_false() {
        for (written, read) in [
            ("1", true),
            ("0", false),
            ("true", true),
            ("\"false\"", false),
        ] {
            let s = spec("threads = [1]", &format!("decode = {written}"));
            assert_eq!(
                Params::of(&s, 0).flag("decode").unwrap(),
                Some(read),
                "{written}"
            );
        }
        // As a dimension too.
        let s = spec("decode = [0, 1]", "");
        assert_eq!(Params::of(&s, 1).flag("decode").unwrap(), Some(true));
    }

    #[test]
    fn lists_are_whole_numbers() {
        let s = spec("threads = [1]", "batch_sizes = \"4, 8\"\nbatch_numbers = 3");
        let p = Params::of(&s, 0);
        assert_eq!(p.list("batch_sizes").unwrap(), Some(vec![4, 8]));
        assert_eq!(p.list("batch_numbers").unwrap(), Some(vec![3]));
        let s = spec("threads = [1]", "batch_sizes = \"4,x\"");
        assert!(Params::of(&s, 0).list("batch_sizes").is_err());
    }
}
