//! Expanding a checked catalogue: every machine x every combination of dimension values is a
//! configuration, named after what varies, priced, and encoded as the features the surrogate sees.

use std::collections::BTreeMap;

use optimizer::{Config, Dimension, Kind, Space, Value};

use super::check::Dim;
use super::read::{Locator, RawFile};
use super::{price, ConfigInfo, LoadOptions, Objective, SpaceFileError};
use crate::prices::{MachinePrice, PriceTable};

/// More configurations than this is surely a mistake in the file.
const MAX_CONFIGS: usize = 100_000;

/// The most one configuration may cost per hour (a billion dollars): with a runtime of at most
/// 1e15 s, a probe's cost stays far inside what a journal takes (1e30) and sums stay finite.
const MAX_CONFIG_PRICE: f64 = 1e9;

/// The catalogue's configurations (machine outermost, dimensions in file order) and the space.
pub(super) fn expand(
    raw: &RawFile,
    machines: &[(String, MachinePrice)],
    dims: &[Dim],
    count_index: Option<usize>,
    prices: &PriceTable,
    options: &LoadOptions,
    loc: &Locator<'_>,
) -> Result<(Space, Vec<ConfigInfo>), SpaceFileError> {
    // Count before building: a file with many long dimensions would exhaust memory first.
    let total = dims
        .iter()
        .try_fold(machines.len(), |n, d| n.checked_mul(d.values.len()))
        .filter(|&n| n <= MAX_CONFIGS);
    if total.is_none() {
        let size = dims
            .iter()
            .fold(machines.len() as f64, |n, d| n * d.values.len() as f64);
        return Err(loc.at(
            None,
            format!(
                "the catalogue has {} configurations (machine types times every dimension's \
                 values); more than {MAX_CONFIGS} is surely a mistake",
                optimizer::Shown(size)
            ),
        ));
    }
    let mut combos: Vec<Vec<usize>> = vec![Vec::new()];
    for d in dims {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                (0..d.values.len()).map(move |j| {
                    let mut c = c.clone();
                    c.push(j);
                    c
                })
            })
            .collect();
    }
    let single_machine = machines.len() == 1;
    let mut infos = Vec::new();
    let mut names = Vec::new();
    for (mname, m) in machines {
        for combo in &combos {
            let params: BTreeMap<String, Value> = dims
                .iter()
                .zip(combo)
                .map(|(d, &j)| (d.name.clone(), d.values[j].clone()))
                .collect();
            let count = match count_index {
                Some(i) => match &dims[i].values[combo[i]] {
                    Value::Num(x) => *x,
                    Value::Cat(_) => unreachable!("the count was checked to be numeric"),
                },
                None => 1.0,
            };
            let mut parts: Vec<String> = Vec::new();
            if !single_machine || dims.is_empty() {
                parts.push(mname.clone());
            }
            for (d, &j) in dims.iter().zip(combo) {
                parts.push(format!("{}={}", d.name, d.values[j]));
            }
            let name = parts.join("/");
            let price =
                price::price_per_hour(options.backend, prices, m, count, raw.catalogue.count_unit)
                    .map_err(|e| loc.at(None, format!("configuration `{name}`: {e}")))?;
            if !(price.is_finite() && price <= MAX_CONFIG_PRICE) {
                return Err(loc.at(
                    None,
                    format!(
                        "configuration `{name}` would cost {} USD per hour, more than any \
                         cluster (at most {MAX_CONFIG_PRICE:e}): check the count dimension",
                        optimizer::Shown(price)
                    ),
                ));
            }
            names.push(name);
            infos.push(ConfigInfo {
                machine_type: mname.clone(),
                vcpus: m.vcpus,
                memory_gib: m.memory_gib,
                machine_price_per_hour: m.price_per_hour,
                count,
                price_per_hour: price,
                params,
            });
        }
    }

    // Features the surrogate sees: machine shape (when it varies), then the dimensions.
    let mut dimensions = Vec::new();
    let vary_vcpus = infos.iter().any(|i| i.vcpus != infos[0].vcpus);
    let vary_mem = infos.iter().any(|i| {
        i.memory_gib / f64::from(i.vcpus) != infos[0].memory_gib / f64::from(infos[0].vcpus)
    });
    if vary_vcpus {
        dimensions.push(Dimension {
            name: "vcpus".into(),
            kind: Kind::Numeric { log: false },
        });
    }
    if vary_mem {
        dimensions.push(Dimension {
            name: "memory_per_vcpu_gib".into(),
            kind: Kind::Numeric { log: false },
        });
    }
    for d in dims {
        let kind = if d.values.iter().all(|v| matches!(v, Value::Num(_))) {
            Kind::Numeric { log: false }
        } else {
            Kind::Categorical {
                levels: d.values.iter().map(|v| v.to_string()).collect(),
            }
        };
        dimensions.push(Dimension {
            name: d.name.clone(),
            kind,
        });
    }
    let max_price = infos
        .iter()
        .map(|i| i.price_per_hour)
        .fold(0.0f64, f64::max);
    let configs: Vec<Config> = infos
        .iter()
        .zip(names)
        .map(|(info, name)| {
            let mut values = Vec::new();
            if vary_vcpus {
                values.push(Value::Num(f64::from(info.vcpus)));
            }
            if vary_mem {
                values.push(Value::Num(info.memory_gib / f64::from(info.vcpus)));
            }
            for d in dims {
                values.push(info.params[&d.name].clone());
            }
            Config {
                name,
                values,
                price_per_hour: match raw.objective {
                    Objective::Cost => info.price_per_hour,
                    Objective::Runtime => max_price,
                },
            }
        })
        .collect();
    Space::auto_log(&mut dimensions, &configs);
    let space = Space::new(dimensions, configs).map_err(|e| loc.at(None, e.to_string()))?;
    Ok((space, infos))
}
