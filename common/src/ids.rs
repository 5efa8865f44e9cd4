//! Identifier rules and names in ElastiCache's style.

/// ElastiCache's rule for replication group ids: 1-40 characters, letters, digits and
/// hyphens, starting with a letter, no two consecutive hyphens, no trailing hyphen.
pub fn validate_replication_group_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 40 {
        return Err("ReplicationGroupId must be 1 to 40 characters long".into());
    }
    if !id.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err("ReplicationGroupId must begin with a letter".into());
    }
    if !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err("ReplicationGroupId must contain only ASCII letters, digits and hyphens".into());
    }
    if id.ends_with('-') || id.contains("--") {
        return Err("ReplicationGroupId cannot end with a hyphen or contain two consecutive hyphens".into());
    }
    Ok(())
}

/// Cache cluster id of member `index` (0-based) in cluster-mode-disabled naming: `group-001`.
pub fn cache_cluster_id(group: &str, index: usize) -> String {
    format!("{group}-{:03}", index + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_ids() {
        assert!(validate_replication_group_id("default").is_ok());
        assert!(validate_replication_group_id("my-group-1").is_ok());
        for bad in ["", "1abc", "a--b", "ab-", "a_b", &"a".repeat(41)] {
            assert!(validate_replication_group_id(bad).is_err(), "{bad}");
        }
        assert_eq!(cache_cluster_id("default", 0), "default-001");
    }
}
