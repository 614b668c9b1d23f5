//! Model-based strategies: a Gaussian process on log cost plus expected improvement over the
//! catalogue. One engine, two settings: `cherrypick` (the published method, DESIGN 3.1) and `bo`
//! (our own choices, DESIGN 3.2); [`ModelSettings`] says what differs.
//!
//! `Proposal::expected_improvement` is `exp(EI) - 1`, where EI is the expected improvement of
//! log cost (times the probability of meeting the runtime limit when there is one, averaged over
//! hyper-parameter samples when there are several): the expected relative saving over the
//! incumbent, so 0.1 reads as "about 10% cheaper".

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::acquisition::{
    expected_improvement, log_expected_improvement, log_norm_cdf, log_prob_within_runtime, norm_cdf,
};
use crate::gp::{FittedGp, GpConfig, GpData, Hyper};
use crate::outcome::{History, Outcome};
use crate::rng::Rng;
use crate::slice::{sample_hypers, sample_hypers_and_warping};
use crate::sobol::sobol_points;
use crate::space::{ConfigId, Space};
use crate::strategy::{Optimizer, Proposal};

use super::settings::{
    Acquisition, FailedRuns, HyperMode, ModelSettings, PendingRuns, StopRule, StopWarp, Target,
};
use super::StrategyOptions;

/// A GP-EI strategy over a finite catalogue.
#[derive(Debug, Clone)]
pub struct ModelStrategy {
    settings: ModelSettings,
    space: Arc<Space>,
    max_runtime_s: Option<f64>,
    x: Vec<Vec<f64>>,
    /// Columns of `x` the GP warps (see [`ModelSettings::warp`]).
    warped: Vec<usize>,
    /// Inputs the initial design is matched in, when not the model's own.
    design_x: Option<Vec<Vec<f64>>>,
    issued: Vec<bool>,
    history: History,
    design: Vec<Vec<f64>>,
    fit_rng: Rng,
    fallback_rng: Rng,
    sample_rng: Rng,
    /// Hyper-parameters of the last fit, or the state of the sampling chain.
    warm: Option<Hyper>,
    /// The stop rule's own sampling chain (see [`ModelSettings::stop_samples`]): the kernel's
    /// parameters with the warping held at the fit, or the whole posterior with
    /// [`StopWarp::Whole`].
    held: Chain,
    /// The chain that confirms a stop over the warping's uncertainty (see
    /// [`StopWarp::Sampled`]).
    whole: Chain,
    /// Whether a confirmation may be drawn on a second thread while the held chain draws (see
    /// [`ModelStrategy::ask`]); the numbers are the same either way.
    confirm_ahead: bool,
    /// What the stop rule measured at the last ask.
    stop_detail: String,
}

/// A chain of hyper-parameter samples that persists across asks: its last state (none before
/// its first draw) and its own generator.
#[derive(Debug, Clone)]
struct Chain {
    state: Option<Hyper>,
    rng: Rng,
}

impl Chain {
    fn new(rng: Rng) -> Chain {
        Chain { state: None, rng }
    }

    /// `sweeps` samples of the whole posterior given `gp`'s data, the warping's parameters
    /// included, continuing from this chain's state (from `gp`'s fit where it has none that
    /// fits); the caller keeps the state it wants.
    fn sweep_whole(&mut self, gp: &FittedGp, config: &GpConfig, sweeps: usize) -> Vec<Hyper> {
        let start = self
            .state
            .clone()
            .filter(|h| h.fits(gp.data()))
            .unwrap_or_else(|| gp.hyper().clone());
        sample_hypers_and_warping(gp.data(), config, &start, sweeps, &mut self.rng)
    }
}

/// Sets its flag when dropped.
struct CancelOnDrop<'a>(&'a AtomicBool);

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Per model, per candidate: (mean ln cost, variance, ln P[runtime within the limit]).
type Predictions = Vec<Vec<(f64, f64, f64)>>;

/// The columns of a catalogue's encoding worth warping: those taking three or more distinct
/// values (an amount on an axis). A one-hot or two-valued column has nothing to warp: any
/// monotone map keeps its two values apart by a distance the length-scale already sets.
fn warp_columns(x: &[Vec<f64>]) -> Vec<usize> {
    let d = x.first().map_or(0, Vec::len);
    (0..d)
        .filter(|&c| {
            let mut v: Vec<f64> = x.iter().map(|row| row[c]).collect();
            v.sort_by(f64::total_cmp);
            v.dedup();
            v.len() >= 3
        })
        .collect()
}

/// Log of the mean of `exp(v)` over `v`, without overflow; `-inf` for an empty or all `-inf` list.
fn log_mean_exp(v: &[f64]) -> f64 {
    let m = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + (v.iter().map(|x| (x - m).exp()).sum::<f64>() / v.len() as f64).ln()
}

impl ModelStrategy {
    pub fn new(space: Arc<Space>, options: &StrategyOptions, settings: ModelSettings) -> Self {
        let x = space.features(settings.features);
        let warped = if settings.warp {
            warp_columns(&x)
        } else {
            Vec::new()
        };
        let design_x = settings.design_features.map(|f| space.features(f));
        let dim = design_x.as_ref().unwrap_or(&x).first().map_or(1, Vec::len);
        let design = sobol_points(settings.initial, dim, options.seed);
        ModelStrategy {
            issued: vec![false; space.len()],
            max_runtime_s: options.max_runtime_s,
            x,
            warped,
            design_x,
            history: History::default(),
            design,
            fit_rng: Rng::derive(options.seed, 0x0066_6974),
            fallback_rng: Rng::derive(options.seed, 0x6661_6c6c),
            sample_rng: Rng::derive(options.seed, 0x736c_6963),
            held: Chain::new(Rng::derive(options.seed, 0x7374_6f70)),
            whole: Chain::new(Rng::derive(options.seed, 0x7761_7270)),
            confirm_ahead: crate::spare_core(),
            warm: None,
            stop_detail: String::new(),
            settings,
            space,
        }
    }

