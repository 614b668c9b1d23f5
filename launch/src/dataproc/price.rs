//! What a Dataproc cluster costs per hour: a master and the workers (Compute Engine), the
//! Dataproc premium on every vCPU, and every node's boot disk. This is the one price of a
//! configuration: the space file gives it to the strategy ([`model_price`]) and every probe's
//! cost is computed from it.

use crate::prices::{MachinePrice, PriceTable};
use crate::spacefile::CountUnit;

/// Persistent-disk list prices, USD per GB-month (us-central1), for the price estimate.
pub const DISK_PRICES_PER_GB_MONTH: &[(&str, f64)] = &[
    ("pd-standard", 0.040),
    ("pd-balanced", 0.100),
    ("pd-ssd", 0.170),
];
pub const DISK_PRICE_SOURCE: &str =
    "https://cloud.google.com/compute/disks-image-pricing (us-central1, 2024-06 list prices)";
/// Hours in the month Google's per-GB-month disk prices are prorated over.
const HOURS_PER_MONTH: f64 = 730.0;
/// Boot disk of every node unless the runner's options say otherwise.
pub const DEFAULT_BOOT_DISK_TYPE: &str = "pd-standard";
pub const DEFAULT_BOOT_DISK_GB: u32 = 50;

/// Why a cluster has no price.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PriceError {
    /// A boot disk type missing from [`DISK_PRICES_PER_GB_MONTH`].
    #[error("disk type `{disk_type}` has no price (known: pd-standard, pd-balanced, pd-ssd)")]
    UnknownDisk { disk_type: String },
    /// The space file counts vCPUs, not workers.
    #[error("the dataproc backend counts workers: use count_unit = \"machine\" (the default)")]
    CountsVcpus,
    /// A worker count Dataproc does not take.
    #[error("a Dataproc cluster needs a whole number of workers >= 2, got {count}")]
    Workers { count: f64 },
}

/// What one configuration's cluster costs per hour, by part.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterPrice {
    pub nodes: u32,
    pub vcpus: u32,
    pub compute_per_hour: f64,
    pub premium_per_hour: f64,
    pub disks_per_hour: f64,
}

impl ClusterPrice {
    /// A master plus `workers` workers of `machine`, each with a boot disk.
    pub fn of(
        prices: &PriceTable,
        m: &MachinePrice,
        workers: u32,
        disk_type: &str,
        disk_gb: u32,
    ) -> Result<ClusterPrice, PriceError> {
        let disk = DISK_PRICES_PER_GB_MONTH
            .iter()
            .find(|(n, _)| *n == disk_type)
            .map(|(_, p)| *p)
            .ok_or_else(|| PriceError::UnknownDisk {
                disk_type: disk_type.to_string(),
            })?;
        let nodes = workers + 1;
        let vcpus = nodes * m.vcpus;
        Ok(ClusterPrice {
            nodes,
            vcpus,
            compute_per_hour: f64::from(nodes) * m.price_per_hour,
            premium_per_hour: f64::from(vcpus) * prices.dataproc_premium_per_vcpu_hour,
            disks_per_hour: f64::from(nodes) * f64::from(disk_gb) * disk / HOURS_PER_MONTH,
        })
    }

    pub fn per_hour(&self) -> f64 {
        self.compute_per_hour + self.premium_per_hour + self.disks_per_hour
    }
}

/// The model price of `count` workers of `machine` (the space file's price for the dataproc
/// backend): the whole cluster with default boot disks.
pub fn model_price(
    prices: &PriceTable,
    machine: &MachinePrice,
    count: f64,
    unit: CountUnit,
) -> Result<f64, PriceError> {
    if unit != CountUnit::Machine {
        return Err(PriceError::CountsVcpus);
    }
    ClusterPrice::of(
        prices,
        machine,
        whole_workers(count)?,
        DEFAULT_BOOT_DISK_TYPE,
        DEFAULT_BOOT_DISK_GB,
    )
    .map(|p| p.per_hour())
}

/// `count` as a number of workers: whole, 2 to 1000.
pub fn whole_workers(count: f64) -> Result<u32, PriceError> {
    // Dataproc standard clusters need at least two primary workers.
    if count.fract() == 0.0 && (2.0..=1000.0).contains(&count) {
        Ok(count as u32)
    } else {
        Err(PriceError::Workers { count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_price_counts_master_premium_and_disks() {
        let t = PriceTable::builtin();
        let n2 = t.get("n2-standard-4").unwrap();
        let p = ClusterPrice::of(&t, n2, 2, "pd-standard", 50).unwrap();
        assert_eq!((p.nodes, p.vcpus), (3, 12));
        assert!((p.compute_per_hour - 3.0 * 0.194236).abs() < 1e-12);
        assert!((p.premium_per_hour - 0.12).abs() < 1e-12);
        assert!((p.disks_per_hour - 3.0 * 50.0 * 0.04 / 730.0).abs() < 1e-12);
        let floppy = ClusterPrice::of(&t, n2, 2, "floppy", 50).unwrap_err();
        assert_eq!(
            floppy.to_string(),
            "disk type `floppy` has no price (known: pd-standard, pd-balanced, pd-ssd)"
        );
        let model = model_price(&t, n2, 2.0, CountUnit::Machine).unwrap();
        assert_eq!(model, p.per_hour());
        assert_eq!(
            model_price(&t, n2, 8.0, CountUnit::Vcpu),
            Err(PriceError::CountsVcpus)
        );
    }

    #[test]
    fn workers_must_be_whole_and_at_least_two() {
        assert_eq!(whole_workers(4.0), Ok(4));
        assert_eq!(whole_workers(1.0), Err(PriceError::Workers { count: 1.0 }));
        assert_eq!(
            whole_workers(2.5).unwrap_err().to_string(),
            "a Dataproc cluster needs a whole number of workers >= 2, got 2.5"
        );
    }
}
