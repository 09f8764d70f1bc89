//! Finding an agent binary that can run inside a container: a static ELF executable of the
//! image's architecture (no `PT_INTERP`, so it needs nothing from the image's filesystem).

use std::path::{Path, PathBuf};

/// Environment variable naming a static clnrm to use as the agent.
pub const AGENT_BIN_ENV: &str = "CLNRM_AGENT_BIN";

/// What an ELF header says about running a file in a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfFacts {
    /// Docker's name of the architecture (`amd64`, `arm64`, ...), or `machine-<n>`.
    pub arch: String,
    /// Needs a dynamic loader (has a `PT_INTERP` program header).
    pub dynamic: bool,
}

/// Read the ELF header and program headers of `bytes` (64-bit little-endian only, which is
/// every architecture Docker runs clnrm on). `None` when it is not such an ELF file.
pub fn elf_facts(bytes: &[u8]) -> Option<ElfFacts> {
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 || bytes[5] != 1 {
        return None;
    }
    let u16_at = |o: usize| Some(u16::from_le_bytes(bytes.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(bytes.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(bytes.get(o..o + 8)?.try_into().ok()?));
    let machine = u16_at(18)?;
    let phoff = usize::try_from(u64_at(32)?).ok()?;
    let phentsize = usize::from(u16_at(54)?);
    let phnum = usize::from(u16_at(56)?);
    let mut dynamic = false;
    for i in 0..phnum {
        let off = phoff.checked_add(i.checked_mul(phentsize)?)?;
        const PT_INTERP: u32 = 3;
        if u32_at(off)? == PT_INTERP {
            dynamic = true;
        }
    }
    let arch = match machine {
        62 => "amd64".to_string(),
        183 => "arm64".to_string(),
        243 => "riscv64".to_string(),
        21 => "ppc64le".to_string(),
        22 => "s390x".to_string(),
        n => format!("machine-{n}"),
    };
    Some(ElfFacts { arch, dynamic })
}

/// The headers of a file on disk (the first 64 KiB hold them for any real executable).
pub fn file_facts(path: &Path) -> Result<ElfFacts, String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    buf.truncate(n);
    elf_facts(&buf).ok_or_else(|| format!("{} is not a 64-bit ELF executable", path.display()))
}

/// The static clnrm to mount into containers: `CLNRM_AGENT_BIN` if set, else the running
/// executable when it is clnrm and static. The error says why none is usable.
pub fn find_agent_binary() -> Result<(PathBuf, ElfFacts), String> {
    if let Some(p) = std::env::var_os(AGENT_BIN_ENV).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(p);
        let facts = file_facts(&path).map_err(|e| format!("{AGENT_BIN_ENV}: {e}"))?;
        if facts.dynamic {
            return Err(format!(
                "{AGENT_BIN_ENV}={} is dynamically linked; the agent must be static",
                path.display()
            ));
        }
        return Ok((path, facts));
    }
    let exe = std::env::current_exe().map_err(|e| format!("current executable: {e}"))?;
    let is_clnrm = exe
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n == "clnrm");
    if !is_clnrm {
        return Err(format!(
            "{} is not the clnrm binary and {AGENT_BIN_ENV} is not set",
            exe.display()
        ));
    }
    let facts = file_facts(&exe)?;
    if facts.dynamic {
        return Err(format!(
            "{} is dynamically linked (build with `RUSTFLAGS=\"-C target-feature=+crt-static\"`, or set {AGENT_BIN_ENV} to a static clnrm)",
            exe.display()
        ));
    }
    Ok((exe, facts))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal 64-bit LE ELF header with `phnum` program headers of the given types.
    fn elf(machine: u16, types: &[u32]) -> Vec<u8> {
        let mut b = vec![0u8; 64 + 56 * types.len()];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[18..20].copy_from_slice(&machine.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&(types.len() as u16).to_le_bytes());
        for (i, t) in types.iter().enumerate() {
            b[64 + 56 * i..68 + 56 * i].copy_from_slice(&t.to_le_bytes());
        }
        b
    }

    #[test]
    fn interp_header_means_dynamic() {
        let f = elf_facts(&elf(62, &[6, 3, 1])).unwrap();
        assert_eq!((f.arch.as_str(), f.dynamic), ("amd64", true));
        let f = elf_facts(&elf(183, &[1, 1])).unwrap();
        assert_eq!((f.arch.as_str(), f.dynamic), ("arm64", false));
    }

    #[test]
    fn garbage_and_truncated_headers_are_not_elf() {
        assert!(elf_facts(b"#!/bin/sh\n").is_none());
        let mut b = elf(62, &[3]);
        b.truncate(66);
        assert!(elf_facts(&b).is_none(), "program header cut off");
    }

    #[test]
    fn the_test_binary_is_described() {
        let exe = std::env::current_exe().unwrap();
        let f = file_facts(&exe).unwrap();
        if cfg!(target_arch = "x86_64") {
            assert_eq!(f.arch, "amd64");
        }
        assert_eq!(f.dynamic, !cfg!(target_feature = "crt-static"));
    }
}
