//! The MMM body: the reference model ([`model`]), forward kinematics ([`fk`]),
//! BVH export ([`bvh`]) and left/right mirroring ([`mirror`]).

pub mod bvh;
pub mod fk;
pub mod math;
pub mod mirror;
pub mod model;
pub mod npy;

pub use fk::{foot_skating, forward, BodyMotion, Poses, DEFAULT_HEIGHT_M};
pub use model::{Dof, Node, Skeleton};
