//! Content addressing: input hashing with a stat cache (`hash`), the stage key
//! (`key`) and the artifact store with manifests, locks and atomic publish (`store`).

pub mod hash;
pub mod key;
pub mod store;
