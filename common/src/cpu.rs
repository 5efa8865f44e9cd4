//! This process's CPU time and resident memory, for INFO's `# CPU` section (Redis's
//! used_cpu_user/used_cpu_sys) and `used_memory_rss`.

/// Clock ticks per second in /proc (USER_HZ: 100 on every Linux architecture).
const USER_HZ: f64 = 100.0;

/// Seconds of CPU this process has used: (user, system). None where /proc is not there.
pub fn process_times() -> Option<(f64, f64)> {
    parse_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// utime and stime are fields 14 and 15 of /proc/<pid>/stat; the command name (field 2)
/// may hold spaces and parentheses, so fields are counted after its last ')'.
fn parse_stat(stat: &str) -> Option<(f64, f64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let sys: u64 = fields.next()?.parse().ok()?;
    Some((user as f64 / USER_HZ, sys as f64 / USER_HZ))
}

/// INFO's CPU fields with `prefix` (`used_cpu_` for Redis's names).
pub fn info_fields(prefix: &str) -> String {
    match process_times() {
        Some((user, sys)) => format!("{prefix}sys:{sys:.6}\r\n{prefix}user:{user:.6}\r\n"),
        None => String::new(),
    }
}

/// Bytes of this process's memory resident in RAM (VmRSS). None where /proc is not there.
pub fn resident_bytes() -> Option<u64> {
    kb_field(&std::fs::read_to_string("/proc/self/status").ok()?, "VmRSS:")
}

/// The machine's memory (MemTotal; INFO's total_system_memory). None without /proc.
pub fn system_memory_bytes() -> Option<u64> {
    kb_field(&std::fs::read_to_string("/proc/meminfo").ok()?, "MemTotal:")
}

/// A `Name:   123 kB` line of a /proc file, in bytes.
fn kb_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    let kb: u64 = line[name.len()..].trim().strip_suffix("kB")?.trim().parse().ok()?;
    kb.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_memory_is_read_from_status() {
        assert_eq!(kb_field("Name:\tx\nVmRSS:\t   1234 kB\nVmSwap:\t0 kB\n", "VmRSS:"), Some(1234 * 1024));
        assert_eq!(kb_field("Name:\tx\n", "VmRSS:"), None);
        assert!(resident_bytes().is_some_and(|b| b > 0));
        assert!(system_memory_bytes().is_some_and(|b| b > 0));
    }

    #[test]
    fn fields_are_counted_after_the_name() {
        let stat = "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 1 0 5 0 0";
        assert_eq!(parse_stat(stat), Some((2.5, 0.75)));
        assert!(process_times().is_some_and(|(u, s)| u >= 0.0 && s >= 0.0));
    }
}