    pub fn settings(&self) -> &ModelSettings {
        &self.settings
    }

    /// Hyper-parameters of the last successful fit (the last sample when sampling).
    pub fn hyper(&self) -> Option<&Hyper> {
        self.warm.as_ref()
    }

    fn issue(&mut self, config: ConfigId, ei: Option<f64>, stop: bool) -> Proposal {
        self.issued[config] = true;
        Proposal {
            config,
            expected_improvement: ei,
            stop,
        }
    }

    /// Training targets: ln cost of completed runs (less the known offset), and of failed ones
    /// as configured.
    fn training(&self) -> (Vec<Vec<f64>>, Vec<f64>) {
        let obs = self.history.observations();
        // A probe cut short paid less than finishing would have: modelled below the worst
        // completed run it would look attractive and be probed again and again.
        let worst_completed = obs
            .iter()
            .filter_map(|o| o.outcome.completed_cost())
            .fold(0.0, f64::max);
        let worst_target = obs
            .iter()
            .filter_map(|o| {
                let c = o.outcome.completed_cost()?;
                (c > 0.0 && c.is_finite()).then(|| c.ln() - self.offset(o.config))
            })
            .fold(f64::NEG_INFINITY, f64::max);
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for o in obs {
            let paid = |o: &Outcome| o.cost_paid().max(worst_completed);
            let y = match (&o.outcome, self.settings.failed) {
                (Outcome::Completed { cost_usd, .. }, _) => cost_usd.ln() - self.offset(o.config),
                (_, FailedRuns::Drop) => continue,
                (other, FailedRuns::CostPaid) => paid(other).ln() - self.offset(o.config),
                (_, FailedRuns::Worst) if worst_target.is_finite() => worst_target,
                (other, FailedRuns::Worst) => paid(other).ln() - self.offset(o.config),
            };
            if y.is_finite() {
                xs.push(self.x[o.config].clone());
                ys.push(y);
            }
        }
        (xs, ys)
    }

    /// Known part of ln cost that the GP does not model.
    fn offset(&self, config: ConfigId) -> f64 {
        self.view().offset(config)
    }

    /// What predictions need, borrowed apart from the chains.
    fn view(&self) -> View<'_> {
        View {
            settings: &self.settings,
            space: &self.space,
            x: &self.x,
            max_runtime_s: self.max_runtime_s,
        }
    }

    /// Inputs of the configurations asked but not yet told (probes in flight).
    fn pending_inputs(&self) -> Vec<Vec<f64>> {
        let mut told = vec![false; self.space.len()];
        for o in self.history.observations() {
            told[o.config] = true;
        }
        (0..self.space.len())
            .filter(|&c| self.issued[c] && !told[c])
            .map(|c| self.x[c].clone())
            .collect()
    }

    /// The models the acquisition averages over: one fitted GP, or one per hyper-parameter
    /// sample. Empty when no model can be built.
    fn models(&mut self) -> Vec<FittedGp> {
        let (xs, ys) = self.training();
        let Ok(data) = GpData::new(&xs, &ys).and_then(|d| d.warping(&self.warped)) else {
            return Vec::new();
        };
        // A chain continues from its last state without a new fit, except where the inputs are
        // warped: the sampler holds the warping fixed, so it is fitted again at every ask.
        let start = match (self.settings.hyper, &self.warm) {
            (HyperMode::Samples { .. }, Some(h)) if h.fits(&data) && data.warped().is_empty() => {
                h.clone()
            }
            _ => match FittedGp::fit(
                data.clone(),
                &self.settings.gp,
                &mut self.fit_rng,
                self.warm.as_ref(),
            ) {
                Ok(gp) => {
                    self.warm = Some(gp.hyper().clone());
                    if self.settings.hyper == HyperMode::Point {
                        return vec![gp];
                    }
                    gp.hyper().clone()
                }
                Err(_) => return Vec::new(),
            },
        };
        let HyperMode::Samples { count } = self.settings.hyper else {
            return Vec::new();
        };
        let samples = sample_hypers(
            &data,
            &self.settings.gp,
            &start,
            count,
            &mut self.sample_rng,
        );
        self.warm = samples.last().cloned().or(Some(start));
        samples
            .into_iter()
            .filter_map(|h| FittedGp::condition(data.clone(), h).ok())
            .collect()
    }
}

/// What turning models into predictions needs from a strategy, borrowed apart from its chains:
/// two chains can then draw at once, each on its own thread, reading the same view.
#[derive(Clone, Copy)]
struct View<'a> {
    settings: &'a ModelSettings,
    space: &'a Space,
    x: &'a [Vec<f64>],
    max_runtime_s: Option<f64>,
}

