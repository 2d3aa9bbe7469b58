//! KIT MMM motion XML: a streaming reader (`read`) and a writer (`write`).

mod num;
mod read;
mod write;

pub use read::{parse, parse_general, read_file, Channels, ParseError};
pub use write::{to_xml, write_file};

/// One motion as stored in an MMM file (joint columns in the file's own order).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Motion {
    /// `<Motion name=…>`.
    pub name: String,
    /// `<ModelProcessorConfig><Height>` in metres.
    pub height_m: Option<f64>,
    /// `<ModelProcessorConfig><Mass>` in kg.
    pub mass_kg: Option<f64>,
    /// `<JointOrder>` names, e.g. `BLNx_joint`.
    pub joint_names: Vec<String>,
    /// Per frame: `<Timestep>` in seconds.
    pub timesteps: Vec<f64>,
    /// Per frame: `<RootPosition>` x, y, z in mm (z up).
    pub root_position: Vec<[f64; 3]>,
    /// Per frame: `<RootRotation>` in rad (the z component is the heading).
    pub root_rotation: Vec<[f64; 3]>,
    /// Frames × joints, row-major: `<JointPosition>` in rad.
    pub joint_position: Vec<f64>,
    /// Frames × joints, when read (`<JointVelocity>`).
    pub joint_velocity: Option<Vec<f64>>,
    /// Frames × joints, when read (`<JointAcceleration>`).
    pub joint_acceleration: Option<Vec<f64>>,
    /// Per-frame elements present but not read (e.g. `CoM` in older files).
    pub other_elements: Vec<String>,
}

impl Motion {
    pub fn frames(&self) -> usize {
        self.timesteps.len()
    }
}
