//! Golden vectors from subtensor's `pallets/subtensor/src/tests/epoch.rs`, replayed through
//! [`run_epoch`] with the same sequence of registrations, weight sets and blocks as the chain tests.

use super::*;

/// A tiny model of the storage the epoch reads, advanced the way the pallet tests advance the chain.
struct Chain {
    block: u64,
    tempo: u16,
    stake: Vec<u64>,
    weights: Vec<Vec<(u16, u16)>>,
    bonds: Vec<Vec<(u16, u16)>>,
    last_update: Vec<u64>,
    block_at_registration: Vec<u64>,
    validator_permit: Vec<bool>,
    hp: YumaHyperparameters,
}

impl Chain {
    /// `n` uids registered at `block`, each with its stake, no permits, no weights.
    fn register(block: u64, tempo: u16, stake: Vec<u64>, hp: YumaHyperparameters) -> Self {
        let n = stake.len();
        Self {
            block,
            tempo,
            stake,
            weights: vec![vec![]; n],
            bonds: vec![vec![]; n],
            last_update: vec![block; n],
            block_at_registration: vec![block; n],
            validator_permit: vec![false; n],
            hp,
        }
    }

    /// `set_weights`: max-upscale and store, stamp `LastUpdate`.
    fn set_weights(&mut self, uid: usize, dests: &[u16], values: &[u16]) {
        let up = vec_u16_max_upscale_to_u16(values);
        self.weights[uid] = dests.iter().copied().zip(up).collect();
        self.last_update[uid] = self.block;
    }

    fn next_block(&mut self) {
        self.block += 1;
    }

    /// Run the epoch at the current block and persist bonds and permits.
    fn epoch(&mut self) -> EpochOutput {
        let input = EpochInput {
            current_block: self.block,
            tempo: self.tempo,
            last_mechanism_step_block: 0,
            owner_uid: None,
            stake: self.stake.clone(),
            weights: self.weights.clone(),
            bonds: self.bonds.clone(),
            last_update: self.last_update.clone(),
            block_at_registration: self.block_at_registration.clone(),
            validator_permit: self.validator_permit.clone(),
            rao_emission: 1_000_000_000,
            hyperparameters: self.hp.clone(),
            commit_blocks: None,
        };
        let out = run_epoch(&input).expect("consistent input");
        self.bonds = out.bonds.clone();
        self.validator_permit = out.validator_permit.clone();
        out
    }

    /// Dense bond value (i, j) as `get_bonds` reads it.
    fn bond(&self, i: usize, j: u16) -> u16 {
        self.bonds[i].iter().find(|(k, _)| *k == j).map_or(0, |(_, v)| *v)
    }
}

