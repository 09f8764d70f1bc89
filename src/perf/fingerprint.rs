//! Coarse runner fingerprint: CPU model, cores, kernel, Docker version (filled by the caller).
//!
//! Coarse on purpose: it tells "same kind of runner" apart from "different hardware", which is
//! all a report needs to explain a shifted speed factor.

use sha2::{Digest, Sha256};

use crate::results::Fingerprint;

/// Fingerprint of this machine. `docker_version` is left `None`: only the backend knows it.
pub fn fingerprint() -> Fingerprint {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpu_model(&cpuinfo).unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1);
    Fingerprint {
        cpu_model,
        cores,
        kernel: kernel(),
        docker_version: None,
    }
}

/// First `model name` (x86) or `Model`/`Hardware` (ARM) line of /proc/cpuinfo.
fn cpu_model(cpuinfo: &str) -> Option<String> {
    ["model name", "Model", "Hardware", "cpu model"]
        .iter()
        .find_map(|field| {
            cpuinfo.lines().find_map(|line| {
                let (k, v) = line.split_once(':')?;
                (k.trim() == *field).then(|| v.split_whitespace().collect::<Vec<_>>().join(" "))
            })
        })
        .filter(|s| !s.is_empty())
}

fn kernel() -> String {
    // SAFETY: uname only writes into the zeroed struct we own.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut uts) } != 0 {
        return std::env::consts::OS.to_string();
    }
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    format!("{} {}", field(&uts.sysname), field(&uts.release))
}

/// Short stable hash (8 hex digits) naming a fingerprint in the baseline file.
pub fn fingerprint_hash(fp: &Fingerprint) -> String {
    let mut h = Sha256::new();
    h.update(fp.cpu_model.as_bytes());
    h.update([0]);
    h.update(fp.cores.to_le_bytes());
    h.update(fp.kernel.as_bytes());
    h.update([0]);
    h.update(fp.docker_version.as_deref().unwrap_or("").as_bytes());
    hex::encode(&h.finalize()[..4])
}

/// One-line description stored next to the hash in `[fingerprints]`.
pub fn fingerprint_label(fp: &Fingerprint) -> String {
    let mut s = format!("{}, {} cores, {}", fp.cpu_model, fp.cores, fp.kernel);
    if let Some(d) = &fp.docker_version {
        s.push_str(&format!(", docker {d}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_x86_and_arm_cpuinfo() {
        let x86 = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R)  CPU @ 2.20GHz\n";
        assert_eq!(
            cpu_model(x86).as_deref(),
            Some("Intel(R) Xeon(R) CPU @ 2.20GHz")
        );
        let arm = "processor : 0\nBogoMIPS : 50.00\n\nModel : Raspberry Pi 4 Model B\n";
        assert_eq!(cpu_model(arm).as_deref(), Some("Raspberry Pi 4 Model B"));
        assert_eq!(cpu_model("processor : 0\n"), None);
    }

    #[test]
    fn hash_is_stable_and_distinguishes_docker() {
        let a = Fingerprint {
            cpu_model: "cpu".into(),
            cores: 2,
            kernel: "Linux 6.1".into(),
            docker_version: None,
        };
        let mut b = a.clone();
        b.docker_version = Some("20.10".into());
        assert_eq!(fingerprint_hash(&a), fingerprint_hash(&a.clone()));
        assert_eq!(fingerprint_hash(&a).len(), 8);
        assert_ne!(fingerprint_hash(&a), fingerprint_hash(&b));
        assert_eq!(
            fingerprint_label(&b),
            "cpu, 2 cores, Linux 6.1, docker 20.10"
        );
    }

    #[test]
    fn this_machine_has_a_kernel_and_cores() {
        let fp = fingerprint();
        assert!(fp.cores >= 1);
        assert!(fp.kernel.starts_with("Linux"), "{}", fp.kernel);
    }
}