impl View<'_> {
    /// Known part of ln cost that the GP does not model.
    fn offset(&self, config: ConfigId) -> f64 {
        match self.settings.target {
            Target::LogCost => 0.0,
            Target::LogCostOverPrice => self.space.config(config).price_per_hour.ln(),
        }
    }

    /// Every model's prediction for every candidate, in ln cost units.
    fn predict(&self, models: &[FittedGp], candidates: &[ConfigId]) -> Predictions {
        let refs: Vec<&[f64]> = candidates.iter().map(|&c| self.x[c].as_slice()).collect();
        models
            .iter()
            .map(|gp| {
                gp.predict_many(&refs)
                    .into_iter()
                    .zip(candidates)
                    .map(|((m, v), &c)| {
                        let m = m + self.offset(c);
                        let log_p = match self.max_runtime_s {
                            Some(t) => log_prob_within_runtime(
                                m,
                                v,
                                self.space.config(c).price_per_hour,
                                t,
                            ),
                            None => 0.0,
                        };
                        (m, v, log_p)
                    })
                    .collect()
            })
            .collect()
    }

    /// What the models with hyper-parameters `hypers` on `data` predict for `candidates`, probes
    /// in flight believed.
    fn predictions_of(
        &self,
        data: &GpData,
        hypers: Vec<Hyper>,
        candidates: &[ConfigId],
        pending: &[Vec<f64>],
    ) -> Predictions {
        let fitted: Vec<FittedGp> = hypers
            .into_iter()
            .filter_map(|h| FittedGp::condition(data.clone(), h).ok())
            .collect();
        let fitted = believing(&fitted, pending, self.settings.pending).unwrap_or(fitted);
        self.predict(&fitted, candidates)
    }

    /// The stop rule's hyper-parameter samples' predictions, continuing `chain`, when the
    /// settings draw them for a point model and a model was fitted: the kernel's parameters
    /// with the warping held at the fit, or the whole posterior with [`StopWarp::Whole`].
    fn held_samples(
        &self,
        chain: &mut Chain,
        fitted: &[FittedGp],
        candidates: &[ConfigId],
        pending: &[Vec<f64>],
    ) -> Option<Predictions> {
        let n = self.settings.stop_samples;
        let gp = fitted.first()?;
        if n == 0 || self.settings.hyper != HyperMode::Point {
            return None;
        }
        let hypers = if self.settings.stop_warp == StopWarp::Whole && !gp.data().warped().is_empty()
        {
            // The whole posterior, the chain's own warping continued.
            chain.sweep_whole(gp, &self.settings.gp, n)
        } else {
            // The chain continues in the kernel's parameters; the warping (held fixed by the
            // sampler) is always the one just fitted, never the one the chain started with.
            let start = match chain.state.clone().filter(|h| h.fits(gp.data())) {
                Some(h) => Hyper {
                    log_warp: gp.hyper().log_warp.clone(),
                    ..h
                },
                None => gp.hyper().clone(),
            };
            sample_hypers(gp.data(), &self.settings.gp, &start, n, &mut chain.rng)
        };
        chain.state = hypers.last().cloned();
        let sampled = self.predictions_of(gp.data(), hypers, candidates, pending);
        (!sampled.is_empty()).then_some(sampled)
    }

    /// Whether the settings confirm a stop with samples of the whole posterior (see
    /// [`StopWarp::Sampled`]) for this fit: only where it warps its inputs.
    fn confirms_with_whole(&self, fitted: &[FittedGp]) -> bool {
        self.settings.stop_warp == StopWarp::Sampled
            && self.settings.stop_samples > 0
            && self.settings.hyper == HyperMode::Point
            && fitted
                .first()
                .is_some_and(|gp| !gp.data().warped().is_empty())
    }

    /// Predictions of up to as many samples as the stop rule draws, of the whole posterior (the
    /// warping's parameters swept too, continuing `chain`), when [`View::confirms_with_whole`].
    /// Drawn one sweep at a time, ending early once `settled` says the samples so far decide
    /// the rule, or once `cancel` is set (a draw made ahead that turned out not to be needed).
    fn whole_samples(
        &self,
        chain: &mut Chain,
        fitted: &[FittedGp],
        candidates: &[ConfigId],
        pending: &[Vec<f64>],
        settled: &(dyn Fn(&Predictions) -> bool + Sync),
        cancel: &AtomicBool,
    ) -> Option<Predictions> {
        if !self.confirms_with_whole(fitted) {
            return None;
        }
        let gp = fitted.first()?;
        let mut preds = Predictions::new();
        for _ in 0..self.settings.stop_samples {
            if cancel.load(Ordering::Relaxed) {
                break;
            }
            // One sweep per call continues the chain exactly as one call of n sweeps would.
            let hypers = chain.sweep_whole(gp, &self.settings.gp, 1);
            let Some(last) = hypers.last().cloned() else {
                break;
            };
            chain.state = Some(last);
            preds.extend(self.predictions_of(gp.data(), hypers, candidates, pending));
            if settled(&preds) {
                break;
            }
        }
        (!preds.is_empty()).then_some(preds)
    }
}

impl Optimizer for ModelStrategy {
    fn name(&self) -> &str {
        &self.settings.name
    }

