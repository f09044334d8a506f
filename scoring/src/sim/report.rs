//! The simulator's outputs: the summary table, the per-epoch CSV and the SVG charts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use super::config::Strategy;
use super::svg::{Series, line_chart};
use super::{Participant, Role, SimResult, UidEpoch};

/// One miner group's totals.
#[derive(Debug, Clone, PartialEq)]
pub struct MinerSummary {
    /// Group label.
    pub label: String,
    /// Strategy.
    pub strategy: Strategy,
    /// Uids in the group.
    pub uids: usize,
    /// Emission over the run, rao.
    pub emission_rao: u64,
    /// Share of all miner emission (owner burn included).
    pub share: f64,
    /// Cost over the run, dollars.
    pub cost: f64,
    /// Rao per dollar.
    pub emission_per_dollar: f64,
    /// Rao per dollar relative to the honest miners (honest = 1).
    pub relative_to_honest: f64,
}

/// One validator behaviour's totals.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatorSummary {
    /// `honest` or `copier`.
    pub behaviour: String,
    /// Validators.
    pub uids: usize,
    /// Dividend emission over the run, rao.
    pub emission_rao: u64,
    /// Emission per unit of stake relative to honest validators.
    pub relative_to_honest: f64,
    /// Mean validator trust over the second half of the run.
    pub mean_trust: f64,
}

/// The summary of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Per miner group (owner burn as label `owner`, when any), in configuration order.
    pub miners: Vec<MinerSummary>,
    /// Per validator behaviour.
    pub validators: Vec<ValidatorSummary>,
}

impl Summary {
    /// Totals from the per-epoch rows.
    pub fn compute(participants: &[Participant], rows: &[UidEpoch], epochs: u32) -> Self {
        let mut emission: BTreeMap<u16, u64> = BTreeMap::new();
        let mut cost: BTreeMap<u16, f64> = BTreeMap::new();
        let mut trust_late: BTreeMap<u16, f64> = BTreeMap::new();
        let half = epochs / 2;
        for r in rows {
            *emission.entry(r.uid).or_default() += r.emission_rao;
            *cost.entry(r.uid).or_default() += r.cost;
            if r.epoch >= half {
                *trust_late.entry(r.uid).or_default() += r.validator_trust / f64::from(epochs - half);
            }
        }
        // Miner groups, in first-appearance order.
        let mut order: Vec<String> = Vec::new();
        let mut groups: BTreeMap<String, (Strategy, usize, u64, f64)> = BTreeMap::new();
        let mut owner = 0u64;
        for p in participants {
            let e = emission.get(&p.uid).copied().unwrap_or(0);
            match &p.role {
                Role::Miner(m) => {
                    let g = groups.entry(p.label.clone()).or_insert_with(|| {
                        order.push(p.label.clone());
                        (m.strategy, 0, 0, 0.0)
                    });
                    g.1 += 1;
                    g.2 += e;
                    g.3 += cost.get(&p.uid).copied().unwrap_or(0.0);
                }
                Role::Owner => owner += e,
                Role::Validator { .. } => {}
            }
        }
        let miner_total: u64 = groups.values().map(|g| g.2).sum::<u64>() + owner;
        let (he, hc) = groups
            .values()
            .filter(|g| g.0 == Strategy::Honest)
            .fold((0u64, 0.0), |(e, c), g| (e + g.2, c + g.3));
        let honest_rate = if hc > 0.0 { he as f64 / hc } else { 0.0 };
        let share = |e: u64| {
            if miner_total > 0 {
                e as f64 / miner_total as f64
            } else {
                0.0
            }
        };
        let mut miners: Vec<MinerSummary> = order
            .iter()
            .map(|label| {
                let (strategy, uids, e, c) = groups[label];
                let rate = if c > 0.0 { e as f64 / c } else { 0.0 };
                MinerSummary {
                    label: label.clone(),
                    strategy,
                    uids,
                    emission_rao: e,
                    share: share(e),
                    cost: c,
                    emission_per_dollar: rate,
                    relative_to_honest: if honest_rate > 0.0 {
                        rate / honest_rate
                    } else {
                        0.0
                    },
                }
            })
            .collect();
        if owner > 0 {
            miners.push(MinerSummary {
                label: "owner".into(),
                strategy: Strategy::Honest,
                uids: 1,
                emission_rao: owner,
                share: share(owner),
                cost: 0.0,
                emission_per_dollar: 0.0,
                relative_to_honest: 0.0,
            });
        }

        let mut vals: BTreeMap<String, (usize, u64, f64, f64)> = BTreeMap::new();
        for p in participants {
            if let Role::Validator { behaviour, stake, .. } = &p.role {
                let v = vals.entry(behaviour.name().to_string()).or_default();
                v.0 += 1;
                v.1 += emission.get(&p.uid).copied().unwrap_or(0);
                v.2 += *stake as f64;
                v.3 += trust_late.get(&p.uid).copied().unwrap_or(0.0);
            }
        }
        let honest_per_stake = vals
            .get("honest")
            .map_or(0.0, |v| if v.2 > 0.0 { v.1 as f64 / v.2 } else { 0.0 });
        let validators = vals
            .into_iter()
            .map(|(behaviour, (uids, e, s, t))| ValidatorSummary {
                behaviour,
                uids,
                emission_rao: e,
                relative_to_honest: if honest_per_stake > 0.0 && s > 0.0 {
                    e as f64 / s / honest_per_stake
                } else {
                    0.0
                },
                mean_trust: t / uids as f64,
            })
            .collect();
        Self { miners, validators }
    }