#[test]
fn test_bonds_matches_subtensor_exactly() {
    let hp = YumaHyperparameters {
        kappa: 32_767,
        bonds_penalty: u16::MAX,
        bonds_moving_average: 900_000,
        activity_cutoff: 5000,
        max_allowed_validators: 8,
        ..YumaHyperparameters::default()
    };
    let mut c = Chain::register(1, 1, vec![1, 2, 3, 4, 0, 0, 0, 0], hp);
    c.epoch();
    c.next_block();
    for uid in 0..4 {
        c.set_weights(
            uid,
            &[4, 5, 6, 7],
            &[u16::MAX / 4, u16::MAX / 2, (u16::MAX / 4) * 3, u16::MAX],
        );
    }
    let out = c.epoch();
    assert_eq!(
        [c.bond(0, 4), c.bond(1, 4), c.bond(2, 4), c.bond(3, 4)],
        [16383, 32767, 49151, 65535]
    );
    let e: Vec<u64> = out
        .server_emission
        .iter()
        .zip(&out.validator_emission)
        .map(|(s, v)| s + v)
        .collect();
    assert_eq!(
        e,
        vec![
            49999998, 99999999, 150000000, 200000001, 49998779, 100000610, 149996337, 200004272
        ]
    );
    assert_eq!(out.emission, e);

    // Self-weight only on val1.
    c.set_weights(0, &[0], &[u16::MAX]);
    c.next_block();
    let out = c.epoch();
    assert_eq!(
        [c.bond(0, 4), c.bond(1, 4), c.bond(2, 4), c.bond(3, 4)],
        [14582, 32767, 49151, 65535]
    );
    assert_eq!(
        out.emission,
        vec![
            44998351, 101110561, 151667215, 202223870, 49998779, 100000610, 149996337, 200004272
        ]
    );

    // Self-weight only on val2.
    c.set_weights(1, &[1], &[u16::MAX]);
    c.next_block();
    let out = c.epoch();
    assert_eq!(
        [c.bond(0, 4), c.bond(1, 4), c.bond(2, 4), c.bond(3, 4)],
        [12603, 28321, 49151, 65535]
    );
    assert_eq!(
        out.emission,
        vec![
            40496805, 90999783, 157929636, 210573773, 49998779, 100000610, 149996337, 200004272
        ]
    );

    // Self-weight only on val3: no consensus left, emission follows stake.
    c.set_weights(2, &[2], &[u16::MAX]);
    c.next_block();
    let out = c.epoch();
    assert_eq!(
        [c.bond(0, 7), c.bond(1, 7), c.bond(2, 7), c.bond(3, 7)],
        [12602, 28320, 49150, 65535]
    );
    assert_eq!(
        out.emission,
        vec![99999999, 199999999, 299999999, 399999999, 0, 0, 0, 0]
    );

    // val3 -> srv4.
    c.set_weights(2, &[7], &[u16::MAX]);
    c.next_block();
    let out = c.epoch();
    assert_eq!(
        [c.bond(0, 7), c.bond(1, 7), c.bond(2, 7), c.bond(3, 7)],
        [10951, 24609, 49150, 65535]
    );
    assert_eq!(
        out.emission,
        vec![36443733, 81898628, 163565493, 218092144, 0, 0, 0, 500000000]
    );

    c.next_block();
    let out = c.epoch();
    assert_eq!(
        [c.bond(0, 7), c.bond(1, 7), c.bond(2, 7), c.bond(3, 7)],
        [9559, 21482, 49150, 65535]
    );
    assert_eq!(
        out.emission,
        vec![32799427, 73706612, 168638129, 224855830, 0, 0, 0, 500000000]
    );

    c.next_block();
    let out = c.epoch();
    assert_eq!(
        [c.bond(0, 7), c.bond(1, 7), c.bond(2, 7), c.bond(3, 7)],
        [8376, 18824, 49150, 65535]
    );
    assert_eq!(
        out.emission,
        vec![29518068, 66336137, 173203134, 230942659, 0, 0, 0, 500000000]
    );

    c.next_block();
    let out = c.epoch();
    assert_eq!(
        out.emission,
        vec![26565175, 59701871, 177311856, 236421095, 0, 0, 0, 500000000]
    );
}

#[test]
fn test_active_stake_matches_subtensor_exactly() {
    // Four uids with stake 1; uids 0 and 1 weigh 2 and 3; then uid 1 goes inactive, then comes back.
    let hp = YumaHyperparameters {
        max_allowed_validators: 4,
        activity_cutoff: 5000,
        ..YumaHyperparameters::default()
    };
    let mut c = Chain::register(0, 1, vec![1; 4], hp);
    c.epoch();
    c.next_block();
    for uid in 0..2 {
        c.set_weights(uid, &[2, 3], &[u16::MAX / 2; 2]);
    }
    let out = c.epoch();
    assert_eq!(out.dividends[..2], [32767, 32767]);
    assert_eq!(out.emission, vec![250_000_000; 4]);
    for v in 0..2 {
        assert_eq!(
            [c.bond(v, 0), c.bond(v, 1), c.bond(v, 2), c.bond(v, 3)],
            [0, 0, 65535, 65535]
        );
    }

    // Block 5002: uid 1's weights (block 1) are past the activity cutoff; uid 0 sets again.
    c.block = 5002;
    c.set_weights(0, &[2, 3], &[u16::MAX / 2; 2]);
    let out = c.epoch();
    assert_eq!(out.active, vec![true, false, false, false]);
    assert_eq!(out.dividends[..2], [36044, 29490]);
    assert_eq!(out.emission[..2], [274999999, 224999999]);
    assert_eq!(
        [c.bond(0, 2), c.bond(0, 3), c.bond(1, 2), c.bond(1, 3)],
        [65535, 65535, 53619, 53619]
    );

    // uid 1 sets weights at 5002 and the epoch runs at 5003: both active again.
    c.set_weights(1, &[2, 3], &[u16::MAX / 2; 2]);
    c.block = 5003;
    let out = c.epoch();
    assert_eq!(out.dividends[..2], [35716, 29818]);
    assert_eq!(out.emission[..2], [272501132, 227498866]);
    assert_eq!([c.bond(0, 2), c.bond(1, 2), c.bond(1, 3)], [65535, 54712, 54712]);
}