    fn ask(&mut self) -> Option<Proposal> {
        let candidates: Vec<ConfigId> =
            (0..self.space.len()).filter(|&i| !self.issued[i]).collect();
        if candidates.is_empty() {
            return None;
        }
        let issued = self.issued.iter().filter(|&&b| b).count();
        if issued < self.design.len() || self.history.is_empty() {
            let nearest = match self.design.get(issued) {
                Some(point) => {
                    let xs = self.design_x.as_ref().unwrap_or(&self.x);
                    candidates
                        .iter()
                        .copied()
                        .min_by(|&a, &b| dist2(&xs[a], point).total_cmp(&dist2(&xs[b], point)))?
                }
                None => candidates[self.fallback_rng.below(candidates.len())],
            };
            return Some(self.issue(nearest, None, false));
        }
        let fitted = self.models();
        // Probes in flight (several asks before their tells) are believed to come back at the
        // model's mean: their uncertainty is gone, so the next ask looks elsewhere. Sequential
        // searches have none and see the plain model.
        let pending = self.pending_inputs();
        let believed = believing(&fitted, &pending, self.settings.pending);
        let models = believed.as_ref().unwrap_or(&fitted);
        if models.is_empty() {
            // No usable model (for example every probe failed at no cost): explore at random.
            let pick = candidates[self.fallback_rng.below(candidates.len())];
            return Some(self.issue(pick, None, false));
        }

        let limit = self.max_runtime_s;
        let incumbent = self.history.best(limit).map(|o| o.outcome.cost_paid().ln());
        // Without a feasible incumbent, improve on the best modelled value so EI stays defined.
        let best = incumbent.unwrap_or_else(|| {
            self.history
                .observations()
                .iter()
                .map(|o| o.outcome.cost_paid())
                .filter(|c| *c > 0.0)
                .fold(f64::INFINITY, f64::min)
                .ln()
        });
        // `self.view()` spelled out field by field: borrowing only these fields leaves the
        // chains free to be borrowed mutably beside it.
        let view = View {
            settings: &self.settings,
            space: &self.space,
            x: &self.x,
            max_runtime_s: self.max_runtime_s,
        };
        let (held, whole) = (&mut self.held, &mut self.whole);
        let preds = view.predict(models, &candidates);
        // Averages a per-model log score over the models, for every candidate.
        let averaged = |preds: &Predictions, score: &dyn Fn(f64, f64, f64) -> f64| -> Vec<f64> {
            (0..candidates.len())
                .map(|i| {
                    let per: Vec<f64> = preds
                        .iter()
                        .map(|p| {
                            let (m, v, lp) = p[i];
                            score(m, v, lp)
                        })
                        .collect();
                    log_mean_exp(&per)
                })
                .collect()
        };
        let argmax = |scores: &[f64]| -> (usize, f64) {
            let mut best_i = 0;
            let mut best_s = f64::NEG_INFINITY;
            for (i, &s) in scores.iter().enumerate() {
                if s > best_s {
                    best_s = s;
                    best_i = i;
                }
            }
            (best_i, best_s)
        };
        // What the point model says of the stop: a stop rule draws samples only to confirm one
        // it calls (hyper-parameter samples widen the uncertainty).
        let may_stop = incumbent.is_some()
            && match self.settings.stop {
                StopRule::LikelyBest { min_runs, .. } | StopRule::WorthIt { min_runs, .. } => {
                    self.history.len() >= min_runs
                }
                _ => false,
            };
        let point_p = match self.settings.stop {
            StopRule::LikelyBest { margin, .. } if may_stop => {
                Some(prob_any_below(&preds, best + (1.0 - margin).ln()))
            }
            _ => None,
        };
        let point_worth = match self.settings.stop {
            StopRule::WorthIt { runs, .. } if may_stop => {
                Some(most_worth_probing(&preds, best, runs))
            }
            _ => None,
        };
        let point_stops = match self.settings.stop {
            StopRule::LikelyBest { prob, .. } => point_p.is_some_and(|p| p < prob),
            StopRule::WorthIt { .. } => point_worth.is_some_and(|w| w.net() <= 0.0),
            _ => false,
        };
        // The whole posterior's samples settle the statement rule before all are drawn once
        // their probabilities sum past n x prob (none is negative, so the rest cannot make it
        // stop); the cost-aware rule draws them all.
        let n_samples = self.settings.stop_samples as f64;
        let settle_at = match self.settings.stop {
            StopRule::LikelyBest { margin, prob, .. } => Some((best + (1.0 - margin).ln(), prob)),
            _ => None,
        };
        let settled = move |drawn: &Predictions| {
            settle_at.is_some_and(|(target, prob)| {
                prob_any_below(drawn, target) * drawn.len() as f64 >= n_samples * prob
            })
        };
        let cancel = AtomicBool::new(false);
        // Where the point model calls a stop, the held chain's samples are drawn to confirm
        // it (or to explore) and, if they confirm it too, the whole posterior's. The second
        // depends only on its own chain, so it is drawn ahead on another thread while the
        // first draws: an ask that confirms a stop waits for the longer of the two, not their
        // sum (one whose stop the held samples refuse, for the sweep in progress). It is kept
        // only if the rule would have drawn it (else cancelled and dropped, the chain
        // untouched), so the numbers are those of drawing one after the other.
        let ahead_wanted = self.confirm_ahead && point_stops && view.confirms_with_whole(&fitted);
        let (best_idx, ei_log, stop, detail) = std::thread::scope(|scope| {
            // However this thread leaves the scope (unwinding too), a draw still running ahead
            // stops at its next sweep rather than running out its samples.
            let _cancel_on_exit = CancelOnDrop(&cancel);
            let mut ahead = if ahead_wanted {
                let mut chain = whole.clone();
                let (fitted, candidates, pending) = (&fitted, &candidates, &pending);
                let (settled, cancel) = (&settled, &cancel);
                std::thread::Builder::new()
                    .name("confirm-stop".into())
                    .spawn_scoped(scope, move || {
                        let drawn = view.whole_samples(
                            &mut chain, fitted, candidates, pending, settled, cancel,
                        );
                        (drawn, chain)
                    })
                    // No thread to be had: it is drawn in turn when needed.
                    .ok()
            } else {
                None
            };
            let mut whole_samples = |whole: &mut Chain| match ahead.take() {
                Some(handle) => {
                    let (drawn, chain) = handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                    *whole = chain;
                    drawn
                }
                None => view.whole_samples(
                    whole,
                    &fitted,
                    &candidates,
                    &pending,
                    &settled,
                    &AtomicBool::new(false),
                ),
            };
            // Scores in log form for both acquisitions; plain EI keeps its ties at zero (-inf).
            let ei_scores = match self.settings.acquisition {
                Acquisition::Ei => averaged(&preds, &|m, v, lp| {
                    (lp.exp() * expected_improvement(m, v, best)).ln()
                }),
                Acquisition::LogEi => averaged(&preds, &|m, v, lp| {
                    lp + log_expected_improvement(m, v, best)
                }),
            };
            let (mut best_idx, best_score) = argmax(&ei_scores);
            let ei_log = best_score.exp();
            // The stop rule's hyper-parameter samples, drawn at most once per ask (outer
            // `Some`: drawn; inner `None`: the settings draw none).
            let mut sampled: Option<Option<Predictions>> = None;
            if self.settings.explore_below.is_some_and(|t| ei_log < t) {
                let pi_preds = if self.settings.explore_sampled {
                    sampled
                        .get_or_insert_with(|| {
                            view.held_samples(held, &fitted, &candidates, &pending)
                        })
                        .as_ref()
                        .unwrap_or(&preds)
                } else {
                    &preds
                };
                let pi = averaged(pi_preds, &|m, v, lp| {
                    lp + log_norm_cdf((best - m) / v.max(1e-12).sqrt())
                });
                best_idx = argmax(&pi).0;
            }
            // No stop rule may end a search that has found nothing feasible yet.
            let (stop, detail) = match self.settings.stop {
                _ if incumbent.is_none() => (false, None),
                StopRule::Never => (false, None),
                StopRule::EiBelow {
                    threshold,
                    min_runs,
                } => (
                    self.history.len() >= min_runs && ei_log < threshold,
                    // The threshold is on EI of log cost (CherryPick's 0.1), shown as the
                    // relative saving it is: 10.5%, not a rounded 11%.
                    Some(format!(
                        "expected improvement {:.2}% < {:.1}%",
                        ei_log.exp_m1() * 100.0,
                        threshold.exp_m1() * 100.0
                    )),
                ),
                StopRule::LikelyBest { margin, prob, .. } => match point_p {
                    None => (false, None),
                    Some(mut p) => {
                        let target = best + (1.0 - margin).ln();
                        if p < prob {
                            let drawn = sampled.get_or_insert_with(|| {
                                view.held_samples(held, &fitted, &candidates, &pending)
                            });
                            if let Some(drawn) = drawn {
                                p = prob_any_below(drawn, target);
                            }
                        }
                        if p < prob {
                            if let Some(whole) = whole_samples(whole) {
                                p = prob_any_below(&whole, target);
                            }
                        }
                        (
                            p < prob,
                            Some(format!(
                                "chance of an untried configuration over {:.0}% cheaper {:.1}% < {:.0}%",
                                margin * 100.0,
                                p * 100.0,
                                prob * 100.0
                            )),
                        )
                    }
                },
                StopRule::WorthIt { runs, .. } => match point_worth {
                    None => (false, None),
                    Some(mut worth) => {
                        if worth.net() <= 0.0 {
                            let drawn = sampled.get_or_insert_with(|| {
                                view.held_samples(held, &fitted, &candidates, &pending)
                            });
                            if let Some(drawn) = drawn {
                                worth = most_worth_probing(drawn, best, runs);
                            }
                        }
                        if worth.net() <= 0.0 {
                            if let Some(whole) = whole_samples(whole) {
                                worth = most_worth_probing(&whole, best, runs);
                            }
                        }
                        (
                            worth.net() <= 0.0,
                            Some(format!("best probe left: {worth}")),
                        )
                    }
                },
            };
            // A confirmation drawn ahead and not needed stops at its next sweep and is dropped,
            // whatever became of it: the rule never asked for it.
            cancel.store(true, Ordering::Relaxed);
            if let Some(unneeded) = ahead.take() {
                let _ = unneeded.join();
            }
            (best_idx, ei_log, stop, detail)
        });
        if let Some(detail) = detail {
            self.stop_detail = detail;
        }
        Some(self.issue(candidates[best_idx], Some(ei_log.exp_m1()), stop))
    }

