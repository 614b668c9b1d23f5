//! Criterion benchmarks of the optimizer crate: one `ask` of `bo` and `cherrypick` over a
//! 69-configuration catalogue (the Scout shape) after 10 and 30 observations, hyper-parameter
//! refit included, GP fit and predict on their own, and the model's inputs of a
//! 5,000-configuration catalogue. Inputs are synthetic and seeded, built
//! outside the timed closures. After 30 observations of this smooth cost every model strategy
//! is ready to stop, so that ask is the one that ends a search: `bo`'s includes the stop's
//! confirmation over the warping's uncertainty, `bo:stop-warp=held` is the same ask without it.

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use optimizer::gp::{FittedGp, GpConfig, GpData};
use optimizer::rng::Rng;
use optimizer::space::Features;
use optimizer::strategies::{ModelSettings, ModelStrategy};
use optimizer::{Config, Dimension, Kind, Optimizer, Outcome, Space, StrategyOptions, Value};

/// Scout's catalogue shape: 3 families x 3 sizes x cluster sizes, 69 configurations.
fn catalogue() -> Arc<Space> {
    let families = [("c4", 1.875, 0.10), ("m4", 4.0, 0.10), ("r4", 7.625, 0.133)];
    let sizes = [2.0, 4.0, 8.0];
    let mut configs = Vec::new();
    for (f, ram, price) in families {
        for (k, vcpus) in sizes.iter().enumerate() {
            let nodes: &[f64] = match k {
                0 => &[
                    4.0, 6.0, 8.0, 10.0, 12.0, 16.0, 20.0, 24.0, 32.0, 40.0, 48.0,
                ],
                1 => &[4.0, 6.0, 8.0, 10.0, 12.0, 16.0, 20.0, 24.0],
                _ => &[4.0, 6.0, 8.0, 10.0],
            };
            for &n in nodes {
                configs.push(Config {
                    name: format!("{n}_{f}.{k}"),
                    values: vec![Value::Num(n), Value::Num(*vcpus), Value::Num(ram)],
                    price_per_hour: n * price * vcpus / 2.0,
                });
            }
        }
    }
    configs.truncate(69);
    let mut dims: Vec<Dimension> = ["nodes", "vcpus_per_node", "ram_per_vcpu_gib"]
        .iter()
        .map(|n| Dimension {
            name: n.to_string(),
            kind: Kind::Numeric { log: false },
        })
        .collect();
    Space::auto_log(&mut dims, &configs);
    Arc::new(Space::new(dims, configs).expect("valid synthetic catalogue"))
}

/// A smooth synthetic cost with a noisy multiplicative term, seeded.
fn outcome(space: &Space, id: usize, rng: &mut Rng) -> Outcome {
    let c = space.config(id);
    let num = |j: usize| match c.values[j] {
        Value::Num(x) => x,
        Value::Cat(_) => 1.0,
    };
    let work = 3000.0 / (num(0) * num(1)).powf(0.8) + 40.0 / num(2);
    let runtime_s = work * (1.0 + 0.1 * (rng.next_f64() - 0.5));
    Outcome::Completed {
        runtime_s,
        cost_usd: c.price_per_hour * runtime_s / 3600.0,
        metrics: Default::default(),
    }
}

/// A strategy that has been told `n` observations chosen by itself.
fn primed(settings: ModelSettings, space: &Arc<Space>, n: usize) -> ModelStrategy {
    let mut s = ModelStrategy::new(
        space.clone(),
        &StrategyOptions {
            seed: 1,
            max_runtime_s: None,
        },
        settings,
    );
    let mut rng = Rng::new(5);
    for _ in 0..n {
        let p = s.ask().expect("catalogue larger than the observations");
        s.tell(p.config, outcome(space, p.config, &mut rng));
    }
    s
}

fn bench_ask(c: &mut Criterion) {
    let space = catalogue();
    let mut g = c.benchmark_group("ask_69_configs");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    for (name, settings) in [
        ("bo", ModelSettings::bo()),
        (
            "bo:stop-warp=held",
            ModelSettings::parse("bo:stop-warp=held")
                .expect("a model strategy")
                .expect("valid settings"),
        ),
        (
            "bo:warp=off",
            ModelSettings::parse("bo:warp=off")
                .expect("a model strategy")
                .expect("valid settings"),
        ),
        ("cherrypick", ModelSettings::cherrypick()),
    ] {
        for n in [10usize, 30] {
            let s = primed(settings.clone(), &space, n);
            g.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
                // Each iteration asks a fresh copy: a full refit from the same state.
                b.iter_batched(
                    || s.clone(),
                    |mut s| s.ask(),
                    criterion::BatchSize::SmallInput,
                )
            });
        }
    }
    g.finish();
}

