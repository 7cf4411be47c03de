//! Hardware profile sent in the handshake: CPU cores, memory, and NVIDIA GPUs as
//! `nvidia-smi` reports them (model, count, VRAM, driver, confidential-computing mode).
//! CPU-only is a valid profile: no `nvidia-smi`, or one that fails, means no GPUs.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cocoon_proto::HardwareProfile;

/// `nvidia-smi` can hang on a wedged driver; a worker must start anyway.
const NVIDIA_SMI_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest `nvidia-smi` output read.
const MAX_OUTPUT: usize = 64 * 1024;

pub fn detect() -> HardwareProfile {
    let mut profile = HardwareProfile {
        cpu_cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        memory_mib: memory_mib().unwrap_or(0),
        ..Default::default()
    };
    let query = [
        "--query-gpu=name,memory.total,driver_version",
        "--format=csv,noheader,nounits",
    ];
    if let Some(csv) = nvidia_smi(&query) {
        if let Some(gpus) = parse_gpus(&csv) {
            profile.gpu_model = gpus.model;
            profile.gpu_count = gpus.count;
            profile.vram_mib = gpus.vram_mib;
            profile.driver = gpus.driver;
            profile.cc_mode = nvidia_smi(&["conf-compute", "-f"]).is_some_and(|o| cc_on(&o));
        }
    }
    profile
}

/// What the GPU query says, summed over the GPUs.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Gpus {
    /// The first GPU's name; "A + B" when they differ.
    pub model: String,
    pub count: u32,
    /// Total VRAM of all GPUs.
    pub vram_mib: u64,
    pub driver: String,
}

/// Parses `name, memory.total [MiB], driver_version` lines.
pub(crate) fn parse_gpus(csv: &str) -> Option<Gpus> {
    let mut names: Vec<String> = Vec::new();
    let (mut count, mut vram, mut driver) = (0u32, 0u64, String::new());
    for line in csv.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let mut fields = line.split(',').map(str::trim);
        let (Some(name), Some(mem), Some(drv)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let Ok(mem) = mem.parse::<u64>() else {
            continue;
        };
        if name.is_empty() {
            continue;
        }
        count += 1;
        vram = vram.saturating_add(mem);
        if driver.is_empty() {
            driver = drv.to_string();
        }
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    (count > 0).then(|| Gpus {
        model: names.join(" + "),
        count,
        vram_mib: vram,
        driver,
    })
}

/// `nvidia-smi conf-compute -f` prints `CC status: ON` when confidential computing is on.
pub(crate) fn cc_on(output: &str) -> bool {
    output.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.contains("cc status") && l.trim_end().ends_with("on")
    })
}

/// Runs `nvidia-smi ARGS`, bounded in time and output; None if absent or failing.
fn nvidia_smi(args: &[&str]) -> Option<String> {
    let mut child = Command::new("nvidia-smi")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => break,
            Ok(Some(_)) | Err(_) => return None,
            Ok(None) if started.elapsed() > NVIDIA_SMI_TIMEOUT => {
                tracing::warn!(
                    "nvidia-smi did not answer within {NVIDIA_SMI_TIMEOUT:?}; reporting no GPUs"
                );
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let mut out = Vec::new();
    use std::io::Read;
    child
        .stdout
        .take()?
        .take(MAX_OUTPUT as u64)
        .read_to_end(&mut out)
        .ok()?;
    String::from_utf8(out).ok()
}

fn memory_mib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nvidia_smi_gpu_lines() {
        let csv =
            "NVIDIA H100 80GB HBM3, 81559, 550.90.07\nNVIDIA H100 80GB HBM3, 81559, 550.90.07\n";
        assert_eq!(
            parse_gpus(csv),
            Some(Gpus {
                model: "NVIDIA H100 80GB HBM3".into(),
                count: 2,
                vram_mib: 163_118,
                driver: "550.90.07".into(),
            })
        );
        let mixed = parse_gpus("A, 10, 1\nB, 20, 1\n").unwrap();
        assert_eq!((mixed.model.as_str(), mixed.vram_mib), ("A + B", 30));
        assert_eq!(parse_gpus(""), None);
        assert_eq!(parse_gpus("No devices were found\n"), None);
        assert_eq!(parse_gpus("X, [N/A], 1\n"), None);
    }

    #[test]
    fn reads_confidential_computing_mode() {
        assert!(cc_on("CC status: ON\n"));
        assert!(!cc_on("CC status: OFF\n"));
        assert!(!cc_on(""));
    }

    #[test]
    fn detection_never_fails() {
        let p = detect();
        assert!(p.cpu_cores >= 1);
        // Whatever this machine has, the profile is consistent.
        assert_eq!(p.gpu_count == 0, p.gpu_model.is_empty());
    }
}