    fn tell(&mut self, config: ConfigId, outcome: Outcome) {
        // A configuration this space does not have cannot be modelled: it is not recorded.
        if let Some(slot) = self.issued.get_mut(config) {
            *slot = true;
            self.history.push(config, outcome);
        }
    }

    fn pending(&mut self, config: ConfigId) {
        if let Some(slot) = self.issued.get_mut(config) {
            *slot = true;
        }
    }

    fn history(&self) -> &History {
        &self.history
    }

    fn stop_detail(&self) -> Option<String> {
        (!self.stop_detail.is_empty()).then(|| self.stop_detail.clone())
    }
}

/// Probability, averaged over the models, that some candidate's ln cost is below `target`
/// (and its runtime within the limit): 1 - prod(1 - p_c) per model. Treating the candidates as
/// independent overstates it (the GP correlates neighbours positively), so a stop it allows is
/// conservative.
fn prob_any_below(preds: &Predictions, target: f64) -> f64 {
    let per_model = preds.iter().map(|p| {
        let log_none: f64 = p
            .iter()
            .map(|&(m, v, lp)| {
                let z = (target - m) / v.max(1e-12).sqrt();
                (-(log_norm_cdf(z) + lp).exp()).ln_1p()
            })
            .sum();
        -log_none.exp_m1()
    });
    per_model.sum::<f64>() / preds.len().max(1) as f64
}

/// What probing one more configuration is expected to bring, in the catalogue's currency.
#[derive(Debug, Clone, Copy)]
struct Worth {
    /// Expected saving per run over the incumbent, were the search to end on it.
    saving: f64,
    runs: f64,
    /// Expected cost of the probe itself.
    cost: f64,
}

