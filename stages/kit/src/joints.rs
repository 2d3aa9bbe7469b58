//! The canonical KIT-ML joint order and the rule for files that lack joints.
//!
//! Canonical order: the 44 joints of KIT-ML motion files (as in `00001_mmm.xml`),
//! which is also the column order of `joint_position` in `motions.parquet`, of the
//! generated `.npy` files and of written MMM XML. Older MMM files have 40 joints: they
//! lack the four foot joints `LFx`, `LMrot`, `RFx`, `RMrot`. A file may lack only
//! those: they are filled with 0.0 (the model's neutral pose) and listed in the
//! `missing_joints` column. A file that lacks any other joint, or names a joint not in
//! this set, is rejected with the names.

/// The 44 KIT-ML joints, in canonical order (names as in the files, with `_joint`).
pub const KIT_JOINTS: [&str; 44] = [
    "BLNx_joint",
    "BLNy_joint",
    "BLNz_joint",
    "BPx_joint",
    "BPy_joint",
    "BPz_joint",
    "BTx_joint",
    "BTy_joint",
    "BTz_joint",
    "BUNx_joint",
    "BUNy_joint",
    "BUNz_joint",
    "LAx_joint",
    "LAy_joint",
    "LAz_joint",
    "LEx_joint",
    "LEz_joint",
    "LHx_joint",
    "LHy_joint",
    "LHz_joint",
    "LKx_joint",
    "LSx_joint",
    "LSy_joint",
    "LSz_joint",
    "LWx_joint",
    "LWy_joint",
    "LFx_joint",
    "LMrot_joint",
    "RAx_joint",
    "RAy_joint",
    "RAz_joint",
    "REx_joint",
    "REz_joint",
    "RHx_joint",
    "RHy_joint",
    "RHz_joint",
    "RKx_joint",
    "RSx_joint",
    "RSy_joint",
    "RSz_joint",
    "RWx_joint",
    "RWy_joint",
    "RFx_joint",
    "RMrot_joint",
];

/// Joint limits (rad) of the MMM reference model, in canonical order: from
/// `data/kit/mmm_model/mmm_plappert.xml`, the four foot joints from
/// `mmm_language2pose.xml` (a test checks this table against both files).
#[allow(clippy::approx_constant)] // the model's own 6-digit values, not π/4 etc.
pub const LIMITS: [(f64, f64); 44] = [
    (-0.785398, 0.261799),
    (-0.349066, 0.349066),
    (-0.261799, 0.261799),
    (-0.872665, 0.610865),
    (-0.349066, 0.349066),
    (-0.785398, 0.785398),
    (-0.610865, 0.471239),
    (-0.349066, 0.349066),
    (-0.628319, 0.628319),
    (-0.349066, 0.523599),
    (-0.261799, 0.261799),
    (-0.349066, 0.349066),
    (-0.698132, 0.523599),
    (-0.349066, 0.349066),
    (-0.523599, 0.523599),
    (0.0, 2.79253),
    (-1.5708, 1.5708),
    (-0.872665, 1.65806),
    (-0.349066, 1.13446),
    (-0.785398, 0.785398),
    (-2.26893, 0.0),
    (-1.22173, 3.31613),
    (0.0, 2.79253),
    (-1.22173, 1.0472),
    (-0.523599, 0.349066),
    (-1.22173, 0.872665),
    (-0.523599, 0.785398),
    (-0.261799, 0.261799),
    (-0.698132, 0.523599),
    (-0.349066, 0.349066),
    (-0.523599, 0.523599),
    (0.0, 2.79253),
    (-1.5708, 1.5708),
    (-0.872665, 1.65806),
    (-1.13446, 0.349066),
    (-0.785398, 0.785398),
    (-2.26893, 0.0),
    (-1.22173, 3.31613),
    (-2.79253, 0.0),
    (-1.0472, 1.22173),
    (-0.523599, 0.349066),
    (-0.872665, 1.22173),
    (-0.523599, 0.785398),
    (-0.261799, 0.261799),
];

/// Joints a file may lack (absent from older 40-joint MMM files).
pub const OPTIONAL_JOINTS: [&str; 4] = ["LFx_joint", "LMrot_joint", "RFx_joint", "RMrot_joint"];

pub fn index(name: &str) -> Option<usize> {
    KIT_JOINTS.iter().position(|j| *j == name)
}

/// For each canonical joint, the column of the file's joint order that holds it
/// (`None`: missing, filled with 0.0). Errors name unknown or missing joints.
pub fn mapping(file_joints: &[String]) -> Result<Vec<Option<usize>>, String> {
    let unknown: Vec<&str> = file_joints
        .iter()
        .filter(|j| index(j).is_none())
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "unknown joint names (not in the KIT-ML joint set): {}",
            unknown.join(", ")
        ));
    }
    let mut map = vec![None; KIT_JOINTS.len()];
    for (col, name) in file_joints.iter().enumerate() {
        let Some(i) = index(name) else { continue };
        if map[i].is_some() {
            return Err(format!("joint `{name}` is listed twice in <JointOrder>"));
        }
        map[i] = Some(col);
    }
    let missing: Vec<&str> = KIT_JOINTS
        .iter()
        .zip(&map)
        .filter(|(j, m)| m.is_none() && !OPTIONAL_JOINTS.contains(j))
        .map(|(j, _)| *j)
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "has {} of the 44 KIT-ML joints; only the foot joints (LFx, LMrot, RFx, RMrot) may be missing, but these are too: {}",
            file_joints.len(),
            missing.join(", ")
        ));
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_match_the_mmm_model_files() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/kit/mmm_model");
        let a = std::fs::read_to_string(dir.join("mmm_plappert.xml")).expect("model");
        let b = std::fs::read_to_string(dir.join("mmm_language2pose.xml")).expect("model");
        for (name, (lo, hi)) in KIT_JOINTS.iter().zip(LIMITS) {
            let node = format!("RobotNode name='{name}'");
            let src = if a.contains(&node) { &a } else { &b };
            let at = src.find(&node).expect("joint in a model");
            let seg = &src[at..];
            let l = seg.find("limits lo='").expect("limits") + 11;
            let vals: Vec<f64> = seg[l..]
                .split('\'')
                .enumerate()
                .filter(|(i, _)| i % 2 == 0)
                .take(2)
                .map(|(_, v)| v.parse().expect("number"))
                .collect();
            assert_eq!(vals, vec![lo, hi], "{name}");
        }
    }

    #[test]
    fn legacy_40_joint_files_map_with_feet_missing() {
        let forty: Vec<String> = KIT_JOINTS
            .iter()
            .filter(|j| !OPTIONAL_JOINTS.contains(j))
            .map(|s| s.to_string())
            .collect();
        assert_eq!(forty.len(), 40);
        let m = mapping(&forty).expect("40 joints are fine");
        assert_eq!(m.iter().filter(|x| x.is_none()).count(), 4);
        assert_eq!(m[index("LFx_joint").expect("known")], None);
        let mut bad = forty.clone();
        bad.pop();
        assert!(mapping(&bad).expect_err("too few").contains("RWy_joint"));
        bad.push("Tail_joint".into());
        assert!(mapping(&bad).expect_err("unknown").contains("Tail_joint"));
    }
}