#[test]
fn test_outdated_weights_matches_subtensor() {
    // Two validators weigh two servers 2:1; the weaker server is then replaced by a new registration,
    // and only validator 0 updates its weights after that.
    let hp = YumaHyperparameters {
        max_allowed_validators: 4,
        activity_cutoff: 5000,
        ..YumaHyperparameters::default()
    };
    let mut c = Chain::register(1, 0, vec![1; 4], hp);
    c.epoch();
    c.next_block();
    for uid in 0..2 {
        c.set_weights(uid, &[2, 3], &[2 * (u16::MAX / 3), u16::MAX / 3]);
    }
    for uid in 2..4u16 {
        c.set_weights(uid as usize, &[uid], &[u16::MAX]);
    }
    let out = c.epoch();
    assert_eq!(out.emission, vec![250000000, 250000000, 333331637, 166668361]);

    // A new hotkey replaces uid 3 in this block (`replace_neuron`): fresh registration block, no
    // weights, no bonds, no permit, its own stake.
    c.block_at_registration[3] = c.block;
    c.last_update[3] = c.block;
    c.weights[3].clear();
    c.bonds[3].clear();
    c.validator_permit[3] = false;
    c.next_block();
    c.set_weights(0, &[2, 3], &[2 * (u16::MAX / 3), u16::MAX / 3]);
    let out = c.epoch();
    assert_eq!(out.dividends[0], 32767);
    assert_eq!(out.emission[0], 250000000);
    assert_eq!(out.emission, vec![250000000, 250000000, 500000000, 0]);
    assert_eq!([c.bond(0, 2), c.bond(0, 3)], [65535, 65535]);
}

#[test]
fn test_10_graph_self_weights_pay_stake() {
    // Ten uids with stake 1 that set only self-weights: no consensus, emission follows stake.
    let hp = YumaHyperparameters::default();
    let mut c = Chain::register(0, u16::MAX - 1, vec![1; 10], hp);
    c.next_block();
    for uid in 0..10u16 {
        c.set_weights(uid as usize, &[uid], &[u16::MAX]);
    }
    let out = c.epoch();
    assert!(out.incentive.iter().all(|&x| x == 0));
    assert!(out.dividends.iter().all(|&x| x == 0));
    assert!(out.consensus.iter().all(|&x| x == 0));
    assert_eq!(out.emission, vec![99_999_999; 10]);
    assert_eq!(out.validator_emission, vec![99_999_999; 10]);
}

/// `set_alpha_values_32(0.1, 0.3)` as the pallet stores it.
fn alpha_u16(x: f64) -> u16 {
    I32F32::from_num(x)
        .saturating_mul(I32F32::saturating_from_num(u16::MAX))
        .saturating_to_num::<u16>()
}

