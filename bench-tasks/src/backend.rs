//! Which burn backend runs the work, chosen at run time.
//!
//! burn 0.22 carries the backend in its [`Device`] value rather than in a type parameter, so the same
//! challenge code runs on every backend compiled into the binary. Each backend sits behind a cargo
//! feature of this crate (`flex`, `wgpu`, `vulkan`, `cuda`); asking for one that was not compiled in is a
//! [`BackendError`] naming the feature to enable, never a panic.
//!
//! ```
//! use bench_tasks::backend::BackendKind;
//!
//! let kind: BackendKind = "flex".parse().unwrap();
//! assert_eq!(kind.to_string(), "flex");
//! # #[cfg(feature = "flex")]
//! let device = kind.device(0).unwrap();
//! ```

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

/// A burn backend this crate can run challenges on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// burn's pure-Rust CPU backend (cargo feature `flex`, on by default).
    Flex,
    /// wgpu on whichever graphics API the machine offers (cargo feature `wgpu`); runs on Mesa's software
    /// Vulkan driver (lavapipe) where there is no GPU.
    Wgpu,
    /// wgpu pinned to Vulkan (cargo feature `vulkan`).
    Vulkan,
    /// NVIDIA CUDA (cargo feature `cuda`).
    Cuda,
}

/// Why a backend or device cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The backend's cargo feature was not enabled when this binary was built.
    #[error(
        "backend `{kind}` is not compiled into this binary; rebuild with `--features bench-tasks/{feature}`"
    )]
    NotCompiled {
        /// The backend asked for.
        kind: BackendKind,
        /// The cargo feature that provides it.
        feature: &'static str,
    },
    /// The string names no backend.
    #[error("unknown backend `{0}`; expected one of flex, wgpu, vulkan, cuda")]
    Unknown(String),
    /// The device exists in the build but failed a smoke test (no adapter, driver error).
    #[error(
        "backend `{kind}` device {index} does not work: {detail}; check the driver or pick another backend"
    )]
    Unusable {
        /// The backend asked for.
        kind: BackendKind,
        /// The device index asked for.
        index: usize,
        /// What went wrong.
        detail: String,
    },
}

impl BackendKind {
    /// Every backend, compiled in or not.
    pub const ALL: [Self; 4] = [Self::Flex, Self::Wgpu, Self::Vulkan, Self::Cuda];

    /// The stable name (`"flex"`, `"wgpu"`, `"vulkan"`, `"cuda"`), also the cargo feature's name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Flex => "flex",
            Self::Wgpu => "wgpu",
            Self::Vulkan => "vulkan",
            Self::Cuda => "cuda",
        }
    }

    /// Whether this backend's cargo feature was enabled in this build.
    pub const fn is_compiled(self) -> bool {
        match self {
            Self::Flex => cfg!(feature = "flex"),
            Self::Wgpu => cfg!(feature = "wgpu"),
            Self::Vulkan => cfg!(feature = "vulkan"),
            Self::Cuda => cfg!(feature = "cuda"),
        }
    }

    /// The backends compiled into this binary, in a fixed order (flex, wgpu, vulkan, cuda).
    pub fn compiled() -> Vec<Self> {
        Self::ALL.into_iter().filter(|k| k.is_compiled()).collect()
    }

    /// The burn device for this backend.
    ///
    /// `index` picks the GPU for `cuda` (hardware index) and for `wgpu`/`vulkan` (0 is the adapter
    /// wgpu prefers, which is also the software adapter on a machine without a GPU; `i ≥ 1` is the
    /// `i`-th discrete GPU). `flex` has a single device and ignores `index`. The device is created
    /// lazily by burn; use [`probe`] to find out early whether it works.
    pub fn device(self, index: usize) -> Result<Device, BackendError> {
        match self {
            #[cfg(feature = "flex")]
            Self::Flex => {
                let _ = index;
                Ok(Device::flex())
            }
            #[cfg(feature = "wgpu")]
            Self::Wgpu => Ok(Device::wgpu(wgpu_kind(index))),
            #[cfg(feature = "vulkan")]
            Self::Vulkan => Ok(Device::vulkan(wgpu_kind(index))),
            #[cfg(feature = "cuda")]
            Self::Cuda => Ok(Device::cuda(index)),
            #[allow(unreachable_patterns)]
            other => {
                let _ = index;
                Err(BackendError::NotCompiled {
                    kind: other,
                    feature: other.name(),
                })
            }
        }
    }
}

#[cfg(any(feature = "wgpu", feature = "vulkan"))]
fn wgpu_kind(index: usize) -> burn::tensor::DeviceKind {
    use burn::tensor::DeviceKind;
    if index == 0 {
        DeviceKind::DefaultDevice
    } else {
        DeviceKind::DiscreteGpu(index)
    }
}

/// Runs a tiny computation on `device` and reads it back, turning a driver failure (which burn reports by
/// panicking on first use) into a [`BackendError::Unusable`].
pub fn probe(kind: BackendKind, index: usize) -> Result<Device, BackendError> {
    let device = kind.device(index)?;
    let dev = device.clone();
    let result = std::panic::catch_unwind(move || {
        let t = burn::tensor::Tensor::<1, burn::tensor::Int>::arange(0..4, &dev);
        t.clone()
            .mul(t)
            .try_into_data()
            .map_err(|e| e.to_string())?
            .try_into_vec_as::<i64>()
            .map_err(|e| e.to_string())
    });
    let unusable = |detail: String| BackendError::Unusable { kind, index, detail };
    match result {
        Ok(Ok(v)) if v == [0, 1, 4, 9] => Ok(device),
        Ok(Ok(v)) => Err(unusable(format!("0..4 squared came back as {v:?}"))),
        Ok(Err(e)) => Err(unusable(e)),
        Err(panic) => Err(unusable(
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "the backend panicked".to_owned()),
        )),
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BackendKind {
    type Err = BackendError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| BackendError::Unknown(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_str_and_serde() {
        for kind in BackendKind::ALL {
            assert_eq!(kind.to_string().parse::<BackendKind>().unwrap(), kind);
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{kind}\""));
            assert_eq!(serde_json::from_str::<BackendKind>(&json).unwrap(), kind);
        }
        assert!(matches!(
            "tpu".parse::<BackendKind>(),
            Err(BackendError::Unknown(_))
        ));
    }

    #[test]
    fn compiled_matches_device_availability() {
        for kind in BackendKind::ALL {
            match kind.device(0) {
                Ok(_) => assert!(BackendKind::compiled().contains(&kind)),
                Err(BackendError::NotCompiled { feature, .. }) => {
                    assert!(!kind.is_compiled());
                    assert_eq!(feature, kind.name());
                }
                Err(other) => panic!("unexpected error {other}"),
            }
        }
    }

    #[cfg(feature = "flex")]
    #[test]
    fn flex_probe_works() {
        assert!(probe(BackendKind::Flex, 0).is_ok());
    }
}
