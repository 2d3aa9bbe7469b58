//! The feature transform is exactly invertible on real KIT-ML data: motion 00001
//! goes to features and back to within 1 mm and 1e-4 rad.

use std::f64::consts::TAU;
use std::path::Path;

use pipe_motion::features::{from_features, to_features, Mmm, N_FEATURES};

#[test]
fn real_motion_00001_round_trips_through_the_features() {
    let xml = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/kit/00001_mmm.xml");
    let parsed = pipe_kit::mmm::read_file(&xml, Default::default()).expect("00001 parses");
    let c = pipe_kit::extract::canonicalize(parsed, 100.0).expect("canonical");
    let m = Mmm {
        root_position: c.root_position.clone(),
        root_rotation: c.root_rotation.clone(),
        joints: c.joint_position.clone(),
    };
    let (f, start) = to_features(&m, 100.0);
    assert_eq!(f.len(), 378 * N_FEATURES);
    let back = from_features(&f, 100.0, start);
    let mut pos_err: f64 = 0.0;
    let mut rot_err: f64 = 0.0;
    for t in 0..m.frames() {
        for k in 0..3 {
            pos_err = pos_err.max((back.root_position[t][k] - m.root_position[t][k]).abs());
            let d = back.root_rotation[t][k] - m.root_rotation[t][k];
            rot_err = rot_err.max((d - (d / TAU).round() * TAU).abs());
        }
    }
    let joint_err = back
        .joints
        .iter()
        .zip(&m.joints)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(pos_err < 1.0, "root position error {pos_err} mm");
    assert!(rot_err < 1e-4, "root rotation error {rot_err} rad");
    assert!(joint_err < 1e-12, "joint error {joint_err}");
    // Invariance: the same motion moved and turned has the same features.
    let turn = 0.7_f64;
    let moved = Mmm {
        root_position: m
            .root_position
            .iter()
            .map(|p| {
                [
                    p[0] * turn.cos() - p[1] * turn.sin() + 500.0,
                    p[0] * turn.sin() + p[1] * turn.cos() - 300.0,
                    p[2],
                ]
            })
            .collect(),
        root_rotation: m
            .root_rotation
            .iter()
            .map(|r| [r[0], r[1], r[2] + turn])
            .collect(),
        joints: m.joints.clone(),
    };
    let (g, _) = to_features(&moved, 100.0);
    let diff = f
        .iter()
        .zip(&g)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(diff < 1e-9, "features changed under a rigid move: {diff}");
}
