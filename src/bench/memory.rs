//! Peak and current resident memory of this process, read from `/proc/self/status`.

/// Resident memory of this process in KiB, as the kernel reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Memory {
    /// `VmHWM`: the peak resident set size so far.
    pub peak_kib: u64,
    /// `VmRSS`: the resident set size now.
    pub current_kib: u64,
    /// `RssAnon`: the part of `VmRSS` that is anonymous memory (heap, stacks).
    #[serde(default)]
    pub anon_kib: u64,
    /// `RssFile`: the part of `VmRSS` that is mapped files, mostly the binary's code pages: it
    /// grows with the code a process has run, not with what it holds.
    #[serde(default)]
    pub file_kib: u64,
}

impl Memory {
    /// Reads `/proc/self/status`; zeros where it is unavailable (not Linux).
    pub fn read() -> Self {
        std::fs::read_to_string("/proc/self/status")
            .map(|status| Self::parse(&status))
            .unwrap_or_default()
    }

    /// Picks `VmHWM` and `VmRSS` out of a `/proc/<pid>/status` text.
    pub fn parse(status: &str) -> Self {
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        };
        Self {
            peak_kib: field("VmHWM:"),
            current_kib: field("VmRSS:"),
            anon_kib: field("RssAnon:"),
            file_kib: field("RssFile:"),
        }
    }
}

/// KiB as MiB, for printing.
pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_peak_and_current_resident_memory() {
        let status = "Name:\tbench\nVmPeak:\t  900 kB\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nRssAnon:\t    6144 kB\nRssFile:\t    4096 kB\n";
        assert_eq!(
            Memory::parse(status),
            Memory {
                peak_kib: 20_480,
                current_kib: 10_240,
                anon_kib: 6_144,
                file_kib: 4_096,
            }
        );
    }

    #[test]
    fn missing_fields_read_as_zero() {
        assert_eq!(Memory::parse("Name:\tbench\n"), Memory::default());
    }
}
