//! What one configuration costs per hour: machines x count by default, or the backend's own rule
//! where its bill has more parts (a Dataproc cluster's master, premium and disks). The price found
//! here is the one the strategy models and the one every probe's cost is computed from.

use super::{BackendKind, CountUnit};
use crate::dataproc::price::PriceError;
use crate::prices::{MachinePrice, PriceTable};

/// USD per hour of `count` (machines or vCPUs, by `unit`) of `machine` on `backend`.
pub(super) fn price_per_hour(
    backend: BackendKind,
    prices: &PriceTable,
    machine: &MachinePrice,
    count: f64,
    unit: CountUnit,
) -> Result<f64, PriceError> {
    match backend {
        BackendKind::Dataproc => crate::dataproc::price::model_price(prices, machine, count, unit),
        BackendKind::Local | BackendKind::Command | BackendKind::Spark => Ok(match unit {
            CountUnit::Machine => machine.price_per_hour * count,
            CountUnit::Vcpu => machine.price_per_vcpu_hour() * count,
        }),
    }
}
