//! Network partitions on loopback: a datanode started as its own uid (Options::own_uids) is
//! cut off by iptables rules that drop what that uid sends, either everything (isolated) or
//! only what goes to the coordinators. Rules are removed when dropped, even when a test fails.

use std::process::Command;

/// Whether partitions can be made here (root, iptables with the owner match).
pub fn available() -> bool {
    let uid = Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if uid.ok().as_deref() != Some("0") {
        return false;
    }
    // The partitioned datanodes run as other uids: they must be able to run the binary.
    let runnable = std::path::Path::new(super::BIN).ancestors().all(|p| {
        use std::os::unix::fs::PermissionsExt;
        p.as_os_str().is_empty() || std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o001 != 0)
    });
    if !runnable {
        return false;
    }
    // Add and remove a harmless rule to prove the owner match works.
    let probe = ["-m", "owner", "--uid-owner", "65533", "-p", "tcp", "--dport", "9", "-j", "DROP"];
    if !iptables("-I", &probe) {
        return false;
    }
    iptables("-D", &probe)
}

fn iptables(op: &str, rule: &[&str]) -> bool {
    Command::new("iptables").args(["-w", op, "OUTPUT"]).args(rule).output().map(|o| o.status.success()).unwrap_or(false)
}

/// An installed rule; dropping it heals the partition.
pub struct Partition {
    rules: Vec<Vec<String>>,
}

impl Partition {
    fn install(rules: Vec<Vec<String>>) -> Partition {
        for r in &rules {
            let args: Vec<&str> = r.iter().map(String::as_str).collect();
            assert!(iptables("-I", &args), "iptables -I OUTPUT {r:?} failed");
        }
        Partition { rules }
    }

    /// Drops everything `uid` sends.
    pub fn isolate(uid: u32) -> Partition {
        Partition::install(vec![vec![
            "-m".into(),
            "owner".into(),
            "--uid-owner".into(),
            uid.to_string(),
            "-j".into(),
            "DROP".into(),
        ]])
    }

    /// Drops what `uid` sends to these ports (the coordinators): it still serves clients
    /// and replicas, but its lease cannot be renewed.
    pub fn cut(uid: u32, ports: &[u16]) -> Partition {
        let rules = ports
            .iter()
            .map(|p| {
                ["-m", "owner", "--uid-owner", &uid.to_string(), "-p", "tcp", "--dport", &p.to_string(), "-j", "DROP"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            })
            .collect();
        Partition::install(rules)
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        for r in &self.rules {
            let args: Vec<&str> = r.iter().map(String::as_str).collect();
            iptables("-D", &args);
        }
    }
}
