//! The price table: built-in Google Cloud on-demand prices of Compute Engine machine types and the
//! Dataproc premium, each with its source and date, overridable and extendable by a TOML file.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Where the built-in figures come from. They were transcribed from the public price list, not
/// fetched by this program; a file passed with `--prices` (or `prices = "..."` in a space file)
/// replaces any of them.
pub const COMPUTE_SOURCE: &str =
    "https://cloud.google.com/compute/vm-instance-pricing (us-central1, Linux, on-demand)";
pub const COMPUTE_DATE: &str = "2024-06 list prices";
pub const DATAPROC_SOURCE: &str = "https://cloud.google.com/dataproc/pricing";
pub const DATAPROC_DATE: &str = "2024-06 list price";
/// Dataproc's charge on top of Compute Engine: USD 0.010 per vCPU-hour of the cluster.
pub const DATAPROC_PREMIUM_PER_VCPU_HOUR: f64 = 0.010;
/// Largest price a price file may give per hour (a machine, or the premium per vCPU).
const MAX_PRICE_PER_HOUR: f64 = 1e6;

/// What is wrong with a machine type's shape and price, if anything, wherever it is defined
/// (a price file, or inline in a space file). The bounds are far outside any real machine:
/// a vCPU count of at least 1; 1 MiB to a million GiB of memory; a millionth of a dollar to a
/// million dollars an hour (a price of 5e-324 made every cost print as $0.000000, a memory of
/// 1e-300 GiB a 300-digit memory per vCPU, and past a million the cluster's sums overflow).
pub fn machine_problem(vcpus: u32, memory_gib: f64, price_per_hour: f64) -> Option<&'static str> {
    if vcpus == 0 {
        Some("vcpus must be at least 1")
    } else if !(1.0 / 1024.0..=1e6).contains(&memory_gib) {
        Some("memory_gib must be a number from 1/1024 (1 MiB) to 1e6")
    } else if !(1e-6..=MAX_PRICE_PER_HOUR).contains(&price_per_hour) {
        Some("price_per_hour must be a number from 1e-6 to 1e6 (USD per hour)")
    } else {
        None
    }
}

/// One machine type: its shape and on-demand price.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachinePrice {
    pub vcpus: u32,
    pub memory_gib: f64,
    /// USD per hour for one machine.
    pub price_per_hour: f64,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub date: String,
}

impl MachinePrice {
    /// USD per vCPU-hour.
    pub fn price_per_vcpu_hour(&self) -> f64 {
        self.price_per_hour / f64::from(self.vcpus)
    }
}

/// Machine prices by name plus the Dataproc premium.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceTable {
    pub machines: BTreeMap<String, MachinePrice>,
    pub dataproc_premium_per_vcpu_hour: f64,
    pub dataproc_source: String,
}