impl Worth {
    fn net(&self) -> f64 {
        self.runs * self.saving - self.cost
    }
}

impl std::fmt::Display for Worth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "expected saving {:.4} x {} runs {} its expected cost {:.4}",
            self.saving,
            self.runs,
            if self.net() > 0.0 { ">" } else { "<=" },
            self.cost
        )
    }
}

/// The untried configuration with the largest expected net value of probing it, averaged over
/// the models. With ln C ~ N(m, v) and incumbent cost b, the expected saving is
/// E[max(0, b - C)] = b Phi(d) - e^(m + v/2) Phi(d - s), d = (ln b - m) / s, s = sqrt(v),
/// times the probability that the run meets the runtime limit; the probe costs e^(m + v/2).
fn most_worth_probing(preds: &Predictions, best_ln: f64, runs: f64) -> Worth {
    let b = best_ln.exp();
    let k = preds.first().map_or(0, Vec::len);
    let models = preds.len().max(1) as f64;
    let mut top = Worth {
        saving: 0.0,
        runs,
        cost: f64::INFINITY,
    };
    for i in 0..k {
        let (mut saving, mut cost) = (0.0, 0.0);
        for p in preds {
            let (m, v, lp) = p[i];
            let s = v.max(0.0).sqrt();
            let mean = (m + v.max(0.0) / 2.0).exp();
            let gain = if s < 1e-9 {
                (b - m.exp()).max(0.0)
            } else {
                let d = (best_ln - m) / s;
                (b * norm_cdf(d) - mean * norm_cdf(d - s)).max(0.0)
            };
            saving += lp.exp() * gain / models;
            cost += mean / models;
        }
        let here = Worth { saving, runs, cost };
        if here.net() > top.net() || !top.cost.is_finite() {
            top = here;
        }
    }
    top
}

/// Every model told the in-flight probes at `pending` as `how` says ([`PendingRuns`]); `None`
/// when nothing is in flight or a model cannot take them (then the plain models serve).
fn believing(models: &[FittedGp], pending: &[Vec<f64>], how: PendingRuns) -> Option<Vec<FittedGp>> {
    if pending.is_empty() {
        return None;
    }
    models
        .iter()
        .map(|gp| match how {
            PendingRuns::Believed => gp.believing(pending).ok(),
            PendingRuns::Worst => gp.told(pending, &vec![gp.max_target(); pending.len()]).ok(),
        })
        .collect()
}