/// `setup_yuma_3_scenario`: registration at block 1, first epoch at block 2 to issue permits.
fn yuma3_setup(stakes: Vec<u64>, liquid_alpha: bool) -> Chain {
    let hp = YumaHyperparameters {
        kappa: u16::MAX / 2,
        bonds_penalty: 0,
        bonds_moving_average: 975_000,
        activity_cutoff: 5000,
        max_allowed_validators: 3,
        stake_threshold: 0,
        yuma3: true,
        liquid_alpha,
        alpha_low: alpha_u16(0.1),
        alpha_high: alpha_u16(0.3),
        alpha_sigmoid_steepness: 1000,
    };
    let mut c = Chain::register(1, 1, stakes, hp);
    c.next_block();
    c.epoch();
    c
}

/// One scenario epoch: set each validator's weights, step a block, run, compare to the targets.
/// Bond targets cover the last `k` columns of the three validator rows; all to 1e-3.
fn yuma3_step(
    c: &mut Chain,
    weights: Option<Vec<Vec<u16>>>,
    dests: &[u16],
    bonds: &[Vec<f64>],
    divs: &[f64],
) {
    if let Some(w) = weights {
        for (uid, row) in w.iter().enumerate() {
            c.set_weights(uid, dests, row);
        }
    }
    c.next_block();
    let out = c.epoch();
    let n = c.stake.len();
    for (i, target_row) in bonds.iter().enumerate() {
        let first = n - target_row.len();
        for (k, &t) in target_row.iter().enumerate() {
            let got = f64::from(c.bond(i, (first + k) as u16)) / 65535.0;
            assert!(
                (got - t).abs() <= 1e-3,
                "epoch bond[{i}][{}] = {got}, want {t}",
                first + k
            );
        }
    }
    for (i, &t) in divs.iter().enumerate() {
        let got = f64::from(out.dividends[i]) / 65535.0;
        assert!((got - t).abs() <= 1e-3, "dividend[{i}] = {got}, want {t}");
    }
}

const M: u16 = u16::MAX;

#[test]
fn test_yuma_3_kappa_moves_first() {
    let mut c = yuma3_setup(vec![8, 1, 1, 0, 0], true);
    let d = [3, 4];
    yuma3_step(
        &mut c,
        Some(vec![vec![M, 0]; 3]),
        &d,
        &vec![vec![0.1013, 0.0]; 3],
        &[0.8, 0.1, 0.1, 0.0, 0.0],
    );
    yuma3_step(
        &mut c,
        Some(vec![vec![0, M], vec![M, 0], vec![M, 0]]),
        &d,
        &[vec![0.0908, 0.1013], vec![0.3697, 0.0], vec![0.3697, 0.0]],
        &[1.0, 0.0, 0.0, 0.0, 0.0],
    );
    yuma3_step(
        &mut c,
        Some(vec![vec![0, M], vec![0, M], vec![M, 0]]),
        &d,
        &[vec![0.0815, 0.1924], vec![0.3170, 0.1013], vec![0.5580, 0.0]],
        &[0.9382, 0.0618, 0.0, 0.0, 0.0],
    );
    yuma3_step(
        &mut c,
        Some(vec![vec![0, M]; 3]),
        &d,
        &[vec![0.0731, 0.2742], vec![0.2765, 0.1924], vec![0.4306, 0.1013]],
        &[0.8819, 0.0773, 0.0407, 0.0, 0.0],
    );
    yuma3_step(
        &mut c,
        None,
        &d,
        &[vec![0.0656, 0.3478], vec![0.2435, 0.2742], vec![0.3589, 0.1924]],
        &[0.8564, 0.0844, 0.0592, 0.0, 0.0],
    );
    yuma3_step(
        &mut c,
        None,
        &d,
        &[vec![0.0588, 0.4139], vec![0.2157, 0.3478], vec![0.3089, 0.2742]],
        &[0.8418, 0.0884, 0.0697, 0.0, 0.0],
    );
}