fn gp_data(n: usize) -> (GpData, Vec<Vec<f64>>) {
    let space = catalogue();
    let mut rng = Rng::new(9);
    let mut ids: Vec<usize> = (0..space.len()).collect();
    rng.shuffle(&mut ids);
    let xs: Vec<Vec<f64>> = ids[..n]
        .iter()
        .map(|&i| space.encoded(i).to_vec())
        .collect();
    let ys: Vec<f64> = ids[..n]
        .iter()
        .map(|&i| outcome(&space, i, &mut rng).cost_paid().ln())
        .collect();
    let all = (0..space.len())
        .map(|i| space.encoded(i).to_vec())
        .collect();
    (GpData::new(&xs, &ys).expect("finite data"), all)
}

fn bench_gp(c: &mut Criterion) {
    let mut g = c.benchmark_group("gp");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    for n in [10usize, 30] {
        let (data, all) = gp_data(n);
        let cfg = GpConfig::default();
        g.bench_with_input(BenchmarkId::new("fit", n), &n, |b, _| {
            b.iter(|| FittedGp::fit(data.clone(), &cfg, &mut Rng::new(3), None))
        });
        let gp = FittedGp::fit(data.clone(), &cfg, &mut Rng::new(3), None).expect("fit");
        let refs: Vec<&[f64]> = all.iter().map(|v| v.as_slice()).collect();
        g.bench_with_input(BenchmarkId::new("predict_69", n), &n, |b, _| {
            b.iter(|| gp.predict_many(&refs))
        });
    }
    g.finish();
}

/// A large catalogue spelled verbosely: 50 machine types (a name, a family, vCPUs, memory and
/// a price per node-hour each) x 10 cluster sizes x 10 parallelism settings, with the cluster's
/// vCPUs as a column too: 5,000 configurations.
fn verbose_catalogue() -> Space {
    let mut configs = Vec::new();
    for t in 0..50usize {
        let family = ["a", "b", "c", "d", "e"][t % 5];
        let vcpus = [2.0, 4.0, 8.0, 16.0, 32.0, 48.0, 64.0, 72.0, 96.0, 128.0][t / 5];
        let memory = vcpus * [1.0, 2.0, 4.0, 8.0, 3.0][t % 5];
        let price = 0.01 * vcpus + 0.004 * memory + 0.0001 * t as f64;
        for nodes in 1..=10 {
            for parallelism in 1..=10 {
                let (n, p) = (nodes as f64, parallelism as f64 * 8.0);
                configs.push(Config {
                    name: format!("{nodes}x{t}/{parallelism}"),
                    values: vec![
                        Value::Cat(format!("type{t}")),
                        Value::Cat(family.into()),
                        Value::Num(n),
                        Value::Num(vcpus),
                        Value::Num(memory),
                        Value::Num(p),
                        Value::Num(price),
                        Value::Num(n * vcpus),
                    ],
                    price_per_hour: n * price,
                });
            }
        }
    }
    let levels = |prefix: &str, k: usize| (0..k).map(|i| format!("{prefix}{i}")).collect();
    let numeric = |name: &str| Dimension {
        name: name.into(),
        kind: Kind::Numeric { log: false },
    };
    let mut dims = vec![
        Dimension {
            name: "vm_type".into(),
            kind: Kind::Categorical {
                levels: levels("type", 50),
            },
        },
        Dimension {
            name: "family".into(),
            kind: Kind::Categorical {
                levels: ["a", "b", "c", "d", "e"].map(String::from).to_vec(),
            },
        },
        numeric("nodes"),
        numeric("vcpus"),
        numeric("memory_gib"),
        numeric("parallelism"),
        numeric("price_per_node_hour"),
        numeric("total_vcpus"),
    ];
    Space::auto_log(&mut dims, &configs);
    Space::new(dims, configs).expect("valid synthetic catalogue")
}

fn bench_inputs(c: &mut Criterion) {
    let space = verbose_catalogue();
    let mut g = c.benchmark_group("inputs");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    // What `bo` builds once per search: which columns relabel or total others, and products.
    g.bench_function("products_5000_configs", |b| {
        b.iter(|| space.features(Features::Products))
    });
    g.finish();
}

criterion_group!(benches, bench_ask, bench_gp, bench_inputs);
criterion_main!(benches);