/// A price file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PriceError {
    // Not a `source`: the message already says it, and error chains would repeat it.
    #[error("{path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    /// `line`: where the machine's table starts.
    #[error("{path}:{line}: machine `{name}`: {problem}")]
    Bad {
        path: String,
        line: usize,
        name: String,
        problem: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceFile {
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    date: Option<String>,
    #[serde(default)]
    dataproc: Option<DataprocFile>,
    #[serde(default)]
    machine: BTreeMap<String, toml::Spanned<MachinePrice>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DataprocFile {
    premium_per_vcpu_hour: f64,
    #[serde(default)]
    source: Option<String>,
}

/// (name, vCPUs, memory GiB, USD per hour) in us-central1.
const BUILTIN: &[(&str, u32, f64, f64)] = &[
    ("e2-standard-2", 2, 8.0, 0.067006),
    ("e2-standard-4", 4, 16.0, 0.134012),
    ("e2-standard-8", 8, 32.0, 0.268024),
    ("e2-standard-16", 16, 64.0, 0.536048),
    ("e2-standard-32", 32, 128.0, 1.072096),
    ("e2-highmem-2", 2, 16.0, 0.090381),
    ("e2-highmem-4", 4, 32.0, 0.180762),
    ("e2-highmem-8", 8, 64.0, 0.361524),
    ("e2-highmem-16", 16, 128.0, 0.723048),
    ("e2-highcpu-2", 2, 2.0, 0.049468),
    ("e2-highcpu-4", 4, 4.0, 0.098936),
    ("e2-highcpu-8", 8, 8.0, 0.197872),
    ("e2-highcpu-16", 16, 16.0, 0.395744),
    ("e2-highcpu-32", 32, 32.0, 0.791488),
    ("n2-standard-2", 2, 8.0, 0.097118),
    ("n2-standard-4", 4, 16.0, 0.194236),
    ("n2-standard-8", 8, 32.0, 0.388472),
    ("n2-standard-16", 16, 64.0, 0.776944),
    ("n2-standard-32", 32, 128.0, 1.553888),
    ("n2-highmem-2", 2, 16.0, 0.131014),
    ("n2-highmem-4", 4, 32.0, 0.262028),
    ("n2-highmem-8", 8, 64.0, 0.524056),
    ("n2-highmem-16", 16, 128.0, 1.048112),
    ("n2-highcpu-2", 2, 2.0, 0.071696),
    ("n2-highcpu-4", 4, 4.0, 0.143392),
    ("n2-highcpu-8", 8, 8.0, 0.286784),
    ("n2-highcpu-16", 16, 16.0, 0.573568),
    ("n2-highcpu-32", 32, 32.0, 1.147136),
    ("n1-standard-1", 1, 3.75, 0.0475),
    ("n1-standard-2", 2, 7.5, 0.095),
    ("n1-standard-4", 4, 15.0, 0.19),
    ("n1-standard-8", 8, 30.0, 0.38),
    ("n1-standard-16", 16, 60.0, 0.76),
    ("n1-highmem-2", 2, 13.0, 0.1184),
    ("n1-highmem-4", 4, 26.0, 0.2368),
    ("n1-highmem-8", 8, 52.0, 0.4736),
    ("n1-highmem-16", 16, 104.0, 0.9472),
    ("n1-highcpu-2", 2, 1.8, 0.0709),
    ("n1-highcpu-4", 4, 3.6, 0.1418),
    ("n1-highcpu-8", 8, 7.2, 0.2836),
    ("n1-highcpu-16", 16, 14.4, 0.5672),
    ("c2-standard-4", 4, 16.0, 0.2088),
    ("c2-standard-8", 8, 32.0, 0.4176),
    ("c2-standard-16", 16, 64.0, 0.8352),
    ("c2-standard-30", 30, 120.0, 1.5660),
    ("c2-standard-60", 60, 240.0, 3.1321),
];

impl PriceTable {
    /// The built-in Google Cloud table.
    pub fn builtin() -> PriceTable {
        let machines = BUILTIN
            .iter()
            .map(|&(name, vcpus, memory_gib, price_per_hour)| {
                (
                    name.to_string(),
                    MachinePrice {
                        vcpus,
                        memory_gib,
                        price_per_hour,
                        source: COMPUTE_SOURCE.to_string(),
                        date: COMPUTE_DATE.to_string(),
                    },
                )
            })
            .collect();
        PriceTable {
            machines,
            dataproc_premium_per_vcpu_hour: DATAPROC_PREMIUM_PER_VCPU_HOUR,
            dataproc_source: format!("{DATAPROC_SOURCE} ({DATAPROC_DATE})"),
        }
    }

    /// Applies a price file on top of this table: its machines replace or add entries, and its
    /// `[dataproc]` section replaces the premium.
    ///
    /// ```toml
    /// source = "our negotiated rates"
    /// date = "2026-11"
    /// [dataproc]
    /// premium_per_vcpu_hour = 0.010
    /// [machine.n2-standard-4]
    /// vcpus = 4
    /// memory_gib = 16
    /// price_per_hour = 0.15
    /// ```
    pub fn apply_file(&mut self, path: &Path) -> Result<(), PriceError> {
        let shown = path.display().to_string();
        let text = optimizer::read_regular_string(path).map_err(|error| PriceError::Io {
            path: shown.clone(),
            error,
        })?;
        self.apply_str(&text, &shown)
    }

    /// [`PriceTable::apply_file`] on text already read; `origin` names it in errors.
    pub fn apply_str(&mut self, text: &str, origin: &str) -> Result<(), PriceError> {
        let file: PriceFile = toml::from_str(text).map_err(|e| PriceError::Parse {
            path: origin.to_string(),
            message: e.to_string(),
        })?;
        for (name, spanned) in file.machine {
            let line = text[..spanned.span().start.min(text.len())]
                .matches('\n')
                .count()
                + 1;
            let mut m = spanned.into_inner();
            let bad = |problem: &str| PriceError::Bad {
                path: origin.to_string(),
                line,
                name: name.clone(),
                problem: problem.to_string(),
            };
            if let Some(problem) = machine_problem(m.vcpus, m.memory_gib, m.price_per_hour) {
                return Err(bad(problem));
            }
            if m.source.is_empty() {
                m.source = file.source.clone().unwrap_or_else(|| origin.to_string());
            }
            if m.date.is_empty() {
                m.date = file.date.clone().unwrap_or_default();
            }
            self.machines.insert(name, m);
        }
        if let Some(d) = file.dataproc {
            if !(d.premium_per_vcpu_hour >= 0.0 && d.premium_per_vcpu_hour <= MAX_PRICE_PER_HOUR) {
                return Err(PriceError::Parse {
                    path: origin.to_string(),
                    message: "dataproc.premium_per_vcpu_hour must be a number from 0 to 1e6"
                        .to_string(),
                });
            }
            self.dataproc_premium_per_vcpu_hour = d.premium_per_vcpu_hour;
            self.dataproc_source = d.source.unwrap_or_else(|| origin.to_string());
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&MachinePrice> {
        self.machines.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Printed with its chain of causes (as `{:#}` does), an unreadable price file names the
    /// I/O error once.
    #[test]
    fn an_unreadable_price_file_gives_its_cause_once() {
        let e = PriceTable::builtin()
            .apply_file(Path::new("/nonexistent/prices.toml"))
            .unwrap_err();
        let mut chain = e.to_string();
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            chain.push_str(&format!(": {c}"));
            cause = c.source();
        }
        assert_eq!(chain.matches("No such file").count(), 1, "{chain}");
        assert!(chain.starts_with("/nonexistent/prices.toml: "), "{chain}");
    }

    #[test]
    fn builtin_prices_are_consistent_within_families() {
        let t = PriceTable::builtin();
        // Within a family the price is linear in size: the per-vCPU price is the same.
        for fam in [
            "e2-standard",
            "n2-standard",
            "n2-highmem",
            "n1-standard",
            "c2-standard",
        ] {
            let per: Vec<f64> = t
                .machines
                .iter()
                .filter(|(n, _)| n.rsplit_once('-').map(|(f, _)| f) == Some(fam))
                .map(|(_, m)| m.price_per_vcpu_hour())
                .collect();
            assert!(per.len() >= 3, "{fam}");
            for p in &per {
                assert!((p / per[0] - 1.0).abs() < 1e-3, "{fam}: {per:?}");
            }
        }
        assert_eq!(t.get("n2-standard-4").unwrap().vcpus, 4);
        assert_eq!(t.dataproc_premium_per_vcpu_hour, 0.010);
    }

    #[test]
    fn a_file_overrides_and_extends() {
        let mut t = PriceTable::builtin();
        t.apply_str(
            "date = \"2026-11\"\n[machine.n2-standard-4]\nvcpus = 4\nmemory_gib = 16\nprice_per_hour = 0.15\n\
             [machine.box]\nvcpus = 2\nmemory_gib = 4\nprice_per_hour = 0.01\n[dataproc]\npremium_per_vcpu_hour = 0.02\n",
            "p.toml",
        )
        .unwrap();
        assert_eq!(t.get("n2-standard-4").unwrap().price_per_hour, 0.15);
        assert_eq!(t.get("box").unwrap().date, "2026-11");
        assert_eq!(t.dataproc_premium_per_vcpu_hour, 0.02);
        let err = t
            .apply_str(
                "[machine.x]\nvcpus = 2\nmemory_gib = 4\nprice = 1\n",
                "p.toml",
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("p.toml") && err.contains("price"), "{err}");
        let err = t
            .apply_str(
                "source = \"s\"\n\n[machine.y]\nvcpus = 2\nmemory_gib = 4\nprice_per_hour = 1\n\
                 \n[machine.x]\nvcpus = 2\nmemory_gib = 4\nprice_per_hour = -1\n",
                "p.toml",
            )
            .unwrap_err()
            .to_string();
        // Named by file, the line its table starts on, machine and field.
        assert!(
            err.starts_with("p.toml:8: machine `x`") && err.contains("price_per_hour"),
            "{err}"
        );
        for price in ["1e308", "nan", "inf", "5e-324", "0"] {
            let err = t
                .apply_str(
                    &format!("[machine.x]\nvcpus = 2\nmemory_gib = 4\nprice_per_hour = {price}\n"),
                    "p.toml",
                )
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("p.toml") && err.contains("from 1e-6 to 1e6"),
                "{price}: {err}"
            );
        }
        for memory in ["1e-300", "0", "1e7"] {
            let err = t
                .apply_str(
                    &format!("[machine.x]\nvcpus = 2\nmemory_gib = {memory}\nprice_per_hour = 1\n"),
                    "p.toml",
                )
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("memory_gib must be a number from"),
                "{memory}: {err}"
            );
        }
        let err = t
            .apply_str("[dataproc]\npremium_per_vcpu_hour = 1e308\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("p.toml") && err.contains("premium"), "{err}");
    }
}