#[test]
fn test_yuma_3_kappa_moves_second() {
    let mut c = yuma3_setup(vec![8, 1, 1, 0, 0], true);
    let d = [3, 4];
    yuma3_step(
        &mut c,
        Some(vec![vec![M, 0]; 3]),
        &d,
        &vec![vec![0.1013, 0.0]; 3],
        &[0.8, 0.1, 0.1, 0.0, 0.0],
    );
    yuma3_step(
        &mut c,
        Some(vec![vec![M, 0], vec![0, M], vec![M, 0]]),
        &d,
        &[vec![0.1924, 0.0], vec![0.0908, 0.2987], vec![0.1924, 0.0]],
        &[0.8446, 0.0498, 0.1056, 0.0, 0.0],
    );
    yuma3_step(
        &mut c,
        Some(vec![vec![0, M], vec![0, M], vec![M, 0]]),
        &d,
        &[vec![0.1715, 0.1013], vec![0.0815, 0.3697], vec![0.4336, 0.0]],
        &[0.6868, 0.3132, 0.0, 0.0, 0.0],
    );
    yuma3_step(
        &mut c,
        Some(vec![vec![0, M]; 3]),
        &d,
        &[vec![0.1531, 0.1924], vec![0.0731, 0.4336], vec![0.3608, 0.1013]],
        &[0.7421, 0.2090, 0.0489, 0.0, 0.0],
    );
    yuma3_step(
        &mut c,
        None,
        &d,
        &[vec![0.1369, 0.2742], vec![0.0656, 0.4910], vec![0.3103, 0.1924]],
        &[0.7625, 0.1706, 0.0669, 0.0, 0.0],
    );
    yuma3_step(
        &mut c,
        None,
        &d,
        &[vec![0.1225, 0.3478], vec![0.0588, 0.5426], vec![0.2712, 0.2742]],
        &[0.7730, 0.1508, 0.0762, 0.0, 0.0],
    );
}

#[test]
fn test_yuma_3_kappa_moves_last() {
    let mut c = yuma3_setup(vec![8, 1, 1, 0, 0], true);
    let d = [3, 4];
    yuma3_step(
        &mut c,
        Some(vec![vec![M, 0]; 3]),
        &d,
        &vec![vec![0.1013, 0.0]; 3],
        &[0.8, 0.1, 0.1, 0.0, 0.0],
    );
    yuma3_step(
        &mut c,
        Some(vec![vec![M, 0], vec![0, M], vec![M, 0]]),
        &d,
        &[vec![0.1924, 0.0], vec![0.0908, 0.2987], vec![0.1924, 0.0]],
        &[0.8446, 0.0498, 0.1056, 0.0, 0.0],
    );
    yuma3_step(
        &mut c,
        Some(vec![vec![M, 0], vec![0, M], vec![0, M]]),
        &d,
        &[vec![0.2742, 0.0], vec![0.0815, 0.5081], vec![0.1715, 0.2987]],
        &[0.8966, 0.0333, 0.0701, 0.0, 0.0],
    );
    yuma3_step(
        &mut c,
        Some(vec![vec![0, M]; 3]),
        &d,
        &[vec![0.2416, 0.1013], vec![0.0731, 0.5580], vec![0.1531, 0.3697]],
        &[0.4663, 0.3210, 0.2127, 0.0, 0.0],
    );
    yuma3_step(
        &mut c,
        None,
        &d,
        &[vec![0.2141, 0.1924], vec![0.0656, 0.6028], vec![0.1369, 0.4336]],
        &[0.5976, 0.2340, 0.1683, 0.0, 0.0],
    );
    yuma3_step(
        &mut c,
        None,
        &d,
        &[vec![0.1903, 0.2742], vec![0.0588, 0.6430], vec![0.1225, 0.4910]],
        &[0.6592, 0.1932, 0.1475, 0.0, 0.0],
    );
}

/// `test_yuma_3_one_epoch_switch` (liquid alpha on) and `test_yuma_3_liquid_alpha_disabled` share
/// the weight schedule: everyone on server 1, except epoch 2 where validator C picks server 2.
fn one_epoch_switch_weights(epoch: usize) -> Vec<Vec<u16>> {
    if epoch == 2 {
        vec![vec![M, 0], vec![M, 0], vec![0, M]]
    } else {
        vec![vec![M, 0]; 3]
    }
}