    /// The summary as a text table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<16} {:>5} {:>16} {:>8} {:>11} {:>15} {:>10}",
            "miners", "uids", "emission (rao)", "share", "cost ($)", "rao per $", "vs honest"
        );
        for m in &self.miners {
            let _ = writeln!(
                s,
                "{:<16} {:>5} {:>16} {:>7.2}% {:>11.2} {:>15.0} {:>10.3}",
                m.label,
                m.uids,
                m.emission_rao,
                m.share * 100.0,
                m.cost,
                m.emission_per_dollar,
                m.relative_to_honest
            );
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "{:<16} {:>5} {:>16} {:>17} {:>20}",
            "validators", "uids", "dividends (rao)", "per stake vs hon.", "trust (2nd half)"
        );
        for v in &self.validators {
            let _ = writeln!(
                s,
                "{:<16} {:>5} {:>16} {:>17.3} {:>20.4}",
                v.behaviour, v.uids, v.emission_rao, v.relative_to_honest, v.mean_trust
            );
        }
        s
    }
}

fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text)
        .map_err(|e| anyhow::anyhow!("could not write {}: {e}; check the --out folder", path.display()))
}

/// Write `epochs.csv`, `summary.csv`, `summary.txt`, `emission_share.svg` and `validator_trust.svg`
/// into `dir` (created when missing).
pub fn write_outputs(result: &SimResult, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("could not create the output folder {}: {e}", dir.display()))?;
    let mut csv = String::from(
        "epoch,uid,label,score,weight,incentive,dividends,validator_trust,emission_rao,cost_usd\n",
    );
    for r in &result.rows {
        let _ = writeln!(
            csv,
            "{},{},{},{:.6},{:.6},{:.6},{:.6},{:.6},{},{:.6}",
            r.epoch,
            r.uid,
            r.label,
            r.score,
            r.weight,
            r.incentive,
            r.dividends,
            r.validator_trust,
            r.emission_rao,
            r.cost
        );
    }
    write_file(&dir.join("epochs.csv"), &csv)?;

    let mut sum =
        String::from("label,strategy,uids,emission_rao,share,cost_usd,rao_per_usd,relative_to_honest\n");
    for m in &result.summary.miners {
        let _ = writeln!(
            sum,
            "{},{},{},{},{:.6},{:.4},{:.2},{:.6}",
            m.label,
            m.strategy.name(),
            m.uids,
            m.emission_rao,
            m.share,
            m.cost,
            m.emission_per_dollar,
            m.relative_to_honest
        );
    }
    write_file(&dir.join("summary.csv"), &sum)?;
    write_file(&dir.join("summary.txt"), &result.summary.table())?;

    // Emission share by miner group per epoch.
    let epochs = result.rows.iter().map(|r| r.epoch + 1).max().unwrap_or(0) as usize;
    let mut labels: Vec<String> = Vec::new();
    for p in &result.participants {
        if matches!(p.role, Role::Miner(_) | Role::Owner) && !labels.contains(&p.label) {
            labels.push(p.label.clone());
        }
    }
    let is_miner_side: BTreeMap<u16, bool> = result
        .participants
        .iter()
        .map(|p| (p.uid, matches!(p.role, Role::Miner(_) | Role::Owner)))
        .collect();
    let mut per: BTreeMap<&str, Vec<f64>> = labels.iter().map(|l| (l.as_str(), vec![0.0; epochs])).collect();
    let mut totals = vec![0.0; epochs];
    for r in result.rows.iter().filter(|r| is_miner_side[&r.uid]) {
        if let Some(v) = per.get_mut(r.label.as_str()) {
            v[r.epoch as usize] += r.emission_rao as f64;
        }
        totals[r.epoch as usize] += r.emission_rao as f64;
    }
    let series: Vec<Series> = labels
        .iter()
        .filter(|l| l.as_str() != "owner" || per["owner"].iter().any(|&x| x > 0.0))
        .map(|l| Series {
            label: l.clone(),
            values: per[l.as_str()]
                .iter()
                .zip(&totals)
                .map(|(e, t)| if *t > 0.0 { e / t } else { 0.0 })
                .collect(),
        })
        .collect();
    write_file(
        &dir.join("emission_share.svg"),
        &line_chart(
            "Miner emission share by group",
            "epoch",
            "share of miner emission",
            &series,
            Some(1.0),
        ),
    )?;

    // Validator trust, honest against copying.
    let mut trust: BTreeMap<&str, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    let labels_by_uid: BTreeMap<u16, &str> = result
        .participants
        .iter()
        .filter(|p| matches!(p.role, Role::Validator { .. }))
        .map(|p| (p.uid, p.label.as_str()))
        .collect();
    for r in &result.rows {
        if let Some(l) = labels_by_uid.get(&r.uid) {
            let t = trust
                .entry(l)
                .or_insert_with(|| (vec![0.0; epochs], vec![0.0; epochs]));
            t.0[r.epoch as usize] += r.validator_trust;
            t.1[r.epoch as usize] += 1.0;
        }
    }
    let series: Vec<Series> = trust
        .into_iter()
        .map(|(l, (s, c))| Series {
            label: l.to_string(),
            values: s.iter().zip(&c).map(|(a, b)| a / b.max(1.0)).collect(),
        })
        .collect();
    write_file(
        &dir.join("validator_trust.svg"),
        &line_chart(
            "Validator trust: honest vs weight-copying",
            "epoch",
            "mean validator trust",
            &series,
            Some(1.0),
        ),
    )?;
    Ok(())
}