fn dist2(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::{Config, Dimension, Kind, Value};

    /// Configurations `c0..c{n-1}` along one numeric axis, priced per hour by `price`.
    fn line(n: usize, price: impl Fn(usize) -> f64) -> Arc<Space> {
        let dims = vec![Dimension {
            name: "x".into(),
            kind: Kind::Numeric { log: false },
        }];
        let configs = (0..n)
            .map(|i| Config {
                name: format!("c{i}"),
                values: vec![Value::Num(i as f64)],
                price_per_hour: price(i),
            })
            .collect();
        Arc::new(Space::new(dims, configs).unwrap())
    }

    #[test]
    fn no_stop_rule_ends_a_search_that_found_nothing_feasible() {
        let space = line(20, |i| 1.0 + i as f64);
        let options = StrategyOptions {
            seed: 1,
            max_runtime_s: Some(100.0),
        };
        for settings in [ModelSettings::bo(), ModelSettings::cherrypick()] {
            let mut s = ModelStrategy::new(space.clone(), &options, settings);
            for _ in 0..15 {
                let p = s.ask().unwrap();
                assert!(!p.stop, "{} stopped with nothing feasible", s.name());
                let price = space.config(p.config).price_per_hour;
                s.tell(
                    p.config,
                    Outcome::TimedOut {
                        elapsed_s: 100.0,
                        cost_usd: price * 100.0 / 3600.0,
                    },
                );
            }
        }
    }

    /// Nodes x memory per node; the job is 8x slower until the cluster holds 24 units of
    /// memory (a memory cliff), and pays per node and memory.
    fn cliff() -> (Arc<Space>, Vec<f64>) {
        let dims = ["nodes", "memory"]
            .iter()
            .map(|n| Dimension {
                name: n.to_string(),
                kind: Kind::Numeric { log: false },
            })
            .collect();
        let (mut configs, mut runtime_h) = (Vec::new(), Vec::new());
        for nodes in 1..=8 {
            for memory in 1..=6 {
                let slow = if nodes * memory >= 24 { 1.0 } else { 8.0 };
                runtime_h.push(slow / nodes as f64);
                configs.push(Config {
                    name: format!("{nodes}x{memory}"),
                    values: vec![Value::Num(nodes as f64), Value::Num(memory as f64)],
                    price_per_hour: nodes as f64 * (1.0 + 0.3 * memory as f64),
                });
            }
        }
        (Arc::new(Space::new(dims, configs).unwrap()), runtime_h)
    }

    /// Tells `s` what configuration `c` of [`cliff`] costs.
    fn tell_cliff(s: &mut ModelStrategy, space: &Space, runtime_h: &[f64], c: ConfigId) {
        let h = runtime_h[c];
        s.tell(
            c,
            Outcome::Completed {
                runtime_s: 3600.0 * h,
                cost_usd: space.config(c).price_per_hour * h,
                metrics: Default::default(),
            },
        );
    }

    #[test]
    fn sampled_exploration_changes_only_the_asks_after_expected_improvement_runs_low() {
        let (space, runtime_h) = cliff();
        let run = |spec: &str| {
            let settings = ModelSettings::parse(spec).unwrap().unwrap();
            let threshold = settings.explore_below.unwrap();
            let mut s = ModelStrategy::new(space.clone(), &StrategyOptions::default(), settings);
            let mut asks = Vec::new();
            for _ in 0..20 {
                let p = s.ask().unwrap();
                let exploring = p
                    .expected_improvement
                    .is_some_and(|ei| ei.ln_1p() < threshold);
                asks.push((p.config, exploring));
                tell_cliff(&mut s, &space, &runtime_h, p.config);
            }
            asks
        };
        let point = run("bo:explore-model=point");
        let sampled = run("bo");
        let first = point
            .iter()
            .position(|a| a.1)
            .expect("no ask ever explored");
        // Identical while expected improvement is large: the samples are drawn only to explore.
        assert_eq!(point[..first], sampled[..first]);
        assert!(sampled[first].1);
        assert_ne!(point, sampled, "the samples never chose differently");
    }

    #[test]
    fn warping_bends_the_amount_columns_only_and_leaves_a_fitted_model_behind() {
        // Nodes and memory are amounts (six and eight values), and so is their product; a
        // one-hot family column is not.
        let (space, runtime_h) = cliff();
        let x = space.features(crate::space::Features::Products);
        assert_eq!(warp_columns(&x), (0..x[0].len()).collect::<Vec<_>>());
        let onehot = vec![vec![0.0, 0.2], vec![1.0, 0.5], vec![0.0, 0.9]];
        assert_eq!(warp_columns(&onehot), vec![1]);
        let mut s = ModelStrategy::new(
            space.clone(),
            &StrategyOptions::default(),
            ModelSettings::bo(),
        );
        // The stop rule's samples hold the warping of the fit of the same ask, not the one
        // their chain started with.
        let mut sampled = 0;
        for _ in 0..16 {
            let before = s.held.state.clone();
            let p = s.ask().unwrap();
            let fitted = s.hyper().map(|h| h.log_warp.clone());
            if let (Some(chain), Some(fitted)) = (&s.held.state, fitted) {
                if before.as_ref() != Some(chain) {
                    assert_eq!(chain.log_warp, fitted);
                    sampled += 1;
                }
            }
            tell_cliff(&mut s, &space, &runtime_h, p.config);
        }
        assert!(sampled >= 2, "samples drawn at {sampled} asks");
        let hyper = s.hyper().expect("a fitted model");
        assert_eq!(hyper.log_warp.len(), 2 * x[0].len());
        let off = ModelSettings::parse("bo:warp=off").unwrap().unwrap();
        let mut s = ModelStrategy::new(space, &StrategyOptions::default(), off);
        assert!(s.warped.is_empty());
        s.ask().unwrap();
    }

    #[test]
    fn the_warpings_uncertainty_only_ever_delays_a_stop_and_never_moves_the_search() {
        let (space, runtime_h) = cliff();
        let run = |spec: &str| {
            let settings = ModelSettings::parse(spec).unwrap().unwrap();
            let mut s = ModelStrategy::new(space.clone(), &StrategyOptions::default(), settings);
            let mut asks = Vec::new();
            for _ in 0..30 {
                let p = s.ask().unwrap();
                asks.push((p.config, p.stop));
                tell_cliff(&mut s, &space, &runtime_h, p.config);
            }
            (asks, s.whole.state.is_some())
        };
        let (held, held_chain) = run("bo:stop-warp=held");
        let (sampled, sampled_chain) = run("bo");
        assert!(!held_chain, "the held rule ran the warping's chain");
        assert!(sampled_chain, "the warping's chain never ran");
        // The same probes in the same order: the confirmation has its own chain and generator.
        let configs = |a: &[(ConfigId, bool)]| a.iter().map(|p| p.0).collect::<Vec<_>>();
        assert_eq!(configs(&held), configs(&sampled));
        // A stop with the warping sampled is a stop with it held, confirmed; and here the
        // confirmation refused at least one.
        for ((_, h), (_, s)) in held.iter().zip(&sampled) {
            assert!(!s || *h);
        }
        let stops = |a: &[(ConfigId, bool)]| a.iter().filter(|p| p.1).count();
        assert!(stops(&held) > stops(&sampled), "{held:?} vs {sampled:?}");
    }

    #[test]
    fn whole_posterior_stop_samples_move_the_warping_and_need_no_confirmation() {
        let (space, runtime_h) = cliff();
        let settings = ModelSettings::parse("bo:stop-warp=whole").unwrap().unwrap();
        let mut s = ModelStrategy::new(space.clone(), &StrategyOptions::default(), settings);
        let mut moved = 0;
        let mut stopped = false;
        for _ in 0..30 {
            let before = s.held.state.clone();
            let p = s.ask().unwrap();
            stopped |= p.stop;
            let fitted = s.hyper().map(|h| h.log_warp.clone());
            if let (Some(chain), Some(fitted)) = (&s.held.state, fitted) {
                // Drawn at this ask, with a warping of their own, not the fit's.
                if before.as_ref() != Some(chain) && chain.log_warp != fitted {
                    moved += 1;
                }
            }
            tell_cliff(&mut s, &space, &runtime_h, p.config);
        }
        assert!(
            moved >= 2,
            "the stop samples' warping moved at {moved} asks"
        );
        assert!(stopped, "never stopped");
        assert!(s.whole.state.is_none(), "a confirmation was drawn");
    }

    #[test]
    fn a_confirmation_drawn_ahead_gives_the_numbers_of_one_drawn_in_turn() {
        let (space, runtime_h) = cliff();
        for spec in ["bo", "bo:stop=worth:runs=10"] {
            let run = |ahead: bool| {
                let settings = ModelSettings::parse(spec).unwrap().unwrap();
                let mut s =
                    ModelStrategy::new(space.clone(), &StrategyOptions::default(), settings);
                s.confirm_ahead = ahead;
                let mut asks = Vec::new();
                for _ in 0..30 {
                    let p = s.ask().unwrap();
                    let ei = p.expected_improvement.map(f64::to_bits);
                    asks.push((p.config, p.stop, ei, s.stop_detail.clone()));
                    tell_cliff(&mut s, &space, &runtime_h, p.config);
                }
                // The chains' generators too: each has drawn as often.
                let next = |c: &Chain| c.rng.clone().next_f64().to_bits();
                let chains = (s.held.state.clone(), s.whole.state.clone());
                (asks, chains, next(&s.held), next(&s.whole))
            };
            let (in_turn, ahead) = (run(false), run(true));
            assert!(ahead.1 .1.is_some(), "{spec}: no confirmation was drawn");
            assert!(ahead.0.iter().any(|a| a.1), "{spec}: never stopped");
            assert_eq!(in_turn, ahead, "{spec}");
        }
    }

    #[test]
    fn a_probe_cut_short_is_modelled_no_cheaper_than_the_dearest_completed_run() {
        let space = line(4, |_| 1.0);
        let mut s = ModelStrategy::new(space, &StrategyOptions::default(), ModelSettings::bo());
        let done = |cost| Outcome::Completed {
            runtime_s: 1.0,
            cost_usd: cost,
            metrics: Default::default(),
        };
        s.tell(0, done(0.5));
        s.tell(1, done(2.0));
        s.tell(
            2,
            Outcome::TimedOut {
                elapsed_s: 1.0,
                cost_usd: 0.1,
            },
        );
        let (_, ys) = s.training();
        assert_eq!(ys.len(), 3);
        assert!(
            (ys[2] - 2.0f64.ln()).abs() < 1e-12,
            "timed-out probe modelled at {}",
            ys[2].exp()
        );
    }

    #[test]
    fn a_probe_is_worth_its_expected_saving_over_the_runs_less_its_own_cost() {
        let best = 2.0f64.ln();
        // Known exactly: costs 1, saves 1 per run.
        let exact: Predictions = vec![vec![(0.0, 0.0, 0.0)]];
        let w = most_worth_probing(&exact, best, 3.0);
        assert!((w.saving - 1.0).abs() < 1e-12 && (w.cost - 1.0).abs() < 1e-12);
        assert!((w.net() - 2.0).abs() < 1e-12);
        // Uncertain: the closed form against a quadrature of E[max(0, b - C)], ln C ~ N(m, v).
        let (m, v) = (0.9f64, 0.5f64);
        let s = v.sqrt();
        let steps = 200_000;
        let (lo, hi) = (m - 12.0 * s, m + 12.0 * s);
        let h = (hi - lo) / steps as f64;
        let quad: f64 = (0..steps)
            .map(|k| {
                let y = lo + (k as f64 + 0.5) * h;
                let z = (y - m) / s;
                (2.0 - y.exp()).max(0.0) * (-0.5 * z * z).exp() / (s * std::f64::consts::TAU.sqrt())
                    * h
            })
            .sum();
        let one: Predictions = vec![vec![(m, v, 0.0)]];
        let w = most_worth_probing(&one, best, 1.0);
        assert!((w.saving - quad).abs() < 1e-6, "{} vs {quad}", w.saving);
        assert!((w.cost - (m + v / 2.0).exp()).abs() < 1e-12);
        // A probe that breaks the runtime limit for sure saves nothing.
        let late: Predictions = vec![vec![(m, v, f64::NEG_INFINITY)]];
        assert_eq!(most_worth_probing(&late, best, 1.0).saving, 0.0);
        // The best of several; averaged over models.
        let two: Predictions = vec![
            vec![(0.0, 0.0, 0.0), (-1.0, 0.0, 0.0)],
            vec![(0.0, 0.0, 0.0), (1.0, 0.0, 0.0)],
        ];
        // The second: saves (2 - e^-1 + 0) / 2 per run and costs (e^-1 + e) / 2, net 6.6 < 9.
        let w = most_worth_probing(&two, best, 10.0);
        assert!((w.net() - 9.0).abs() < 1e-12, "picked {w:?}");
    }

    #[test]
    fn the_cost_aware_rule_stops_sooner_when_the_answer_serves_fewer_runs() {
        let space = line(40, |_| 1.0);
        let cost = |c: ConfigId| 1.0 + 0.5 * ((c as f64) / 6.0).sin() + c as f64 / 40.0;
        let stop_after = |runs: f64| {
            // Unwarped: warped, the model is sure of this line (and right: the optimum, c0, is
            // the third probe) after six probes whatever the number of runs.
            let spec = format!("bo:warp=off:stop=worth:runs={runs}");
            let settings = ModelSettings::parse(&spec).unwrap().unwrap();
            let mut s = ModelStrategy::new(space.clone(), &StrategyOptions::default(), settings);
            for n in 1..=40 {
                let p = s.ask().unwrap();
                if p.stop {
                    return n - 1;
                }
                s.tell(
                    p.config,
                    Outcome::Completed {
                        runtime_s: 3600.0 * cost(p.config),
                        cost_usd: cost(p.config),
                        metrics: Default::default(),
                    },
                );
            }
            40
        };
        // Nothing is worth a probe when the answer serves no run: it stops at the minimum.
        assert_eq!(stop_after(0.0), 6);
        let (few, many) = (stop_after(1.0), stop_after(10_000.0));
        assert!(few < many, "1 run: {few} probes, 10000 runs: {many}");
    }
}