#[test]
fn test_yuma_3_one_epoch_switch() {
    let mut c = yuma3_setup(vec![33, 33, 34, 0, 0], true);
    let bonds = [
        [[0.1013, 0.0], [0.1013, 0.0], [0.1013, 0.0]],
        [[0.1924, 0.0], [0.1924, 0.0], [0.1924, 0.0]],
        [[0.2742, 0.0], [0.2742, 0.0], [0.1715, 0.2987]],
        [[0.3478, 0.0], [0.3478, 0.0], [0.2554, 0.2618]],
        [[0.4139, 0.0], [0.4139, 0.0], [0.3309, 0.2312]],
        [[0.4733, 0.0], [0.4733, 0.0], [0.3987, 0.2051]],
    ];
    let divs = [
        [0.33, 0.33, 0.34],
        [0.33, 0.33, 0.34],
        [0.3782, 0.3782, 0.2436],
        [0.3628, 0.3628, 0.2745],
        [0.3541, 0.3541, 0.2917],
        [0.3487, 0.3487, 0.3026],
    ];
    for e in 0..6 {
        let b: Vec<Vec<f64>> = bonds[e].iter().map(|r| r.to_vec()).collect();
        yuma3_step(&mut c, Some(one_epoch_switch_weights(e)), &[3, 4], &b, &divs[e]);
    }
}

#[test]
fn test_yuma_3_liquid_alpha_disabled() {
    let mut c = yuma3_setup(vec![33, 33, 34, 0, 0], false);
    let bonds = [
        [[0.0, 0.0250, 0.0], [0.0, 0.0250, 0.0], [0.0, 0.0250, 0.0]],
        [[0.0, 0.0494, 0.0], [0.0, 0.0494, 0.0], [0.0, 0.0494, 0.0]],
        [[0.0, 0.0731, 0.0], [0.0, 0.0731, 0.0], [0.0, 0.0481, 0.0250]],
        [[0.0, 0.0963, 0.0], [0.0, 0.0963, 0.0], [0.0, 0.0719, 0.0244]],
        [[0.0, 0.1189, 0.0], [0.0, 0.1189, 0.0], [0.0, 0.0951, 0.0238]],
        [[0.0, 0.1409, 0.0], [0.0, 0.1409, 0.0], [0.0, 0.1178, 0.0232]],
    ];
    let divs = [
        [0.33, 0.33, 0.34],
        [0.33, 0.33, 0.34],
        [0.3734, 0.3734, 0.2532],
        [0.3611, 0.3611, 0.2779],
        [0.3541, 0.3541, 0.2919],
        [0.3495, 0.3495, 0.3009],
    ];
    for e in 0..6 {
        let b: Vec<Vec<f64>> = bonds[e].iter().map(|r| r.to_vec()).collect();
        yuma3_step(&mut c, Some(one_epoch_switch_weights(e)), &[3, 4], &b, &divs[e]);
    }
}

