//! Which device training and generation use: `auto` picks CUDA when libtorch sees a
//! GPU, the CPU otherwise.

use tch::Device;

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Auto,
    Cpu,
    Cuda(usize),
}

pub fn parse(s: &str) -> Result<Choice, String> {
    match s {
        "auto" => Ok(Choice::Auto),
        "cpu" => Ok(Choice::Cpu),
        "cuda" => Ok(Choice::Cuda(0)),
        _ => s
            .strip_prefix("cuda:")
            .and_then(|n| n.parse().ok())
            .map(Choice::Cuda)
            .ok_or_else(|| format!("train.device must be auto, cpu, cuda or cuda:N, got `{s}`")),
    }
}

/// The device for a choice; asking for CUDA where there is none is an error.
pub fn resolve(c: Choice) -> anyhow::Result<Device> {
    let n = if tch::Cuda::is_available() {
        tch::Cuda::device_count() as usize
    } else {
        0
    };
    // `pipe` links libtorch's CUDA part only if it was built where a driver was
    // visible (build.rs); a driver here but no device seen is most likely that.
    let hint = if n == 0 && std::path::Path::new("/proc/driver/nvidia/version").exists() {
        "; this machine has an NVIDIA driver: if pipe was built without one visible, \
         rebuild it with PIPE_CUDA=1 (cargo build) to link libtorch's CUDA part"
    } else {
        ""
    };
    match c {
        Choice::Auto if n > 0 => Ok(Device::Cuda(0)),
        Choice::Auto => {
            if !hint.is_empty() {
                eprintln!("warning: using the CPU: libtorch sees no CUDA device{hint}");
            }
            Ok(Device::Cpu)
        }
        Choice::Cpu => Ok(Device::Cpu),
        Choice::Cuda(i) if i < n => Ok(Device::Cuda(i)),
        Choice::Cuda(i) => anyhow::bail!(
            "device cuda:{i} was asked for, but libtorch sees {n} CUDA device(s) \
             (use train.device: auto or cpu){hint}"
        ),
    }
}

pub fn describe(d: Device) -> String {
    match d {
        Device::Cpu => format!("cpu ({} threads)", tch::get_num_threads()),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}"),
    }
}

/// The libtorch this binary was built against (from the wheel's `version.py`).
pub const LIBTORCH_VERSION: &str = env!("PIPE_LIBTORCH_VERSION");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_parse() {
        assert_eq!(parse("auto"), Ok(Choice::Auto));
        assert_eq!(parse("cpu"), Ok(Choice::Cpu));
        assert_eq!(parse("cuda"), Ok(Choice::Cuda(0)));
        assert_eq!(parse("cuda:3"), Ok(Choice::Cuda(3)));
        assert!(parse("cuda:x").is_err());
        assert!(parse("gpu").is_err());
    }

    #[test]
    fn cpu_always_resolves() {
        assert_eq!(resolve(Choice::Cpu).ok(), Some(Device::Cpu));
        assert!(resolve(Choice::Auto).is_ok());
    }
}
