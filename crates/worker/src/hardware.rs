//! Hardware profile sent in the handshake. CPU-only is a valid profile; GPU detection
//! (NVML / nvidia-smi) arrives with the engines issue.

use cocoon_proto::HardwareProfile;

pub fn detect() -> HardwareProfile {
    HardwareProfile {
        cpu_cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        memory_mib: memory_mib().unwrap_or(0),
        ..Default::default()
    }
}

fn memory_mib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}