#[test]
fn test_yuma_3_stable_miner() {
    let mut c = yuma3_setup(vec![8, 1, 1, 0, 0, 0], true);
    let h = M / 2;
    let d = [3, 4, 5];
    let schedule: [Option<Vec<Vec<u16>>>; 6] = [
        Some(vec![vec![h, 0, h]; 3]),
        Some(vec![vec![h, 0, h], vec![0, h, h], vec![h, 0, h]]),
        Some(vec![vec![0, h, h], vec![0, h, h], vec![h, 0, h]]),
        Some(vec![vec![0, h, h]; 3]),
        None,
        None,
    ];
    let bonds = [
        [
            [0.0507, 0.0, 0.0507],
            [0.0507, 0.0, 0.0507],
            [0.0507, 0.0, 0.0507],
        ],
        [
            [0.0962, 0.0, 0.0962],
            [0.0455, 0.1000, 0.0962],
            [0.0962, 0.0, 0.0962],
        ],
        [
            [0.0863, 0.0507, 0.1371],
            [0.0408, 0.1405, 0.1371],
            [0.1770, 0.0, 0.1371],
        ],
        [
            [0.0774, 0.0962, 0.1739],
            [0.0367, 0.1770, 0.1739],
            [0.1579, 0.0507, 0.1739],
        ],
        [
            [0.0694, 0.1371, 0.2069],
            [0.0329, 0.2097, 0.2069],
            [0.1411, 0.0962, 0.2069],
        ],
        [
            [0.0623, 0.1739, 0.2366],
            [0.0296, 0.2391, 0.2366],
            [0.1263, 0.1371, 0.2366],
        ],
    ];
    let divs = [
        [0.8, 0.1, 0.1],
        [0.8226, 0.0745, 0.1028],
        [0.7750, 0.1685, 0.0565],
        [0.7864, 0.1372, 0.0764],
        [0.7912, 0.1241, 0.0847],
        [0.7937, 0.1173, 0.0890],
    ];
    for (e, w) in schedule.into_iter().enumerate() {
        let b: Vec<Vec<f64>> = bonds[e].iter().map(|r| r.to_vec()).collect();
        yuma3_step(&mut c, w, &d, &b, &divs[e]);
    }
}

#[test]
fn owner_keeps_self_weight_and_permit() {
    // The owner (uid 0, no stake) keeps its permit and its self-weight survives the diagonal mask,
    // so with a second validator it earns consensus on itself.
    let input = EpochInput {
        current_block: 10,
        tempo: 5,
        last_mechanism_step_block: 5,
        owner_uid: Some(0),
        stake: vec![0, 10, 0],
        weights: vec![vec![(0, M)], vec![(0, M), (2, M)], vec![]],
        bonds: vec![vec![]; 3],
        last_update: vec![9, 9, 0],
        block_at_registration: vec![0, 0, 0],
        validator_permit: vec![false, true, false],
        rao_emission: 1_000,
        hyperparameters: YumaHyperparameters::default(),
        commit_blocks: None,
    };
    let out = run_epoch(&input).unwrap();
    assert!(out.validator_permit[0]);
    assert!(out.incentive[0] > 0 && out.incentive[2] > 0);
}

#[test]
fn commit_blocks_mask_weights_to_newer_registrations() {
    // Validator 0 committed at block 3; miner 2 registered at block 5 (sniped uid): weight dropped.
    let mk = |commit_blocks| EpochInput {
        current_block: 10,
        tempo: 5,
        last_mechanism_step_block: 5,
        owner_uid: None,
        stake: vec![10, 0, 0],
        weights: vec![vec![(1, M), (2, M)], vec![], vec![]],
        bonds: vec![vec![]; 3],
        last_update: vec![9, 0, 0],
        block_at_registration: vec![0, 0, 5],
        validator_permit: vec![true, false, false],
        rao_emission: 1_000,
        hyperparameters: YumaHyperparameters::default(),
        commit_blocks,
    };
    let open = run_epoch(&mk(None)).unwrap();
    assert_eq!(open.incentive[1], open.incentive[2]);
    let masked = run_epoch(&mk(Some(vec![3, u64::MAX, u64::MAX]))).unwrap();
    assert_eq!(masked.incentive[2], 0);
    assert_eq!(masked.incentive[1], 65535);
}

#[test]
fn inconsistent_lengths_are_refused() {
    let input = EpochInput {
        current_block: 1,
        tempo: 1,
        last_mechanism_step_block: 0,
        owner_uid: None,
        stake: vec![1, 2],
        weights: vec![vec![]],
        bonds: vec![vec![]; 2],
        last_update: vec![0; 2],
        block_at_registration: vec![0; 2],
        validator_permit: vec![false; 2],
        rao_emission: 1,
        hyperparameters: YumaHyperparameters::default(),
        commit_blocks: None,
    };
    let err = run_epoch(&input).unwrap_err();
    assert_eq!(
        err,
        YumaError::LengthMismatch {
            field: "weights",
            len: 1,
            n: 2
        }
    );
    assert!(err.to_string().contains("weights"));
}
