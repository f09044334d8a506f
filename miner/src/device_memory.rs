//! The device memory `GET /info` reports (`device_memory_bytes`), where it can be known honestly.
//!
//! * `flex` computes in host memory: the figure is the machine's RAM (`MemTotal` of `/proc/meminfo`),
//!   lowered to the cgroup's memory limit when the miner runs in a container that has one.
//! * `wgpu`, `vulkan` and `cuda`: the capacity cubecl's runtime reads from the driver (CUDA's total
//!   device memory, Vulkan's largest device-local heap), when it states one.
//! * Otherwise (no `/proc`, a wgpu adapter that reports no heap): `None`, never a guess, because
//!   validators and operators read the figure as a measurement.

use bench_tasks::backend::BackendKind;
use burn::tensor::Device;

/// The memory `device` of backend `kind` can use, in bytes, or `None` when it cannot be known.
pub fn device_memory_bytes(kind: BackendKind, device: &Device) -> Option<u64> {
    match kind {
        BackendKind::Flex => host_memory_bytes(),
        _ => gpu_memory_bytes(device),
    }
}

/// The host memory available to this process: `MemTotal`, capped by the cgroup limit (v2
/// `memory.max`, else v1 `memory.limit_in_bytes`). `None` without `/proc/meminfo` (not Linux).
pub fn host_memory_bytes() -> Option<u64> {
    let total = parse_meminfo_total(&std::fs::read_to_string("/proc/meminfo").ok()?)?;
    let limit = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .find_map(|path| std::fs::read_to_string(path).ok())
    .and_then(|text| parse_cgroup_limit(&text));
    Some(limit.map_or(total, |l| l.min(total)))
}

/// `MemTotal` of a `/proc/meminfo` text, in bytes (the file states kB, meaning KiB).
pub fn parse_meminfo_total(meminfo: &str) -> Option<u64> {
    meminfo.lines().find_map(|line| {
        let rest = line.strip_prefix("MemTotal:")?;
        let mut parts = rest.split_whitespace();
        let value: u64 = parts.next()?.parse().ok()?;
        let bytes = match parts.next() {
            Some("kB") => value.checked_mul(1024)?,
            None => value,
            Some(_) => return None,
        };
        (bytes > 0).then_some(bytes)
    })
}

/// A cgroup memory limit file's value in bytes; `None` for `max` (no limit) or anything unparsable.
pub fn parse_cgroup_limit(text: &str) -> Option<u64> {
    text.trim().parse::<u64>().ok().filter(|&v| v > 0)
}

#[cfg(any(feature = "wgpu", feature = "vulkan", feature = "cuda"))]
fn gpu_memory_bytes(device: &Device) -> Option<u64> {
    use burn::backend::DispatchDevice;
    match device.as_dispatch() {
        DispatchDevice::Cube(cube) => cube.client().properties().memory.max_memory(),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

#[cfg(not(any(feature = "wgpu", feature = "vulkan", feature = "cuda")))]
fn gpu_memory_bytes(_device: &Device) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_total_is_read_in_bytes() {
        let text = "MemTotal:       16314368 kB\nMemFree:         1234 kB\nMemAvailable:   8000000 kB\n";
        assert_eq!(parse_meminfo_total(text), Some(16_314_368 * 1024));
        assert_eq!(parse_meminfo_total("MemFree: 12 kB\n"), None, "no MemTotal line");
        assert_eq!(
            parse_meminfo_total("MemTotal: 12 MB\n"),
            None,
            "an unknown unit is not guessed"
        );
        assert_eq!(parse_meminfo_total("MemTotal: 0 kB\n"), None);
    }

    #[test]
    fn cgroup_limit_max_means_none() {
        assert_eq!(parse_cgroup_limit("max\n"), None);
        assert_eq!(parse_cgroup_limit("2147483648\n"), Some(2_147_483_648));
        assert_eq!(parse_cgroup_limit(""), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn host_memory_on_linux_is_known_and_at_most_mem_total() {
        let total = parse_meminfo_total(&std::fs::read_to_string("/proc/meminfo").expect("/proc/meminfo"))
            .expect("MemTotal");
        let host = host_memory_bytes().expect("known on Linux");
        assert!(host <= total, "{host} > MemTotal {total}");
        assert!(host > 0);
    }
}
